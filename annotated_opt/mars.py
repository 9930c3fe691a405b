r"""
# MARS: variance reduction, made to work with AdamW

[Yuan et al., 2024](https://arxiv.org/abs/2411.10438) bring *variance reduction* to the training of
large models. A stochastic gradient is noisy because each step sees a different batch $\xi_t$.
Variance-reduced estimators (SVRG, STORM) correct today's gradient with the change of the gradient
between the previous and the current weights, measured on the *same* batch: that change is mostly
curvature, not noise, so it can be accumulated without accumulating noise. MARS scales this
correction, clips the result, and feeds it to [AdamW](adamw.md) in place of the gradient:

$$\begin{aligned}
\textcolor{orange}{c_t} &\textcolor{orange}{= g_t + \gamma\,\frac{\beta_1}{1-\beta_1}\,\big(g_t - g_{t-1}\big)}
  \qquad
  \textcolor{orange}{\tilde c_t = \frac{c_t}{\max\big(1, \lVert c_t\rVert\big)}} \\
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,\tilde c_t \qquad
v_t = \beta_2 v_{t-1} + (1-\beta_2)\,\tilde c_t^{\,2} \\
\theta_t &= (1-\eta\lambda)\,\theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
\end{aligned}$$

The orange lines are all that changes from AdamW; this class is AdamW applied to $\tilde c_t$.

```algorithm
\textcolor{orange}{c_t = g_t + \gamma\,\frac{\beta_1}{1-\beta_1}\,\big(g_t - g_{t-1}\big)}
    @ corrected = torch.sub(grad, state["last_grad"]).mul_(group["gamma"] * (beta1 / (1 - beta1))).add_(grad)
\textcolor{orange}{\tilde c_t = c_t / \max\big(1, \lVert c_t\rVert\big)}
    @ return corrected.div_(full(torch.linalg.vector_norm(corrected)).clamp_(min=1))
\theta \leftarrow (1 - \eta\lambda)\,\theta_{t-1}
    @ core/weight_decay.py: return 1 - learning_rate(group, param) * decay
m_t = \beta_1 m_{t-1} + (1-\beta_1)\,\textcolor{orange}{\tilde c_t}, \quad
  v_t = \beta_2 v_{t-1} + (1-\beta_2)\,\textcolor{orange}{\tilde c_t^{\,2}}
    @ adam.py: exp_avg.lerp_(grad, 1 - beta1)
\theta_t = \theta - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}  @ adam.py: param.addcdiv_
\textcolor{orange}{g_{t-1} \leftarrow g_t} \quad \text{(for the next step)}  @ state["last_grad"].copy_(grad)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient ($g_{t-1}$: `last_grad`) |
| $c_t$ | `corrected` | the corrected gradient ($\tilde c_t$ after the clipping) |
| $\gamma$ | `gamma` | the strength of the correction |
| $\beta_1$ | `beta1` | the first moment's decay rate, which also sets the correction's factor |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |
| $\epsilon$ | `eps` | keeps the denominator away from zero |

The moments $m_t$, $v_t$ and $\beta_2$ are [Adam](adam.md)'s.

## The correction, and why it is scaled

With $\gamma = 1$, $m_t$ would be STORM's recursive estimator,
$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t + \beta_1 (g_t - g_{t-1})$: the old momentum is carried
forward to the new weights by the gradient difference. The exact form evaluates both gradients on
the batch $\xi_t$, $\nabla f(\theta_t, \xi_t) - \nabla f(\theta_{t-1}, \xi_t)$, which costs a second
backward pass. The practical form used here (the authors' `is_approx=True`, their default and the
one behind their results) takes $g_{t-1}$ from the previous step's batch: free, but then the
difference contains the noise of two batches, amplified by $\beta_1/(1-\beta_1) = 19$ for
$\beta_1 = 0.95$. $\gamma = 0.025$ scales it back: the difference then enters with weight
$\gamma\beta_1/(1-\beta_1) = 0.475$, a gentle correction.

The clipping caps the norm of $c_t$ at one, per tensor: a spike in the difference (a gradient that
changed sign between batches) cannot throw the moments off. Since $v_t$ is the average of the
clipped $\tilde c_t^{\,2}$, the step's scale is set by the clipped quantities, like Adam's by its
gradients.

## Matrices only: AdamW for everything else

By default the official optimizer applies MARS only to two-dimensional parameters (the matrices of
linear layers and embeddings). Every other parameter, a bias, a norm's gain, but also a 0-d scalar
and a 4-d convolution kernel, gets plain AdamW with its own settings: `betas_1d`, `weight_decay_1d`
and a learning rate $\eta \cdot$ `lr_1d`/`lr` (so a scheduler that changes $\eta$ changes both).
`optimize_1d=True` applies MARS to every parameter with the main settings.

## Where the official code differs from its own description

* The repository's README writes the second moment of the *raw* gradient,
  $v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2$; the code (and this class) averages $\tilde c_t^{\,2}$.
* The README says the AdamW fallback is for one-dimensional parameters; the code's test is
  "not exactly two-dimensional", so 0-d and 4-d tensors fall back too (as here).
* `weight_decay_1d` (default $0.1$) applies to the fallback parameters even when `weight_decay` is
  $0$: MARS with its defaults decays every bias and norm gain.
* At the first step the code's previous gradient is zero, so $c_1 = (1 + 19\gamma)\,g_1$, not $g_1$.
* The code keeps `gamma`, `eps`, `optimize_1d`, `betas_1d` and `weight_decay_1d` once for the whole
  optimizer; here they are group options, like `lr`.
* The code stores the gradient tensor itself as the previous gradient. After
  `zero_grad(set_to_none=False)` the next backward pass accumulates into that same tensor, so the
  "previous" gradient is the current one and the correction silently vanishes; this class copies.

## Memory and compute

Three tensors per parameter: $m$, $v$ and $g_{t-1}$ (`last_grad`), 12 bytes per `float32` parameter,
and one norm per tensor per step (a reduction, computed without a host synchronisation).
"""

from typing import Any

import torch

from .adamw import AdamW
from .core.base import ParamsT, check_learning_rate
from .core.distributed import full
from .core.validation import check_betas, check_non_negative
from .core.weight_decay import WeightDecay


class MARS(AdamW):
    r"""
    ## Hyper-parameters

    The defaults and names are those of the official code (`AGI-Arena/MARS`, `mars_type="mars-adamw"`).

    * `lr` is $\eta$ (default $3\times10^{-3}$). The authors' GPT-2 runs use $2$-$6\times10^{-3}$,
      ten times their AdamW learning rates, with `lr_1d` half of `lr` and `weight_decay` $10^{-2}$.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.95, 0.99)$); $\beta_1$ also sets the correction's
      factor $\beta_1/(1-\beta_1)$.
    * `gamma` is $\gamma$ (default $0.025$), the strength of the correction; $0$ gives AdamW on
      clipped gradients.
    * `weight_decay` is $\lambda$, decoupled (default $0$).
    * `amsgrad` keeps the running maximum of $v_t$, as in [AMSGrad](amsgrad.md).
    * `optimize_1d` (default `False`) applies MARS to every parameter, not only to matrices.
    * `lr_1d`, `betas_1d`, `weight_decay_1d` (defaults $3\times10^{-3}$, $(0.9, 0.95)$, $0.1$)
      configure the AdamW fallback for parameters that are not matrices; `lr_1d` is kept as its ratio
      to `lr` (the group option `lr_1d_factor`).
    * `eps` is $\epsilon$ (default $10^{-8}$); `maximize` ascends the objective instead.
    """

    derived_options = ("lr_1d_factor",)

    def __init__(self, params: ParamsT, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.99),
                 eps: float = 1e-8, weight_decay: float | WeightDecay = 0.0, amsgrad: bool = False,
                 gamma: float = 0.025, optimize_1d: bool = False, lr_1d: float = 3e-3,
                 betas_1d: tuple[float, float] = (0.9, 0.95), weight_decay_1d: float = 0.1, *,
                 maximize: bool = False, foreach: bool | None = None, fused: bool | None = None) -> None:
        r"""
        The fallback's learning rate is stored as the ratio `lr_1d / lr`, as the official code keeps
        it, so that it follows the main one under a scheduler and in groups with their own `lr`.
        """
        check_learning_rate(lr)
        check_non_negative("lr_1d", lr_1d)
        if float(lr) == 0:
            raise ValueError(f"Invalid lr: {lr} (MARS keeps lr_1d as a ratio to it, so it must be > 0)")
        check_non_negative("gamma", gamma)
        check_non_negative("weight_decay_1d", weight_decay_1d)
        check_betas(betas_1d, name="betas_1d")
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach, fused=fused,
                         gamma=gamma, optimize_1d=optimize_1d, lr_1d_factor=lr_1d / float(lr), betas_1d=tuple(betas_1d),
                         weight_decay_1d=weight_decay_1d)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""AdamW's state and the previous gradient, $g_0 = 0$ as in the official code."""
        super().init_state(state, group, param)
        state["last_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One MARS step

        A matrix (or any parameter, with `optimize_1d`) takes an AdamW step on $\tilde c_t$; any other
        parameter an AdamW step on $g_t$ with the fallback's settings. Either way $g_t$ is kept for
        the next step.
        """
        if param.ndim == 2 or group["optimize_1d"]:
            super().step_param(state, group, self.corrected_gradient(state, group, grad), param)
        else:
            super().step_param(state, self.fallback_settings(group), grad, param)
        state["last_grad"].copy_(grad)

    def corrected_gradient(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The scaled, clipped correction

        A new tensor: `grad` is the caller's and `last_grad` is still needed.
        """
        beta1 = group["betas"][0]
        # $$c_t = g_t + \gamma\,\frac{\beta_1}{1-\beta_1}\,(g_t - g_{t-1})$$
        corrected = torch.sub(grad, state["last_grad"]).mul_(group["gamma"] * (beta1 / (1 - beta1))).add_(grad)
        # Dividing by $\max(1, \lVert c_t\rVert)$ is the clipping without a branch on a tensor's value
        # (no host synchronisation); below the threshold it divides by exactly one. The norm is of the
        # whole matrix: under FSDP2, `full` completes the norm of this process's rows.
        # $$\tilde c_t = c_t / \max(1, \lVert c_t\rVert)$$
        return corrected.div_(full(torch.linalg.vector_norm(corrected)).clamp_(min=1))

    @staticmethod
    def fallback_settings(group: dict[str, Any]) -> dict[str, Any]:
        r"""The group as AdamW sees it for a parameter that is not a matrix: the `_1d` settings."""
        # A tensor learning rate is read as a number, as `learning_rate` reads it (`.item()`, which the
        # [fast path](core/fastpath.md) keeps a tensor).
        lr = group["lr"].item() if isinstance(group["lr"], torch.Tensor) else group["lr"]
        return {**group, "lr": lr * group["lr_1d_factor"], "betas": group["betas_1d"],
                "weight_decay": group["weight_decay_1d"]}
