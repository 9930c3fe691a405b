r"""
# Steppers: what an optimizer does with what it remembers

A stepper is a plain function `stepper(param, grad, **hypers, **state)`. It names, as keyword
arguments, exactly the hyper-parameters and state entries it reads, and ignores the rest (`**_`).
It either changes `param` in place and returns nothing, or returns a new gradient that the pieces
after it see instead. It never touches `param.grad`.

Each stepper declares its own defaults with the `@stepper(...)` decorator; the
[optimizer](optimizer.md) collects them. Together with the three [stats](stats.md) these few
functions make the whole family on the [assembled](assembled.md) page.

## Debiasing

Steppers that use an average divide it by the sum of its weights. For
$b_t = \beta\,b_{t-1} + d\,g_t$ from $b_0 = 0$ that sum is a geometric series,

$$d\,(1 + \beta + \dots + \beta^{t-1}) = d\,\frac{1-\beta^t}{1-\beta},$$

so $b_t$ divided by it is a weighted *mean* of the gradients seen so far, whatever $t$ is. With
dampening, $d = 1-\beta$, it is Adam's $1-\beta^t$. `debias` computes it from the factor $d$ the stat
recorded, so it is right for both kinds of average.
"""

import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def stepper(**defaults: Any) -> Callable[[F], F]:
    r"""Attach `defaults` to a stepper function: `@stepper(eps=1e-8)`."""

    def attach(function: F) -> F:
        function.defaults = defaults
        return function

    return attach


def debias(beta: float, damp: float, step: "int | torch.Tensor") -> float:
    r"""
    $$d\,\frac{1-\beta^t}{1-\beta}$$ the sum of the weights of an average after $t$ steps. The count
    is read as a Python number, so $\beta^t$ is computed in double precision as torch computes it.
    """
    return damp * (1 - beta ** float(step)) / (1 - beta)


@stepper(weight_decay=0.0)
def decoupled_weight_decay(param: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float,
                           **_: Any) -> None:
    r"""
    ## Decoupled weight decay

    Shrink the weights directly, apart from the gradient,
    $$\theta \leftarrow (1 - \eta\lambda)\,\theta,$$
    with the learning rate in force now, so one schedule scales both. Where it sits in the list
    matters: before the update step this is AdamW as torch computes it; after it, every step's update is
    shrunk too, by exactly $\eta\lambda$ times itself.
    """
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)


@stepper(weight_decay=0.0)
def l2_reg(param: torch.Tensor, grad: torch.Tensor, *, weight_decay: float, **_: Any) -> torch.Tensor | None:
    r"""
    ## L2 regularisation

    The gradient of $\frac{\lambda}{2}\lVert\theta\rVert^2$ added to the loss's,
    $$g \leftarrow g + \lambda\,\theta,$$
    returned as a new tensor so that the stats and steppers after it see it. It must come *before*
    the stats: placed after them, the averages never contain the decay term.
    """
    if weight_decay == 0:
        return None
    return grad.add(param, alpha=weight_decay)


@stepper()
def sgd_step(param: torch.Tensor, grad: torch.Tensor, *, lr: float, **_: Any) -> None:
    r"""
    ## Gradient descent

    $$\theta \leftarrow \theta - \eta\, g$$
    """
    param.add_(grad, alpha=-lr)


@stepper()
def momentum_step(param: torch.Tensor, grad: torch.Tensor, *, lr: float, grad_avg: torch.Tensor,
                  **_: Any) -> None:
    r"""
    ## Momentum

    Step along the average gradient $b_t$ kept by `AverageGrad`, not debiased (as torch does):
    $$\theta \leftarrow \theta - \eta\, b_t$$
    """
    param.add_(grad_avg, alpha=-lr)


@stepper(eps=1e-8)
def rmsprop_step(param: torch.Tensor, grad: torch.Tensor, *, lr: float, eps: float, sqr_avg: torch.Tensor,
                 **_: Any) -> None:
    r"""
    ## RMSprop

    Divide the gradient, coordinate by coordinate, by the root of its average square $v_t$ kept by
    `AverageSqrGrad`:
    $$\theta \leftarrow \theta - \eta\,\frac{g}{\sqrt{v_t} + \epsilon}$$
    Like torch, $v_t$ is not debiased: it starts small, so the first steps are larger than the later
    ones ([Adam](../adam.md) adds the correction).
    """
    param.addcdiv_(grad, sqr_avg.sqrt().add_(eps), value=-lr)


@stepper(eps=1e-8)
def adam_step(param: torch.Tensor, grad: torch.Tensor, *, lr: float, momentum: float, sqr_momentum: float,
              eps: float, step: torch.Tensor, grad_avg: torch.Tensor, sqr_avg: torch.Tensor, mom_damp: float,
              sqr_damp: float, **_: Any) -> None:
    r"""
    ## Adam

    Both averages debiased, then the momentum step divided by the root mean square:
    $$\theta \leftarrow \theta - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} \qquad
      \hat m_t = \frac{m_t}{1-\beta_1^t} \quad \hat v_t = \frac{v_t}{1-\beta_2^t}$$
    The default $\epsilon = 10^{-8}$ is torch's and the paper's; the course's $10^{-5}$ is a
    different optimizer whenever $\sqrt{\hat v_t}$ is small.
    """
    debias1 = debias(momentum, mom_damp, step)
    debias2 = debias(sqr_momentum, sqr_damp, step)
    # $$\sqrt{\hat v_t} + \epsilon = \sqrt{v_t} / \sqrt{1-\beta_2^t} + \epsilon$$
    denominator = (sqr_avg.sqrt() / math.sqrt(debias2)).add_(eps)
    # $$\theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\cdot\frac{m_t}{\sqrt{\hat v_t} + \epsilon}$$
    param.addcdiv_(grad_avg, denominator, value=-lr / debias1)


@stepper(eps=1e-6, weight_decay=0.0, bias_correction=True, max_weight_norm=10.0)
def lamb_step(param: torch.Tensor, grad: torch.Tensor, *, lr: float, momentum: float, sqr_momentum: float,
              eps: float, weight_decay: float, bias_correction: bool, max_weight_norm: float, step: torch.Tensor,
              grad_avg: torch.Tensor, sqr_avg: torch.Tensor, mom_damp: float, sqr_damp: float,
              **_: Any) -> None:
    r"""
    ## LAMB

    [You et al., 2020](https://arxiv.org/abs/1904.00962) take Adam's direction, add the weight decay
    to it, and rescale the whole step of each tensor (each layer) so that its length is proportional
    to the length of the weights:
    $$r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} \qquad u_t = r_t + \lambda\,\theta \qquad
      \theta \leftarrow \theta - \eta\,\frac{\phi(\lVert\theta\rVert)}{\lVert u_t\rVert}\,u_t,$$
    with $\phi(z) = \min(z, 10)$ (`max_weight_norm`). The ratio
    $\phi(\lVert\theta\rVert)/\lVert u_t\rVert$ is the *trust ratio*: every layer moves by about $\eta$
    times its own size, whatever the scale of its gradients.

    * `bias_correction=True` (the default) debiases both moments as the paper's final version does;
      `False` is the variant without it (the paper's earlier version, and `pytorch_optimizer.Lamb`).
    * As in `pytorch_optimizer.Lamb`, the trust ratio's denominator is $\lVert u_t\rVert + \epsilon$,
      and a zero norm (a fresh zero bias, a zero update) gives a trust ratio of $1$. The paper has
      no $\epsilon$ there; with $\lVert u_t\rVert \gg \epsilon$ the two differ by
      $\epsilon/\lVert u_t\rVert$ relative.
    """
    if bias_correction:
        # $$\hat m_t = m_t / (1-\beta_1^t) \qquad \hat v_t = v_t / (1-\beta_2^t)$$
        exp_avg = grad_avg / debias(momentum, mom_damp, step)
        exp_avg_sq = sqr_avg / debias(sqr_momentum, sqr_damp, step)
    else:
        exp_avg, exp_avg_sq = grad_avg, sqr_avg
    # $$u_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\,\theta$$
    update = exp_avg / exp_avg_sq.sqrt().add_(eps)
    if weight_decay != 0:
        update.add_(param, alpha=weight_decay)
    # $$\phi(\lVert\theta\rVert) = \min(\lVert\theta\rVert, 10)$$
    weight_norm = torch.linalg.vector_norm(param).clamp(max=max_weight_norm)
    update_norm = torch.linalg.vector_norm(update)
    if weight_norm == 0 or update_norm == 0:
        trust_ratio = 1.0
    else:
        # $$\frac{\phi(\lVert\theta\rVert)}{\lVert u_t\rVert + \epsilon}$$
        trust_ratio = float(weight_norm / (update_norm + eps))
    # $$\theta \leftarrow \theta - \eta\,\frac{\phi(\lVert\theta\rVert)}{\lVert u_t\rVert + \epsilon}\,u_t$$
    param.add_(update, alpha=-lr * trust_ratio)
