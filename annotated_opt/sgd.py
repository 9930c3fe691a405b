r"""
# Stochastic gradient descent, with momentum and Nesterov

The simplest optimizer steps against the gradient,
$$\theta_t = \theta_{t-1} - \eta\, g_t,$$
where $g_t = \nabla_\theta f_t(\theta_{t-1})$ is the gradient of the loss on this step's mini-batch
and $\eta$ is the learning rate.

**Momentum** ([Polyak, 1964](https://doi.org/10.1016/0041-5553(64)90137-5);
[Sutskever et al., 2013](https://proceedings.mlr.press/v28/sutskever13.html)) keeps a running sum of
past gradients, the *buffer* $b_t$, and steps along it instead. Directions where the gradients agree
add up; directions where they flip sign from step to step cancel. In a narrow valley this removes the
zig-zag across the valley and speeds up the walk along it.

$$b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad \theta_t = \theta_{t-1} - \eta\, b_t$$

$\mu$ is the momentum and $\tau$ the *dampening*. With $\tau = 0$ (torch's default) the buffer is a
plain sum, which grows to $\frac{1}{1-\mu}$ times the gradient on a steady slope, so the effective step
is $\frac{\eta}{1-\mu}$. With $\tau = \mu$ it is an exponential moving average that stays at the scale
of the gradient (the "momentum with dampening" of the fastai course).

**Nesterov momentum** looks one step ahead: it uses the gradient plus the momentum it is about to
apply, $g_t + \mu\, b_t$, which reacts faster when the buffer overshoots.

This module follows `torch.optim.SGD` exactly, including two details worth knowing:

* on the very first step the buffer is a copy of the gradient, $b_1 = g_1$, *not* $(1-\tau)g_1$;
* weight decay is L2 regularisation, added to the gradient before the momentum.
"""

from typing import Any

import torch

from .base import GenericAdaptiveOptimizer, ParamsT
from .options import learning_rate
from .validation import check_non_negative
from .weight_decay import WeightDecay


class SGD(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (torch's default, $10^{-3}$, is small for SGD; $0.01$–$0.1$ is typical).
    * `momentum` is $\mu$; $0.9$ is the usual choice, $0$ turns momentum off.
    * `dampening` is $\tau$; keep $0$ for torch's convention.
    * `weight_decay` is $\lambda$ (L2 by default; pass a `WeightDecay` object for decoupled decay).
    * `nesterov` switches to Nesterov momentum; it needs $\mu > 0$ and $\tau = 0$.
    * `maximize` ascends the objective instead.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float | WeightDecay = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("momentum", momentum)
        check_non_negative("dampening", dampening)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Invalid nesterov: True needs momentum > 0 and dampening = 0 "
                f"(got momentum={momentum}, dampening={dampening})"
            )
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            maximize=maximize,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        # Weight decay first: as L2 it becomes part of the gradient that momentum accumulates.
        grad = self.weight_decay(param, grad, group)
        direction = self.momentum_direction(state, group, grad)
        # $$\theta_t = \theta_{t-1} - \eta\, d_t$$ where $d_t$ is the direction chosen by momentum.
        param.add_(direction, alpha=-learning_rate(group, param))

    def momentum_direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The direction momentum chooses

        Returns $d_t$: the gradient itself without momentum, the buffer $b_t$ with it, or
        $g_t + \mu\, b_t$ with Nesterov. Subclasses that change what goes *into* the buffer
        ([LARS](lars.md) scales it per layer) reuse this unchanged.
        """
        momentum = group["momentum"]
        if momentum == 0:
            return grad
        buffer = state.get("momentum_buffer")
        if buffer is None:
            # The first buffer is the gradient itself, $b_1 = g_1$.
            buffer = state["momentum_buffer"] = grad.clone()
        else:
            # $$b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t$$
            buffer.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
        if group["nesterov"]:
            # Nesterov steps along $g_t + \mu\, b_t$.
            return grad.add(buffer, alpha=momentum)
        return buffer
