r"""
# Lion: evolved sign momentum

[Chen et al., 2023](https://arxiv.org/abs/2302.06675) found this rule by a program search over
update rules, scored on real training runs. It keeps a single moment, and every coordinate moves by
exactly $\pm\eta$ (plus the decay): the sign throws the magnitude away.

$$\begin{aligned}
c_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
\theta_t &= \theta_{t-1} - \eta\,\big(\mathrm{sign}(c_t) + \lambda\,\theta_{t-1}\big) \\
m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, g_t
\end{aligned}$$

Two averages of the same gradients with two rates, but only one is stored: the update direction
$c_t$ interpolates the *old* moment and the new gradient with $\beta_1 = 0.9$ (the new gradient weighs
$10\%$), and the moment itself is then updated with the slower $\beta_2 = 0.99$. So the step reacts to
the current gradient ten times faster than the memory forgets, a little like Nesterov's look-ahead
(with $\beta_1 = \beta_2$ it would be the sign of ordinary momentum, signSGD with momentum).

```algorithm
\theta \leftarrow (1 - \eta\lambda)\,\theta_{t-1}
    @ core/weight_decay.py: return 1 - learning_rate(group, param) * decay
c_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t  @ direction = exp_avg.lerp(grad, 1 - beta1)
\theta_t = \theta - \eta\,\mathrm{sign}(c_t)  @ param.add_(direction.sign_(), alpha=-learning_rate(group, param))
m_t = \beta_2 m_{t-1} + (1-\beta_2)\, g_t  @ exp_avg.lerp_(grad, 1 - beta2)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $c_t$ | `direction` | the update direction, before the sign |
| $m_t$ | `exp_avg` | the moment, the only state |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the interpolation for $c_t$, and the moment's decay rate |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |

## Why $\eta$ is 3-10x smaller and $\lambda$ 3-10x larger than AdamW's

Lion's step has the same size in every coordinate: $|\Delta\theta| = \eta$ exactly, whatever the
gradient. [Adam](adam.md)'s step is $\eta$ times a signal-to-noise ratio $|\hat m_t|/\sqrt{\hat v_t}$,
which is well below one for noisy coordinates (about $0.1$-$0.3$ in practice). The sign has norm
$\sqrt{d}$ for $d$ coordinates, Adam's update a few times less; to move the weights by the same
amount per step, Lion's $\eta$ must be correspondingly smaller, and the paper recommends 3-10x.

Decoupled decay shrinks the weights by $1-\eta\lambda$ per step, a product. Dividing $\eta$ by ten
would divide the decay by ten, so the paper multiplies $\lambda$ by the same 3-10 to keep
$\eta\lambda$, the strength of the regularisation, what it was under AdamW: AdamW with
$\eta = 10^{-3}, \lambda = 0.1$ becomes Lion with $\eta = 10^{-4}, \lambda = 1$.

Beside $\eta$, the authors name one setting to change when training is unstable: a shorter memory,
$\beta_2 = 0.98$ or $0.95$ instead of $0.99$ (with $\beta_1$ raised to $0.95$). It is the knob the
[benchmark](../benchmark.md)'s search varies for Lion, with the learning rate.

## Memory and compute

One state tensor ($m_t$, under torch's name `exp_avg`): 4 bytes per `float32` parameter against
Adam's 8, and no square root or division; the update is a sign. Because every coordinate moves by
the same amount, Lion is also insensitive to the scale of the gradient, like Adam, but without an
$\epsilon$.

What changes from [Adam](adam.md): no second moment, no bias correction (the sign does not care
about the scale of $c_t$), and an update direction that is not the stored moment.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.validation import check_betas
from .core.weight_decay import WeightDecay


class Lion(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The defaults and argument names are those of the authors' package (`lion-pytorch`).

    * `lr` is $\eta$ (default $10^{-4}$): 3-10x smaller than you would give AdamW, since every
      coordinate moves by exactly $\eta$ per step.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.99)$): the interpolation that forms the
      update direction, and the decay of the stored moment. A smaller $\beta_2$ (0.98) gives a
      moment that forgets faster, which the paper uses where training is unstable.
    * `weight_decay` is $\lambda$, decoupled as in [AdamW](adamw.md) (the factor is
      $1-\eta\lambda$): 3-10x larger than AdamW's, so that $\eta\lambda$ stays the same.
    * `maximize` ascends the objective instead.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float | WeightDecay = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None) -> None:
        check_betas(betas)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=True)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), maximize=maximize, foreach=foreach, fused=fused,
                                      **self.weight_decay.defaults()))

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The one moment, $m_0 = 0$. No step count: nothing in the rule depends on $t$."""
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Lion step

        Decay first, on $\theta_{t-1}$, then the signed step, then the moment: the direction must be
        formed from $m_{t-1}$, before the moment takes in $g_t$.
        """
        beta1, beta2 = group["betas"]
        exp_avg = state["exp_avg"]
        # $$\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}$$
        grad = self.weight_decay(param, grad, group)
        # The direction is a new tensor: $m_{t-1}$ is still needed below, with its other rate.
        # $$c_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t$$
        direction = exp_avg.lerp(grad, 1 - beta1)
        # $$\theta_t = \theta_{t-1} - \eta\,\mathrm{sign}(c_t)$$
        # A coordinate whose $c_t$ is exactly $0$ (a zero gradient on a zero moment) does not move.
        param.add_(direction.sign_(), alpha=-learning_rate(group, param))
        # $$m_t = \beta_2 m_{t-1} + (1-\beta_2)\, g_t$$
        exp_avg.lerp_(grad, 1 - beta2)
