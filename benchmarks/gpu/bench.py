#!/usr/bin/env python3
"""The GPU benchmark in one go (on the GPU machine): every 'bench' program of
programs.json through the runner (bptt-gpu-run --json), the PyTorch peers
(peers.py: cuDNN nn.LSTM, and the same checkpointed over sqrt(T) chunks) for
every (T, B, H), then

  <out>/results.json   every measurement, the environment, the targets
  <out>/results.md     tables with ratios to cuDNN and to checkpointed cuDNN,
                       the targets evaluated
  <out>/plot.svg       time per iteration against activation memory, one panel
                       per (T, B, H) (self-contained SVG, no matplotlib)

All three are rewritten after every measurement, so a run cut short still
leaves what it measured. Nothing starts after --deadline (a UNIX time) or
--time-budget seconds; what did not start is recorded as not run.

Timing: the runner's median over --iters after --warmup; iterations adapt so
that a program takes about --target-s seconds, from the time per step of the
previous program of the same (B, H). Memory: activation memory = peak in use
during the step minus in use before it (the runner's activation_peak_bytes;
torch.cuda.max_memory_allocated() minus memory_allocated() for the peers).

  bench.py --runner build/bin/bptt-gpu-run --programs build/gpu-programs --out OUT
  bench.py --render OUT/results.json --out OUT     # tables and plot again
"""

import argparse
import html
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = float(1 << 20)
TIME_TARGET = 1.33      # x cuDNN full, at <= 5% of its activation memory
MEMORY_TARGET = 0.05


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def config_key(T, B, H):
    return f"T={T} B={B} H={H}"


# --------------------------------------------------------------------------
# Running


class Bench:
    def __init__(self, args):
        self.args = args
        self.start = time.time()
        if args.deadline:
            self.deadline = args.deadline
        else:
            self.deadline = self.start + args.time_budget
        # Running commands are killed at the hard deadline.
        self.hard = args.hard_deadline or self.deadline + 45
        with open(os.path.join(args.programs, "programs.json")) as f:
            self.manifest = json.load(f)
        progs = [p for p in self.manifest["programs"] if p.get("set") == "bench"]
        if args.only:
            progs = [p for p in progs if re.search(args.only, p["name"])]
        order = {"all": 0}
        progs.sort(key=lambda p: (p["steps"], p["batch"], p["hidden"],
                                  order.get(p["strategy"], 1),
                                  float(p["budget"].rstrip("%"))))
        self.programs = progs
        self.results = {"environment": {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
                                        "runner": args.runner,
                                        "programs": os.path.abspath(args.programs),
                                        "target_s": args.target_s},
                        "programs": [], "peers": [], "targets": {}}

    def remaining(self, until=None):
        return (until or self.deadline) - time.time()

    def save(self):
        self.results["elapsed_s"] = round(time.time() - self.start, 1)
        self.results["targets"] = evaluate(self.results)
        write_outputs(self.results, self.args.out)

    # The runner ----------------------------------------------------------

    def per_unit_ms(self, p):
        """ms per (forward step + 2 x T) of the latest measured program of
        the same (B, H), or None."""
        best = None
        for r in self.results["programs"]:
            if (r["batch"], r["hidden"]) == (p["batch"], p["hidden"]) and r["status"] == "ok":
                units = r["forward_steps"] + 2 * r["steps"]
                if units > 0:
                    best = r["median_ms"] / units
        return best

    def run_program(self, p, phase_deadline):
        a = self.args
        rec = {k: p[k] for k in ("name", "cell", "batch", "hidden", "vocab", "steps",
                                  "strategy", "budget")}
        rec["budget_spec"] = rec.pop("budget")
        T = p["steps"]
        unit = self.per_unit_ms(p)
        # Forward steps: store-all runs T; MSM at small budgets about 2T.
        est_fs = T if p["strategy"] == "all" else 2 * T
        est_ms = unit * (est_fs + 2 * T) if unit else None
        if est_ms is None:
            # Nothing of this (B, H) measured yet: T = 100 first, normally.
            warmup, iters = (2, 10) if T <= 100 else (1, 3) if T <= a.long_steps else (0, 1)
        else:
            iters = max(1, min(a.max_iters, int(a.target_s * 1e3 / max(est_ms, 1e-3))))
            warmup = 2 if est_ms < 200 else 1
        left = self.remaining(phase_deadline)
        notes = []
        graph = not (a.graph_max_steps and T > a.graph_max_steps)
        # Capturing a long program (host code plus instantiating its graphs)
        # took about 4.5 iterations' time at T = 100,000 (42 s; 0.1 s at
        # T = 100): allow 6.
        capture_ms = 6 * est_ms if graph and est_ms is not None else 0.0
        if est_ms is not None:
            need = ((warmup + iters) * est_ms + capture_ms) / 1e3 + a.startup_s
            if need > left:
                if (est_ms * 2 + capture_ms) / 1e3 + a.startup_s <= left:
                    warmup, iters = 1, 1
                elif (est_ms + capture_ms) / 1e3 + a.startup_s <= left:
                    warmup, iters = 0, 1
                    notes.append("no warm-up (time budget)")
                else:
                    rec.update(status="not run",
                               reason=f"time budget: about {est_ms / 1e3:.0f} s per "
                                      f"iteration, {max(left, 0):.0f} s left")
                    return rec
        if left < a.startup_s:
            rec.update(status="not run", reason=f"time budget: {max(left, 0):.0f} s left")
            return rec
        so = os.path.join(a.programs, p["program"])
        if not os.path.exists(so):
            rec.update(status="not run", reason="not built: "
                       + (p.get("error") or "no " + p["program"])[-300:])
            return rec
        fd, jpath = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        cmd = [a.runner, so, "--warmup", str(warmup), "--iters", str(iters),
               "--seed", "1", "--json", jpath]
        if not graph:
            cmd.append("--no-graph")
            notes.append(f"no CUDA graph (T > {a.graph_max_steps})")
        # Each product shape's cuBLASLt algorithm: the fastest candidate,
        # timed in the warm-up (docs/gpu-abi.md, BPTT_GEMM_TUNE).
        env = dict(os.environ, BPTT_GEMM_TUNE="1" if a.tune_gemms else "0")
        timeout = left if est_ms is None else min(
            left, max(60.0, (3 * (warmup + iters) * est_ms + 2 * capture_ms) / 1e3
                      + 2 * a.startup_s))
        # A started program may finish after its phase, not after the hard deadline.
        timeout = max(timeout, min(60.0, self.hard - time.time()))
        timeout = min(timeout, self.hard - time.time())
        rec.update(command=" ".join(shlex.quote(c) for c in cmd), warmup=warmup,
                   iters=iters, notes=notes)
        log(f"{p['name']}: warm-up {warmup}, {iters} iterations"
            + (f" (about {est_ms:.0f} ms each)" if est_ms else ""))
        t0 = time.time()
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=max(timeout, 1), env=env)
            out, rc = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc = "timeout"
        except OSError as e:
            out, rc = str(e), "error"
        rec["wall_s"] = round(time.time() - t0, 2)
        report = None
        if os.path.exists(jpath) and os.path.getsize(jpath) > 0:
            try:
                with open(jpath) as f:
                    report = json.load(f)
            except ValueError as e:
                out += f"\n(bad --json report: {e})"
        os.remove(jpath)
        if rc != 0 or report is None:
            why = f"timed out after {timeout:.0f} s" if rc == "timeout" else f"exit {rc}"
            rec.update(status="failed", reason=f"{why}: {out.strip()[-1500:]}")
            log(f"{p['name']}: FAILED ({why})")
            return rec
        rec["runner"] = report
        for k in ("activation_peak_bytes", "total_peak_bytes",
                  "pool_reserved_bytes", "planned_peak", "workspace",
                  "forward_steps", "budget", "loss"):
            rec[k] = report.get(k)
        # bptt-gpu-run reports ms_median, ms_min, ms_max (docs/gpu-abi.md).
        for k in ("median", "min", "max"):
            rec[k + "_ms"] = report.get("ms_" + k)
        if rec.get("forward_steps") is None:
            rec["forward_steps"] = est_fs
        ok = rec["median_ms"] is not None and rec["activation_peak_bytes"] is not None
        loss = rec.get("loss")
        if loss is not None and not (isinstance(loss, (int, float)) and math.isfinite(loss)):
            ok = False
            rec["reason"] = f"non-finite loss {loss}"
        rec["status"] = "ok" if ok else "failed"
        if not ok and "reason" not in rec:
            rec["reason"] = "the --json report lacks median_ms or activation_peak_bytes"
        log(f"{p['name']}: {rec['status']}"
            + (f", {rec['median_ms']:.1f} ms, {rec['activation_peak_bytes'] / MIB:.1f} MiB"
               if ok else ""))
        return rec

    # The peers -----------------------------------------------------------

    def run_peers(self, configs, methods, phase_deadline):
        if self.args.skip_peers or not configs:
            return
        self.results["peers"].extend(self.measure_peers(configs, methods, phase_deadline))

    def repeat_full_peer(self, configs, deadline):
        """More rounds of cuDNN nn.LSTM for `configs`, after the programs:
        its median moves more between runs than within one (5.2 to 6.8 ms
        at T = 100, B = 64 on an H100, cudnn-spread-T100-2026-11-24.txt),
        ours by under 1%. The record keeps each round's median
        (rounds_ms) and takes the median of the rounds."""
        a = self.args
        if a.skip_peers or not configs:
            return
        for _ in range(a.peer_rounds - 1):
            if self.remaining(deadline) < 40:
                break
            for res in self.measure_peers(configs, ["full"], deadline):
                rec = peer_of(self.results, "full", res["T"], res["B"], res["H"])
                if not ok(rec) or not ok(res):
                    continue
                rec.setdefault("rounds_ms", [rec["median_ms"]]).append(res["median_ms"])
        for rec in self.results["peers"]:
            if rec.get("rounds_ms"):
                rec["median_ms"] = statistics.median(rec["rounds_ms"])

    def measure_peers(self, configs, methods, phase_deadline):
        """One run of peers.py over configs x methods: a record each."""
        a = self.args
        records = []
        left = self.remaining(phase_deadline)
        if left < 20:
            for T, B, H in configs:
                for m in methods:
                    records.append(dict(method=m, T=T, B=B, H=H, V=a.vocab,
                                        status="not run", reason="time budget"))
            return records
        fd, jpath = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        cmd = [a.python, os.path.join(HERE, "peers.py"),
               "--configs", ",".join(f"{T}:{B}:{H}" for T, B, H in configs),
               "--methods", ",".join(methods), "--vocab", str(a.vocab),
               "--target-s", str(a.target_s), "--max-iters", str(a.max_iters),
               "--deadline", str(phase_deadline), "--json", jpath]
        log("peers: " + " ".join(shlex.quote(c) for c in cmd))
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=max(self.hard - time.time(), 1))
            out, rc = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc = "timeout"
        sys.stderr.write(out)
        got = {}
        if os.path.exists(jpath) and os.path.getsize(jpath) > 0:
            with open(jpath) as f:
                data = json.load(f)
            self.results["environment"]["peers"] = data.get("environment")
            for res in data.get("results", []):
                got[(res["method"], res["T"], res["B"], res["H"])] = res
        os.remove(jpath)
        for T, B, H in configs:
            for m in methods:
                res = got.get((m, T, B, H))
                if res is None:
                    res = dict(method=m, T=T, B=B, H=H, V=a.vocab, status="failed",
                               reason=f"peers.py ended ({rc}) before this one: "
                                      + out.strip()[-800:])
                records.append(res)
        return records

    def run(self):
        a = self.args
        configs = sorted({(p["steps"], p["batch"], p["hidden"]) for p in self.programs})
        long_T = [c for c in configs if c[0] > a.long_steps]
        short = [c for c in configs if c[0] <= a.long_steps]
        R = self.remaining()
        reserve = min(0.4 * R, a.long_reserve_s) if long_T else 0
        peers_deadline = time.time() + a.peers_share * (R - reserve)
        programs_deadline = self.deadline - reserve
        log(f"{len(self.programs)} programs, {len(configs)} configurations; "
            f"{R:.0f} s: peers until +{peers_deadline - time.time():.0f} s, programs "
            f"until +{programs_deadline - time.time():.0f} s, T > {a.long_steps} after")
        # Phase A: the peers of the short configurations.
        self.run_peers(short, ["full", "ckpt"], peers_deadline)
        self.save()
        # Phase B: the programs of the short configurations.
        for p in self.programs:
            if p["steps"] <= a.long_steps:
                self.results["programs"].append(self.run_program(p, programs_deadline))
                self.save()
        # More rounds of cuDNN at the shortest sequences, whose time varies
        # most between runs.
        self.repeat_full_peer([c for c in short if c[0] <= a.peer_rounds_max_steps],
                              programs_deadline)
        self.save()
        # Phase C: long sequences: the program first, then the peers.
        for p in self.programs:
            if p["steps"] > a.long_steps:
                self.results["programs"].append(self.run_program(p, self.deadline))
                self.save()
        self.run_peers(long_T, ["full", "ckpt"], self.deadline)
        self.save()
        log(f"done in {time.time() - self.start:.0f} s")


# --------------------------------------------------------------------------
# Evaluation


def peer_of(results, method, T, B, H):
    for r in results["peers"]:
        if (r["method"], r["T"], r["B"], r["H"]) == (method, T, B, H):
            return r
    return None


def ok(r):
    """Measured: ran, with a time and an activation peak."""
    return (r is not None and r.get("status") == "ok" and r.get("median_ms") is not None
            and r.get("activation_peak_bytes") is not None)


def evaluate(results):
    """The issue's targets, per (T, B, H)."""
    configs = sorted({(p["steps"], p["batch"], p["hidden"]) for p in results["programs"]})
    t1, t2, t3 = [], [], []
    for T, B, H in configs:
        ours = [p for p in results["programs"]
                if (p["steps"], p["batch"], p["hidden"]) == (T, B, H) and ok(p)]
        full = peer_of(results, "full", T, B, H)
        ckpt = peer_of(results, "ckpt", T, B, H)
        key = config_key(T, B, H)
        # 1. <= 5% of cuDNN's activation memory at <= 1.33x its time.
        if ok(full):
            limit = MEMORY_TARGET * full["activation_peak_bytes"]
            fit = [p for p in ours if p["activation_peak_bytes"] <= limit]
            if fit:
                best = min(fit, key=lambda p: p["median_ms"])
                ratio = best["median_ms"] / full["median_ms"]
                t1.append(dict(config=key, result="PASS" if ratio <= TIME_TARGET else "FAIL",
                               program=best["name"], time_ratio=ratio,
                               memory_ratio=best["activation_peak_bytes"]
                               / full["activation_peak_bytes"]))
            elif ours:
                least = min(ours, key=lambda p: p["activation_peak_bytes"])
                t1.append(dict(config=key, result="FAIL", program=least["name"],
                               memory_ratio=least["activation_peak_bytes"]
                               / full["activation_peak_bytes"],
                               time_ratio=least["median_ms"] / full["median_ms"],
                               why="no program within 5% of cuDNN's activation memory"))
            else:
                t1.append(dict(config=key, result="NO DATA", why="no program ran"))
        else:
            t1.append(dict(config=key, result="NO DATA",
                           why="cuDNN full: " + (full or {}).get("reason", "not measured")))
        # 2. Faster than checkpointed cuDNN at equal or lower memory.
        if ok(ckpt):
            fit = [p for p in ours if p["activation_peak_bytes"] <= ckpt["activation_peak_bytes"]]
            if fit:
                best = min(fit, key=lambda p: p["median_ms"])
                ratio = best["median_ms"] / ckpt["median_ms"]
                t2.append(dict(config=key, result="PASS" if ratio < 1 else "FAIL",
                               program=best["name"], time_ratio=ratio,
                               memory_ratio=best["activation_peak_bytes"]
                               / ckpt["activation_peak_bytes"]))
            else:
                t2.append(dict(config=key, result="FAIL" if ours else "NO DATA",
                               why="no program at or below the checkpointed run's "
                                   "activation memory" if ours else "no program ran"))
        else:
            t2.append(dict(config=key, result="NO DATA",
                           why="checkpointed cuDNN: " + (ckpt or {}).get("reason", "not measured")))
    # 3. T = 100000 runs.
    for p in results["programs"]:
        if p["steps"] >= 100000:
            full = peer_of(results, "full", p["steps"], p["batch"], p["hidden"])
            t3.append(dict(config=config_key(p["steps"], p["batch"], p["hidden"]),
                           program=p["name"], result="PASS" if ok(p) else "FAIL",
                           why=p.get("reason", ""),
                           cudnn=(full or {}).get("reason", (full or {}).get("status", "-"))))

    def summary(items):
        return {s: sum(i["result"] == s for i in items) for s in ("PASS", "FAIL", "NO DATA")}

    return {"memory5_time133": {"items": t1, "summary": summary(t1)},
            "faster_than_checkpointed": {"items": t2, "summary": summary(t2)},
            "T100000": {"items": t3, "summary": summary(t3)}}


# --------------------------------------------------------------------------
# Reports


def mib(b):
    return "-" if b is None else f"{b / MIB:,.1f}"


def ms(t):
    return "-" if t is None else (f"{t:,.1f}" if t >= 10 else f"{t:.2f}")


def ratio(a, b):
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def rows_for(results, T, B, H):
    """[(label, strategy, budget, record, kind)] for one configuration."""
    rows = []
    for p in results["programs"]:
        if (p["steps"], p["batch"], p["hidden"]) == (T, B, H):
            label = "bptt store-all" if p["strategy"] == "all" else \
                f"bptt {p['strategy']} {p['budget_spec']}"
            rows.append((label, p, "ours"))
    for m in ("full", "ckpt"):
        r = peer_of(results, m, T, B, H)
        if r is not None:
            label = "cuDNN nn.LSTM" if m == "full" else \
                f"cuDNN + checkpoint (chunks of {math.ceil(math.sqrt(T))})"
            if r.get("rounds_ms"):
                label += (f" (median of {len(r['rounds_ms'])} rounds: "
                          + " / ".join(ms(t) for t in r["rounds_ms"]) + " ms)")
            rows.append((label, r, m))
    return rows


def markdown(results):
    env = results["environment"]
    peers_env = env.get("peers") or {}
    lines = ["# GPU benchmark: BPTT programs against cuDNN", ""]
    lines.append(f"{env.get('date', '')}; GPU: {peers_env.get('gpu', '?')}; PyTorch "
                 f"{peers_env.get('torch', '?')}, cuDNN {peers_env.get('cudnn', '?')}, "
                 f"CUDA {peers_env.get('cuda', '?')}; {results.get('elapsed_s', '?')} s.")
    lines.append("")
    lines.append("Model: one-layer LSTM character model, V = 128, fp32 (TF32 off), "
                 "loss = sum over t of the batch-mean softmax cross-entropy; one "
                 "iteration = forward + backward. Time: median of timed iterations "
                 "after warm-up. Memory: activation memory = peak in use during the "
                 "step minus in use before it (parameters, inputs, gradient buffers "
                 "excluded). Ratios are to cuDNN nn.LSTM (full) and to cuDNN with "
                 "checkpointing over sqrt(T) chunks (ckpt). cuDNN nn.LSTM at "
                 "short sequences runs in rounds, one before the programs and the "
                 "rest after them, and its time is the median of the rounds' medians.")
    lines.append("")
    configs = sorted({(p["steps"], p["batch"], p["hidden"]) for p in results["programs"]}
                     | {(r["T"], r["B"], r["H"]) for r in results["peers"]})
    for T, B, H in configs:
        full = peer_of(results, "full", T, B, H)
        ckpt = peer_of(results, "ckpt", T, B, H)
        lines.append(f"## T = {T}, B = {B}, H = {H}")
        lines.append("")
        lines.append("| method | time ms | activation MiB | planned peak MiB | fwd steps "
                     "| time / full | mem / full | time / ckpt | mem / ckpt | iters | status |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        fr = full if ok(full) else {}
        cr = ckpt if ok(ckpt) else {}
        for label, r, kind in rows_for(results, T, B, H):
            if r.get("status") == "ok" and r.get("median_ms") is not None:
                t, m = r["median_ms"], r.get("activation_peak_bytes")
                lines.append(
                    f"| {label} | {ms(t)} | {mib(m)} | {mib(r.get('planned_peak'))} | "
                    f"{r.get('forward_steps', '-') if kind == 'ours' else '-'} | "
                    f"{ratio(t, fr.get('median_ms'))} | {ratio(m, fr.get('activation_peak_bytes'))} | "
                    f"{ratio(t, cr.get('median_ms'))} | {ratio(m, cr.get('activation_peak_bytes'))} | "
                    f"{r.get('iters', '-')} | ok |")
            else:
                why = (r.get("reason") or "").replace("\n", " ").replace("|", "/")
                if len(why) > 160:
                    why = why[:160] + "..."
                lines.append(f"| {label} | - | - | - | - | - | - | - | - | - | "
                             f"{r.get('status')}: {why} |")
        lines.append("")
    tg = results.get("targets") or evaluate(results)
    lines.append("## Targets")
    lines.append("")
    s = tg["memory5_time133"]["summary"]
    lines.append(f"1. At <= 5% of cuDNN's activation memory, time <= {TIME_TARGET}x "
                 f"cuDNN's: {s['PASS']} pass, {s['FAIL']} fail, {s['NO DATA']} without data.")
    lines.append("")
    lines.append("| configuration | result | program | time / cuDNN | memory / cuDNN | note |")
    lines.append("|---|---|---|---:|---:|---|")
    for i in tg["memory5_time133"]["items"]:
        lines.append(f"| {i['config']} | {i['result']} | {i.get('program', '-')} | "
                     f"{fmt_ratio(i.get('time_ratio'))} | {fmt_pct(i.get('memory_ratio'))} | "
                     f"{i.get('why', '')} |")
    lines.append("")
    s = tg["faster_than_checkpointed"]["summary"]
    lines.append(f"2. Faster than checkpointed cuDNN at equal or lower activation memory: "
                 f"{s['PASS']} pass, {s['FAIL']} fail, {s['NO DATA']} without data.")
    lines.append("")
    lines.append("| configuration | result | program | time / ckpt | memory / ckpt | note |")
    lines.append("|---|---|---|---:|---:|---|")
    for i in tg["faster_than_checkpointed"]["items"]:
        lines.append(f"| {i['config']} | {i['result']} | {i.get('program', '-')} | "
                     f"{fmt_ratio(i.get('time_ratio'))} | {fmt_pct(i.get('memory_ratio'))} | "
                     f"{i.get('why', '')} |")
    lines.append("")
    s = tg["T100000"]["summary"]
    lines.append(f"3. T = 100000 runs: {s['PASS']} pass, {s['FAIL']} fail.")
    lines.append("")
    for i in tg["T100000"]["items"]:
        p = next(p for p in results["programs"] if p["name"] == i["program"])
        detail = (f"{ms(p.get('median_ms'))} ms, {mib(p.get('activation_peak_bytes'))} MiB"
                  if ok(p) else (p.get("reason") or "")[:300])
        lines.append(f"- {i['config']}, {i['program']}: {i['result']} ({detail}); "
                     f"cuDNN nn.LSTM: {i['cudnn']}")
    lines.append("")
    return "\n".join(lines)


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}x"


def fmt_pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


# --------------------------------------------------------------------------
# The plot (plain SVG)


STYLE = {"ours": ("#1f77b4", "circle"), "all": ("#1f77b4", "square"),
         "full": ("#d62728", "triangle"), "ckpt": ("#ff7f0e", "diamond")}


def marker(shape, x, y, color, r=4.5):
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"/>'
    if shape == "square":
        return (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" '
                f'fill="{color}"/>')
    if shape == "triangle":
        pts = [(x, y - r * 1.2), (x - r * 1.1, y + r * 0.8), (x + r * 1.1, y + r * 0.8)]
    else:
        pts = [(x, y - r * 1.3), (x + r, y), (x, y + r * 1.3), (x - r, y)]
    return ('<polygon points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            + f'" fill="{color}"/>')


def nice_ticks(lo, hi, log):
    if log:
        ticks = []
        e = math.floor(math.log10(lo))
        while 10 ** e <= hi * 1.0001:
            for m in (1, 2, 5):
                v = m * 10 ** e
                if lo <= v <= hi:
                    ticks.append(v)
            e += 1
        return ticks
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1
    for m in (1, 2, 5, 10):
        if span / (m * step) <= 6:
            step *= m
            break
    v = math.ceil(lo / step) * step
    ticks = []
    while v <= hi + 1e-9:
        ticks.append(v)
        v += step
    return ticks


def tick_label(v):
    if v >= 1000:
        return f"{v / 1000:g}k" if v < 1e6 else f"{v / 1e6:g}M"
    return f"{v:g}"


def svg_plot(results):
    configs = sorted({(p["steps"], p["batch"], p["hidden"]) for p in results["programs"]}
                     | {(r["T"], r["B"], r["H"]) for r in results["peers"]})
    cols = 3 if len(configs) > 4 else max(1, len(configs))
    rows = max(1, math.ceil(len(configs) / cols))
    pw, ph = 360, 270
    ml, mr, mt, mb = 62, 16, 34, 46
    legend_h = 54
    W, Hh = cols * pw, rows * ph + legend_h + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{Hh}" '
           f'viewBox="0 0 {W} {Hh}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{Hh}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">Time per '
           f'iteration against activation memory (LSTM, V = 128, fp32; lower left is '
           f'better)</text>']
    for idx, (T, B, H) in enumerate(configs):
        ox, oy = (idx % cols) * pw, 26 + (idx // cols) * ph
        pts = []
        for label, r, kind in rows_for(results, T, B, H):
            if ok(r) and r.get("activation_peak_bytes") and r.get("median_ms"):
                k = ("all" if r.get("strategy") == "all" else "ours") if kind == "ours" else kind
                short = (r["budget_spec"] if kind == "ours" and r.get("strategy") != "all"
                         else {"all": "store-all", "full": "cuDNN", "ckpt": "ckpt"}.get(k, ""))
                pts.append((r["activation_peak_bytes"] / MIB, r["median_ms"], k, short))
        x0, y0 = ox + ml, oy + mt
        x1, y1 = ox + pw - mr, oy + ph - mb
        out.append(f'<text x="{(x0 + x1) / 2}" y="{oy + 22}" text-anchor="middle" '
                   f'font-size="12" font-weight="bold">T = {T}, B = {B}, H = {H}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" '
                   f'fill="none" stroke="#888"/>')
        if not pts:
            out.append(f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" '
                       f'text-anchor="middle" fill="#888">no data</text>')
            continue
        full = peer_of(results, "full", T, B, H)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        if ok(full):
            xs.append(MEMORY_TARGET * full["activation_peak_bytes"] / MIB)
            ys.append(TIME_TARGET * full["median_ms"])
        xlo, xhi = min(xs) / 1.6, max(xs) * 1.6
        ylo, yhi = 0.0, max(ys) * 1.12

        def X(v):
            return x0 + (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo)) * (x1 - x0)

        def Y(v):
            return y1 - (v - ylo) / (yhi - ylo) * (y1 - y0)

        for t in nice_ticks(xlo, xhi, True):
            out.append(f'<line x1="{X(t):.1f}" y1="{y0}" x2="{X(t):.1f}" y2="{y1}" stroke="#eee"/>')
            out.append(f'<text x="{X(t):.1f}" y="{y1 + 13}" text-anchor="middle">'
                       f'{tick_label(t)}</text>')
        for t in nice_ticks(ylo, yhi, False):
            out.append(f'<line x1="{x0}" y1="{Y(t):.1f}" x2="{x1}" y2="{Y(t):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 4}" y="{Y(t) + 4:.1f}" text-anchor="end">'
                       f'{tick_label(t)}</text>')
        out.append(f'<text x="{(x0 + x1) / 2}" y="{y1 + 28}" text-anchor="middle">'
                   f'activation memory, MiB (log)</text>')
        out.append(f'<text x="{ox + 14}" y="{(y0 + y1) / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 {ox + 14} {(y0 + y1) / 2})">time per iteration, ms</text>')
        if ok(full):
            # The target region: <= 5% of cuDNN's memory, <= 1.33x its time.
            tx = X(MEMORY_TARGET * full["activation_peak_bytes"] / MIB)
            ty = Y(TIME_TARGET * full["median_ms"])
            out.append(f'<rect x="{x0}" y="{ty:.1f}" width="{tx - x0:.1f}" height="{y1 - ty:.1f}" '
                       f'fill="#2ca02c" fill-opacity="0.10" stroke="#2ca02c" '
                       f'stroke-dasharray="4,3"/>')
        ours = sorted((p for p in pts if p[2] in ("ours", "all")), key=lambda p: p[0])
        if len(ours) > 1:
            out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="1.2" points="'
                       + " ".join(f"{X(p[0]):.1f},{Y(p[1]):.1f}" for p in ours) + '"/>')
        for x, y, k, short in pts:
            color, shape = STYLE[k]
            out.append(marker(shape, X(x), Y(y), color))
            out.append(f'<text x="{X(x) + 6:.1f}" y="{Y(y) - 5:.1f}" font-size="9" '
                       f'fill="{color}">{html.escape(short)}</text>')
    # Legend.
    ly = rows * ph + 26 + 20
    items = [("all", "bptt store-all"), ("ours", "bptt MSM (budget % of store-all)"),
             ("full", "cuDNN nn.LSTM"), ("ckpt", "cuDNN + checkpoint sqrt(T)")]
    x = 20
    for k, text in items:
        color, shape = STYLE[k]
        out.append(marker(shape, x, ly, color))
        out.append(f'<text x="{x + 10}" y="{ly + 4}">{html.escape(text)}</text>')
        x += 60 + 6.2 * len(text)
    out.append(f'<rect x="{x}" y="{ly - 6}" width="14" height="12" fill="#2ca02c" '
               f'fill-opacity="0.10" stroke="#2ca02c" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x + 20}" y="{ly + 4}">target: &#8804; 5% of cuDNN memory, '
               f'&#8804; 1.33x its time</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_outputs(results, out):
    os.makedirs(out, exist_ok=True)
    for name, text in (("results.json", json.dumps(results, indent=1, default=str) + "\n"),
                       ("results.md", markdown(results)),
                       ("plot.svg", svg_plot(results))):
        tmp = os.path.join(out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out, name))


# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", help="bptt-gpu-run")
    ap.add_argument("--programs", help="directory with programs.json")
    ap.add_argument("--out", required=True, help="directory for results.json, .md, plot.svg")
    ap.add_argument("--render", help="only rewrite the reports from this results.json")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for peers.py")
    ap.add_argument("--deadline", type=float, default=0, help="UNIX time: start nothing after")
    ap.add_argument("--time-budget", type=float, default=480,
                    help="seconds from now, without --deadline")
    ap.add_argument("--hard-deadline", type=float, default=0,
                    help="UNIX time at which running commands are killed "
                         "(default: the deadline + 45 s)")
    ap.add_argument("--target-s", type=float, default=3.0,
                    help="seconds of timed iterations per measurement")
    ap.add_argument("--max-iters", type=int, default=20)
    ap.add_argument("--startup-s", type=float, default=5.0,
                    help="assumed runner start-up (CUDA context, module load, capture)")
    ap.add_argument("--graph-max-steps", type=int, default=0,
                    help="programs over this many steps run with --no-graph "
                         "(default 0: every program replays a CUDA graph, "
                         "captured in pieces by the runtime)")
    ap.add_argument("--long-steps", type=int, default=10000,
                    help="configurations over this many steps run last")
    ap.add_argument("--long-reserve-s", type=float, default=200,
                    help="seconds kept for the long configurations")
    ap.add_argument("--peers-share", type=float, default=0.4,
                    help="share of the time before the long configurations for the peers")
    ap.add_argument("--peer-rounds", type=int, default=3,
                    help="rounds of cuDNN nn.LSTM at sequences of at most "
                         "--peer-rounds-max-steps: one before the programs, "
                         "the rest after; its time is the median of the rounds'")
    ap.add_argument("--peer-rounds-max-steps", type=int, default=1000)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--tune-gemms", type=int, default=1,
                    help="1 (the runtime's default): the fastest cuBLASLt "
                         "algorithm per product shape, timed in a graph; "
                         "0: BPTT_GEMM_TUNE=0, cuBLASLt's first "
                         "(docs/gpu-benchmarks.md)")
    ap.add_argument("--only", help="regular expression on program names")
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        results["targets"] = evaluate(results)
        write_outputs(results, args.out)
        print(f"wrote {args.out}/results.json, results.md, plot.svg")
        return 0
    if not args.runner or not args.programs:
        ap.error("--runner and --programs are required (or --render)")
    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted; writing what was measured")
        bench.save()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
