r"""
# AdamW: Adam with decoupled weight decay

[Loshchilov & Hutter, 2019](https://arxiv.org/abs/1711.05101) noticed that in [Adam](adam.md),
L2 regularisation and weight decay are different things. L2 adds $\lambda\theta$ to the gradient, and
Adam then divides it by $\sqrt{\hat v_t}$: a weight with large gradients is decayed *less* than one
with small gradients, the opposite of what regularisation should do. AdamW takes the decay out of the
gradient and applies it to the weights directly, at the same rate for all:

$$\textcolor{orange}{\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1}} \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},$$

with $m_t, v_t$ computed from the *raw* gradient.

```algorithm
\textcolor{orange}{\theta_{t-1} \leftarrow (1 - \eta\lambda)\, \theta_{t-1}}
    @ core/weight_decay.py: return 1 - learning_rate(group, param) * decay
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2
    @ adam.py: exp_avg.lerp_(grad, 1 - beta1)
\theta_t = \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)  @ adam.py: param.addcdiv_
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\lambda$ | `weight_decay` | the decoupled weight decay (default $10^{-2}$) |
| $\eta$ | `lr` | the learning rate, which multiplies the decay too |

The other symbols are [Adam](adam.md)'s.

## How different L2 is, in numbers

Take a weight whose gradient has RMS $\sqrt{\hat v_t} = 10^{-2}$, and $\lambda = 10^{-2}$. Under L2,
its decay term $\lambda\theta$ is divided by $10^{-2}$: in the step it weighs like a decay of
$\lambda/\sqrt{\hat v_t} = 1$ per unit of $\eta$, a hundred times the nominal rate. A weight with
gradients of RMS $10$ gets $10^{-3}$, ten times less than nominal. Under L2 the decay these two
weights feel differs by a factor of a thousand, set by their gradient statistics rather than by
$\lambda$. (And where $\lambda\theta$ dominates the gradient, it also dominates $v_t$, and the
decay step saturates at about $\eta$ per step like any other Adam step.) Decoupled, both weights
shrink by the same factor $1 - \eta\lambda$ per step.

For [SGD](sgd.md) without momentum the two are the same optimizer; the difference is specific to
methods that rescale the gradient. The paper's experiments show the practical effect: with
decoupled decay, the best $\lambda$ depends much less on $\eta$, and Adam's generalisation on image
classification comes close to SGD with momentum.

## What torch computes, and how it differs from the paper

The paper writes the update with a schedule multiplier $s_t$ and a separate step size $\alpha$,
$\theta_t = \theta_{t-1} - s_t\,\big(\alpha\,\hat m_t/(\sqrt{\hat v_t}+\epsilon) + \lambda\,\theta_{t-1}\big)$:
the decay is $s_t\lambda$ and does not involve $\alpha$. Torch (and this class) multiplies the decay by
the learning rate in force, $\eta\lambda$, so one schedule scales both the step and the decay, and
changing $\eta$ changes the decay too. The two conventions agree when
$\lambda_{\text{torch}} = \lambda_{\text{paper}}/\alpha$. The decay is applied to $\theta_{t-1}$ before the
step, which gives $\theta_t = (1-\eta\lambda)\,\theta_{t-1} - \eta\,u_t$; applying it after would
differ by $\eta^2\lambda\,u_t$. Note the default $\lambda = 10^{-2}$, not $0$.

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

    * `weight_decay` is $\lambda$. Each step multiplies the weights by $1 - \eta\lambda$, so the
      decay's time scale is $1/(\eta\lambda)$ steps: $10^5$ steps for the defaults
      ($\eta = 10^{-3}$, $\lambda = 10^{-2}$), a gentle pull on a run of that length. Values of
      $0.01$ to $0.1$ are common: GPT-3 was trained with $0.1$, DeiT (vision transformers)
      with $0.05$. Because torch multiplies by $\eta$, keep $\eta\lambda$ in mind when changing
      $\eta$: halving $\eta$ also halves the decay.
    * Exclude biases and normalisation weights from the decay
      ([`param_groups_without_decay`](options.md)); the paper also suggests scaling $\lambda$ with
      the length of the run, $\lambda = \lambda_{\text{norm}}\sqrt{b/(BT)}$ for batch size $b$, $B$
      training points and $T$ epochs, so that the total decay stays comparable.
    * `amsgrad=True` keeps the running maximum of $v_t$, as `torch.optim.AdamW(amsgrad=True)`.
    * `decoupled_weight_decay=False` gives Adam's L2 back (with AdamW's default $\lambda$).
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: Any = 1e-2, amsgrad: bool = False, *,
                 decoupled_weight_decay: bool = True, **kwargs: Any) -> None:
        r"""
        Torch's signature for `AdamW`. Everything is handed to [Adam](adam.md)'s constructor, where
        a plain number for `weight_decay` becomes a decoupled [`WeightDecay`](weight_decay.md) and
        the decay is applied before the moments, at every step.
        """
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=decoupled_weight_decay, **kwargs)
