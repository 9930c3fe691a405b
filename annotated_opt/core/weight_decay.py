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
  step. Every weight decays at the same rate. This is [AdamW](adamw.md).

## When the two coincide, and when they do not

For plain [SGD](sgd.md) they are the same optimizer:
$\theta_{t-1} - \eta\,(g_t + \lambda\theta_{t-1}) = (1-\eta\lambda)\,\theta_{t-1} - \eta\, g_t$.
With momentum they already differ: under L2 the term $\lambda\theta$ enters the buffer, is summed
with the gradients, and on a slowly changing $\theta$ acts $1/(1-\mu)$ times, a decay ten times
stronger for $\mu = 0.9$, applied with the buffer's lag. Decoupled, it acts once per step. With
[Adam](adam.md) they differ in kind: L2's decay is normalised per coordinate, decoupled decay is not.

## Its time scale

Decoupled decay multiplies the weights by $1-\eta\lambda$ per step, so, left to itself, a weight
falls by a factor $e$ in $1/(\eta\lambda)$ steps: $(1-\eta\lambda)^n \approx e^{-n\eta\lambda}$. With
the learning rate in the factor, a schedule that lowers $\eta$ at the end of training lowers the
decay with it. A third form, *absolute* (or fixed) decay, uses $\theta \leftarrow (1-\lambda)\,\theta$
without the learning rate, so a schedule does not change how fast weights decay
([AdaBelief](adabelief.md)'s `fixed_decay`); its $\lambda$ is then per step, and values like
$10^{-4}$ are already strong.

## One object, many groups

The *mode* is chosen when the optimizer is built; the *value* $\lambda$ is kept in each parameter
group, as `group["weight_decay"]`, so it can differ per group, be overridden per parameter
(`opt_args`, see [options](options.md)), and be scheduled like the learning rate. Optimizers whose
torch twin takes `decoupled_weight_decay` (Adam, AdamW, NAdam, RAdam and their children) also keep
the mode in each group, as torch does: a group with `"decoupled_weight_decay": True` is decayed
decoupled and the others with L2, and the choice is saved in the state dict. The object is
immutable, so one instance can never be shared and changed under two optimizers.
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

    `frozen=True` makes the object immutable: `WeightDecay(0.01)` can be a default argument or a
    module-level constant without the risk of one optimizer changing another's decay.
    `weight_decouple` is the AdaBelief package's name; its `fixed_decay` is `absolute` here.

    The optimizers take a plain number too: `SGD(params, weight_decay=1e-4)` is L2, as in torch,
    and `SGD(params, weight_decay=WeightDecay(1e-4))` is decoupled.
    """

    weight_decay: float = 0.0
    weight_decouple: bool = True
    absolute: bool = False

    def __post_init__(self) -> None:
        r"""A negative $\lambda$ would make the weights grow exponentially; refuse it at once."""
        check_non_negative("weight_decay", self.weight_decay)

    @classmethod
    def coerce(cls, value: "float | WeightDecay", weight_decouple: bool) -> "WeightDecay":
        r"""
        Accept either a ready `WeightDecay` or a plain number with the optimizer's default mode.

        The default mode is the optimizer's, not this class's: a number given to `Adam` means L2 (as
        in `torch.optim.Adam`), the same number given to `AdamW` means decoupled decay. A
        `WeightDecay` object carries its own mode and is taken as it is.
        """
        if isinstance(value, WeightDecay):
            return value
        return cls(value, weight_decouple=weight_decouple)

    def defaults(self) -> dict[str, Any]:
        r"""
        The entry this object contributes to an optimizer's `defaults`. Only the value: the mode is
        a property of the optimizer, and the value is what a group or a parameter may override.
        """
        return {"weight_decay": self.weight_decay}

    def __call__(self, param: torch.Tensor, grad: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        r"""
        Apply the decay for one parameter and return the gradient to use from here on. Decoupled
        decay changes `param` in place and returns `grad` untouched; L2 returns a new tensor
        $g + \lambda\theta$ (never modifying `param.grad`).

        Most optimizers here call this first in their step, before the update. For decoupled decay
        the order matters, slightly: decaying $\theta_{t-1}$ and then subtracting the update gives
        $\theta_t = (1-\eta\lambda)\,\theta_{t-1} - \eta\, u_t$, as in `torch.optim.AdamW`;
        decaying afterwards would give $(1-\eta\lambda)(\theta_{t-1} - \eta\, u_t)$, which differs
        by $\eta^2\lambda\, u_t$.
        """
        # The value in force for this parameter: its own `opt_args`, else its group's.
        decay = param_option(group, param, "weight_decay")
        # Nothing to do: return the gradient itself, with no copy and no pass over memory. This
        # also makes a zero-decay step bit-identical to one of an optimizer without decay.
        if decay == 0:
            return grad
        factor = self.shrink_factor(param, group)
        if factor is None:
            # L2: a new tensor, because `grad` may be `param.grad` itself, which the caller owns.
            # (The AdaBelief package adds to `param.grad` in place; its gradient after a step is then
            # not the one backward computed.)
            # $$g_t \leftarrow g_t + \lambda\,\theta_{t-1}$$
            return grad.add(param, alpha=decay)
        # Decoupled: $$\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}$$ (or $1 - \lambda$, absolute)
        param.mul_(factor)
        return grad

    def shrink_factor(self, param: torch.Tensor, group: dict[str, Any]) -> Any:
        r"""
        The factor decoupled decay multiplies $\theta_{t-1}$ by; `None` when this parameter's decay is
        L2 or zero. A step that must apply the decay under a condition ([ADOPT](../adopt.md), not at
        its first step) applies this factor itself.
        """
        decay = param_option(group, param, "weight_decay")
        # The mode: the group's (or the parameter's) `decoupled_weight_decay` where the optimizer keeps
        # one, else this object's.
        if decay == 0 or not param_option(group, param, "decoupled_weight_decay", self.weight_decouple):
            return None
        if self.absolute:
            # Absolute decay, without the learning rate: $$1 - \lambda$$
            return 1 - decay
        # Decoupled decay, with the learning rate in force now, after any schedule and any
        # per-parameter `lr_scale`: $$1 - \eta\lambda$$
        return 1 - learning_rate(group, param) * decay
