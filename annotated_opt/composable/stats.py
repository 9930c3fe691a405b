r"""
# Stats: what an optimizer remembers

A stat is the part of an optimizer that has memory. It creates some state the first time a parameter
has a gradient, and updates it at every step; [steppers](steppers.md) then read that state. Only
three stats are needed for the whole SGD–Adam–LAMB family.

## The average gradient, with and without dampening

One recurrence covers both conventions for momentum,

$$b_t = \beta\, b_{t-1} + d\, g_t, \qquad b_0 = 0,$$

where $d$ is the *dampening factor*:

* **without dampening**, $d = 1$: the buffer is a plain discounted sum. This is SGD's momentum as
  torch writes it (`torch.optim.SGD(momentum=0.9)`, whose `dampening` argument is $0$). On a steady
  slope the buffer grows to $\frac{1}{1-\beta}$ times the gradient, ten times for $\beta = 0.9$, so
  the effective learning rate is $\frac{\eta}{1-\beta}$.
* **with dampening**, $d = 1 - \beta$: the buffer is an exponential moving average that stays at the
  scale of the gradient. This is Adam's first moment $m_t$.

Unrolling the recurrence,

$$b_t = d\sum_{i=1}^{t} \beta^{\,t-i}\, g_i, \qquad
  \text{whose weights sum to}\quad d\,\frac{1-\beta^t}{1-\beta},$$

which is what the steppers divide by to *debias* the average (the
[momentum guide](../../guides/momentum.md) has the derivation and the pictures). With dampening the sum
is $1-\beta^t$, Adam's correction.

Two traps are worth naming. Torch's `dampening` is a number $\tau$ with $d = 1 - \tau$, not a switch;
and torch starts its buffer at $b_1 = g_1$ rather than $b_1 = d\,g_1$. The two agree only without
dampening (then $b_1 = g_1$ either way), which is why [SGD with momentum](assembled.md) is built with
`AverageGrad(dampening=False)`.

## The average squared gradient and the step count

The squared gradient is averaged the same way, $v_t = \beta_2 v_{t-1} + d_2\, g_t^2$, with dampening
by default. The step count $t$ is only needed by steppers that debias.
"""

from typing import Any, ClassVar

import torch

from ..core.scalars import advance, new_step_count


class Stat:
    r"""
    ## The interface

    * `defaults`: the hyper-parameters this stat reads, with their default values;
    * `init_state(param)`: the dictionary of new state entries for a parameter;
    * `update(state, grad, **hypers)`: update those entries in place from this step's gradient.
    """

    defaults: ClassVar[dict[str, Any]] = {}

    def init_state(self, param: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, state: dict[str, Any], grad: torch.Tensor, **hypers: Any) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({options})"


class AverageGrad(Stat):
    r"""
    ## The average gradient $b_t$ (`grad_avg`)

    Reads `momentum` ($\beta$, default $0.9$). `dampening=True` uses $d = 1-\beta$ (Adam's first
    moment); `False` uses $d = 1$ (torch's SGD momentum). The factor $d$ used at this step is kept in
    the state as `mom_damp`, so a stepper can debias without knowing how the stat was built.
    """

    defaults: ClassVar[dict[str, Any]] = {"momentum": 0.9}

    def __init__(self, dampening: bool = False) -> None:
        self.dampening = dampening

    def init_state(self, param: torch.Tensor) -> dict[str, Any]:
        # $b_0 = 0$
        return {"grad_avg": torch.zeros_like(param, memory_format=torch.preserve_format), "mom_damp": 1.0}

    def update(self, state: dict[str, Any], grad: torch.Tensor, *, momentum: float, **_: Any) -> None:
        if self.dampening:
            damp = 1.0 - momentum
            # $$b_t = \beta\, b_{t-1} + (1-\beta)\, g_t$$
            # `lerp_` computes $b + (1-\beta)(g - b)$, the same average in one operation (and the
            # same rounding as torch's Adam).
            state["grad_avg"].lerp_(grad, damp)
        else:
            damp = 1.0
            # $$b_t = \beta\, b_{t-1} + g_t$$
            state["grad_avg"].mul_(momentum).add_(grad)
        state["mom_damp"] = damp


class AverageSqrGrad(Stat):
    r"""
    ## The average squared gradient $v_t$ (`sqr_avg`)

    Reads `sqr_momentum` ($\beta_2$). Its default is Adam's $0.999$; the course used $0.99$, which
    is RMSprop's $\alpha$ and makes Adam forget the gradient's scale ten times faster. The factor used
    is kept as `sqr_damp`.
    """

    defaults: ClassVar[dict[str, Any]] = {"sqr_momentum": 0.999}

    def __init__(self, dampening: bool = True) -> None:
        self.dampening = dampening

    def init_state(self, param: torch.Tensor) -> dict[str, Any]:
        # $v_0 = 0$
        return {"sqr_avg": torch.zeros_like(param, memory_format=torch.preserve_format), "sqr_damp": 1.0}

    def update(self, state: dict[str, Any], grad: torch.Tensor, *, sqr_momentum: float, **_: Any) -> None:
        damp = 1.0 - sqr_momentum if self.dampening else 1.0
        # $$v_t = \beta_2\, v_{t-1} + d_2\, g_t^2$$
        state["sqr_avg"].mul_(sqr_momentum).addcmul_(grad, grad, value=damp)
        state["sqr_damp"] = damp


class StepCount(Stat):
    r"""
    ## The step count $t$ (`step`)

    The number of steps this parameter has taken (a parameter without a gradient does not count the
    step), so $\beta^t$ in the debiasing is the parameter's own. It is kept as torch keeps its counts
    ([step counts](../core/scalars.md)), so the state compares and loads key for key with torch's.
    """

    def init_state(self, param: torch.Tensor) -> dict[str, Any]:
        return {"step": new_step_count({}, param)}

    def update(self, state: dict[str, Any], grad: torch.Tensor, **_: Any) -> None:
        # $$t \leftarrow t + 1$$
        advance(state)
