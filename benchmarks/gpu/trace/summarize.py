#!/usr/bin/env python3
"""Per-iteration breakdown of a kernel_trace.cpp trace.

One iteration is taken out of the trace and its records are grouped by kernel
(name, grid and block), with the count, the total and mean GPU time and the
share of the iteration's busy time; the iteration's span (first start to last
end) against its busy time (the union of the records' intervals) says how
much of it the GPU spent waiting between dependent launches.

Iterations are found one of two ways:
  --marker NAME   records between two kernels whose name contains NAME
                  (a driver launches one between iterations, e.g. PyTorch's
                  torch.cuda._sleep, whose kernel is spin_kernel);
  otherwise       the replays of the CUDA graph with the most records: the
                  shortest period of its sequence of kernels.
The median iteration by span is reported; --all lists every iteration's span.

  summarize.py trace.tsv --top 30
  summarize.py cudnn.tsv --marker spin_kernel
"""

import argparse
import re
import statistics
import sys
from collections import defaultdict


def read(path):
    records = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 8:
                continue
            kind, start, end, stream, graph, grid, block, name = parts[:8]
            records.append((int(start), int(end), kind, int(stream), int(graph),
                            grid, block, name))
    records.sort()
    return records


def short(name, width=70):
    name = re.sub(r"\(.*", "", name)          # drop argument lists
    return name if len(name) <= width else name[:width - 3] + "..."


def split_marker(records, marker):
    iterations, current, seen = [], [], False
    for r in records:
        if marker in r[7]:
            if seen and current:
                iterations.append(current)
            current, seen = [], True
        elif seen:
            current.append(r)
    return iterations


def split_graph(records):
    """The replays of the graph with the most records: replays launched back
    to back leave no gap between them, so each is found as one period of the
    sequence of kernels (name, grid and block) that the graph repeats."""
    counts = defaultdict(int)
    for r in records:
        if r[4]:
            counts[r[4]] += 1
    if not counts:
        sys.exit("summarize: no graph records; pass --marker")
    graph = max(counts, key=counts.get)
    mine = [r for r in records if r[4] == graph]
    keys = [(r[2], r[5], r[6], r[7]) for r in mine]
    n = len(keys)
    for period in range(1, n + 1):
        if n % period or keys[period % n] != keys[0]:
            continue
        if all(keys[i] == keys[i - period] for i in range(period, n)):
            return [mine[i:i + period] for i in range(0, n, period)]
    return [mine]


def busy_ns(records):
    total, cur_start, cur_end = 0, None, None
    for start, end, *_ in records:
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def span_ns(records):
    return max(r[1] for r in records) - records[0][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--marker")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--title", default="")
    args = ap.parse_args()

    records = read(args.trace)
    iterations = (split_marker(records, args.marker) if args.marker
                  else split_graph(records))
    iterations = [it for it in iterations if it]
    if not iterations:
        sys.exit("summarize: no iteration found")
    sizes = sorted({len(it) for it in iterations})
    by_span = sorted(iterations, key=span_ns)
    it = by_span[len(by_span) // 2]
    span, busy = span_ns(it), busy_ns(it)

    print(f"## {args.title or args.trace}")
    print()
    print(f"{len(iterations)} iterations (records per iteration: "
          f"{', '.join(map(str, sizes[:6]))}{' ...' if len(sizes) > 6 else ''}); "
          f"median by span: {len(it)} records, span {span / 1e3:.1f} us, "
          f"busy {busy / 1e3:.1f} us ({100 * busy / span:.1f}%), "
          f"idle between records {(span - busy) / 1e3:.1f} us")
    if args.all:
        print("spans (us): " + ", ".join(f"{span_ns(i) / 1e3:.0f}" for i in iterations))
    print()

    groups = defaultdict(lambda: [0, 0])
    for start, end, kind, _, _, grid, block, name in it:
        key = (short(name), grid, block)
        groups[key][0] += 1
        groups[key][1] += end - start
    rows = sorted(groups.items(), key=lambda kv: -kv[1][1])
    total = sum(v[1] for v in groups.values())
    print("| kernel | grid | block | count | total us | mean us | share |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (name, grid, block), (count, ns) in rows[:args.top]:
        print(f"| {name} | {grid} | {block} | {count} | {ns / 1e3:.1f} | "
              f"{ns / count / 1e3:.2f} | {100 * ns / total:.1f}% |")
    if len(rows) > args.top:
        rest = rows[args.top:]
        print(f"| ({len(rest)} more) | | | {sum(v[0] for _, v in rest)} | "
              f"{sum(v[1] for _, v in rest) / 1e3:.1f} | | "
              f"{100 * sum(v[1] for _, v in rest) / total:.1f}% |")
    print(f"| **all** | | | {len(it)} | {total / 1e3:.1f} | | |")
    print()


if __name__ == "__main__":
    main()
