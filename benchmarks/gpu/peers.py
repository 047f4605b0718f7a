#!/usr/bin/env python3
"""PyTorch baselines for the GPU benchmark, on the same model as the
compiled programs: a one-layer LSTM character model (input one-hot of width
V, hidden H, a Linear(H, V) projection, loss = sum over t of the batch-mean
softmax cross-entropy), one training step = forward + backward.

  full  cuDNN nn.LSTM over the whole sequence, then the projection and the
        loss over all T x B outputs (every activation kept);
  ckpt  the same in ceil(sqrt(T)) chunks of ceil(sqrt(T)) steps (the last
        may be shorter), each chunk's LSTM + projection + loss inside
        torch.utils.checkpoint (use_reentrant=False), (h, c) carried from
        chunk to chunk; the chunk's activations are recomputed in backward.

fp32, TF32 off. Parameter gradients are allocated before the step and
zeroed in place (zero_(), not set to None), so that they count as memory held
before the step, as the compiled programs' gradient outputs do.

  time per iteration  median of CUDA-event-timed iterations (forward +
                      backward) after warm-up; the number of iterations adapts
                      so that a configuration takes about --target-s seconds
  activation memory   torch.cuda.max_memory_allocated() after
                      torch.cuda.reset_peak_memory_stats(), minus
                      torch.cuda.memory_allocated() before the step (the
                      runner's activation_peak_bytes: pool peak above what
                      is in use before the step)

cuDNN runs at most 65535 steps: a longer 'full' run is recorded as not run,
with the reason; so is a configuration that runs out of memory.

  peers.py --configs 1000:64:512,10000:128:1024 --json peers.json
  peers.py --configs 50:4:16 --device cpu      # smoke test without a GPU
"""

import argparse
import gc
import json
import math
import statistics
import sys
import time

CUDNN_MAX_STEPS = 65535


# fp32 with TF32 off, the same settings as the correctness oracle's.
from check_pytorch import torch_setup as setup


def environment(device):
    torch, device = setup(device)
    env = {"torch": torch.__version__, "device": device}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
        env["cudnn"] = torch.backends.cudnn.version()
        env["cuda"] = torch.version.cuda
        env["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
    return env


class Problem:
    """Model, inputs and preallocated gradients for one (T, B, H, V)."""

    def __init__(self, torch, device, T, B, H, V, seed=1):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)        # same parameters for every method
        self.torch, self.device, self.T, self.B, self.H, self.V = torch, device, T, B, H, V
        self.lstm = torch.nn.LSTM(V, H).to(device)
        self.head = torch.nn.Linear(H, V).to(device)
        chars = torch.randint(0, V, (T + 1, B), generator=g).to(device)
        self.x = torch.zeros(T, B, V, device=device)                  # one-hot, T x B x V
        self.x.scatter_(2, chars[:T].unsqueeze(-1), 1.0)
        self.y = chars[1:].contiguous()                                # T x B, int64
        del chars
        self.h0 = (0.1 * torch.rand(1, B, H, generator=g) - 0.05).to(device)
        self.c0 = (0.1 * torch.rand(1, B, H, generator=g) - 0.05).to(device)
        self.params = list(self.lstm.parameters()) + list(self.head.parameters())
        for p in self.params:
            p.grad = torch.zeros_like(p)

    def chunk_loss(self, x, y, h, c):
        F = self.torch.nn.functional
        out, (h, c) = self.lstm(x, (h, c))
        logits = self.head(out)
        loss = F.cross_entropy(logits.reshape(-1, self.V), y.reshape(-1),
                               reduction="sum") / self.B
        return loss, h, c

    def step_full(self, T=None):
        T = T or self.T
        loss, _, _ = self.chunk_loss(self.x[:T], self.y[:T], self.h0, self.c0)
        loss.backward()
        return loss

    def step_ckpt(self, T=None):
        from torch.utils.checkpoint import checkpoint
        T = T or self.T
        k = math.ceil(math.sqrt(self.T))
        h, c = self.h0, self.c0
        total = None
        for s in range(0, T, k):
            loss, h, c = checkpoint(self.chunk_loss, self.x[s:s + k], self.y[s:s + k],
                                    h, c, use_reentrant=False)
            total = loss if total is None else total + loss
        total.backward()
        return total

    def zero_grads(self):
        for p in self.params:
            p.grad.zero_()


def measure(problem, method, target_s, max_iters, prefix_warmup_s):
    """Times `method` ('full' or 'ckpt'); returns a result dict."""
    torch, device = problem.torch, problem.device
    cuda = device.startswith("cuda")
    step = problem.step_full if method == "full" else problem.step_ckpt

    def timed(T=None):
        problem.zero_grads()
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loss = step(T)
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
            peak = torch.cuda.max_memory_allocated() - base
            total = torch.cuda.max_memory_allocated()
        else:
            t0 = time.perf_counter()
            loss = step(T)
            ms = (time.perf_counter() - t0) * 1e3
            peak = total = None
            base = None
        return ms, peak, total, base, float(loss.detach())

    notes = []
    T = problem.T
    # Warm-up: cuDNN plans, the caching allocator, kernels. Long runs warm up
    # on a prefix and estimate from it.
    prefix = min(T, 1000)
    w1 = timed(prefix)
    w2 = timed(prefix)
    estimate = w2[0] / 1e3 * T / prefix
    warmup = 2
    if T > prefix and estimate <= prefix_warmup_s:
        timed()
        warmup += 1
    elif T > prefix:
        notes.append(f"warm-up on a {prefix}-step prefix only (a full step takes "
                     f"about {estimate:.1f} s)")
    # Timed iterations until about target_s seconds (at least one, at most
    # max_iters).
    runs = [timed()]
    while len(runs) < max_iters and sum(r[0] for r in runs) / 1e3 + runs[-1][0] / 1e3 <= target_s:
        runs.append(timed())
    iters = len(runs)
    times = [r[0] for r in runs]
    res = {"status": "ok", "median_ms": statistics.median(times), "min_ms": min(times),
           "max_ms": max(times), "iters": iters, "warmup": warmup,
           "loss": runs[-1][4], "notes": notes}
    if cuda:
        res["activation_peak_bytes"] = max(r[1] for r in runs)
        res["total_peak_bytes"] = max(r[2] for r in runs)
        res["held_before_bytes"] = runs[-1][3]
    return res


def run_config(torch, device, T, B, H, V, methods, target_s, max_iters, deadline,
               prefix_warmup_s=5.0):
    out = []
    for method in methods:
        res = {"method": method, "T": T, "B": B, "H": H, "V": V}
        label = {"full": "cuDNN nn.LSTM", "ckpt": "cuDNN nn.LSTM + checkpoint sqrt(T)"}[method]
        res["label"] = label
        if method == "ckpt":
            res["chunk"] = math.ceil(math.sqrt(T))
        if method == "full" and T > CUDNN_MAX_STEPS:
            res.update(status="not run",
                       reason=f"cuDNN's RNN takes at most {CUDNN_MAX_STEPS} steps "
                              f"(T = {T}); use the checkpointed variant")
            out.append(res)
            continue
        if deadline and time.time() > deadline:
            res.update(status="not run", reason="time budget exhausted")
            out.append(res)
            continue
        problem = None
        try:
            problem = Problem(torch, device, T, B, H, V)
            res.update(measure(problem, method, target_s, max_iters, prefix_warmup_s))
        except torch.cuda.OutOfMemoryError as e:
            res.update(status="not run", reason="out of memory: " + str(e).split("\n")[0][:300])
        except RuntimeError as e:
            res.update(status="failed", reason=f"{type(e).__name__}: {str(e)[:500]}")
        finally:
            del problem
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        print(f"[peers] {label} T={T} B={B} H={H}: {res['status']}"
              + (f", {res['median_ms']:.1f} ms" if res.get("median_ms") is not None else "")
              + (f", {res['activation_peak_bytes'] / 2**20:.1f} MiB"
                 if res.get("activation_peak_bytes") is not None else "")
              + (f" ({res['reason']})" if res.get("reason") else ""),
              file=sys.stderr, flush=True)
        out.append(res)
    return out


def parse_configs(text):
    configs = []
    for item in text.split(","):
        T, B, H = (int(v) for v in item.split(":"))
        configs.append((T, B, H))
    return configs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", required=True, help="T:B:H,T:B:H,...")
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--methods", default="full,ckpt")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--target-s", type=float, default=3.0,
                    help="seconds of timed iterations per configuration and method")
    ap.add_argument("--max-iters", type=int, default=20)
    ap.add_argument("--deadline", type=float, default=0,
                    help="UNIX time after which nothing new starts (recorded as not run)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch, device = setup(args.device)
    methods = [m for m in args.methods.split(",") if m]
    results = {"environment": environment(device), "results": []}
    for T, B, H in parse_configs(args.configs):
        results["results"] += run_config(torch, device, T, B, H, args.vocab, methods,
                                         args.target_s, args.max_iters, args.deadline)
        if args.json:                      # written as it goes: partial results survive
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    if not args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
