"""Checks a bptt-gpu-run --dump of bptt-linear-rnn.so against float64 BPTT.

h_t = h_{t-1} W + x_t, L = c sum_t sum h_t with c = 1 / (B H); gradients
g_T = c, g_t = c + g_{t+1} W^T, dx_t = g_t, dW = sum_t h_{t-1}^T g_t,
dh_0 = g_1 W^T. Pure Python (no numpy), for the small sizes of the tests.
"""
import array
import os
import struct
import sys

d = sys.argv[1]
shapes = {}
for line in open(os.path.join(d, "index.txt")):
    name, role, dtype, shape = line.split()
    shapes[name] = [] if shape == "scalar" else [int(x) for x in shape.split("x")]


def load(name):
    a = array.array("f")
    with open(os.path.join(d, name + ".bin"), "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return [float(x) for x in a]


T, B, H = shapes["xs"]
h0, xs, w = load("h0"), load("xs"), load("w")
W = [w[i * H:(i + 1) * H] for i in range(H)]
c = 1.0 / (B * H)


def matmul(a, b):  # a: n x k, b: k x m (lists of rows)
    return [[sum(a[i][p] * b[p][j] for p in range(len(b))) for j in range(len(b[0]))]
            for i in range(len(a))]


def transpose(a):
    return [list(r) for r in zip(*a)]


def rows(flat, offset):
    return [flat[offset + b * H: offset + (b + 1) * H] for b in range(B)]


hs = [rows(h0, 0)]
for t in range(1, T + 1):
    hw = matmul(hs[-1], W)
    x = rows(xs, (t - 1) * B * H)
    hs.append([[hw[b][j] + x[b][j] for j in range(H)] for b in range(B)])
loss = c * sum(sum(sum(r) for r in h) for h in hs[1:])

WT = transpose(W)
dW = [[0.0] * H for _ in range(H)]
dxs = [None] * T
g_next = None
for t in range(T, 0, -1):
    g = [[c] * H for _ in range(B)]
    if g_next is not None:
        gw = matmul(g_next, WT)
        g = [[g[b][j] + gw[b][j] for j in range(H)] for b in range(B)]
    dxs[t - 1] = g
    hg = matmul(transpose(hs[t - 1]), g)
    dW = [[dW[i][j] + hg[i][j] for j in range(H)] for i in range(H)]
    g_next = g
dh0 = matmul(g_next, WT)

flat = lambda m: [x for r in m for x in r]
expected = {
    "loss": [loss],
    "dh0": flat(dh0),
    "dw": flat(dW),
    "dxs": [x for g in dxs for x in flat(g)],
}
worst = 0.0
for name, ref in expected.items():
    got = load(name)
    assert len(got) == len(ref), (name, len(got), len(ref))
    for i, (x, y) in enumerate(zip(got, ref)):
        err = abs(x - y) / max(1e-3, abs(y))
        worst = max(worst, err)
        if err > 1e-4:
            sys.exit("%s[%d] = %r, expected %r" % (name, i, x, y))
stats = struct.unpack("<2q", open(os.path.join(d, "stats.bin"), "rb").read())
print("linear-rnn: loss and gradients match float64 BPTT (T=%d B=%d H=%d, "
      "max relative error %.1e); stats %d %d" % (T, B, H, worst, stats[0], stats[1]))
