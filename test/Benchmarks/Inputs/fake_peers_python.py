#!/usr/bin/env python3
"""Stands in for the Python that bench.py runs peers.py with (--python):
argv[1] is peers.py, the rest its options. Each call is one round; cuDNN
full takes 6.0, 5.0 and 5.5 ms in rounds 1, 2 and 3 (the round number is
kept in a file beside --json's directory), the checkpointed variant 20 ms."""
import json
import os
import sys

args = sys.argv[2:]


def opt(name):
    return args[args.index(name) + 1]


out = opt("--json")
counter = os.path.join(os.environ["FAKE_PEERS_DIR"], "rounds")
n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
with open(counter, "w") as f:
    f.write(str(n))
full_ms = {1: 6.0, 2: 5.0, 3: 5.5}[n]
results = []
for config in opt("--configs").split(","):
    T, B, H = map(int, config.split(":"))
    for method in opt("--methods").split(","):
        results.append(dict(method=method, T=T, B=B, H=H, V=8, status="ok",
                            median_ms=full_ms if method == "full" else 20.0,
                            activation_peak_bytes=100 << 20))
with open(out, "w") as f:
    json.dump({"environment": {"gpu": "fake"}, "results": results}, f)
