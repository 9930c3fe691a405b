r"""
# LAMB: layer-wise adaptive moments for large batches

[You et al., 2020](https://arxiv.org/abs/1904.00962) trained BERT in 76 minutes with batches of 32k
to 64k sequences. They did for [Adam](adam.md) what [LARS](lars.md) did for SGD: keep Adam's
per-coordinate direction, but rescale each layer's step so that it is proportional to the layer's own
norm. With $r_t$ the Adam direction and $\lambda$ the weight decay,

$$r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} \qquad
  \textcolor{orange}{u_t = r_t + \lambda\, w_{t-1}} \qquad
  \textcolor{orange}{w_t = w_{t-1} - \eta\,\frac{\phi(\lVert w_{t-1}\rVert)}{\lVert u_t\rVert}\, u_t},$$

per layer (per parameter tensor). The moments $m_t, v_t$ and their bias corrections are Adam's, and
this class inherits them (`update_moments`); only the final update (`adam_update`) changes. The
step of a layer has norm $\eta\,\phi(\lVert w\rVert)$ whatever the scale of its gradient or of
Adam's direction: the *trust ratio* $\phi(\lVert w\rVert)/\lVert u\rVert$ replaces Adam's own step
size. Weight decay sits inside $u_t$, so it is scaled by the trust ratio too (this differs from both
[Adam](adam.md)'s L2 and [AdamW](adamw.md)'s decoupled decay). As in LARS, the ratio is 1 when
$\lVert w\rVert = 0$ or $\lVert u\rVert = 0$: a zero-initialised layer moves like Adam.

```algorithm
m_t, v_t \ \text{as in Adam}  @ exp_avg = self.update_moments(state, group, grad)
r_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon)  @ direction = (exp_avg / bias_correction1)
\textcolor{orange}{u_t = r_t + \lambda\, w_{t-1}}  @ direction.add_(param, alpha=decay)
\textcolor{orange}{w_t = w_{t-1} - \eta\, \frac{\phi(\lVert w_{t-1}\rVert)}{\lVert u_t\rVert}\, u_t}
    @ param.add_(direction.mul_(ratio), alpha=-learning_rate(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $w$ | `param` | the layer's weights |
| $m_t$ | `exp_avg` | the first moment |
| $v_t$ | `exp_avg_sq` | the second moment |
| $r_t$, $u_t$ | `direction` | the Adam direction, then with the decay added |
| $\phi$ | `clipped_norm` | the weight norm, clipped to `weight_norm_bounds` |
| $\lambda$ | `decay` | the weight decay |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |

## The variants

The paper's versions and the well-known implementations differ; each difference is an option here.

* **Bias correction.** The final paper (Algorithm 2) corrects both moments, as Adam does; its third
  arXiv version had none, and the widely copied `cybertronai/pytorch-lamb` (and `jxbz/nero`'s copy of
  it) follows that one. A constant factor on $r_t$ cancels in the trust ratio except against
  $\lambda w$ and $\epsilon$, so the corrections matter mostly in the first steps: they change the
  balance of $r_t$ against the decay and of $\sqrt{v_t}$ against $\epsilon$.
  `bias_correction` (default `True`).
* **The clip $\phi$.** The paper allows $\phi(z) = \min(\max(z, \gamma_l), \gamma_u)$ and leaves the
  bounds open; `pytorch-lamb` and pytorch_optimizer clamp $\lVert w\rVert$ to $[0, 10]$.
  `weight_norm_bounds` $(\gamma_l, \gamma_u)$ (default $(0, \infty)$: $\phi$ is the identity).
* **Clipping the ratio.** LAMBC (timm's `trust_clip`) caps the whole trust ratio at 1, so LAMB never
  steps further than Adam would. `trust_clip` (default `False`).
* **An $\epsilon$ in the ratio.** pytorch_optimizer divides by $\lVert u\rVert + \epsilon$.
  `trust_eps` (default $0$).
* **What is adapted.** NVIDIA's apex FusedLAMB and timm apply the ratio only to parameters whose
  weight decay is non-zero (biases and norms usually have none) and use Adam's step for the rest.
  `always_adapt` (default `True`, the paper); `False` gives that convention.
* **Where the decay goes.** A number for `weight_decay` is the paper's $u_t = r_t + \lambda w$. A
  [`WeightDecay`](weight_decay.md) object, or `decoupled_weight_decay=True`, applies decay outside the
  ratio instead, before the moments: decoupled $w \leftarrow (1 - \eta\lambda) w$ is pytorch_optimizer's
  default (`weight_decouple=True`), L2 is apex's `adam_w_mode=False`.
* **A global gradient pre-normalisation.** apex and timm first divide all gradients by
  $\max(1, \lVert g\rVert_{\text{global}}/\text{max\_grad\_norm})$ (NVLAMB). That is what
  `torch.nn.utils.clip_grad_norm_` does before the step (up to its $10^{-6}$), so it is left to the
  training loop rather than repeated here.

Two further quirks of pytorch_optimizer's `Lamb`, which the tests show: its default divides the step
size by $1-\beta_1^t$ outside the trust ratio, where it does not cancel, so its first steps are up to
ten times longer (the same as ours without bias correction and with a learning rate multiplied by
$1/(1-\beta_1^t)$); and its step count is per group, not per parameter. Its
`adam_debias=True` switches the first off, and that is the configuration it is verified against.
"""

import math
from typing import Any

import torch

from .adam import Adam
from .core.base import ParamsT
from .core.distributed import full
from .core.options import learning_rate, param_option
from .core.scalars import advance
from .core.validation import check_non_negative
from .core.weight_decay import WeightDecay


class LAMB(Adam):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (default $10^{-3}$); the step of an adapted layer has norm
      $\eta\,\phi(\lVert w\rVert)$, so $\eta$ is a relative step size.
    * `betas`, `eps` as in [Adam](adam.md); `eps` defaults to $10^{-6}$ as in the paper.
    * `weight_decay` is $\lambda$ (default 0); the paper uses $0.01$ for BERT.
    * `bias_correction`, `weight_norm_bounds`, `trust_clip`, `trust_eps`, `always_adapt`,
      `decoupled_weight_decay`: the variants above.

    The trust ratio, $\phi(\lVert w\rVert)$ and $\lVert u\rVert$ of the last step are kept in the state
    (`trust_ratio`, `weight_norm`, `adam_norm`, the names `pytorch-lamb` uses) for inspection.
    """

    derived_options = ("decay_in_update",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float | WeightDecay = 0.0,
        *,
        bias_correction: bool = True,
        weight_norm_bounds: tuple[float, float] = (0.0, math.inf),
        trust_clip: bool = False,
        trust_eps: float = 0.0,
        always_adapt: bool = True,
        decoupled_weight_decay: bool = False,
        maximize: bool = False, foreach: bool | None = None, fused: bool | None = None,
    ) -> None:
        lower, upper = (float(bound) for bound in weight_norm_bounds)
        if not 0.0 <= lower <= upper:
            raise ValueError(f"Invalid weight_norm_bounds: {weight_norm_bounds} (need 0 <= lower <= upper)")
        check_non_negative("trust_eps", trust_eps)
        # The paper's decay, inside $u_t$, unless a mode was asked for explicitly.
        decay_in_update = not isinstance(weight_decay, WeightDecay) and not decoupled_weight_decay
        super().__init__(
            params, lr, betas, eps, weight_decay,
            maximize=maximize, foreach=foreach, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
            bias_correction=bias_correction,
            weight_norm_bounds=(lower, upper),
            trust_clip=trust_clip,
            trust_eps=trust_eps,
            always_adapt=always_adapt,
            decay_in_update=decay_in_update,
        )

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One LAMB step

        Adam's sequence. The only change: with the paper's decay, nothing is done to the gradient
        here, since $\lambda w$ joins the update later, inside the trust ratio.
        """
        if not group["decay_in_update"]:
            grad = self.weight_decay(param, grad, group)
        advance(state)
        exp_avg = self.update_moments(state, group, grad)
        self.adam_update(state, group, param, exp_avg, self.second_moment(state, group))

    def adam_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The layer-wise update
        """
        beta1, beta2 = group["betas"]
        step, eps = state["step"].item(), group["eps"]
        if group["bias_correction"]:
            # $$r_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}$$
            bias_correction1 = 1 - beta1**step
            # (`** 0.5`, as Adam takes the root: `math.sqrt` would read the fast path's tensor step back.)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            direction = (exp_avg / bias_correction1).div_(exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps))
        else:
            # $$r_t = \frac{m_t}{\sqrt{v_t} + \epsilon}$$
            direction = exp_avg / exp_avg_sq.sqrt().add_(eps)

        decay = param_option(group, param, "weight_decay")
        if group["decay_in_update"] and decay != 0:
            # $$\textcolor{orange}{u_t = r_t + \lambda\, w_{t-1}}$$
            direction.add_(param, alpha=decay)

        # Under FSDP2 `param` is one process's shard: `full` makes each norm the whole layer's, the same
        # on every process, before it is used or kept in the state.
        weight_norm = full(torch.linalg.vector_norm(param))
        update_norm = full(torch.linalg.vector_norm(direction))
        lower, upper = group["weight_norm_bounds"]
        # $$\phi(\lVert w\rVert) = \min(\max(\lVert w\rVert, \gamma_l), \gamma_u)$$
        clipped_norm = weight_norm.clamp(lower, upper)
        # $$\textcolor{orange}{\text{ratio} = \frac{\phi(\lVert w\rVert)}{\lVert u_t\rVert + \epsilon_{\text{trust}}}}$$
        # and 1 when either norm is zero.
        ratio = clipped_norm / (update_norm + group["trust_eps"])
        ratio = torch.where((weight_norm > 0) & (update_norm > 0), ratio, torch.ones_like(ratio))
        if group["trust_clip"]:
            # LAMBC: never further than Adam's own step.
            ratio = ratio.clamp(max=1.0)
        if not (group["always_adapt"] or decay != 0):
            # apex and timm leave undecayed parameters with Adam's step.
            ratio = torch.ones_like(ratio)
        state["weight_norm"], state["adam_norm"], state["trust_ratio"] = clipped_norm, update_norm, ratio

        # $$\textcolor{orange}{w_t = w_{t-1} - \eta\cdot\text{ratio}\cdot u_t}$$
        param.add_(direction.mul_(ratio), alpha=-learning_rate(group, param))
