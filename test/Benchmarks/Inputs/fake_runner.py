#!/usr/bin/env python3
"""Stands in for bptt-gpu-run: writes the --json report bench.py reads, an
MSM program at 4.5% of the peer's memory taking 7.0 ms."""
import json
import sys

args = sys.argv[1:]
with open(args[args.index("--json") + 1], "w") as f:
    json.dump({"ms_median": 7.0, "ms_min": 6.9, "ms_max": 7.1,
               "activation_peak_bytes": int(4.5 / 100 * (100 << 20)),
               "total_peak_bytes": 10 << 20, "planned_peak": int(4.5 / 100 * (100 << 20)),
               "forward_steps": 20, "loss": 1.0}, f)
