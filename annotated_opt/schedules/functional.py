r"""
# Functional schedules: a hyper-parameter as a function of training progress

A *schedule* here is a function of one number, the position $p \in [0, 1]$ in training (the
fraction of the steps done), that returns the value a hyper-parameter should have there. Any
hyper-parameter can follow one: the learning rate, the momentum, $\beta_2$, the weight decay. The
[parameter scheduler](param_scheduler.md) evaluates it at every step and writes the value into the
optimizer's parameter groups.

The shapes are the [annealing](annealing.md) primitives of the library, which are functions of
`(start, end, position)`. A schedule fixes the first two:

$$\texttt{sched\_lin}(s, e) = p \mapsto s + p\,(e - s) \qquad
  \texttt{sched\_cos}(s, e) = p \mapsto e + \tfrac12 (s - e)(1 + \cos \pi p)$$
$$\texttt{sched\_exp}(s, e) = p \mapsto s\,(e/s)^p \qquad \texttt{sched\_const}(v) = p \mapsto v$$

## Several phases

Real schedules have phases: a warm-up, then a decay; or the one-cycle policy
([Smith, 2018](https://arxiv.org/abs/1803.09820)), whose learning rate rises for the first 30% of
training and falls for the rest while the momentum does the opposite. `combine_scheds(pcts, scheds)`
joins any number of schedules: phase $i$ takes the fraction `pcts[i]` of training, and inside it the
position is rescaled to run from $0$ to $1$ again. If phase $i$ covers $[a_i, a_{i+1})$,

$$f(p) = f_i\!\left(\frac{p - a_i}{a_{i+1} - a_i}\right) \qquad a_0 = 0,\quad
  a_{i+1} = a_i + \texttt{pcts}[i].$$

The course's version had two flaws, both fixed here. It compared the floating-point sum of the
fractions with `== 1`: a split in two, $(a, 1-a)$, passes, but `[0.6, 0.3, 0.1]` sums to
`0.9999999999999999` and was refused, as was `[0.1] * 10`; here the fractions are summed exactly
(`math.fsum`) and accepted within $10^{-9}$ of one. And it found the phase by comparing the position
with a float32 tensor of boundaries, which indexes past the last phase at exactly $p = 1$; here any
number of phases works, $p = 1$ gives the last phase's end value, and a phase of length zero is
skipped.
"""

import bisect
import math
from collections.abc import Callable, Sequence
from functools import partial

from . import annealing

Schedule = Callable[[float], float]

# How far the phase fractions may sum from one (rounding, not a mistake).
SUM_TOLERANCE = 1e-9


def sched_lin(start: float, end: float) -> Schedule:
    r"""Linear from `start` to `end`: $p \mapsto s + p\,(e - s)$."""
    return partial(annealing.linear, start, end)


def sched_cos(start: float, end: float) -> Schedule:
    r"""Cosine from `start` to `end`, flat at both ends: $p \mapsto e + \tfrac12 (s - e)(1 + \cos \pi p)$."""
    return partial(annealing.cosine, start, end)


def sched_exp(start: float, end: float) -> Schedule:
    r"""
    Exponential from `start` to `end`, a straight line on a log scale: $p \mapsto s\,(e/s)^p$.
    Both must be positive; that is checked now rather than at the first step.
    """
    annealing.exponential(start, end, 0.0)
    return partial(annealing.exponential, start, end)


def sched_const(value: float) -> Schedule:
    r"""The same value throughout: $p \mapsto v$."""
    return partial(annealing.constant, value, value)


class CombinedSchedule:
    r"""
    ## Phases joined end to end

    Built by `combine_scheds`; holds the start $a_i$ and end $a_{i+1}$ of every phase of positive
    length and the schedule that runs in it.
    """

    def __init__(self, pcts: Sequence[float], scheds: Sequence[Schedule]) -> None:
        if len(pcts) != len(scheds) or not scheds:
            raise ValueError(f"Invalid pcts: {list(pcts)} (need one fraction per schedule, "
                             f"got {len(pcts)} for {len(scheds)} schedules)")
        for index, pct in enumerate(pcts):
            if not pct >= 0:
                raise ValueError(f"Invalid pcts at index {index}: {pct} (must be >= 0)")
        total = math.fsum(pcts)
        if abs(total - 1) > SUM_TOLERANCE:
            raise ValueError(f"Invalid pcts: {list(pcts)} (they sum to {total!r}, not 1)")
        # $a_{i+1} = a_i + \texttt{pcts}[i]$, divided by the exact total so that the last boundary is
        # exactly $1$.
        boundaries = [0.0] + [math.fsum(pcts[: i + 1]) / total for i in range(len(pcts))]
        phases = [
            (start, end, sched)
            for start, end, sched in zip(boundaries, boundaries[1:], scheds)
            if end > start
        ]
        self.starts = [start for start, _, _ in phases]
        self.ends = [end for _, end, _ in phases]
        self.scheds = [sched for _, _, sched in phases]

    def __call__(self, position: float) -> float:
        # Outside $[0, 1]$ the schedule holds its first or last value.
        position = min(max(position, 0.0), 1.0)
        # The phase $i$ with $a_i \le p$, the last such one; at $p = 1$ that is the last phase.
        index = bisect.bisect_right(self.starts, position) - 1
        start, end = self.starts[index], self.ends[index]
        # $$f_i\!\left(\frac{p - a_i}{a_{i+1} - a_i}\right)$$
        return self.scheds[index](min((position - start) / (end - start), 1.0))

    def __repr__(self) -> str:
        phases = ", ".join(f"[{a:.3g}, {b:.3g}): {s!r}" for a, b, s in zip(self.starts, self.ends, self.scheds))
        return f"CombinedSchedule({phases})"


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    r"""
    Join `scheds`, phase $i$ taking the fraction `pcts[i]` of training. For example the one-cycle
    learning rate, `combine_scheds([0.3, 0.7], [sched_cos(0.004, 0.04), sched_cos(0.04, 4e-7)])`,
    or cosine restarts of growing length, `combine_scheds([1/7, 2/7, 4/7], [sched_cos(0.1, 0.001)] * 3)`.
    """
    return CombinedSchedule(list(pcts), list(scheds))


def sample(schedule: Schedule, points: int = 100) -> list[float]:
    r"""The schedule at `points` evenly spaced positions from $0$ to $1$ (for plots and checks)."""
    return [schedule(i / (points - 1)) for i in range(points)]

