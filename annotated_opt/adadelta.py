r"""
# Adadelta: a step with the units of the parameter

[Zeiler, 2012](https://arxiv.org/abs/1212.5701) started from two complaints about
[Adagrad](adagrad.md): its steps shrink forever, and it still needs a global learning rate. The first
is fixed as [RMSprop](rmsprop.md) fixes it, with a moving average of squared gradients in place of
the sum. The second comes from an argument about *units*. If $\theta$ is measured in metres and the
loss is dimensionless, $g$ has units of 1/metre, and $g/\sqrt{E[g^2]}$ has no units at all: a step
of "0.01" of nothing. Newton's step $H^{-1} g$ has the right units, and since
$\Delta\theta \approx H^{-1} g$ means $H^{-1} \approx \Delta\theta / g$, Zeiler estimates the missing
factor with a second moving average, of the squared *updates*:

$$
\begin{aligned}
v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
\Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\; g_t \\
u_t &= \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2 \\
\theta_t &= \theta_{t-1} - \eta\, \Delta_t
\end{aligned}
$$

($v$ is `square_avg`, $u$ is `acc_delta`.) The numerator lags one step: $\Delta_t$ is not known yet
when it is needed, so the root mean square of the updates up to $t-1$ stands in for it.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay, when } \lambda > 0\text{)}
    @ grad = self.weight_decay(param, grad, group)
v_t = \textcolor{orange}{\rho\, v_{t-1} + (1-\rho)}\, g_t^2  @ square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
\Delta_t = \frac{\textcolor{orange}{\sqrt{u_{t-1} + \epsilon}}}{\sqrt{v_t + \epsilon}}\; g_t
    @ update = update_rms.div_(gradient_rms).mul_(grad)
\textcolor{orange}{u_t = \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2}
    @ acc_delta.mul_(rho).addcmul_(update, update, value=1 - rho)
\theta_t = \theta_{t-1} - \eta\, \Delta_t  @ param.add_(update, alpha=-learning_rate(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $v_t$ | `square_avg` | the moving average of $g^2$ |
| $\Delta_t$ | `update` | the update, in the units of $\theta$ |
| $u_t$ | `acc_delta` | the moving average of $\Delta^2$ |
| $\rho$ | `rho` | the decay of both averages |
| $\eta$ | `lr` | the learning rate ($1$, the paper's rule, by default) |
| $\epsilon$ | `eps` | inside both roots; it sets the size of the first steps |
| $\lambda$ | `weight_decay` | the weight decay (L2) |
| $t$ | `step` | the step count |

## What $\epsilon$ really does

In Adam $\epsilon$ is a guard against division by zero. Here it is the engine. Both averages start
at zero, so the first step is

$$\Delta_1 = \frac{\sqrt{\epsilon}}{\sqrt{(1-\rho)\,g_1^2 + \epsilon}}\, g_1
  \approx \sqrt{\frac{\epsilon}{1-\rho}}\;\mathrm{sign}(g_1) \quad\text{when } g_1^2 \gg \epsilon,$$

about $3.2\times10^{-3}$ for torch's $\epsilon = 10^{-6}$ and $\rho = 0.9$. The update average $u$ then
grows from there, each step's size feeding the next one's numerator: $\sqrt{\epsilon}$ sets the
scale at which the optimizer starts, and how fast it can grow out of it. A parameter that needs to
travel far ramps up geometrically; one that should stay put never leaves $\sqrt\epsilon$. That is a
learning rate by another name, and a badly chosen $\epsilon$ (too small for parameters of size 1)
makes Adadelta crawl.

## Matching `torch.optim.Adadelta`

Torch keeps the paper's rule and adds a learning rate $\eta$ in front (default $1.0$, which is the
paper), L2 weight decay and `maximize`. $\epsilon$ is added *inside* both square roots, as in the
paper. Torch accepts $\rho = 1$, where nothing is ever averaged: then $v = u = 0$ and
$\Delta_t = g_t$, plain SGD with learning rate $\eta$.

State: two tensors the size of the parameter, like Adam (8 bytes per `float32` parameter); no bias
correction, so the step count is kept only for torch's checkpoints.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check, check_non_negative
from .core.weight_decay import WeightDecay


class Adadelta(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Adadelta`.

    * `lr` is $\eta$ (default $1.0$, the paper's rule). Lower it to scale every step down; it is a
      multiplier on a step that already has the parameter's units.
    * `rho` is $\rho$ (default $0.9$), the decay of both averages: a memory of about 10 steps.
      The paper used $0.95$.
    * `eps` is $\epsilon$ (default $10^{-6}$): with $\rho$ it sets the size of the first steps,
      $\sqrt{\epsilon/(1-\rho)}$ (above). Raise it for a faster start.
    * `weight_decay` is $\lambda$, L2: $\lambda\theta$ joins the gradient.
    * `maximize` ascends the objective instead.
    * `foreach`, `capturable` and `differentiable` are accepted and stored, as torch stores them, so
      that code and checkpoints written for torch work unchanged. They choose how torch computes the
      step (a multi-tensor kernel, a CUDA-graph-safe form, a step autograd can see through), not what
      it computes; here every step runs the one readable form below.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        # torch allows $\rho = 1$ (above): both ends are closed.
        check("rho", rho, lambda r: 0.0 <= r <= 1.0, "must be in [0, 1]")
        check_non_negative("eps", eps)
        # A plain number is L2 regularisation, as in torch.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            **self.weight_decay.defaults(),
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The step count (a 0-d tensor, as torch keeps it) and $v_0 = u_0 = 0$."""
        state["step"] = new_step_count(group, param)
        state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["acc_delta"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adadelta step

        Both roots are new tensors: the averages themselves must stay in the state.
        """
        rho, eps = group["rho"], group["eps"]
        advance(state)
        # $g_t \leftarrow g_t + \lambda\,\theta_{t-1}$
        grad = self.weight_decay(param, grad, group)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        # $$v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2$$
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        # The root mean square of the updates so far over that of the gradients, times the
        # gradient; $u$ is still $u_{t-1}$ here, the lag the notes explain.
        # $$\Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\; g_t$$
        gradient_rms = square_avg.add(eps).sqrt_()
        update_rms = acc_delta.add(eps).sqrt_()
        if group["differentiable"]:
            # The backward pass of the root needs the root as it was: the division takes a copy.
            update_rms = update_rms.clone()
        update = update_rms.div_(gradient_rms).mul_(grad)
        # $$u_t = \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2$$
        acc_delta.mul_(rho).addcmul_(update, update, value=1 - rho)
        # $$\theta_t = \theta_{t-1} - \eta\, \Delta_t$$
        param.add_(update, alpha=-learning_rate(group, param))
