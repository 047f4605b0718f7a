#!/usr/bin/env python3
"""Correctness oracle: a BPTT program's loss and gradients against PyTorch.

For the character-level language models of examples/generate.py (LSTM, GRU,
Elman: PyTorch's nn.LSTM / nn.GRU / nn.RNN(tanh) equations, gate order and
two biases, weights stored transposed, x_t = [one-hot input | one-hot target]
of width 2V, loss = sum over t of the batch-mean softmax cross-entropy), it

  1. draws deterministic inputs (valid one-hot xs, parameters uniform in
     [-1/sqrt(H), 1/sqrt(H)], small random states) and writes them as
     DIR/<name>.bin files named per the GPU program ABI (state0.., xs,
     param0..; raw little-endian row-major), or reuses another run's dump;
  2. runs a runner command with `--inputs-from DIR --dump OUT` (bptt-run on
     the CPU, bptt-gpu-run on the GPU: the command is a parameter);
  3. computes the loss and the gradients (dstate*, dxs, dparam*) with
     PyTorch in fp32, TF32 off (cuDNN's nn.LSTM/GRU/RNN on a GPU, plain CPU
     kernels otherwise), and requires max|g - r| / max|r| <= 1e-4 for the
     loss and every gradient;
  4. optionally compares the dump with another run's dump of the same case
     (GPU against CPU), with the same tolerance.

It prints a table and exits 1 on any failure.

Subcommands:
  check   one case:   --cell lstm --batch 4 --hidden 16 --vocab 8 --steps 7
                      --runner "bptt-run lstm.mlir --steps 7 --strategy msm --budget 30%"
  suite   many cases from programs.json (benchmarks/gpu/build_programs.py)
          or the built-in small CPU matrix (--matrix small); the runner is a
          template with {program}, {mlir}, {steps}, {strategy}, {budget},
          {name} fields
  compare two dump directories (or two directories of per-case dumps)
  inputs  write a case's inputs only
"""

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOLERANCE = 1e-4
GATES = {"lstm": 4, "gru": 3, "elman": 1}
NP_DTYPE = {"f32": np.float32, "f64": np.float64, "i64": np.int64}


# --------------------------------------------------------------------------
# The model: argument names, roles and shapes (the ABI's order)


class Model:
    def __init__(self, cell, batch, hidden, vocab, steps, dtype="f32",
                 input_gradient=True):
        if cell not in GATES:
            raise ValueError(f"unknown cell '{cell}': one of lstm, gru, elman")
        self.cell, self.B, self.H, self.V, self.T = cell, batch, hidden, vocab, steps
        self.dtype = dtype
        # A program compiled with --input-gradient=false has no dxs.
        self.input_gradient = input_gradient
        self.G = GATES[cell] * hidden

    @property
    def num_states(self):
        return 2 if self.cell == "lstm" else 1

    def inputs(self):
        """[(name, role, shape)] of the input arguments, in order."""
        B, H, V, T, G = self.B, self.H, self.V, self.T, self.G
        args = [(f"state{i}", "state", (B, H)) for i in range(self.num_states)]
        args.append(("xs", "input", (T, B, 2 * V)))
        for i, shape in enumerate([(V, G), (H, G), (G,), (G,), (H, V), (V,)]):
            args.append((f"param{i}", "param", shape))
        return args

    def outputs(self):
        """[(name, role, shape)] of the compared outputs (gradients, loss)."""
        out = []
        for name, role, shape in self.inputs():
            if role == "input" and not self.input_gradient:
                continue
            gname = "dxs" if name == "xs" else "d" + name
            out.append((gname, "dinput" if role == "input" else "d" + role, shape))
        out.append(("loss", "loss", ()))
        return out

    def describe(self):
        return (f"{self.cell} B={self.B} H={self.H} V={self.V} T={self.T} "
                f"{self.dtype}")


def shape_text(shape):
    return "scalar" if len(shape) == 0 else "x".join(str(d) for d in shape)


def parse_shape(text):
    return () if text == "scalar" else tuple(int(d) for d in text.split("x"))


# --------------------------------------------------------------------------
# Argument files


def write_args(directory, args):
    """args: [(name, role, array)] -> DIR/<name>.bin and DIR/index.txt."""
    os.makedirs(directory, exist_ok=True)
    lines = ["# name role dtype shape (raw little-endian row-major <name>.bin files)"]
    for name, role, a in args:
        a = np.ascontiguousarray(a)
        dtype = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
                 np.dtype(np.int64): "i64"}[a.dtype]
        with open(os.path.join(directory, name + ".bin"), "wb") as f:
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
        lines.append(f"{name} {role} {dtype} {shape_text(a.shape)}")
    with open(os.path.join(directory, "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def read_index(directory):
    """{name: (role, dtype, shape)} from DIR/index.txt."""
    path = os.path.join(directory, "index.txt")
    entries = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 4:
                raise ValueError(f"{path}:{n}: expected 'name role dtype shape', "
                                 f"got '{line}'")
            name, role, dtype, shape = fields
            if dtype not in NP_DTYPE:
                raise ValueError(f"{path}:{n}: unknown dtype '{dtype}'")
            entries[name] = (role, dtype, parse_shape(shape))
    return entries


def read_arg(directory, name, dtype, shape):
    path = os.path.join(directory, name + ".bin")
    want = int(np.prod(shape, dtype=np.int64)) * np.dtype(NP_DTYPE[dtype]).itemsize
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: missing (expected {want} bytes)")
    size = os.path.getsize(path)
    if size != want:
        raise ValueError(f"{path}: {size} bytes, expected {want} "
                         f"({dtype} {shape_text(shape)})")
    a = np.fromfile(path, dtype=np.dtype(NP_DTYPE[dtype]).newbyteorder("<"))
    return a.reshape(shape).astype(NP_DTYPE[dtype])


def read_dump(directory, model=None):
    """{name: array} of every argument in a dump (index.txt if present, else
    the model's names)."""
    if os.path.exists(os.path.join(directory, "index.txt")):
        index = read_index(directory)
    elif model is not None:
        index = {n: (r, model.dtype, s) for n, r, s in model.inputs() + model.outputs()}
    else:
        raise FileNotFoundError(f"{directory}/index.txt: missing")
    return {name: read_arg(directory, name, dt, shape)
            for name, (role, dt, shape) in index.items()}, index


# --------------------------------------------------------------------------
# Deterministic inputs


def make_inputs(model, seed=1):
    """{name: array}: one-hot xs of a random character sequence (the target
    at t is the input at t + 1), parameters uniform in [-1/sqrt(H),
    1/sqrt(H)] (PyTorch's initialisation), states uniform in [-0.1, 0.1]."""
    rng = np.random.default_rng(seed)
    dt = NP_DTYPE[model.dtype]
    B, V, T = model.B, model.V, model.T
    out = {}
    for name, role, shape in model.inputs():
        if role == "state":
            out[name] = rng.uniform(-0.1, 0.1, shape).astype(dt)
        elif role == "input":
            seq = rng.integers(0, V, size=(T + 1, B))
            xs = np.zeros(shape, dtype=dt)
            t_idx, b_idx = np.meshgrid(np.arange(T), np.arange(B), indexing="ij")
            xs[t_idx, b_idx, seq[:T]] = 1
            xs[t_idx, b_idx, V + seq[1:]] = 1
            out[name] = xs
        else:
            k = 1.0 / math.sqrt(model.H)
            out[name] = rng.uniform(-k, k, shape).astype(dt)
    return out


def write_inputs(directory, model, values):
    write_args(directory, [(n, r, values[n]) for n, r, _ in model.inputs()])


# --------------------------------------------------------------------------
# The PyTorch reference


def torch_setup(device):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch, device


def reference(model, inputs, device):
    """{name: float64 array}: loss and gradients by PyTorch (nn.LSTM / nn.GRU
    / nn.RNN(tanh), cuDNN on a GPU) in the cell's dtype, TF32 off."""
    torch, device = torch_setup(device)
    dt = {"f32": torch.float32, "f64": torch.float64}[model.dtype]
    V, H = model.V, model.H

    def leaf(a):
        return torch.tensor(a, dtype=dt, device=device).requires_grad_()

    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU,
                 "elman": torch.nn.RNN}[model.cell]
    kwargs = {"nonlinearity": "tanh"} if model.cell == "elman" else {}
    rnn = rnn_class(V, H, num_layers=1, bias=True, **kwargs).to(device=device, dtype=dt)
    with torch.no_grad():
        # Weights are stored transposed (w_ih_t = W_ih^T : V x G).
        rnn.weight_ih_l0.copy_(torch.tensor(inputs["param0"].T, dtype=dt))
        rnn.weight_hh_l0.copy_(torch.tensor(inputs["param1"].T, dtype=dt))
        rnn.bias_ih_l0.copy_(torch.tensor(inputs["param2"], dtype=dt))
        rnn.bias_hh_l0.copy_(torch.tensor(inputs["param3"], dtype=dt))
    w_out_t = leaf(inputs["param4"])
    b_out = leaf(inputs["param5"])
    xs = leaf(inputs["xs"])
    states = [leaf(inputs[f"state{i}"]) for i in range(model.num_states)]
    x_in, target = xs[..., :V], xs[..., V:]
    hx = tuple(s.unsqueeze(0) for s in states)
    out, _ = rnn(x_in, hx if model.cell == "lstm" else hx[0])   # T x B x H
    logits = out @ w_out_t + b_out                                # T x B x V
    # Σ_t mean_b (logsumexp(logits) - Σ_v target·logits): softmax cross-entropy
    # written with the target as a tensor, so that dL/dxs covers both halves.
    loss = (torch.logsumexp(logits, dim=-1) - (target * logits).sum(-1)).mean(1).sum()
    loss.backward()
    grads = {"loss": loss.detach(),
             "dxs": xs.grad,
             "dparam0": rnn.weight_ih_l0.grad.T,
             "dparam1": rnn.weight_hh_l0.grad.T,
             "dparam2": rnn.bias_ih_l0.grad,
             "dparam3": rnn.bias_hh_l0.grad,
             "dparam4": w_out_t.grad,
             "dparam5": b_out.grad}
    for i, s in enumerate(states):
        grads[f"dstate{i}"] = s.grad
    return {k: v.detach().to("cpu", torch.float64).numpy() for k, v in grads.items()}


def torch_description(device):
    torch, device = torch_setup(device)
    text = f"PyTorch {torch.__version__} on {device}"
    if device.startswith("cuda"):
        text += (f" ({torch.cuda.get_device_name()}, cuDNN "
                 f"{torch.backends.cudnn.version()})")
    return text + ", fp32, TF32 off"


# --------------------------------------------------------------------------
# Comparison


def relative_error(g, r):
    """max|g - r| / max|r| (0 when both are zero; inf on a shape mismatch or
    a non-finite value)."""
    g = np.asarray(g, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if g.shape != r.shape:
        return math.inf
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(r))):
        return math.inf
    num = float(np.max(np.abs(g - r))) if g.size else 0.0
    den = float(np.max(np.abs(r))) if r.size else 0.0
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def compare_outputs(model, got, want):
    """{name: relative error} over the loss and every gradient."""
    errors = {}
    for name, _, shape in model.outputs():
        g = got.get(name)
        if g is None or name not in want:
            errors[name] = math.inf
            continue
        if g.size == int(np.prod(shape, dtype=np.int64)):
            g = g.reshape(shape)      # e.g. a loss written as shape 1
        errors[name] = relative_error(g, np.reshape(want[name], g.shape)
                                      if np.size(want[name]) == g.size else want[name])
    return errors


def worst(errors):
    name = max(errors, key=lambda k: errors[k])
    return name, errors[name]


def fmt_err(e):
    return "inf" if math.isinf(e) else f"{e:.2e}"


# --------------------------------------------------------------------------
# One case


class Case:
    def __init__(self, name, model, runner, seed=1, fields=None):
        self.name, self.model, self.runner, self.seed = name, model, runner, seed
        self.fields = fields or {}


def run_case(case, work, device, against=None, keep=None, timeout=600,
             with_reference=True):
    """Runs one case; returns a result dict (status, errors, messages)."""
    model = case.model
    res = {"name": case.name, "model": model.describe(), "status": "PASS",
           "messages": [], "errors": {}, "against": None, "stats": None}
    case_dir = os.path.join(work, re.sub(r"[^A-Za-z0-9_.-]", "_", case.name))
    out_dir = keep if keep else os.path.join(case_dir, "dump")
    if against and not os.path.exists(os.path.join(against, "index.txt")):
        res["messages"].append(f"no dump to compare with in {against}")
        against = None
    # Inputs: the other run's (identical bytes) or freshly drawn.
    if against:
        in_dir = against
        other, _ = read_dump(against, model)
        inputs = {n: other[n] for n, _, _ in model.inputs()}
    else:
        in_dir = os.path.join(case_dir, "inputs")
        inputs = make_inputs(model, case.seed)
        write_inputs(in_dir, model, inputs)
    if os.path.exists(out_dir):
        for f in os.listdir(out_dir):
            if f.endswith(".bin") or f == "index.txt":
                os.remove(os.path.join(out_dir, f))
    os.makedirs(out_dir, exist_ok=True)
    cmd = shlex.split(case.runner) + ["--inputs-from", in_dir, "--dump", out_dir]
    res["command"] = " ".join(shlex.quote(c) for c in cmd)
    start = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        res["runner_output"] = p.stdout[-4000:]
        if p.returncode != 0:
            res["status"] = "FAIL"
            res["messages"].append(f"runner exited {p.returncode}: "
                                   + p.stdout.strip()[-1500:])
            return res
    except subprocess.TimeoutExpired:
        res["status"] = "FAIL"
        res["messages"].append(f"runner timed out after {timeout} s")
        return res
    except OSError as e:
        res["status"] = "FAIL"
        res["messages"].append(f"cannot run the runner: {e}")
        return res
    res["runner_s"] = time.time() - start
    try:
        got, index = read_dump(out_dir, model)
    except (OSError, ValueError) as e:
        res["status"] = "FAIL"
        res["messages"].append(f"bad dump: {e}")
        return res
    # The runner must have used the given inputs (when its dump has them).
    missing = [n for n, _, _ in model.inputs() if n not in got]
    if missing:
        res["messages"].append("the dump has no input " + ", ".join(missing)
                               + ": cannot confirm that the runner read them")
    for n, _, shape in model.inputs():
        if n in got and got[n].tobytes() != np.ascontiguousarray(inputs[n]).tobytes():
            res["status"] = "FAIL"
            res["messages"].append(f"input '{n}' in the dump differs from the given one")
    if "stats" in got:
        res["stats"] = [int(v) for v in np.ravel(got["stats"])]
    if not with_reference:
        if res["status"] == "PASS":
            res["status"] = "RAN"
        return res
    want = reference(model, inputs, device)
    res["errors"] = compare_outputs(model, got, want)
    name, err = worst(res["errors"])
    if not err <= TOLERANCE:
        res["status"] = "FAIL"
        res["messages"].append(f"{name}: relative error {fmt_err(err)} > {TOLERANCE:g} "
                               f"against PyTorch")
    if against:
        errs = compare_outputs(model, got, other)
        res["against"] = errs
        n2, e2 = worst(errs)
        if not e2 <= TOLERANCE:
            res["status"] = "FAIL"
            res["messages"].append(f"{n2}: relative error {fmt_err(e2)} > {TOLERANCE:g} "
                                   f"against {against}")
    return res


def table(results, with_against):
    head = ["case", "model", "fwd steps", "loss", "worst gradient", "error"]
    if with_against:
        head += ["vs other dump"]
    head += ["result"]
    rows = []
    for r in results:
        e = dict(r["errors"])
        loss = fmt_err(e.pop("loss")) if "loss" in e else "-"
        wn, we = worst(e) if e else ("-", None)
        row = [r["name"], r["model"],
               str(r["stats"][0]) if r.get("stats") else "-",
               loss, wn, fmt_err(we) if we is not None else "-"]
        if with_against:
            if r.get("against"):
                an, ae = worst(r["against"])
                row.append(f"{fmt_err(ae)} ({an})")
            else:
                row.append("-")
        row.append(r["status"])
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def report(results, out, device, with_against, with_reference=True):
    what = (f"BPTT against {torch_description(device)}" if with_reference
            else "BPTT runs without a reference (--no-reference)")
    text = [f"# {what}; error = max|g - r| / max|r|, tolerance {TOLERANCE:g}", "",
            table(results, with_against)]
    bad = [r for r in results if r["status"] not in ("PASS", "RAN")]
    for r in results:
        for m in r["messages"]:
            text.append(f"{r['name']}: {m}")
    for r in bad:
        text.append(f"{r['name']}: command: {r.get('command', '?')}")
        if r["errors"]:
            text.append("  against PyTorch: " + ", ".join(
                f"{k} {fmt_err(v)}" for k, v in r["errors"].items()))
        if r.get("against"):
            text.append("  against the other dump: " + ", ".join(
                f"{k} {fmt_err(v)}" for k, v in r["against"].items()))
    skipped = sum(r["status"] == "NOT RUN" for r in results)
    text.append(f"{len(results) - len(bad)} passed, {len(bad) - skipped} failed"
                + (f", {skipped} skipped" if skipped else ""))
    s = "\n".join(text) + "\n"
    sys.stdout.write(s)
    if out:
        with open(out, "w") as f:
            f.write(s)
    return 0 if not bad and results else 1


# --------------------------------------------------------------------------
# Suites


def small_matrix(work, bptt_run):
    """The CPU matrix: lstm, gru, elman at B=4, H=16, V=8; T = 7 and 64;
    store-all and MSM at a small budget (30% at T = 7, 10% at T = 64)."""
    cases = []
    gen = os.path.join(ROOT, "examples", "generate.py")
    for cell in ("lstm", "gru", "elman"):
        mlir = os.path.join(work, f"{cell}-b4-h16-v8.mlir")
        subprocess.run([sys.executable, gen, "--emit", cell, "--batch", "4",
                        "--hidden", "16", "--vocab", "8", "--dtype", "f32",
                        "-o", mlir], check=True)
        for T, small in ((7, "30%"), (64, "10%")):
            for strategy, budget in (("all", "100%"), ("msm", small)):
                name = f"{cell}-T{T}-{strategy}-{budget.rstrip('%')}pct"
                runner = (f"{shlex.quote(bptt_run)} {shlex.quote(mlir)} --steps {T} "
                          f"--strategy {strategy} --budget {budget}")
                cases.append(Case(name, Model(cell, 4, 16, 8, T), runner))
    return cases


def cases_from_programs(path, runner, which, pattern):
    """Cases from build_programs.py's manifest; the runner template gets the
    entry's fields, with {program} and {mlir} made absolute."""
    with open(path) as f:
        manifest = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    cases = []
    for p in manifest["programs"]:
        if which and p.get("set") != which:
            continue
        if pattern and not re.search(pattern, p["name"]):
            continue
        fields = dict(p)
        for key in ("program", "mlir"):
            if fields.get(key):
                fields[key] = os.path.join(base, fields[key])
        model = Model(p["cell"], p["batch"], p["hidden"], p["vocab"], p["steps"],
                      p.get("dtype", "f32"), p.get("input_gradient", True))
        cases.append(Case(p["name"], model, runner.format(**fields), p.get("seed", 1),
                          fields))
    return cases


def run_suite(cases, args):
    work = args.work or tempfile.mkdtemp(prefix="bptt-check-")
    os.makedirs(work, exist_ok=True)
    results = []
    deadline = time.time() + args.time_limit if args.time_limit else None
    for case in cases:
        program = case.fields.get("program")
        if program and "{program}" in (args.runner or "") and not os.path.exists(program):
            results.append({"name": case.name, "model": case.model.describe(),
                            "status": "FAIL", "errors": {}, "stats": None,
                            "messages": ["not built: " + (case.fields.get("error")
                                                          or "no " + program)[-300:]]})
            continue
        if deadline and time.time() > deadline:
            results.append({"name": case.name, "model": case.model.describe(),
                            "status": "NOT RUN", "errors": {}, "stats": None,
                            "messages": ["time limit reached"]})
            continue
        against = os.path.join(args.against, case.name) if args.against else None
        keep = os.path.join(args.keep, case.name) if args.keep else None
        try:
            r = run_case(case, work, args.device, against, keep, args.timeout,
                         not args.no_reference)
        except Exception as e:  # a broken case must not hide the others
            r = {"name": case.name, "model": case.model.describe(), "status": "FAIL",
                 "errors": {}, "stats": None,
                 "messages": [f"{type(e).__name__}: {e}"]}
        results.append(r)
        print(f"[check] {r['name']}: {r['status']}", file=sys.stderr, flush=True)
    code = report(results, args.report, args.device, bool(args.against),
                  not args.no_reference)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return code


# --------------------------------------------------------------------------
# Command line


def model_args(ap):
    ap.add_argument("--cell", required=True, choices=sorted(GATES))
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--dtype", choices=("f32", "f64"), default="f32")
    ap.add_argument("--seed", type=int, default=1)


def common_args(ap):
    ap.add_argument("--device", default="auto",
                    help="PyTorch device for the reference: auto (cuda if "
                         "available), cpu, cuda")
    ap.add_argument("--work", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--report", help="also write the table to this file")
    ap.add_argument("--json", help="also write the results as JSON")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds per runner call")
    ap.add_argument("--no-reference", action="store_true",
                    help="run and dump only (no PyTorch; numpy suffices)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="one case")
    model_args(c)
    common_args(c)
    c.add_argument("--runner", required=True,
                   help="runner command; --inputs-from DIR --dump OUT are appended")
    c.add_argument("--name", default="case")
    c.add_argument("--against", help="a dump of the same case to compare with "
                                     "(its inputs are used)")
    c.add_argument("--keep", help="write the runner's dump here")

    s = sub.add_parser("suite", help="many cases")
    common_args(s)
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--programs", help="programs.json of build_programs.py")
    src.add_argument("--matrix", choices=("small",),
                     help="built-in CPU matrix (needs --bptt-run)")
    s.add_argument("--set", default="check",
                   help="with --programs: entries of this set ('' for all)")
    s.add_argument("--filter", help="regular expression on case names")
    s.add_argument("--runner",
                   help="runner template, e.g. 'build/bin/bptt-gpu-run {program}' "
                        "or 'build/bin/bptt-run {mlir} --steps {steps} "
                        "--strategy {strategy} --budget {budget}'")
    s.add_argument("--bptt-run", default=os.path.join(ROOT, "build", "bin", "bptt-run"),
                   help="bptt-run for --matrix small")
    s.add_argument("--against", help="directory of per-case dumps <DIR>/<case> to "
                                     "compare with (their inputs are used)")
    s.add_argument("--keep", help="write each case's dump to <DIR>/<case>")
    s.add_argument("--time-limit", type=float, default=0,
                   help="seconds; cases not started by then are NOT RUN")

    m = sub.add_parser("compare", help="two dumps")
    m.add_argument("a")
    m.add_argument("b")

    i = sub.add_parser("inputs", help="write a case's inputs")
    model_args(i)
    i.add_argument("-o", "--output", required=True)

    args = ap.parse_args(argv)

    if args.command == "inputs":
        model = Model(args.cell, args.batch, args.hidden, args.vocab, args.steps, args.dtype)
        write_inputs(args.output, model, make_inputs(model, args.seed))
        return 0

    if args.command == "compare":
        return compare_dirs(args.a, args.b)

    if args.command == "check":
        model = Model(args.cell, args.batch, args.hidden, args.vocab, args.steps, args.dtype)
        args.time_limit = 0
        case = Case(args.name, model, args.runner, args.seed)
        work = args.work or tempfile.mkdtemp(prefix="bptt-check-")
        r = run_case(case, work, args.device, args.against, args.keep, args.timeout,
                     not args.no_reference)
        return report([r], args.report, args.device, bool(args.against),
                      not args.no_reference)

    if args.matrix:
        work = args.work or tempfile.mkdtemp(prefix="bptt-check-")
        args.work = work
        os.makedirs(work, exist_ok=True)
        cases = small_matrix(work, args.bptt_run)
        if args.filter:
            cases = [c for c in cases if re.search(args.filter, c.name)]
    else:
        if not args.runner:
            ap.error("suite --programs needs --runner")
        cases = cases_from_programs(args.programs, args.runner, args.set, args.filter)
    if not cases:
        print("check_pytorch: no cases", file=sys.stderr)
        return 1
    return run_suite(cases, args)


def compare_dirs(a, b):
    """Two dumps, or two directories of per-case dumps (matched by name)."""
    pairs = []
    if os.path.exists(os.path.join(a, "index.txt")):
        pairs.append((os.path.basename(os.path.normpath(a)), a, b))
    else:
        for name in sorted(os.listdir(a)):
            if os.path.exists(os.path.join(a, name, "index.txt")):
                pairs.append((name, os.path.join(a, name), os.path.join(b, name)))
    failed = 0
    print(f"| case | worst output | error | result |\n|---|---|---|---|")
    for name, da, db in pairs:
        try:
            ga, ia = read_dump(da)
            gb, _ = read_dump(db)
            outs = [n for n, (role, _, _) in ia.items()
                    if role in ("dstate", "dinput", "dparam", "loss")]
            errs = {n: relative_error(ga[n], gb[n]) if n in gb else math.inf
                    for n in outs}
            wn, we = worst(errs)
            ok = we <= TOLERANCE
        except (OSError, ValueError) as e:
            wn, we, ok = str(e), math.inf, False
        failed += not ok
        print(f"| {name} | {wn} | {fmt_err(we)} | {'PASS' if ok else 'FAIL'} |")
    print(f"{len(pairs) - failed} passed, {failed} failed")
    return 0 if pairs and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
