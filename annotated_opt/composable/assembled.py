r"""
# The family, assembled from pieces

Each function below builds a [`ComposableOptimizer`](optimizer.md) from [stats](stats.md) and
[steppers](steppers.md), takes the constructor arguments of its class-based twin (torch's names), and
translates them into the shared hyper-parameter names. Read side by side, the six lists are the
whole story of the family:

| optimizer | pieces, in order |
|---|---|
| SGD | `l2_reg`, `sgd_step` |
| momentum | `l2_reg`, `AverageGrad()`, `momentum_step` |
| RMSprop | `l2_reg`, `AverageSqrGrad()`, `rmsprop_step` |
| Adam | `l2_reg`, `AverageGrad(dampening=True)`, `AverageSqrGrad()`, `StepCount()`, `adam_step` |
| AdamW | `decoupled_weight_decay`, `AverageGrad(dampening=True)`, `AverageSqrGrad()`, `StepCount()`, `adam_step` |
| LAMB | `AverageGrad(dampening=True)`, `AverageSqrGrad()`, `StepCount()`, `lamb_step` |

Momentum is SGD plus one stat; RMSprop swaps that stat for the squared one; Adam keeps both; AdamW
moves the decay from the gradient to the weights; LAMB changes only the last stepper.

The tests run each against its twin, on awkward parameter shapes in two groups, for 100 steps in
float64, comparing every parameter and every state tensor after every step: the
[SGD](../sgd.md) (with and without momentum), [RMSprop](../rmsprop.md), [Adam](../adam.md) and
[AdamW](../adamw.md) classes of this library, and `pytorch_optimizer.Lamb` for LAMB. They agree to
about $10^{-15}$ relative; the small differences are rounding, since the twins compute the
same averages with `lerp` and fold the corrections slightly differently.

What is left out, and why: torch's SGD `dampening` $\tau > 0$ starts its buffer at $g_1$ rather
than at $(1-\tau)\,g_1$, which no zero-started average reproduces (the [stats](stats.md) page
explains), and Nesterov, RMSprop's `centered` and momentum options, and AMSGrad each need one more
stepper that teaches nothing new here.
"""

from ..core.base import ParamsT
from ..core.validation import check_betas
from .optimizer import ComposableOptimizer
from .stats import AverageGrad, AverageSqrGrad, Stat, StepCount
from .steppers import adam_step, decoupled_weight_decay, l2_reg, lamb_step, momentum_step, rmsprop_step, sgd_step


def sgd(params: ParamsT, lr: float = 1e-3, weight_decay: float = 0.0) -> ComposableOptimizer:
    r"""Plain SGD with L2 regularisation: `torch.optim.SGD(params, lr, weight_decay=...)`."""
    return ComposableOptimizer(params, [l2_reg, sgd_step], lr=lr, weight_decay=weight_decay)


def momentum(params: ParamsT, lr: float = 1e-3, momentum: float = 0.9,
             weight_decay: float = 0.0) -> ComposableOptimizer:
    r"""
    SGD with momentum as torch computes it, `torch.optim.SGD(params, lr, momentum, weight_decay=...)`:
    the average gradient without dampening, $b_t = \mu\,b_{t-1} + g_t$, starts at $b_1 = g_1$
    exactly like torch's buffer. The L2 term enters before the average, so momentum carries it.
    """
    return ComposableOptimizer(params, [l2_reg, AverageGrad(dampening=False), momentum_step],
                               lr=lr, momentum=momentum, weight_decay=weight_decay)


def rmsprop(params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: float = 0.0) -> ComposableOptimizer:
    r"""RMSprop as `torch.optim.RMSprop(params, lr, alpha, eps, weight_decay)`: $\alpha$ is `sqr_momentum`."""
    return ComposableOptimizer(params, [l2_reg, AverageSqrGrad(dampening=True), rmsprop_step],
                               lr=lr, sqr_momentum=alpha, eps=eps, weight_decay=weight_decay)


def adam_stats() -> list[Stat]:
    r"""Adam's three stats, new for each optimizer: $m_t$ and $v_t$ with dampening, and $t$."""
    return [AverageGrad(dampening=True), AverageSqrGrad(dampening=True), StepCount()]


def adam(params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0) -> ComposableOptimizer:
    r"""
    Adam as `torch.optim.Adam(params, lr, betas, eps, weight_decay)`: $\beta_1$ is `momentum` and
    $\beta_2$ `sqr_momentum`; `weight_decay` is L2, which goes through both averages and is divided by
    $\sqrt{\hat v_t}$ like the rest of the gradient.
    """
    check_betas(betas)
    return ComposableOptimizer(params, [l2_reg, *adam_stats(), adam_step], lr=lr, momentum=betas[0],
                               sqr_momentum=betas[1], eps=eps, weight_decay=weight_decay)


def adamw(params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          weight_decay: float = 1e-2) -> ComposableOptimizer:
    r"""
    AdamW as `torch.optim.AdamW`: the same pieces as Adam with `l2_reg` replaced by
    `decoupled_weight_decay`, placed first as torch does (the weights shrink, then the Adam update is
    applied).
    """
    check_betas(betas)
    return ComposableOptimizer(params, [decoupled_weight_decay, *adam_stats(), adam_step], lr=lr,
                               momentum=betas[0], sqr_momentum=betas[1], eps=eps, weight_decay=weight_decay)


def lamb(params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
         weight_decay: float = 0.0, bias_correction: bool = True,
         max_weight_norm: float = 10.0) -> ComposableOptimizer:
    r"""
    LAMB: Adam's statistics with the layer-wise `lamb_step`. With `bias_correction=False` it equals
    `pytorch_optimizer.Lamb(params, lr, betas, weight_decay, weight_decouple=False, eps=eps)`:
    that package's `weight_decouple=False` is the paper's rule (the decay is added to the update and
    scaled by the trust ratio), while its default `weight_decouple=True` decays the weights before the
    trust ratio is computed and leaves the decay out of $u_t$.
    """
    check_betas(betas)
    return ComposableOptimizer(params, [*adam_stats(), lamb_step], lr=lr, momentum=betas[0],
                               sqr_momentum=betas[1], eps=eps, weight_decay=weight_decay,
                               bias_correction=bias_correction, max_weight_norm=max_weight_norm)
