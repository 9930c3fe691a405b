r"""
# AdamW: Adam with decoupled weight decay

[Loshchilov & Hutter, 2019](https://arxiv.org/abs/1711.05101) noticed that in [Adam](adam.md),
L2 regularisation and weight decay are different things. L2 adds $\lambda\theta$ to the gradient, and
Adam then divides it by $\sqrt{\hat v_t}$: a weight with large gradients is decayed *less* than one
with small gradients, the opposite of what regularisation should do. AdamW takes the decay out of the
gradient and applies it to the weights directly, at the same rate for all:

$$\textcolor{orange}{\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}} \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},$$

with $m_t, v_t$ computed from the *raw* gradient. The paper writes the decay with a separate schedule
multiplier; torch (and this class) uses the learning rate in force, so one schedule scales both the
step and the decay. Note the default $\lambda = 10^{-2}$, not $0$.

The whole difference from Adam is the mode of the [`WeightDecay`](weight_decay.md) object, so this
class only changes two defaults. It extends [`AMSGrad`](amsgrad.md) with `amsgrad=False` rather than
Adam directly, so that `AdamW(amsgrad=True)` works as it does in torch.
"""

from typing import Any

from .amsgrad import AMSGrad


class AdamW(AMSGrad):
    r"""
    ## Hyper-parameters

    Those of [Adam](adam.md), with `weight_decay` $= 10^{-2}$, decoupled decay and `amsgrad=False`
    by default.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: Any = 1e-2, amsgrad: bool = False, *,
                 decoupled_weight_decay: bool = True, **kwargs: Any) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=decoupled_weight_decay, **kwargs)
