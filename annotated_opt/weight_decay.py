r"""
# Weight decay: decoupled, L2, absolute

Weight decay shrinks the weights towards zero at every step. There are two ways to do it and they are
**not** the same for adaptive optimizers
([Loshchilov & Hutter, 2019](https://arxiv.org/abs/1711.05101)):

* **L2 regularisation** adds $\frac{\lambda}{2}\lVert\theta\rVert^2$ to the loss, so its gradient
  $\lambda\theta$ is added to the gradient, $g_t \leftarrow g_t + \lambda\theta_{t-1}$. The decay then
  goes through whatever the optimizer does with gradients: Adam divides it by $\sqrt{\hat v_t}$, so
  weights with large gradients are barely decayed at all.
* **Decoupled decay** shrinks the weights directly,
  $\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}$, before and apart from the gradient
  step. Every weight decays at the same rate. This is AdamW.

For plain SGD the two coincide (up to the factor $\eta$). A third form, *absolute* (or fixed)
decay, uses $\theta \leftarrow (1-\lambda)\,\theta$ without the learning rate, so a schedule does not
change how fast weights decay (AdaBelief's `fixed_decay`).

The *mode* is fixed when the optimizer is built; the *value* $\lambda$ is kept in each parameter
group, as `group["weight_decay"]`, so it can differ per group, be overridden per parameter, and be
scheduled like the learning rate. The object is immutable, so one instance can never be shared and
changed under two optimizers.
"""

from dataclasses import dataclass
from typing import Any

import torch

from .options import learning_rate, param_option
from .validation import check_non_negative


@dataclass(frozen=True)
class WeightDecay:
    r"""
    * `weight_decay` is $\lambda$, the default value placed in every group;
    * `weight_decouple` chooses decoupled decay (`True`) or L2 regularisation (`False`);
    * `absolute` (only with decoupled decay) drops the learning rate from the factor.
    """

    weight_decay: float = 0.0
    weight_decouple: bool = True
    absolute: bool = False

    def __post_init__(self) -> None:
        check_non_negative("weight_decay", self.weight_decay)

    @classmethod
    def coerce(cls, value: "float | WeightDecay", weight_decouple: bool) -> "WeightDecay":
        r"""Accept either a ready `WeightDecay` or a plain number with the optimizer's default mode."""
        if isinstance(value, WeightDecay):
            return value
        return cls(value, weight_decouple=weight_decouple)

    def defaults(self) -> dict[str, Any]:
        r"""The entry this object contributes to an optimizer's `defaults`."""
        return {"weight_decay": self.weight_decay}

    def __call__(self, param: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        r"""
        Apply the decay for one parameter and return the gradient to use from here on. Decoupled
        decay changes `param` in place and returns `grad` untouched; L2 returns a new tensor
        $g + \lambda\theta$ (never modifying `param.grad`).
        """
        decay = param_option(group, param, "weight_decay")
        if decay == 0:
            return grad
        if not self.weight_decouple:
            # $$g_t \leftarrow g_t + \lambda\,\theta_{t-1}$$
            return grad.add(param, alpha=decay)
        if self.absolute:
            # $$\theta_{t-1} \leftarrow (1 - \lambda)\,\theta_{t-1}$$
            param.mul_(1 - decay)
        else:
            # $$\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}$$ with the learning rate
            # in force now, after any schedule.
            param.mul_(1 - learning_rate(group, param) * decay)
        return grad
