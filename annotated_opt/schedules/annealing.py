r"""
# Annealing: how a hyper-parameter travels from one value to another

Every learning-rate schedule in this library, and every schedule of momentum or weight decay, is made
of one primitive: move from a `start` value to an `end` value as a *position* $p$ goes from $0$ to $1$.
The shape of that journey is the only thing that differs:

* **linear**: $\;s + p\,(e - s)$, a straight line;
* **cosine**: $\;e + \tfrac12(s - e)\left(1 + \cos \pi p\right)$, flat at both ends and steepest in
  the middle: it spends a long time near the start value, then settles gently at the end
  ([Loshchilov & Hutter, 2017](https://arxiv.org/abs/1608.03983));
* **exponential**: $\;s\,(e/s)^p$, a straight line on a log scale: every equal stretch of training
  multiplies the value by the same factor (the learning-rate finder's sweep);
* **constant**: $\;s$ throughout.

Each function takes the position as a plain number in $[0, 1]$ and is exact at both ends:
$f(s, e, 0) = s$ and $f(s, e, 1) = e$. Schedules measured in steps divide the step by their length to
get $p$; schedules with several phases rescale $p$ within each phase.
"""

import math


def linear(start: float, end: float, position: float) -> float:
    r"""$$s + p\,(e - s)$$"""
    return start + position * (end - start)


def cosine(start: float, end: float, position: float) -> float:
    r"""$$e + \tfrac12(s - e)\left(1 + \cos \pi p\right)$$"""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * position))


def exponential(start: float, end: float, position: float) -> float:
    r"""$$s\,\left(\frac{e}{s}\right)^{p}$$ Both values must be positive."""
    if start <= 0 or end <= 0:
        raise ValueError(f"exponential annealing needs positive start and end (got {start}, {end})")
    return start * (end / start) ** position


def constant(start: float, end: float, position: float) -> float:
    r"""$$s$$ (`end` is ignored; the signature matches the others so any of them can be passed.)"""
    return start
