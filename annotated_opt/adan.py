r"""
# Adan: adaptive Nesterov momentum from gradient differences

[Xie et al., 2022](https://arxiv.org/abs/2208.06677) (TPAMI 2024) want Nesterov's look-ahead without
evaluating the gradient at a look-ahead point. Nesterov momentum takes the gradient at
$\theta - \eta\beta m$; a first-order Taylor step turns that gradient into the present one plus a
multiple of how the gradient is changing, $g_k + \beta\,(g_k - g_{k-1})$, which costs nothing to
compute. Adan feeds this corrected gradient into an [Adam](adam.md)-like step, and keeps a third
moving average, of the differences $d_k = g_k - g_{k-1}$:

$$\begin{aligned}
d_k &= g_k - g_{k-1} \qquad (d_1 = 0) \\
m_k &= \beta_1 m_{k-1} + (1-\beta_1)\, g_k \\
\textcolor{orange}{\delta_k} &\textcolor{orange}{= \beta_2 \delta_{k-1} + (1-\beta_2)\, d_k} \\
n_k &= \beta_3 n_{k-1} + (1-\beta_3)\,\big(\textcolor{orange}{g_k + \beta_2 d_k}\big)^2 \\
\theta_k &= \frac{1}{1+\eta\lambda}\left(\theta_{k-1} - \eta\,
  \frac{\hat m_k + \textcolor{orange}{\beta_2 \hat\delta_k}}{\sqrt{\hat n_k} + \epsilon}\right)
\end{aligned}$$

with each average bias-corrected as in Adam, $\hat m_k = m_k/(1-\beta_1^k)$,
$\hat\delta_k = \delta_k/(1-\beta_2^k)$, $\hat n_k = n_k/(1-\beta_3^k)$. The numerator
$\hat m_k + \beta_2\hat\delta_k$ is the moving average of the corrected gradient $g_k + \beta_2 d_k$,
split in two; the denominator is the root of the average of its square. In orange what Adam does
not have.

```algorithm
\textcolor{orange}{d_k = g_k - g_{k-1}}  @ difference = fill_if(scratch.add_(grad), state["step"] == 1, 0)
m_k = \beta_1 m_{k-1} + (1-\beta_1)\, g_k  @ exp_avg.lerp_(grad, 1 - beta1)
\textcolor{orange}{\delta_k = \beta_2 \delta_{k-1} + (1-\beta_2)\, d_k}  @ exp_avg_diff.lerp_(difference, 1 - beta2)
n_k = \beta_3 n_{k-1} + (1-\beta_3)\,\big(\textcolor{orange}{g_k + \beta_2 d_k}\big)^2
    @ exp_avg_sq.mul_(beta3).addcmul_(corrected, corrected, value=1 - beta3)
\theta \leftarrow \theta_{k-1} - \eta\,\frac{\hat m_k}{\sqrt{\hat n_k} + \epsilon}
    @ param.addcdiv_(state["exp_avg"], denominator, value=-lr / (1 - beta1**step))
\textcolor{orange}{\theta \leftarrow \theta - \eta\,\frac{\beta_2\,\hat\delta_k}{\sqrt{\hat n_k} + \epsilon}}
    @ param.addcdiv_(state["exp_avg_diff"], denominator, value=-lr * beta2 / (1 - beta2**step))
\textcolor{orange}{\theta_k = \theta / (1 + \eta\lambda)}
    @ param.div_(1 + learning_rate(group, param) * param_option(group, param, "weight_decay"))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_k$ | `grad` | the gradient ($\tilde g_k = g_k + \beta_2 d_k$: `corrected`; $-g_{k-1}$: `neg_pre_grad`) |
| $d_k$ | `difference` | the difference of successive gradients |
| $m_k$ | `exp_avg` | the first moment |
| $\delta_k$ | `exp_avg_diff` | the moving average of the differences |
| $n_k$ | `exp_avg_sq` | the second moment, of the corrected gradient |
| $\beta_1, \beta_2, \beta_3$ | `beta1`, `beta2`, `beta3` | the decay rates (the code's convention) |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay, proximal |
| $k$ | `step` | the step count |

## Which beta is which: the paper and the code disagree

The paper writes every average the other way round, weighting the *new* term by $\beta$:
$m_k = (1-\beta_1)\,m_{k-1} + \beta_1 g_k$, with $\beta_1 = 0.02$, $\beta_2 = 0.08$, $\beta_3 = 0.01$.
The official code (and this class) weights the *old* term by $\beta$, as torch's Adam does, and its
defaults are one minus the paper's: `betas=(0.98, 0.92, 0.99)`. So

| | paper | code (`betas`) |
|---|---|---|
| first moment $m$ | $\beta_1 = 0.02$ | $0.98$ |
| difference average $\delta$ | $\beta_2 = 0.08$ | $0.92$ |
| second moment $n$ | $\beta_3 = 0.01$ | $0.99$ |
| weight of $d_k$ in the corrected gradient and the update | $1-\beta_2 = 0.92$ | $\beta_2 = 0.92$ |

Porting a configuration from the paper means converting each $\beta$ to $1-\beta$.

The paper and the code differ in three more places:

* **Bias correction.** The paper's Algorithm 1 does not divide its averages by $1-\beta^k$; the
  code starts every average at zero and does, as Adam does (above).
* **The first difference.** The code has no $g_0$; at the first step it takes $g_0 = g_1$, so
  $d_1 = 0$, and $1-\beta_2^1$ still counts that zero as a sample of $\delta$.
* **The step count** is kept per parameter group in the code, per parameter here; they differ only
  for a parameter that misses gradients on some steps (here its corrections do not advance then).

The official optimizer can also clip the global gradient norm (`max_grad_norm`); that is
`torch.nn.utils.clip_grad_norm_` before the step, so it is not repeated here. (The official
version writes the clipped gradient back into `.grad`, and divides by the norm plus the last
group's $\epsilon$.)

## Weight decay: proximal

The decay is applied after the step, as a division: $\theta_k = (\theta_{k-1} - \eta u_k)/(1+\eta\lambda)$,
the proximal step for $\frac{\lambda}{2}\lVert\theta\rVert^2$. To first order in $\eta\lambda$ this is
[AdamW](adamw.md)'s $(1-\eta\lambda)$, applied to the updated point instead of the old one.
`no_prox=True` gives AdamW's form, as in the official code.

## Memory and compute

Four tensors per parameter: $m$, $\delta$, $n$ and the previous gradient (stored negated, under the
official code's name `neg_pre_grad`, so that adding $g_k$ to it in place gives $d_k$): 16 bytes per
`float32` parameter, twice Adam's. The update costs about two Adam steps of memory traffic.
"""

from typing import Any

import torch

from .adam import Adam
from .core.base import ParamsT
from .core.options import learning_rate, param_option
from .core.scalars import advance, fill_if
from .core.weight_decay import WeightDecay


class Adan(Adam):
    r"""
    ## Hyper-parameters

    The defaults and names are those of the official code (`sail-sg/Adan`), in its convention for
    `betas` (one minus the paper's; see above).

    * `lr` is $\eta$ (default $10^{-3}$). The authors' README reports peak learning rates 5-10
      times those of Adam/AdamW in most of their experiments (not for MAE pre-training or LSTMs).
    * `betas` are $(\beta_1, \beta_2, \beta_3)$ (default $(0.98, 0.92, 0.99)$): memories of 50, 12.5
      and 100 steps for $m$, $\delta$ and $n$. The authors report Adan robust to them, to $\beta_2$
      most; to tune, they suggest $\beta_3$ first, then $\beta_1$.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to $\sqrt{\hat n_k}$.
    * `weight_decay` is $\lambda$ (default $0$; the authors use $0.02$ for ViTs), proximal unless
      `no_prox=True`.
    * `maximize` ascends the objective instead.
    """

    beta_count = 3

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
                 eps: float = 1e-8, weight_decay: float | WeightDecay = 0.0, no_prox: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, fused: bool | None = None) -> None:
        r"""
        Adam's constructor checks the three betas and keeps the decay as a decoupled
        [`WeightDecay`](core/weight_decay.md), which `no_prox=True` applies before the step.
        """
        super().__init__(params, lr, betas, eps, weight_decay, maximize=maximize, foreach=foreach, fused=fused,
                         decoupled_weight_decay=True, no_prox=no_prox)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        Adam's $t$, $m_0 = 0$ and $n_0 = 0$ (`exp_avg_sq`), and $\delta_0 = 0$ (`exp_avg_diff`) and the
        negated previous gradient (`neg_pre_grad`), filled at the first step.
        """
        super().init_state(state, group, param)
        state["exp_avg_diff"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["neg_pre_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adan step

        Adam's order, with the decay at one end or the other: AdamW's before the step
        (`no_prox=True`), or the proximal division after it.
        """
        if group["no_prox"]:
            grad = self.weight_decay(param, grad, group)
        advance(state)
        self.update_moments(state, group, grad)
        self.adan_update(state, group, param)
        if not group["no_prox"]:
            # $$\theta_k \leftarrow \theta_k / (1 + \eta\lambda)$$
            param.div_(1 + learning_rate(group, param) * param_option(group, param, "weight_decay"))

    def update_moments(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The three averages

        One buffer, `neg_pre_grad`, holds $-g_{k-1}$ between steps, and serves as the scratch space
        for $d_k$ and $g_k + \beta_2 d_k$ during the step: no temporary the size of the parameter.
        """
        beta1, beta2, beta3 = group["betas"]
        exp_avg, exp_avg_diff, exp_avg_sq = state["exp_avg"], state["exp_avg_diff"], state["exp_avg_sq"]
        scratch = state["neg_pre_grad"]
        # $$d_k = g_k - g_{k-1}$$
        # At the first step there is no previous gradient: take $g_0 = g_1$, so that $d_1 = 0$. The first
        # step is picked by `fill_if`, not by an `if` on the count: an `if` on a tensor's value would
        # cut the [compiled step](core/fastpath.md) in two ([scalars](core/scalars.md) says how it chooses).
        difference = fill_if(scratch.add_(grad), state["step"] == 1, 0)
        # $$m_k = \beta_1 m_{k-1} + (1-\beta_1)\, g_k$$
        exp_avg.lerp_(grad, 1 - beta1)
        # $$\delta_k = \beta_2 \delta_{k-1} + (1-\beta_2)\, d_k$$
        exp_avg_diff.lerp_(difference, 1 - beta2)
        # The Nesterov-corrected gradient, in the same buffer:
        # $$\tilde g_k = g_k + \beta_2 d_k$$
        corrected = difference.mul_(beta2).add_(grad)
        # $$n_k = \beta_3 n_{k-1} + (1-\beta_3)\, \tilde g_k^2$$
        exp_avg_sq.mul_(beta3).addcmul_(corrected, corrected, value=1 - beta3)
        # Keep $-g_k$ for the next step.
        torch.neg(grad, out=scratch)
        return exp_avg

    def adan_update(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        ### The step

        Two fused passes over the same denominator, one per term of the numerator; the bias
        corrections are Python numbers, as in Adam.
        """
        beta1, beta2, beta3 = group["betas"]
        step = state["step"].item()
        lr = learning_rate(group, param)
        # $$\sqrt{\hat n_k} + \epsilon = \sqrt{n_k}/\sqrt{1-\beta_3^k} + \epsilon$$
        denominator = (state["exp_avg_sq"].sqrt() / (1 - beta3**step) ** 0.5).add_(group["eps"])
        # $$\theta_k = \theta_{k-1} - \eta\,\frac{\hat m_k}{\sqrt{\hat n_k} + \epsilon}
        #   - \eta\beta_2\,\frac{\hat \delta_k}{\sqrt{\hat n_k} + \epsilon}$$
        param.addcdiv_(state["exp_avg"], denominator, value=-lr / (1 - beta1**step))
        param.addcdiv_(state["exp_avg_diff"], denominator, value=-lr * beta2 / (1 - beta2**step))
