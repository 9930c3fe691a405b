r"""
# Adafactor: second moments in $O(n + m)$ memory

[Shazeer & Stern, 2018](https://arxiv.org/abs/1804.04235) asked what [Adam](adam.md)'s state costs a
large model: two tensors the size of the model, as much memory as the weights and gradients together.
Their answer keeps no first moment at all and, for a matrix, no full second moment either: only the
mean of $g^2$ over each row and over each column, from which the whole $n\times m$ matrix of second
moments is rebuilt when it is needed.

For an $n\times m$ matrix $G_t$, in the order of the code, with $\tau = -0.8$ (`beta2_decay`) and $d = 1$
the clipping threshold by default (a vector, a bias or a gain, is not factored: it keeps its full
$v_t$, which is as small as the vector):

```algorithm
\alpha_t = \textcolor{orange}{\max\big(\epsilon_2,\ \mathrm{RMS}(\theta_{t-1})\big)}\,\rho_t, \quad
    \rho_t = \textcolor{orange}{\min\big(\eta,\ 1/\sqrt t\big)}
    @ return max(group["eps"][1], root_mean_square(param)) * relative
\textcolor{orange}{R_t = \hat\beta_{2,t} R_{t-1} + (1 - \hat\beta_{2,t})\,\mathrm{mean}_{\text{cols}}(G_t^2)}, \quad
    \textcolor{orange}{1 - \hat\beta_{2,t} = t^{\tau}}
    @ state["row_var"].lerp_(row_mean, weight)
\textcolor{orange}{C_t = \hat\beta_{2,t} C_{t-1} + (1 - \hat\beta_{2,t})\,\mathrm{mean}_{\text{rows}}(G_t^2)}
    @ state["col_var"].lerp_(col_mean, weight)
\textcolor{orange}{\hat V_t = R_t C_t / \mathrm{mean}(R_t)}  @ state["col_var"]).div_(row_scale)
\textcolor{orange}{\hat U_t = U_t / \max\big(1,\ \mathrm{RMS}(U_t)/d\big)}, \quad U_t = G_t / \sqrt{\hat V_t}
    @ clip = max(1.0, root_mean_square(update)
\theta \leftarrow \textcolor{orange}{(1 - \eta\lambda)\,\theta_{t-1}}
    \quad \text{(or } 1 - \alpha_t\lambda\text{; when } \lambda > 0\text{)}
    @ param.mul_(1 - decay_rate * weight_decay)
\theta_t = \theta - \alpha_t\,\hat U_t  @ param.add_(update, alpha=-scale)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $G_t$, $g$ | `grad` | the gradient (a matrix $G_t$ when factored) |
| $R_t$ | `row_var` | the running mean of $G^2$ over each row (one number per row) |
| $C_t$ | `col_var` | the running mean of $G^2$ over each column (one number per column) |
| $v_t$ | `variance` | the full second moment of a vector parameter |
| $\hat V_t$ | `estimate` | the rebuilt second moment |
| $U_t$ | `update` | the normalised update, $\hat U_t$ once clipped |
| $d$ | `d` | the clipping threshold |
| $\alpha_t$ | `step_size` | the step size |
| $\rho_t$ | `relative` | the relative step size |
| $\eta$ | `lr` | the learning rate: the cap of $\rho_t$ |
| $\tau$ | `beta2_decay` | the exponent of $1 - \hat\beta_{2,t} = t^{\tau}$ (`weight`) |
| $\epsilon_1$ | `eps1` | guards the division by $\sqrt{\hat V_t}$ |
| $\epsilon_2$ | `eps` | the smallest RMS a parameter is scaled by (the second entry of `eps`) |
| $\lambda$ | `weight_decay` | the weight decay |
| $t$ | `step` | the step count, from 1 |

## Why a rank-one rebuild is the right one

For a non-negative matrix $V$ (the running mean of $G^2$), look for non-negative $r \in \mathbb{R}^n$,
$c \in \mathbb{R}^m$ such that $rc^\top$ is closest to $V$ in the generalised Kullback-Leibler
divergence $\sum_{ij} V_{ij}\log(V_{ij}/(rc^\top)_{ij}) - V_{ij} + (rc^\top)_{ij}$. Setting the
derivatives to zero gives $r_i \sum_j c_j = \sum_j V_{ij}$ and $c_j \sum_i r_i = \sum_i V_{ij}$: the
optimum has the row sums of $V$ as $r$ and its column sums as $c$, up to one common scale, fixed by
$\sum_{ij} (rc^\top)_{ij} = \sum_{ij} V_{ij}$:

$$\hat V = \frac{(V 1_m)(1_n^\top V)}{1_n^\top V 1_m}.$$

The row sums and column sums are linear in $V$, so their running averages are the row and column
sums of the running average: the factored state $R_t, C_t$ is *exactly* what $V_t$ would have
produced, never an approximation of an approximation. Means instead of sums change nothing but the
size of the numbers (torch and we store means, which stay in range for wide layers):
$R C / \mathrm{mean}(R)$ is the same matrix. For a tensor of more than two dimensions the last two
are factored and the leading ones are batch dimensions (a convolution kernel $o\times i\times h\times w$
keeps $o\cdot i\cdot(h + w)$ numbers).

## State: bytes per parameter

For an $n\times m$ `float32` matrix Adam keeps $2nm$ numbers, $8$ bytes per parameter. Adafactor keeps
$n + m$, and a step count. Measured (`state_bytes`, tested) for a $4096\times 4096$ matrix:

| | state tensors | bytes | bytes per parameter |
|---|---|---|---|
| Adam | `exp_avg`, `exp_avg_sq`, `step` | 134,217,732 | 8.0000002 |
| Adafactor | `row_var`, `col_var`, `step` | 32,772 | 0.0019534 |
| Adafactor, `beta1=0.9` | + `exp_avg` | 67,141,636 | 4.0019534 |

4096 times less than Adam, $4(n+m)/(nm) = 8/4096$ bytes per parameter plus the 4-byte step; with the
first moment back (`beta1`), half of Adam's. A vector parameter keeps its full second moment,
4 bytes per parameter. The extra compute per step is two reductions over $G$ (row and column norms), the
outer product $R_t C_t$ (a temporary of the size of the parameter, freed after the step), an RMS of
the parameter and of the update: about twice Adam's passes over memory, in exchange for its memory.

## Relative step size, and no learning rate

With the second moment as sole normaliser, $U_t$ has entries of size about one, whatever the scale
of the gradient. Adafactor then makes the step *relative to the parameter*: $\alpha_t$ is a fraction
$\rho_t$ of the parameter's root mean square, so a matrix whose entries are about $0.02$ moves by about
$0.02\rho_t$ per entry and one with entries about $1$ by $\rho_t$: the same relative change. $\epsilon_2$
keeps a parameter initialised at zero (a bias) from being stuck there. The relative rate
$\rho_t = \min(10^{-2}, 1/\sqrt t)$ is constant for the first ten thousand steps and then decays as
$1/\sqrt t$: the paper needs no learning rate at all. With `warmup_init` it also warms up,
$\rho_t = \min(10^{-6}t, 1/\sqrt t)$ (the two curves cross at $t = 10^4$, where both are $10^{-2}$).

## An increasing $\beta_2$, and update clipping

Adam's $\beta_2 = 0.999$ needs a bias correction because $v_0 = 0$; Adafactor instead lets its
$\hat\beta_{2,t} = 1 - t^{-0.8}$ grow with $t$: $0$ at the first step (the average is the first $G^2$,
nothing to correct), $0.43$ at the second, $0.998$ at step $2\,000$. The average is then unbiased at
every step when the gradients are stationary (the weights $(1 - \hat\beta_{2,i})\prod_{j>i}\hat\beta_{2,j}$
sum to one), and it remembers more and more of the past.

A slow second moment is dangerous when the gradient suddenly grows: $U_t = G_t/\sqrt{\hat V_t}$ becomes
large because $\hat V_t$ still remembers small gradients (Adam's spike after silence). Adafactor
clips the update as a whole: when its root mean square exceeds $d$, it is scaled down to $d$. This is
what makes the fast-growing $\hat\beta_{2,t}$ safe (the paper's Section 5, where Adam without warm-up
diverges and clipped Adafactor trains).

## Two conventions: torch's and the paper's (Hugging Face `transformers`)

`torch.optim.Adafactor` (2.5+) and `transformers.optimization.Adafactor` (after fairseq, after the
paper) differ in four places. Each difference is an option here, and `ADAFACTOR_CONVENTIONS` names both
sets; the tests check this class against both implementations over 100 steps in `float64`.

| | torch (default) | paper, `transformers` |
|---|---|---|
| $\epsilon_1$ (1) | clamps $\hat V \ge \epsilon_1^2$, $\mathrm{mean} R \ge \epsilon_1$ | added: $G^2 + \epsilon_1$ |
| default $\epsilon_1$ | the dtype's machine epsilon | $10^{-30}$ |
| cap of $\rho_t$ | `lr` ($10^{-2}$) | $10^{-2}$ (`lr` if not `relative_step`) |
| $\mathrm{RMS}(\theta)$ scaling | always | `scale_parameter` |
| weight decay (2) | $\theta \mathrel{*}= 1 - \eta\lambda$ | $\theta \mathrel{*}= 1 - \alpha_t\lambda$ |
| first moment | none | `beta1` (3) |
| state (4) | `row_var`, `col_var`, `variance` | `exp_avg_sq_row`, `exp_avg_sq_col`, `exp_avg_sq` |

(1) `eps1_placement`. (2) `weight_decay_scale`: the cap $\eta$ = `lr`, or the step size $\alpha_t$ actually
taken. (3) A moving average of the clipped, scaled updates. (4) torch keeps the reduced dimension,
$(\dots, n, 1)$ and $(\dots, 1, m)$, and a 0-d `float32` tensor `step`; `transformers` drops it,
$(\dots, n)$ and $(\dots, m)$, and keeps an int `step` and the parameter's last `RMS`.

The state here is always torch's (names, shapes, a `float32` 0-d `step`), so torch checkpoints load
into this class and back; `transformers`' layout is the same numbers, reshaped. `transformers`'
arguments (`clip_threshold` for $d$, `decay_rate` for $\tau$, `lr=None`) are translated by
`Adafactor.from_transformers`.

What we noticed in the two implementations, each pinned by a test:

* torch's $\epsilon_1$ = `None` means the machine epsilon of the *first* parameter's dtype: the loop
  variable is rebound once and reused for every later parameter of the group. Here each parameter
  uses its own dtype's.
* torch divides by $\sqrt{n_\text{elements}}$ with a Python float: a zero-size parameter raises
  `ZeroDivisionError`. Here its RMS is $0$ and it is left alone.
* torch refuses a clipping threshold $d < 1$; `transformers` accepts any, and so does this class
  (any $d > 0$): clipping to an RMS below one is a legitimate, more cautious choice.
* torch rejects complex parameters; so does this class (factoring the real view would pair real and
  imaginary parts as a last dimension of two).
* `transformers` multiplies $\epsilon_1$ into the row means and the column means alike, so with
  $\epsilon_1 = 10^{-30}$ it only matters for gradients that are exactly zero, where it prevents
  $0/0$. torch's clamps do the same job after the averaging.
* `transformers` upcasts `bfloat16`/`float16` parameters to `float32` inside the step and rounds
  back; torch computes in the parameter's dtype. Here that choice is the library-wide
  `master_weights` option.
"""

import math
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.distributed import full, reduced_zeros
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check, check_in_unit_interval, check_length, check_non_negative

# Where $\epsilon_1$ enters: clamped after the averaging (torch) or added to $G^2$ before it (the paper).
EPS1_PLACEMENTS = ("clamp", "add")
# What multiplies the weight decay: the cap `lr` (torch) or the actual step size $\alpha_t$ (`transformers`).
WEIGHT_DECAY_SCALES = ("lr", "step_size")

# The two conventions, as keyword arguments of `Adafactor`. torch's is the default; the paper's is
# `transformers`' with its defaults (`relative_step=True`, `scale_parameter=True`, `lr=None`, which is a
# cap of $10^{-2}$ here).
ADAFACTOR_CONVENTIONS: dict[str, dict[str, Any]] = {
    "torch": dict(eps=(None, 1e-3), eps1_placement="clamp", weight_decay_scale="lr"),
    "transformers": dict(eps=(1e-30, 1e-3), eps1_placement="add", weight_decay_scale="step_size"),
}


def root_mean_square(tensor: torch.Tensor) -> float:
    r"""
    $\mathrm{RMS}(x) = \lVert x\rVert_2/\sqrt{N}$, as a Python number, and $0$ for an empty tensor
    (where torch's Adafactor divides by zero).
    """
    if tensor.numel() == 0:
        return 0.0
    # Of the whole tensor: under FSDP2, `full` completes the norm of this process's shard.
    return full(tensor.norm(2)).item() / math.sqrt(tensor.numel())


class Adafactor(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The positional arguments, `foreach` and `maximize` are `torch.optim.Adafactor`'s, with its defaults.

    * `lr` is $\eta$ (default $10^{-2}$), the *cap* of the relative step $\rho_t = \min(\eta, 1/\sqrt t)$,
      not a step size: each step changes a matrix by about $\rho_t$ of its RMS. $10^{-2}$ is the paper's
      constant; lower it for fine-tuning. With `relative_step=False`, $\rho_t = \eta$ at every step
      (schedule it yourself, as T5 fine-tuning recipes do with $10^{-3}$).
    * `beta2_decay` is $\tau \le 0$ (default $-0.8$): $1-\hat\beta_{2,t} = t^\tau$. $-1$ makes the
      average an equally weighted mean of all past $G^2$; closer to $0$ forgets faster.
    * `eps` is $(\epsilon_1, \epsilon_2)$ (default `(None, 1e-3)`): $\epsilon_1$ guards the division by
      $\sqrt{\hat V}$ (`None`: the machine epsilon of the parameter's dtype); $\epsilon_2$ is the
      smallest RMS a parameter is scaled by, so that a zero-initialised one moves.
    * `d` is the clipping threshold (default $1$): the largest RMS of an update before scaling.
    * `weight_decay` is $\lambda$, decoupled: $\theta \mathrel{*}= 1 - \eta\lambda$ (torch), or
      $1-\alpha_t\lambda$ with `weight_decay_scale="step_size"` (`transformers`).
    * `foreach` is accepted and stored as torch stores it, so that groups and checkpoints are torch's;
      torch's two paths compute the same update, and this class has the one written below.
    * `maximize` ascends the objective.

    The paper's options (keyword-only; `ADAFACTOR_CONVENTIONS["transformers"]` sets the last two):

    * `relative_step` (default `True`): $\rho_t = \min(\eta, 1/\sqrt t)$; `False`: $\rho_t = \eta$.
    * `scale_parameter` (default `True`): multiply by $\max(\epsilon_2, \mathrm{RMS}(\theta))$;
      `False` makes $\rho_t$ an absolute step size, as in Adam.
    * `warmup_init` (default `False`, needs `relative_step`): $\rho_t = \min(\eta, 10^{-6}t, 1/\sqrt t)$.
    * `beta1` (default `None`, no first moment): momentum on the clipped, scaled update. $0.9$ brings
      back a parameter-sized state; the paper trains without it.
    * `eps1_placement`: `"clamp"` (torch) or `"add"` (the paper, `transformers`), see above.
    * `weight_decay_scale`: `"lr"` (torch) or `"step_size"` (`transformers`).
    """

    # Its update works on whole matrices: the element-wise fast path does not apply.
    elementwise = False

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    # torch refuses complex parameters: the factored statistics of a real view would mix a number's
    # real and imaginary parts in one "column".
    supports_complex = False

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        relative_step: bool = True,
        scale_parameter: bool = True,
        warmup_init: bool = False,
        beta1: float | None = None,
        eps1_placement: str = "clamp",
        weight_decay_scale: str = "lr",
    ) -> None:
        check("beta2_decay", beta2_decay, lambda v: v <= 0.0, "must be <= 0")
        check_length("eps", eps, 2, "(eps1, eps2)")
        if eps[0] is not None:
            check_non_negative("eps1", eps[0])
        check_non_negative("eps2", eps[1])
        # torch refuses $d < 1$; the paper and `transformers` allow any positive threshold, and so do we.
        check("clipping threshold d", d, lambda v: v > 0.0, "must be > 0")
        check_non_negative("weight_decay", weight_decay)
        if beta1 is not None:
            check_in_unit_interval("beta1", beta1)
        if warmup_init and not relative_step:
            raise ValueError("Invalid warmup_init: True requires relative_step=True")
        if eps1_placement not in EPS1_PLACEMENTS:
            raise ValueError(f"Invalid eps1_placement: {eps1_placement!r} (one of {EPS1_PLACEMENTS})")
        if weight_decay_scale not in WEIGHT_DECAY_SCALES:
            raise ValueError(f"Invalid weight_decay_scale: {weight_decay_scale!r} (one of {WEIGHT_DECAY_SCALES})")
        defaults = dict(
            lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, relative_step=relative_step, scale_parameter=scale_parameter,
            warmup_init=warmup_init, beta1=beta1, eps1_placement=eps1_placement,
            weight_decay_scale=weight_decay_scale,
        )
        super().__init__(params, defaults)

    @classmethod
    def from_transformers(
        cls,
        params: ParamsT,
        lr: float | None = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = -0.8,
        beta1: float | None = None,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
    ) -> "Adafactor":
        r"""
        ### `transformers.optimization.Adafactor`'s signature

        The same arguments and defaults, translated: `clip_threshold` is $d$, `decay_rate` is $\tau$, and
        the relative step's cap, a constant $10^{-2}$ there, is our `lr`. Like `transformers`, an `lr`
        together with `relative_step=True` is refused (there it would be silently unused).
        """
        if lr is not None and relative_step:
            raise ValueError("Invalid lr: cannot combine a manual lr with relative_step=True")
        if lr is None and not relative_step:
            raise ValueError("Invalid lr: None requires relative_step=True")
        return cls(
            params, lr=1e-2 if lr is None else lr, beta2_decay=decay_rate, d=clip_threshold,
            weight_decay=weight_decay, relative_step=relative_step, scale_parameter=scale_parameter,
            warmup_init=warmup_init, beta1=beta1, **{**ADAFACTOR_CONVENTIONS["transformers"], "eps": tuple(eps)},
        )

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        torch's state, so that checkpoints interchange: a 0-d `step` of torch's scalar dtype; for a
        tensor of two or more dimensions the row statistic `row_var` (last dimension reduced to $1$)
        and the column statistic `col_var` (second-to-last reduced to $1$), whose product broadcasts
        to the parameter's shape; for a vector or a scalar the full `variance`.
        """
        state["step"] = new_step_count(group, param)
        if param.ndim > 1:
            # Under FSDP2 (rows sharded) each process keeps the statistics of its rows and all of the
            # column statistics (`reduced_zeros`).
            state["row_var"] = reduced_zeros(param, -1)
            state["col_var"] = reduced_zeros(param, -2)
        else:
            state["variance"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["beta1"] is not None:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adafactor step

        The step size is read from the parameter *before* it changes (its RMS and the decay both use
        $\theta_{t-1}$), then the second moment, the normalised and clipped update, the optional first
        moment, the decay and the update.
        """
        step = advance(state)
        # An empty parameter has nothing to update, and the mean over an empty row or column would be
        # $0/0$: its statistics stay at zero.
        if param.numel() == 0:
            return
        step_size = self.step_size(group, param, step)
        # $$U_t = G_t \big/ \sqrt{\hat V_t}$$
        update = self.second_moment(state, group, grad, param, step).rsqrt_().mul_(grad)
        # Clipping scales the whole update, so its direction is kept:
        # $$\hat U_t = U_t \big/ \max\!\big(1,\ \mathrm{RMS}(U_t)/d\big)$$
        clip = max(1.0, root_mean_square(update) / float(group["d"]))
        if group["beta1"] is not None:
            # The paper's optional first moment averages the *scaled* updates, so a change of
            # $\alpha_t$ reaches the step gradually:
            # $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,\alpha_t \hat U_t$$
            exp_avg = state["exp_avg"]
            exp_avg.mul_(group["beta1"]).add_(update, alpha=(1 - group["beta1"]) * step_size / clip)
            update, scale = exp_avg, 1.0
        else:
            scale = step_size / clip
        # Decoupled decay of $\theta_{t-1}$, by the cap $\eta$ (torch) or the step size $\alpha_t$:
        # $$\theta \leftarrow (1 - \eta\lambda)\,\theta$$
        weight_decay = group["weight_decay"]
        if weight_decay != 0:
            decay_rate = learning_rate(group, param) if group["weight_decay_scale"] == "lr" else step_size
            param.mul_(1 - decay_rate * weight_decay)
        # $$\theta_t = \theta - \alpha_t \hat U_t \qquad\text{or}\qquad \theta_t = \theta - m_t$$
        param.add_(update, alpha=-scale)

    def step_size(self, group: dict[str, Any], param: torch.Tensor, step: float) -> float:
        r"""
        ### The step size $\alpha_t$

        The relative rate $\rho_t$, times the parameter's own scale.
        """
        lr = learning_rate(group, param)
        if not group["relative_step"]:
            # $$\rho_t = \eta$$
            relative = lr
        elif group["warmup_init"]:
            # $$\rho_t = \min(\eta,\ 10^{-6}\,t,\ 1/\sqrt t)$$
            relative = min(lr, 1e-6 * step, 1 / step**0.5)
        else:
            # $$\rho_t = \min(\eta,\ 1/\sqrt t)$$
            relative = min(lr, 1 / step**0.5)
        if not group["scale_parameter"]:
            return relative
        # $$\alpha_t = \max\!\big(\epsilon_2,\ \mathrm{RMS}(\theta_{t-1})\big)\,\rho_t$$
        return max(group["eps"][1], root_mean_square(param)) * relative

    def second_moment(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor, step: float
    ) -> torch.Tensor:
        r"""
        ### The second-moment estimate $\hat V_t$

        A new tensor (the caller turns it into the update in place), never the state itself.
        """
        eps1 = group["eps"][0]
        if eps1 is None:
            eps1 = torch.finfo(param.dtype).eps
        added = eps1 if group["eps1_placement"] == "add" else 0.0
        # $$1 - \hat\beta_{2,t} = t^{\tau}$$
        weight = step ** group["beta2_decay"]
        if grad.ndim > 1:
            # The row means of $G^2$ as squared row norms over the row length: no temporary the size
            # of the gradient, which is the memory Adafactor exists to save.
            # $$R_t = \hat\beta_{2,t} R_{t-1} + (1-\hat\beta_{2,t})\big(\mathrm{mean}_j G_{ij}^2 + \epsilon_1'\big)$$
            # A norm along a dimension FSDP2 shards is a partial one until `full` completes it.
            row_mean = full(grad.norm(dim=-1, keepdim=True)).square_().div_(grad.shape[-1]).add_(added)
            state["row_var"].lerp_(row_mean, weight)
            # $$C_t = \hat\beta_{2,t} C_{t-1} + (1-\hat\beta_{2,t})\big(\mathrm{mean}_i G_{ij}^2 + \epsilon_1'\big)$$
            col_mean = full(grad.norm(dim=-2, keepdim=True)).square_().div_(grad.shape[-2]).add_(added)
            state["col_var"].lerp_(col_mean, weight)
            row_var = state["row_var"]
            # $\mathrm{mean}(R_t)$ over the rows; torch keeps it away from zero by $\epsilon_1$.
            row_scale = full(row_var.mean(dim=-2, keepdim=True))
            if group["eps1_placement"] == "clamp":
                row_scale = row_scale.clamp_(min=eps1)
            # The outer product $(n, 1) @ (1, m)$ rebuilds the matrix:
            # $$\hat V_t = R_t C_t / \mathrm{mean}(R_t)$$
            estimate = (row_var @ state["col_var"]).div_(row_scale)
        else:
            # $$v_t = \hat\beta_{2,t} v_{t-1} + (1-\hat\beta_{2,t})\,(G_t^2 + \epsilon_1')$$
            variance = state["variance"]
            variance.lerp_(grad * grad + added, weight)
            estimate = variance.clone()
        if group["eps1_placement"] == "clamp":
            # torch's guard, squared because the square root follows:
            # $$\hat V_t \leftarrow \max(\hat V_t,\ \epsilon_1^2)$$
            estimate.clamp_(min=eps1 * eps1)
        return estimate


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    r"""The bytes of every tensor in an optimizer's state: what the table above measures."""
    return sum(value.numel() * value.element_size() for state in optimizer.state.values()
               for value in state.values() if isinstance(value, torch.Tensor))
