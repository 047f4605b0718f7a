"""bptt: memory-budgeted backpropagation through time.

The planner chooses which states of a recurrence to keep and which to
recompute so that training fits a memory budget with the least extra compute::

    import bptt
    chain = bptt.Chain(steps=1000, hidden_bytes=256 << 10, internal_bytes=1 << 20)
    p = bptt.plan(chain, budget="64MiB")            # strategy="msm" by default
    p.forward_steps, p.peak_bytes, p.actions[:5]
"""

from ._bptt import (  # noqa: F401
    Chain,
    Plan,
    STRATEGIES,
    minimum_budget,
    parse_byte_size,
    plan,
    simulate,
)

__all__ = ["Chain", "Plan", "STRATEGIES", "minimum_budget", "parse_byte_size",
           "plan", "simulate"]
