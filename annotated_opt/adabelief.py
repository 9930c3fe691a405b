r"""
# AdaBelief: adapting the step to the belief in the gradient

[Zhuang et al., 2020](https://arxiv.org/abs/2010.07468) change one quantity in [Adam](adam.md).
Adam divides the momentum $m_t$ by the root of $v_t$, the moving average of $g_t^2$. AdaBelief
divides by the root of $s_t$, the moving average of $(g_t - m_t)^2$: how far the gradient is from
what the momentum *predicted*, the optimizer's "belief" in its own forecast.

$$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t \qquad
  \textcolor{orange}{s_t = \beta_2 s_{t-1} + (1-\beta_2)\,(g_t - m_t)^2 + \epsilon}$$

$$\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\textcolor{orange}{\hat s_t}} + \epsilon}
  \qquad \hat s_t = \frac{s_t}{1 - \beta_2^t}.$$

Where the gradient is large but steady (a steep, straight slope), $v_t$ is large and Adam creeps,
while $s_t$ is small and AdaBelief takes a large step. Where the gradient is small but jumps about
(a noisy, flat region), $v_t$ is small and Adam takes large steps; $s_t$ is large, and AdaBelief is
careful. $s_t$ is a variance, so AdaBelief behaves more like SGD with momentum where the curvature is
benign, and more like Adam where it is not.

```algorithm
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t  @ exp_avg.lerp_(grad, 1 - beta1)
\textcolor{orange}{s_t = \beta_2 s_{t-1} + (1 - \beta_2)\, (g_t - m_t)^2}
    @ exp_avg_var.mul_(beta2).addcmul_(residual, residual, value=1 - beta2)
\textcolor{orange}{s_t \leftarrow s_t + \epsilon}  @ exp_avg_var.add_(group["eps"])
\theta_t = \theta_{t-1} - \eta\, r_t\, \hat m_t / (\sqrt{\hat s_t} + \epsilon) \quad \text{(rectified as in RAdam)}
    @ super().adam_update(state, group, param, exp_avg, exp_avg_sq)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $m_t$ | `exp_avg` | the first moment |
| $s_t$ | `exp_avg_var` | the belief: the moving average of $(g_t - m_t)^2$ |
| $s^{\max}_t$ | `max_exp_avg_var` | its running maximum (`amsgrad`) |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
| $\epsilon$ | `eps` | added to $s_t$ every step, and to the denominator |
| $\lambda$ | `weight_decay` | the weight decay |

## As published: the official package

The default of this class is the official package, `adabelief-pytorch` 0.2.1, to the last detail
(the tests compare every flag combination with it, step by step, in `float64`):

* **$\epsilon$ twice, once in place.** $\epsilon$ is added to $s_t$ inside the square root *and*
  again outside it. The inner one is added *to the state*, so it accumulates: the $s_t$ carried to
  the next step already contains it (the paper's Algorithm 2 writes it the same way, and the author
  confirms this is intended). After $t$ steps the state holds $\epsilon(1-\beta_2^t)/(1-\beta_2)$
  of accumulated $\epsilon$, so the bias-corrected $\hat s_t$ never falls below $\epsilon/(1-\beta_2)$
  and the denominator never below $\sqrt{\epsilon/(1-\beta_2)}$: $3\times 10^{-7}$ for the default
  $\epsilon = 10^{-16}$ and $\beta_2 = 0.999$. The package's README advises an $\epsilon$ about the
  *square* of Adam's, $10^{-16}$ where Adam works better than SGD (transformers, GANs) and $10^{-8}$
  where SGD does (CNNs on images), reasoning that $\epsilon$ sits inside the root; because it also
  accumulates, the floor is $1/\sqrt{1-\beta_2} \approx 32$ times higher than that reasoning says.
* **Rectification on by default**, exactly as [RAdam](radam.md) with the official threshold
  $\rho_t \ge 5$, falling back to SGD with momentum in the first steps (`degenerated_to_sgd`). In
  the rectified steps $\epsilon$ is added to $\sqrt{s_t}$, not to $\sqrt{\hat s_t}$, as in RAdam.
* **Decoupled weight decay on by default** (`weight_decouple`), with the learning rate
  ($\theta \leftarrow (1-\eta\lambda)\theta$) or without it (`fixed_decay`:
  $\theta \leftarrow (1-\lambda)\theta$). Decay comes first, before the moments, and is applied on
  every step, even the first ones that `degenerated_to_sgd=False` leaves without an update.
* **`amsgrad` keeps the maximum of $s_t$, but with `rectify=True` never uses it:** the rectified
  branch recomputes its denominator from $s_t$ itself, and the SGD branch has none. AMSGrad only
  changes the steps when `rectify=False`.
* The official L2 mode adds $\lambda\theta$ to `param.grad` itself; we add it to a copy.

## The textbook form

`textbook=True` gives the algorithm as one would write it from the idea: Adam with $v_t$ replaced
by $s_t$, and $\epsilon$ entering once, in the denominator, where Adam puts it.

$$s_t = \beta_2 s_{t-1} + (1-\beta_2)\,(g_t - m_t)^2 \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat s_t} + \epsilon}$$

(and with `amsgrad`, the maximum of $s_t$ is used in the rectified steps too). Its default
$\epsilon$ is Adam's, $10^{-8}$: there is no accumulated floor, so with $10^{-16}$ a perfectly steady
gradient would get a step of $10^{16}$. The two forms differ most exactly there, on coordinates
whose gradient barely changes.

## Versions

The defaults changed under users' feet, which is why the package prints a table on construction:

* **0.0.5**: $\epsilon = 10^{-8}$, no decoupled decay, no rectification. Its rectification (off by
  default) used the paper's $\rho_t > 4$ and an SGD fallback without bias correction.
* **0.1.0**: $\epsilon = 10^{-16}$, `weight_decouple` and `rectify` on, RAdam's official rectified
  step with `degenerated_to_sgd`. As first released it added the L2 term to the gradient only after
  the moments had been computed, so coupled decay had no effect (the labml.ai authors reported it);
  with `amsgrad` it added $\epsilon$ to the maximum rather than to $s_t$.
* **0.2.0**: decay before the moments, $\epsilon$ into $s_t$ before the maximum, and
  `print_change_log=False` to silence the table (this class accepts that argument and prints
  nothing).
* **0.2.1**: half-precision parameters are updated in `float32`; the arithmetic is that of 0.2.0.

Another implementation worth knowing about: labml.ai's annotated AdaBelief passes its arguments to
its RAdam parent in the wrong order, so AMSGrad is on and the SGD fallback off, and its first steps
do nothing. A test here pins our argument order down.

## In the family tree

AdaBelief extends [RAdam](radam.md) (which extends [AMSGrad](amsgrad.md)) and overrides what
differs: the state's names (`exp_avg_var`, as in the official package),
`update_moments` for $s_t$, `second_moment` for the in-place $\epsilon$ and the maximum, and
`adam_update` to choose between the rectified step and Adam's.
"""

from typing import Any

import torch

from .adam import Adam
from .core.base import ParamsT
from .core.scalars import new_step_count
from .core.weight_decay import WeightDecay
from .radam import RAdam


class AdaBelief(RAdam):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `adabelief_pytorch.AdaBelief` 0.2.1:

    * `lr` is $\eta$ (default $10^{-3}$).
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$).
    * `eps` is $\epsilon$: $10^{-16}$ by default, $10^{-8}$ by default with `textbook=True`. Use
      $10^{-8}$ (or larger) where SGD beats Adam, $10^{-16}$ where Adam beats SGD.
    * `weight_decay` is $\lambda$; `weight_decouple` (default `True`) makes it decoupled, and
      `fixed_decay` drops the learning rate from the decoupled factor.
    * `amsgrad` keeps the running maximum of $s_t$ (used only without rectification in the official
      form, see above).
    * `rectify` (default `True`) uses RAdam's rectified step; `degenerated_to_sgd` (default `True`)
      takes SGD steps until the rectification applies, `False` skips them.
    * `rectify_threshold`: the official $\rho_t \ge 5$ by default; see [RAdam](radam.md).
    * `textbook=True` gives the clean form described above.
    * `print_change_log` is accepted so that this class can replace the official one; nothing is
      printed.
    """

    # Without a torch twin to follow, it takes every flag Adam takes: `fused=True` or `foreach=True`
    # selects the [fast path](core/fastpath.md).
    torch_flags = ("foreach", "capturable", "differentiable", "fused")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float | WeightDecay = 0.0,
        amsgrad: bool = False,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        rectify: bool = True,
        degenerated_to_sgd: bool = True,
        print_change_log: bool = False,
        *,
        textbook: bool = False,
        rectify_threshold: str | float = "official",
        **kwargs: Any,
    ) -> None:
        if eps is None:
            eps = 1e-8 if textbook else 1e-16
        if not isinstance(weight_decay, WeightDecay):
            weight_decay = WeightDecay(weight_decay, weight_decouple=weight_decouple, absolute=fixed_decay)
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad=amsgrad,
                         degenerated_to_sgd=degenerated_to_sgd, rectify_threshold=rectify_threshold,
                         rectify=rectify, textbook=textbook, **kwargs)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The step count, $m_0 = 0$, $\textcolor{orange}{s_0 = 0}$ and, with `amsgrad`,
        $\textcolor{orange}{s^{\max}_0 = 0}$, under the official package's names.
        """
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_var"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["amsgrad"]:
            state["max_exp_avg_var"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def update_moments(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The moments: the momentum and the belief
        """
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_var = state["exp_avg"], state["exp_avg_var"]
        # $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t$$
        exp_avg.lerp_(grad, 1 - beta1)
        # How far the gradient is from the prediction: the *updated* momentum, $g_t - m_t$
        residual = grad - exp_avg
        # $$\textcolor{orange}{s_t = \beta_2 s_{t-1} + (1 - \beta_2)\,(g_t - m_t)^2}$$
        exp_avg_var.mul_(beta2).addcmul_(residual, residual, value=1 - beta2)
        return exp_avg

    def second_moment(self, state: dict[str, Any], group: dict[str, Any]) -> torch.Tensor:
        r"""
        ### The quantity under the square root
        """
        exp_avg_var = state["exp_avg_var"]
        if not group["textbook"]:
            # The official package adds $\epsilon$ to the state itself, so it accumulates:
            # $$\textcolor{orange}{s_t \leftarrow s_t + \epsilon}$$
            exp_avg_var.add_(group["eps"])
        if not group["amsgrad"]:
            return exp_avg_var
        # $$s^{\max}_t = \max\left(s^{\max}_{t-1},\, s_t\right)$$
        max_exp_avg_var = state["max_exp_avg_var"]
        torch.maximum(max_exp_avg_var, exp_avg_var, out=max_exp_avg_var)
        if group["rectify"] and not group["textbook"]:
            # The official rectified step reads $s_t$, not its maximum (and the SGD step reads
            # neither): with rectification the maximum is kept but never used.
            return exp_avg_var
        return max_exp_avg_var

    def adam_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The update: rectified, or Adam's

        With `rectify`, [RAdam](radam.md)'s step (the rectified Adam step, or SGD in the first steps);
        without it, [Adam](adam.md)'s step with $s_t$ in place of $v_t$,
        $$\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat s_t} + \epsilon}.$$
        """
        if group["rectify"]:
            super().adam_update(state, group, param, exp_avg, exp_avg_sq)
        else:
            Adam.adam_update(self, state, group, param, exp_avg, exp_avg_sq)
