r"""
# RMSprop: Adagrad that forgets

Proposed by Geoffrey Hinton in a
[lecture](https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf) rather than a
paper, RMSprop fixes [Adagrad](adagrad.md)'s ever-shrinking steps by replacing the *sum* of squared
gradients with an exponential moving *average*,
$$v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2,$$
so the step size tracks the recent scale of each coordinate's gradient:
$$\theta_t = \theta_{t-1} - \eta \frac{g_t}{\sqrt{v_t} + \epsilon}.$$

Two options, both as in `torch.optim.RMSprop`:

* **centered** ([Graves, 2013](https://arxiv.org/abs/1308.0850)) also averages the gradient,
  $\bar g_t = \alpha\,\bar g_{t-1} + (1-\alpha)\,g_t$, and divides by an estimate of the standard
  deviation, $\sqrt{v_t - \bar g_t^2}$, instead of the root mean square;
* **momentum** accumulates the normalised step in a buffer,
  $b_t = \mu\, b_{t-1} + g_t / (\sqrt{v_t}+\epsilon)$, and steps $\theta_t = \theta_{t-1} - \eta\, b_t$.

Note that $v$ starts at zero and is *not* bias-corrected: the first steps divide by a small
$\sqrt{v_t}$ and are larger than later ones. [Adam](adam.md) adds the correction.
"""

from typing import Any

import torch

from .base import GenericAdaptiveOptimizer, ParamsT
from .options import learning_rate
from .validation import check_non_negative
from .weight_decay import WeightDecay


class RMSprop(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (default $10^{-2}$).
    * `alpha` is the decay $\alpha$ of the averages (default $0.99$, a memory of about 100 steps).
    * `eps` is $\epsilon$, added after the square root.
    * `weight_decay` is $\lambda$, L2 by default.
    * `momentum` is $\mu$ (default $0$, off).
    * `centered` divides by the estimated standard deviation instead of the root mean square.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("alpha", alpha)
        check_non_negative("eps", eps)
        check_non_negative("momentum", momentum)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        alpha = group["alpha"]
        state["step"] += 1
        grad = self.weight_decay(param, grad, group)

        # $$v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2$$
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)

        if group["centered"]:
            # $$\bar g_t = \alpha\,\bar g_{t-1} + (1-\alpha)\,g_t \qquad
            #   \sigma_t = \sqrt{v_t - \bar g_t^2}$$
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            scale = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            # $$\sigma_t = \sqrt{v_t}$$
            scale = square_avg.sqrt()
        scale = scale.add_(group["eps"])

        lr = learning_rate(group, param)
        if group["momentum"] > 0:
            # $$b_t = \mu\, b_{t-1} + \frac{g_t}{\sigma_t + \epsilon} \qquad \theta_t = \theta_{t-1} - \eta\, b_t$$
            buffer = state["momentum_buffer"]
            buffer.mul_(group["momentum"]).addcdiv_(grad, scale)
            param.add_(buffer, alpha=-lr)
        else:
            # $$\theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sigma_t + \epsilon}$$
            param.addcdiv_(grad, scale, value=-lr)
