r"""
# RAdam: rectified Adam

[Liu et al., 2020](https://arxiv.org/abs/1908.03265) asked why [Adam](adam.md) needs a learning-rate
warmup. Their answer: in the first steps the adaptive learning rate $1/\sqrt{\hat v_t}$ is estimated
from a handful of squared gradients, so its **variance** is huge, and a few unlucky early steps can
throw the model into a bad region it never leaves. Warmup hides the problem by keeping $\eta$ small
while $v_t$ is unreliable. RAdam removes the cause instead: it measures how reliable $v_t$ is and
scales the adaptive step down by exactly as much as needed.

```algorithm
m_t, v_t \ \text{as in Adam}  @ adam.py: exp_avg.lerp_(grad, 1 - beta1)
\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)  @ rho_t = sma_length(beta2, step)
\textcolor{orange}{\rho_t > 5}: \
    \theta_t = \theta_{t-1} - \eta\, \textcolor{orange}{r_t}\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)
    @ rectified_step = adaptive_rate.mul_(step_direction).mul_(rectification(beta2, step))
\text{otherwise}: \ \textcolor{orange}{\theta_t = \theta_{t-1} - \eta\, \hat m_t}
    @ sgd_step = step_direction if group["degenerated_to_sgd"] else 0
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $m_t$ | `exp_avg` | the first moment |
| $v_t$ | `exp_avg_sq` | the second moment |
| $\rho_t$ | `rho_t` | the length of the simple moving average $v_t$ approximates |
| $\rho_\infty$ | `rho_inf` | its limit |
| $r_t$ | `rectification` | the variance rectification term |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $t$ | `step` | the step count |

## How many gradients is $v_t$ worth?

An exponential moving average of $t$ squared gradients behaves like a simple moving average of
$\rho_t$ of them. Matching the centres of mass of the two averages gives

$$\rho_\infty = \frac{2}{1-\beta_2} - 1 \qquad
  \rho_t = \rho_\infty - \frac{2\,t\,\beta_2^t}{1-\beta_2^t},$$

which starts at $\rho_1 = 1$, grows by about one per step at first, and saturates at $\rho_\infty$
($1999$ for $\beta_2 = 0.999$).

## The rectification term

If the gradients were Gaussian with variance $\sigma^2$ and $v_t$ a simple average of $\rho_t$ of
their squares, the squared adaptive rate $1/\hat v_t$ would follow a scaled inverse-$\chi^2$
distribution with $\rho_t$ degrees of freedom. The variance of the rate $1/\sqrt{\hat v_t}$ then
exists only for $\rho_t > 4$, and (to first order) it falls as $\rho_t$ grows. Multiplying the rate by

$$r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}$$

brings its variance down to what it will be once $v_t$ is an average of $\rho_\infty$ gradients
($r_t \to 1$ as $\rho_t \to \rho_\infty$). The plot on this page shows $r_t$: for $\beta_2 = 0.999$
it rises from $0$ over the first few thousand steps, a warmup that follows from $\beta_2$ rather than
being tuned.

## The update

$$\theta_t = \begin{cases}
  \theta_{t-1} - \eta\, \textcolor{orange}{r_t}\, \dfrac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
    \cdot\dfrac{m_t}{\sqrt{v_t} + \epsilon}
    & \text{if } \rho_t \text{ passes the threshold,} \\[2ex]
  \theta_{t-1} - \eta\, \hat m_t & \text{otherwise: SGD with momentum (or no step at all).}
\end{cases}$$

In the first branch $\epsilon$ is added to $\sqrt{v_t}$, not to $\sqrt{\hat v_t}$: both the official
code and `torch.optim.RAdam` do it this way, which is Adam's folded form of the step. While
$\rho_t$ is too small, $v_t$ is not used at all and the step is plain SGD with bias-corrected
momentum; with `degenerated_to_sgd=False` those steps are skipped instead.

## Three thresholds

The boundary between the two branches is the one detail where the three sources disagree:

| convention | rule | first adaptive step for $\beta_2 = 0.999$ |
|---|---|---|
| `"paper"` (Algorithm 2) | $\rho_t > 4$ | 5 ($\rho_5 \approx 4.996$) |
| `"official"` (the authors' code) | $\rho_t \ge 5$ | 6 |
| `"torch"` (`torch.optim.RAdam`, the default) | $\rho_t > 5$ | 6 |

The paper's $4$ is where $r_t$ becomes defined; the code uses $5$ "to be more conservative, since
$\rho_t$ is an approximation". The official and torch rules differ only when $\rho_t$ is exactly $5$.
Pass any of the three names, or a number $c$ for the rule $\rho_t > c$ (at least $4$).

## Differences from the official code, and from torch

* The official code caches $(\rho_t, r_t)$ for the last ten steps. Its first version kept that cache
  on the optimizer, shared by all parameter groups, so two groups with different $\beta_2$ read each
  other's step sizes; the later version gives a group its own cache only when the group sets its own
  `betas` (a group added later with `add_param_group` still shares). We compute the few scalars
  directly, from the group's own $\beta_2$.
* Its weight decay is decoupled (`decoupled_weight_decay=True` here). The first version always took
  the SGD steps; the later, packaged version made them optional and off by default, and when they are
  off it skips the weight decay of those steps too. Here (as in torch) the decay is applied before the
  moments on every step, whichever branch follows.

Everything but the update is inherited: this class extends [AMSGrad](amsgrad.md) (with
`amsgrad=False` by default, so the running maximum is available) and overrides only `adam_update`.
"""

import math
from typing import Any

import torch

from .amsgrad import AMSGrad
from .core.base import ParamsT
from .core.options import learning_rate
from .core.scalars import choose
from .core.weight_decay import WeightDecay

THRESHOLDS: dict[str, tuple[float, bool]] = {
    "paper": (4.0, False),
    "official": (5.0, True),
    "torch": (5.0, False),
}
r"""The named threshold conventions: the bound $c$ and whether $\rho_t = c$ passes."""


def rho_infinity(beta2: float) -> float:
    r"""
    ### The length of the simple moving average in the limit
    $$\rho_\infty = \frac{2}{1-\beta_2} - 1$$
    """
    return 2 / (1 - beta2) - 1


def sma_length(beta2: float, step: int) -> float:
    r"""
    ### The length of the simple moving average after $t$ steps
    $$\rho_t = \rho_\infty - \frac{2\,t\,\beta_2^t}{1-\beta_2^t}$$
    """
    beta2_t = beta2**step
    return rho_infinity(beta2) - 2 * step * beta2_t / (1 - beta2_t)


def rectification(beta2: float, step: int) -> float:
    r"""
    ### The rectification term $r_t$

    $$r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}$$

    Defined only where $\rho_t > 4$ (below, the variance it corrects is infinite); NaN elsewhere.
    """
    rho_inf = rho_infinity(beta2)
    rho_t = sma_length(beta2, step)
    # The root as torch takes it, `** 0.5`, which may round differently from `math.sqrt`.
    r_t = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    return choose(rho_t > 4, r_t, math.nan)


def check_threshold(threshold: str | float) -> None:
    r"""A threshold is one of the named conventions, or a number $c \ge 4$ (for $\rho_t > c$)."""
    if isinstance(threshold, str):
        if threshold not in THRESHOLDS:
            raise ValueError(f"Invalid rectify_threshold: {threshold!r} (use one of {', '.join(THRESHOLDS)} "
                             "or a number >= 4)")
    elif not threshold >= 4:
        raise ValueError(f"Invalid rectify_threshold: {threshold} (r_t is undefined below 4)")


def passes_threshold(rho_t: float, threshold: str | float) -> bool:
    r"""Whether $\rho_t$ is large enough for the adaptive (rectified) step."""
    bound, inclusive = THRESHOLDS[threshold] if isinstance(threshold, str) else (threshold, False)
    return rho_t >= bound if inclusive else rho_t > bound


class RAdam(AMSGrad):
    r"""
    ## Hyper-parameters

    The arguments follow `torch.optim.RAdam`:

    * `lr` is $\eta$ (default $10^{-3}$). RAdam needs no warmup; it is not less sensitive to $\eta$
      otherwise.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$). $\beta_2$ sets the length of the
      built-in warmup: $r_t$ passes $0.9$ after about $2.7/(1-\beta_2)$ steps.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to $\sqrt{v_t}$.
    * `weight_decay` is $\lambda$; L2 unless `decoupled_weight_decay=True` (RAdamW, which is what the
      official code does).
    * `degenerated_to_sgd` (default `True`, as torch): take SGD steps with momentum while $\rho_t$
      is below the threshold; `False` leaves the parameters alone in those steps (weight decay
      still applies).
    * `rectify_threshold`: `"torch"` (default), `"official"`, `"paper"`, or a number; see above.
    * `amsgrad=True` divides by the running maximum of $v_t$ in the rectified steps.
    """

    # torch's twin has no `fused`.
    torch_flags = ("foreach", "capturable", "differentiable")
    # torch's RAdam takes any two numbers as `betas`, a float and a tensor mixed included.
    torch_adam_betas = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        amsgrad: bool = False,
        degenerated_to_sgd: bool = True,
        rectify_threshold: str | float = "torch",
        **kwargs: Any,
    ) -> None:
        check_threshold(rectify_threshold)
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=decoupled_weight_decay,
                         degenerated_to_sgd=degenerated_to_sgd, rectify_threshold=rectify_threshold, **kwargs)

    def adam_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The rectified update
        """
        beta1, beta2 = group["betas"]
        step = state["step"].item()
        lr = learning_rate(group, param)
        # $$\rho_t = \rho_\infty - \frac{2\,t\,\beta_2^t}{1-\beta_2^t}$$
        rho_t = sma_length(beta2, step)
        # Both branches move along the bias-corrected momentum, scaled by $\eta$. The products below are
        # taken in torch's order, tensor by tensor, so that the two round identically in every dtype.
        # $$\hat m_t = \frac{m_t}{1 - \beta_1^t}$$
        step_direction = (exp_avg / (1 - beta1**step)).mul_(lr)

        # Where the variance of the adaptive rate is finite: Adam's step, scaled by $r_t$, with
        # $\epsilon$ added to $\sqrt{v_t}$ (not to $\sqrt{\hat v_t}$),
        # $$\theta_t = \theta_{t-1} - \eta\,\hat m_t \cdot \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}
        #   \cdot \textcolor{orange}{r_t}$$
        # (The product is formed in the adaptive rate's buffer: `step_direction` is still needed below.)
        root = exp_avg_sq.sqrt()
        # (In a differentiable step $\epsilon$ is added into a new tensor: the backward pass needs the root.)
        denominator = root.add(group["eps"]) if group["differentiable"] else root.add_(group["eps"])
        adaptive_rate = (1 - beta2**step) ** 0.5 / denominator
        rectified_step = adaptive_rate.mul_(step_direction).mul_(rectification(beta2, step))
        # Too few samples in $v_t$ to trust it: SGD with bias-corrected momentum, or no step,
        # $$\textcolor{orange}{\theta_t = \theta_{t-1} - \eta\,\hat m_t}$$
        sgd_step = step_direction if group["degenerated_to_sgd"] else 0
        # The threshold chooses ([choose](core/scalars.md): an `if` on the host, the same choice on the
        # device in the fast path, where $\rho_t$ is a tensor).
        param.sub_(choose(passes_threshold(rho_t, group["rectify_threshold"]), rectified_step, sgd_step))
