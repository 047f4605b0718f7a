# RUN: %python %s | FileCheck %s
# The Python module over the planner: plans, costs, peaks, errors.
import bptt

# CHECK: strategies: all chen revolve hsm ism msm
print("strategies:", " ".join(bptt.STRATEGIES))

chain = bptt.Chain(steps=100, hidden_bytes="1KiB", internal_bytes=4096)
assert chain.working_set_bytes == 4 * 1024 + 4096
assert chain.store_all_bytes == chain.working_set_bytes + 99 * 4096

# Store-all: one forward per step, peak exactly what store-all needs.
p = bptt.plan(chain, chain.store_all_bytes)
assert p.strategy == "msm" and p.forward_steps == 100, p
assert p.peak_bytes == chain.store_all_bytes
# CHECK: store-all: 100 forward steps
print("store-all:", p.forward_steps, "forward steps")

# A tight budget: more recomputation, never above the budget, and the
# simulator agrees with the prediction.
budget = chain.working_set_bytes + 20 * 1024
tight = bptt.plan(chain, budget)
assert tight.peak_bytes <= budget
assert tight.forward_steps > 100
sim = bptt.simulate(chain, tight.actions)
assert sim["forward_steps"] == tight.forward_steps
assert sim["peak_bytes"] == tight.peak_bytes
assert tight.actions[0] == ("restore", 0, -1, 1)
# A run of forward steps is one action; three-element actions are single steps.
runs = [a for a in tight.actions if a[0] == "forward"]
assert any(a[3] > 1 for a in runs), runs
single = [(k, t, o) for (k, s, o, n) in tight.actions for t in range(s, s + n)]
assert bptt.simulate(chain, single)["forward_steps"] == tight.forward_steps
assert tight.cost == tight.forward_cost + tight.backward_cost == tight.forward_steps + 100
# CHECK: tight: exact=True
print("tight: exact=%s" % tight.exact)

# MSM never loses to HSM or ISM.
for b in range(chain.working_set_bytes, chain.store_all_bytes, 16 * 1024):
    costs = {s: bptt.plan(chain, b, s).forward_steps for s in ("hsm", "ism", "msm")}
    assert costs["msm"] <= min(costs["hsm"], costs["ism"]), (b, costs)

# Byte sizes as strings; heterogeneous chains as lists.
assert bptt.parse_byte_size("64MiB") == 64 << 20
assert bptt.parse_byte_size("1.5GB") == 1_500_000_000
het = bptt.Chain(steps=4, hidden_bytes=[1, 2, 1, 1], internal_bytes=[3, 3, 5, 2],
                 forward_cost=[1.0, 5.0, 1.0, 2.0])
hp = bptt.plan(het, "64")
assert hp.forward_cost >= 9.0

# Errors are ValueErrors that say what is wrong.
try:
    bptt.plan(chain, 10)
    raise SystemExit("expected an error")
except ValueError as e:
    # CHECK: error: a budget of 10 bytes is below the smallest feasible budget for strategy 'msm' on this chain, 8192 bytes
    print("error:", e)
try:
    bptt.simulate(chain, [("backward", 1, -1)])
    raise SystemExit("expected an error")
except ValueError as e:
    # CHECK: simulate error: action #0 (backward 1): backward steps run T..1; expected step 100, got 1
    print("simulate error:", e)
try:
    bptt.plan(chain, "64 parsecs")
    raise SystemExit("expected an error")
except ValueError as e:
    # CHECK: unit error: unknown unit 'parsecs'
    print("unit error:", e)
assert bptt.minimum_budget(chain, "all") == chain.store_all_bytes
# CHECK: done
print("done")
