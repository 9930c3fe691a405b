r"""
# ADOPT: Adam that converges for any $\beta_2$

[Taniguchi et al., 2024](https://arxiv.org/abs/2411.02853) (NeurIPS 2024) change two things in
[Adam](adam.md): the gradient is divided by the second moment of the *previous* step, which does
not contain it, and the momentum averages these normalised gradients instead of the raw ones:

$$\begin{aligned}
v_0 &= g_0^2 \qquad\text{(the first gradient only initialises } v\text{; the parameters do not move)} \\
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,
  \mathrm{clip}\!\left(\frac{g_t}{\max\big(\sqrt{\textcolor{orange}{v_{t-1}}},\, \epsilon\big)},\ c_t\right),
  \qquad c_t = t^{1/4} \\
\theta_t &= \theta_{t-1} - \eta\, m_t \\
v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2
\end{aligned}$$

No bias correction: $v_0$ is already a full-size estimate, and $m_t$ averages quantities of size
about one, so starting it at zero only shortens the first few steps.

```algorithm
\textcolor{orange}{v_0 = g_0^2} \quad \text{(the first gradient: the past weighs 0; nothing moves)}
    @ beta2 = choose(first, 0.0, beta2)
\textcolor{orange}{g_t / \max\big(\sqrt{v_{t-1}},\, \epsilon\big)}  @ normalised = grad.div(denominator)
\textcolor{orange}{\mathrm{clip}(\cdot,\ c_t), \quad c_t = t^{1/4}}  @ normalised.clamp_(-bound, bound)
m_t = \beta_1 m_{t-1} + (1-\beta_1)\,
  \textcolor{orange}{\mathrm{clip}\big(g_t / \max(\sqrt{v_{t-1}}, \epsilon),\ c_t\big)}
    @ exp_avg.lerp_(normalised, 1 - beta1)
\textcolor{orange}{\theta_t = \theta_{t-1} - \eta\, m_t}  @ param.add_(exp_avg, alpha=-learning_rate(group, param))
v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \quad \textcolor{orange}{\text{(after the step)}}
    @ exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient (with the L2 decay, when on) |
| $m_t$ | `exp_avg` | the momentum, of the normalised, clipped gradients |
| $v_t$ | `exp_avg_sq` | the second moment |
| $c_t$ | `bound`, `clip_lambda` | the clipping bound, `clip_lambda` of $t$ |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | a floor under $\sqrt{v_{t-1}}$ |
| $\lambda$ | `weight_decay` | the weight decay |
| $t$ | `updates` | the update count, from 1 (`step` counts the gradients, $t + 1$ after the update) |

## Why Adam can diverge, and why this fixes it for every $\beta_2$

In Adam the denominator $\sqrt{v_t}$ contains $g_t$ itself. A gradient is therefore divided by a
number that grows with it: a large gradient is damped more than a small one, and the expected step,
$\mathbb{E}[g_t/\sqrt{v_t}]$, is not a positive multiple of the expected gradient
$\mathbb{E}[g_t]$. On [the AMSGrad counter-example](counterexample.md) one rare large gradient points
the right way and many small ones the wrong way; Adam damps the large one, so its steps on average go
uphill. Adam converges only if $\beta_2$ is close enough to one *for the problem at hand*
(how close depends on the noise), which is why its theory needs problem-dependent $\beta_2$.

ADOPT's denominator $\sqrt{v_{t-1}}$ is fixed before $g_t$ is drawn. Conditionally on the past it is a
constant, so

$$\mathbb{E}\left[\frac{g_t}{\sqrt{v_{t-1}}}\,\middle|\,\text{past}\right]
  = \frac{\mathbb{E}[g_t \mid \text{past}]}{\sqrt{v_{t-1}}}:$$

in expectation the step is the true gradient rescaled coordinate-wise by positive numbers, a descent
direction, whatever $\beta_2$ is. The momentum must then average the *normalised* gradients: Adam's
$m_t / \sqrt{v_{t-1}}$ would divide old gradients $g_{t-1}, g_{t-2}, \dots$, which are inside
$v_{t-1}$, by a denominator correlated with them, and the bias would come back. With both changes
the paper proves the optimal $O(1/\sqrt{T})$ rate for smooth non-convex problems for any
$\beta_2 \in [0, 1)$, without Adam's assumption of bounded gradients (a bounded second moment of the
gradient noise is enough).

## The clipping

The first version had no clipping. Where a coordinate's first gradients are tiny (a layer initialised
at zero), $v_{t-1}$ is tiny and $g_t/\sqrt{v_{t-1}}$ huge, and training could blow up early. The
authors' current code clips each normalised coordinate to $[-c_t, c_t]$ with $c_t = t^{1/4}$, a bound
that grows slowly enough to keep the convergence proof (the paper's updated version). `clip_lambda`
is that schedule, a function of $t$; `None` gives the first version.

On [the counter-example](counterexample.md) the clipping matters, because the rare large gradient is
exactly what it cuts. Unclipped, ADOPT heads for the optimum with $\beta_2 = 0.99$ and with
$\beta_2 = 0.5$ alike; clipped, it drifts to the wrong end like Adam until $t^{1/4}$ exceeds the
rare gradient's normalised size: after about $29\,000$ steps for $\beta_2 = 0.99$, after $10^8$ for
$\beta_2 = 0.5$ (plot below). Clipping trades this slowness on rare, informative spikes for
stability when $v$ starts near zero.

## Where the official code differs from the paper

* $\epsilon$ is a floor, $\max(\sqrt{v}, \epsilon)$, as in the paper, not Adam's $\sqrt{v} + \epsilon$;
  its default is $10^{-6}$, and $\beta_2 = 0.9999$.
* Decoupled decay (`decoupled_weight_decay=True`, the official `decouple=True`) is written
  $\theta \leftarrow \theta - \eta\lambda\theta$ and is not applied at the first, initialising step;
  L2 decay is, so $v_0$ is the square of the regularised gradient.
* $t$ counts the updates, not the gradients: the first update after the initialising step has
  $t = 1$, and `state["step"]` counts gradients (it is $t + 1$ after the update).

## Memory and compute

Two tensors, as Adam ($m$ and $v$): 8 bytes per `float32` parameter. The update is cheaper than
Adam's: no bias corrections, and $\theta$ moves by $\eta m_t$ directly.
"""

import math
from collections.abc import Callable
from typing import Any

import torch

from .adam import Adam
from .core.base import ParamsT
from .core.options import learning_rate
from .core.scalars import advance, choose
from .core.weight_decay import WeightDecay


def fourth_root(step: int) -> float:
    r"""The authors' clipping schedule, $c_t = t^{1/4}$: 1 at the first update, 10 at $t = 10^4$."""
    return step**0.25


class ADOPT(Adam):
    r"""
    ## Hyper-parameters

    The defaults are those of the official code (`iShohei220/adopt`).

    * `lr` is $\eta$ (default $10^{-3}$); Adam's learning rates carry over: the normalised gradients
      have size about one, as Adam's $\hat m_t/\sqrt{\hat v_t}$.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.9999)$). Any $\beta_2 < 1$ converges in
      theory; the authors use $0.9999$, a second moment that changes slowly.
    * `eps` is $\epsilon$ (default $10^{-6}$), a floor under $\sqrt{v_{t-1}}$.
    * `clip_lambda` maps $t$ to the clipping bound $c_t$ (default $t^{1/4}$); `None` turns the
      clipping off (the first version of the paper). It is a property of the optimizer, not of a
      group, and is not saved in checkpoints (a function is not a tensor).
    * `weight_decay` is $\lambda$: L2 by default, decoupled with `decoupled_weight_decay=True`
      (use that where you would use AdamW).
    * `maximize` ascends the objective instead.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.9999),
                 eps: float = 1e-6, clip_lambda: Callable[[int], float] | None = fourth_root,
                 weight_decay: float | WeightDecay = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, fused: bool | None = None) -> None:
        if clip_lambda is not None and not callable(clip_lambda):
            raise ValueError(f"Invalid clip_lambda: {clip_lambda!r} (must be a function of the step, or None)")
        self.clip_lambda = clip_lambda
        super().__init__(params, lr, betas, eps, weight_decay, maximize=maximize, foreach=foreach, fused=fused,
                         decoupled_weight_decay=decoupled_weight_decay)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One ADOPT step

        The order is the algorithm: normalise with $v_{t-1}$, average, step, and only then take
        $g_t$ into $v$.
        """
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # $t$: the updates before this one count from the second gradient.
        updates = state["step"].item()
        advance(state)
        # The first gradient only initialises $v$. That step is written without an `if` on $t$, so
        # that the [fast path](core/fastpath.md) traces every step as one graph: each line below is
        # the ordinary update, with the value that makes it do nothing when $t = 0$.
        first = updates == 0
        # L2 decay changes every gradient, the first one included ($v_0$ is the square of the
        # regularised gradient); decoupled decay, which moves $\theta$, waits for the first update.
        shrink = self.weight_decay.shrink_factor(param, group)
        if shrink is None:
            grad = self.weight_decay(param, grad, group)
        else:
            # $$\theta_{t-1} \leftarrow (1 - \eta\lambda)\,\theta_{t-1} \quad (\text{factor } 1 \text{ at } t = 0)$$
            param.mul_(choose(first, 1.0, shrink))
        # The previous second moment, floored: $\max(\sqrt{v_{t-1}}, \epsilon)$. At $t = 0$ there is
        # no $v_{-1}$: the floor is $+\infty$, so the normalised gradient is $0$, and neither $m$ nor
        # $\theta$ moves.
        denominator = choose(first, math.inf, exp_avg_sq.sqrt().clamp_(min=group["eps"]))
        normalised = grad.div(denominator)
        # $$\mathrm{clip}(x, c_t) = \max(-c_t, \min(c_t, x))$$
        if self.clip_lambda is not None:
            bound = self.clip_lambda(updates)
            normalised.clamp_(-bound, bound)
        # $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,\mathrm{clip}\big(g_t/\max(\sqrt{v_{t-1}}, \epsilon), c_t\big)$$
        exp_avg.lerp_(normalised, 1 - beta1)
        # $$\theta_t = \theta_{t-1} - \eta\, m_t$$
        param.add_(exp_avg, alpha=-learning_rate(group, param))
        # Now, and not before: $$v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,$$
        # and at $t = 0$ the weight of the past is $0$: $$v_0 = g_0^2$$
        beta2 = choose(first, 0.0, beta2)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
