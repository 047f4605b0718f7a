#!/usr/bin/env python3
"""Runs peers.py's 'full' or 'ckpt' step (cuDNN nn.LSTM, fp32, TF32 off) a few
times with a marker kernel (torch.cuda._sleep, whose kernel is spin_kernel)
between iterations, for kernel_trace.cpp to record and summarize.py
--marker spin_kernel to cut into iterations.

  LD_PRELOAD=libkernel_trace.so BPTT_TRACE_FILE=cudnn.tsv \
      cudnn_iterations.py --config 100:64:512 --method full
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from peers import Problem  # noqa: E402
from check_pytorch import torch_setup  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="100:64:512", help="T:B:H")
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--method", choices=["full", "ckpt"], default="full")
    ap.add_argument("--iters", type=int, default=8)
    args = ap.parse_args()
    torch, device = torch_setup("cuda")
    T, B, H = map(int, args.config.split(":"))
    problem = Problem(torch, device, T, B, H, args.vocab)
    step = problem.step_full if args.method == "full" else problem.step_ckpt
    for _ in range(args.iters):
        problem.zero_grads()
        torch.cuda.synchronize()
        torch.cuda._sleep(1000)
        step()
        torch.cuda.synchronize()
    torch.cuda._sleep(1000)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
