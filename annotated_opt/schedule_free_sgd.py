r"""
# Schedule-Free SGD

[Defazio et al., 2024](https://arxiv.org/abs/2405.15682) remove the learning-rate schedule. A decaying
schedule is needed because the last iterate of SGD with a constant step keeps bouncing; an *average* of
the iterates does not, but Polyak averaging alone is slow in practice. Schedule-Free keeps three
sequences and evaluates the gradient at an interpolation between two of them:

$$\begin{aligned}
y_t &= (1-\beta)\,z_t + \beta\,x_t && \text{where the gradient is taken}\\
z_{t+1} &= z_t - \eta_t\,\big(g(y_t) + \lambda\,y_t\big) && \text{a plain SGD step}\\
x_{t+1} &= (1-c_{t+1})\,x_t + c_{t+1}\,z_{t+1} && \text{a weighted average of the } z\text{'s}\\
c_{t+1} &= \frac{w_{t+1}}{\sum_{i \le t+1} w_i}, \quad w_t = t^r\,\big(\max_{i \le t}\eta_i\big)^{p}
\end{aligned}$$

$z$ takes the SGD steps, $x$ averages them (uniformly, $c_t = 1/t$, for $r = 0$ and a constant
$\eta$), and $y$ sits between them: $\beta$ plays the role of momentum. With $\beta = 0$ the gradient
is taken at $z$ (Polyak averaging); with $\beta = 1$ at $x$ (primal averaging). $x$ is the point to
evaluate and to keep: the paper shows its loss matches that of a tuned schedule, without knowing the
length of the run in advance.

```algorithm
\eta_t = \eta\,\min(1, t/T_{\text{warmup}})  @ warmup = min(1.0, t / group["warmup_steps"])
\textcolor{orange}{w_t = t^r\,\eta_{\max,t}^{p}, \quad c_{t+1} = w_{t+1} \big/ \textstyle\sum_{i \le t+1} w_i}
    @ weight = t ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
d_t = g(y_t) + \lambda\,y_t  @ direction = direction.add(param, alpha=group["weight_decay"])
\textcolor{orange}{y_{t+1} = (1-c_{t+1})\,y_t + c_{t+1}\,z_t + \eta_t\,\big(\beta(1-c_{t+1}) - 1\big)\,d_t}
    @ param.lerp_(z, average_weight)
z_{t+1} = z_t - \eta_t\,d_t  @ z.sub_(direction, alpha=lr)
\textcolor{orange}{x = y + (1 - 1/\beta)\,(z - y)} \quad \text{(at } \texttt{eval()}\text{)}
    @ target.lerp_(state["z"], weight)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $y$ | `param` | the point the model holds while training, where the gradient is taken |
| $z$ | `z` | the SGD iterate |
| $g$ | `grad` | the gradient, at $y_t$ |
| $d_t$ | `direction` | the direction of the SGD step, the gradient plus the decay |
| $\beta$ | `beta` | the interpolation between $z$ and $x$, the momentum (`momentum`) |
| $c_{t+1}$ | `average_weight` | the weight of the new iterate in the average |
| $w_t$ | `weight` | the unnormalised weight of iterate $t$ ($\sum w$: `weight_sum`) |
| $r, p$ | `r`, `weight_lr_power` | the powers in $w_t$ |
| $\eta$ | `lr` | the learning rate ($\eta_t$ after the warmup; $\eta_{\max}$ is `lr_max`) |
| $T_{\text{warmup}}$ | `warmup_steps` | the length of the warmup |
| $\lambda$ | `weight_decay` | the weight decay |
| $t$ | `k` | the group's step count |

$x$, the average, has no tensor of its own: `eval()` puts it in `param`, `train()` takes it out again.

## Only one point lives in the model

The model holds $y$ while training, since that is where the gradient must be computed. $x$ is not
stored at all: $y = (1-\beta) z + \beta x$ gives $x = \big(y - (1-\beta) z\big)/\beta$, so two tensors,
$z$ and the parameter, hold all three points. One step then updates $y$ in place without forming $x$:

$$y_{t+1} = (1-c)\,y_t + c\,z_t + \eta\,\big(\beta(1-c) - 1\big)\,d_t, \qquad z_{t+1} = z_t - \eta\,d_t,$$

with $d_t = g(y_t) + \lambda y_t$ and $c = c_{t+1}$ (expand $\beta x_{t+1} + (1-\beta) z_{t+1}$ and
substitute $x_t$). `eval()` moves the parameters from $y$ to $x$, `train()` moves them back:

$$x = y + \big(1 - \tfrac1\beta\big)(z - y) \qquad y = x + (1-\beta)(z - x).$$

## Why evaluate and save only after `eval()`

In train mode the model holds $y$, which is closer to $z$, the noisy SGD iterate, than the average
$x$ the theory is about. Evaluating it measures the wrong model, usually a worse one. A checkpoint of
the model taken in train mode is $y$ too: loading it for inference serves $y$. So: `optimizer.eval()`
(with `model.eval()`) before evaluating or saving, `optimizer.train()` before training again. A
checkpoint of the optimizer records the mode (`train_mode` in each group), so model and optimizer
saved together in either mode resume exactly; the tests check both.

## What BatchNorm needs

BatchNorm's running mean and variance were collected during training, at the points $y_t$. At $x$ the
activations have other statistics, and evaluating $x$ with $y$'s statistics loses much of the gain.
Recompute them at $x$: after `optimizer.eval()`, run a few dozen training batches through the model in
`model.train()` mode under `torch.no_grad()` with the running statistics reset and averaged with equal
weights (`momentum=None`). `recompute_batchnorm_statistics` below does exactly that and leaves the model
in `eval()` mode. Layer norm and RMS norm keep no running statistics and need nothing.

## The weights of the average

$w_t = t^r\,\eta_{\max,t}^{p}$ with $p$ = `weight_lr_power` $= 2$. During a warmup the step grows, and
the early iterates, taken with small steps, get little weight: without this, $x$ would stay close to the
initial point for a long time. The largest learning rate so far is used rather than the current one, so
a learning rate lowered later does not down-weight the newest iterates. The counters ($t$, $\sum w$,
$\eta_{\max}$) are per parameter group, as in the authors' code (`k`, `weight_sum`, `lr_max`).

State: $z$, one tensor per parameter (4 bytes per `float32` parameter), the same as SGD with momentum.
"""

from collections.abc import Iterable
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.precision import MASTER_KEY
from .core.validation import check_non_negative


def check_interpolation(name: str, beta: Any) -> None:
    r"""
    $\beta$ must lie in $(0, 1]$: `eval()` divides by it to recover $x$ from $y$ and $z$, so $\beta = 0$
    (gradients at $z$, Polyak averaging) cannot be represented with one stored point.
    """
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"Invalid {name}: {beta} (must be in (0, 1])")


class ScheduleFreeSGD(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The authors' names and defaults (`schedulefree.SGDScheduleFree`).

    * `lr` is $\eta$ (default $1.0$, the authors'; it suits normalised networks). It is a constant:
      do not add a schedule. Schedule-Free tolerates larger learning rates than SGD with a schedule,
      often 1-10x the usual peak.
    * `momentum` is $\beta$ (default $0.9$), where between $z$ and $x$ the gradient is taken.
    * `weight_decay` is $\lambda$, evaluated at $y$ and added to the gradient (L2, at the gradient
      point).
    * `warmup_steps`: a linear warmup of $\eta$ over the first steps, the only schedule needed.
    * `r` and `weight_lr_power` are $r$ and $p$ in the weights $w_t = t^r\eta_{\max}^p$ of the average
      (defaults $0$ and $2$). $r > 0$ favours recent iterates.
    * `maximize` ascends the objective instead.
    * `foreach` (the authors' flag, in their position) or `fused` selects the
      [fast path](core/fastpath.md): the same step, compiled.

    The optimizer starts in train mode (at the start $x = y = z$, so both modes are the same point):
    call `eval()` before evaluating or saving, `train()` before training.
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0, foreach: bool | None = None,
                 *, maximize: bool = False, fused: bool | None = None) -> None:
        check_interpolation("momentum", momentum)
        super().__init__(params, dict(lr=lr, momentum=momentum, foreach=foreach, fused=fused, **self.averaging_defaults(
            weight_decay, warmup_steps, r, weight_lr_power, maximize)))

    @staticmethod
    def averaging_defaults(weight_decay: float, warmup_steps: int, r: float, weight_lr_power: float,
                           maximize: bool) -> dict[str, Any]:
        r"""
        The options every Schedule-Free method shares, checked, and the averaging's counters, one set per
        group: the steps taken $t$ (`k`), the sum of the weights $\sum w$, the largest learning rate so
        far, and which point the parameters hold.
        """
        for name, value in (("weight_decay", weight_decay), ("warmup_steps", warmup_steps), ("r", r),
                            ("weight_lr_power", weight_lr_power)):
            check_non_negative(name, value)
        return dict(weight_decay=weight_decay, warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power,
                    maximize=maximize, k=0, weight_sum=0.0, lr_max=-1.0, train_mode=True)

    def interpolation(self, group: dict[str, Any]) -> float:
        r"""$\beta$: `momentum` here, the first of `betas` in the [AdamW form](schedule_free_adamw.md)."""
        return group["momentum"]

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$z$ starts at the parameter: at the first step $x = y = z$."""
        state["z"] = param.detach().clone(memory_format=torch.preserve_format)

    def group_arguments(self, group: dict[str, Any]) -> dict[str, Any]:
        r"""
        ### The step, group by group

        The weight $c_{t+1}$ of the average is one number per group, so it is computed once per group
        before its parameters are updated, and only for a group that takes part in this step (a group
        without gradients, or a step skipped for a bad gradient, leaves the counters alone). The base
        class's step asks every group for it before the first parameter moves, so a step in eval mode
        is refused with nothing changed.
        """
        if not all(each["train_mode"] for each in self.param_groups):
            raise RuntimeError(f"{type(self).__name__}.step() in eval mode: call optimizer.train() before "
                               "training (and optimizer.eval() before evaluating or saving)")
        warmup, average_weight = self.advance_average(group)
        return {"warmup": warmup, "average_weight": average_weight}

    @staticmethod
    def advance_average(group: dict[str, Any]) -> tuple[float, float]:
        r"""
        Count the step and return the warmup factor and the weight $c_{t+1}$ of the new iterate.
        """
        group["k"] += 1
        t = group["k"]
        # $$\eta_t = \eta \cdot \min(1, t / T_{\text{warmup}})$$
        warmup = min(1.0, t / group["warmup_steps"]) if group["warmup_steps"] else 1.0
        lr = group["lr"].item() if isinstance(group["lr"], torch.Tensor) else group["lr"]
        group["lr_max"] = max(lr * warmup, group["lr_max"])
        # $$w_t = t^r\,\eta_{\max,t}^{p} \qquad c_t = w_t \Big/ \textstyle\sum_{i\le t} w_i$$
        weight = t ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
        group["weight_sum"] += weight
        # All weights zero so far ($\eta = 0$): the average does not move.
        return warmup, (weight / group["weight_sum"] if group["weight_sum"] else 0.0)

    def direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""The base method's step direction before weight decay: the gradient itself, for SGD."""
        return grad

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                   warmup: float = 1.0, average_weight: float = 0.0, **direction_arguments: Any) -> None:
        r"""
        ### One parameter: $y$ and $z$ in place

        `param` holds $y_t$. Any other number of the group (`direction_arguments`) is the base method's,
        for its `direction`.
        """
        beta = self.interpolation(group)
        lr = learning_rate(group, param) * warmup
        z = state["z"]
        # $$d_t = g(y_t) + \lambda\,y_t$$ (a new tensor: `param.grad` is never changed)
        direction = self.direction(state, group, grad, **direction_arguments)
        if group["weight_decay"] != 0:
            direction = direction.add(param, alpha=group["weight_decay"])
        # $$y_{t+1} = (1-c)\,y_t + c\,z_t + \eta\,\big(\beta(1-c) - 1\big)\,d_t$$
        # (The coefficient expanded, $\eta\beta(1-c) - \eta$: each factor then meets the learning rate, a
        # tensor on the [fast path](core/fastpath.md), so a scheduled $\beta$ stays an input of its graph.)
        param.lerp_(z, average_weight)
        param.add_(direction, alpha=lr * beta * (1 - average_weight) - lr)
        # $$z_{t+1} = z_t - \eta\,d_t$$
        z.sub_(direction, alpha=lr)

    @torch.no_grad()
    def eval(self) -> None:
        r"""
        ### Switch the parameters to $x$, the point to evaluate and to save

        $x = y + (1 - 1/\beta)(z - y)$, for every parameter that has a $z$ (one that never had a gradient
        is at $x = y = z$ already).
        """
        self._switch(to_train=False)

    @torch.no_grad()
    def train(self) -> None:
        r"""### Switch the parameters back to $y$, where the gradients are taken: $y = x + (1-\beta)(z - x)$."""
        self._switch(to_train=True)

    def _switch(self, to_train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == to_train:
                continue
            beta = self.interpolation(group)
            weight = 1 - beta if to_train else 1 - 1 / beta
            for param in group["params"]:
                state = self.state.get(param, {})
                if "z" not in state:
                    continue
                target = torch.view_as_real(param) if torch.is_complex(param) else param
                # Under master weights the exact point is the `float32` master: move it, then round.
                master = state.get(MASTER_KEY)
                if master is not None:
                    master.lerp_(state["z"], weight)
                    target.copy_(master)
                else:
                    target.lerp_(state["z"], weight)
            group["train_mode"] = to_train


@torch.no_grad()
def recompute_batchnorm_statistics(model: torch.nn.Module, batches: Iterable[Any]) -> None:
    r"""
    ### BatchNorm statistics at the evaluation point

    Call after `optimizer.eval()`: resets every batch norm's running mean and variance, runs `batches`
    (inputs the model takes, a few dozen training batches are enough) through the model in training
    mode without gradients, with equal weights for every batch (`momentum=None`, a cumulative average),
    then restores each layer's momentum and leaves the model in `eval()` mode.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for batch in batches:
        model(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
