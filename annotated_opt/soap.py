r"""
# SOAP: Adam in Shampoo's eigenbasis

[Vyas et al., 2024](https://arxiv.org/abs/2409.11321) ("ShampoO with Adam in the Preconditioner's
eigenbasis") start from an observation about [Shampoo](shampoo.md): with its exponent $-1/2$,
Shampoo's preconditioner $L^{-1/2} \otimes R^{-1/2}$ is diagonal in the basis of the eigenvectors
$Q_L$ of $L$ and $Q_R$ of $R$, and there it applies one fixed number per coordinate, a product of an
eigenvalue of $L$ and one of $R$. Adam applies one number per coordinate too, but *learns* it from
the gradients. So: rotate the gradient into Shampoo's eigenbasis, run [Adam](adam.md) there, rotate
the step back.

```algorithm
\textcolor{orange}{\text{first call only: } L_1, R_1 \text{ from } G_1, \ Q_L, Q_R \text{ their eigenvectors; no step}}
    @ store_indexed(state, "eigenbasis", [None if s is None else self.eigenvectors(s) for s in statistics])
\textcolor{orange}{G'_t = Q_L^\top G_t Q_R}  @ rotated_grad = multiply_dimensions(grad, bases)
m_t = \beta_1 m_{t-1} + (1-\beta_1)\, \textcolor{orange}{G'_t}, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \textcolor{orange}{G'^2_t}
    @ state["exp_avg"].lerp_(rotated_grad, 1 - beta1)
W_t = W_{t-1} - \eta_t\, \textcolor{orange}{Q_L} \frac{m_t}{\sqrt{v_t} + \epsilon} \textcolor{orange}{Q_R^\top},
    \quad \eta_t = \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
    @ param.add_(multiply_dimensions(normalised, bases, transpose=True), alpha=-step_size)
W_t \leftarrow (1 - \eta\lambda)\, W_t \quad \text{(decoupled decay, after the step)}
    @ self.weight_decay(param, grad, group)
\textcolor{orange}{L_t = \beta_s L_{t-1} + (1-\beta_s)\, G_t G_t^\top,
    \quad R_t = \beta_s R_{t-1} + (1-\beta_s)\, G_t^\top G_t}
    @ statistic.lerp_(dimension_statistic(grad, dim), 1 - shampoo_beta)
\textcolor{orange}{\text{every } f \text{ steps: } Q \leftarrow \mathrm{QR}(L\,Q) \text{ for } Q_L, Q_R,
    \text{ and } m_t \text{ moved into the new bases}}
    @ basis, _ = torch.linalg.qr(statistic
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $W$ | `param` | the parameter, an $n \times m$ matrix |
| $G_t, G'_t$ | `grad`, `rotated_grad` | the gradient, and the gradient in the eigenbasis |
| $L, R$ | `statistic` | the statistics of the rows and of the columns |
| $Q_L, Q_R$ | `basis`, `bases` | their (approximate) eigenvectors, the eigenbasis (`eigenbasis`) |
| $m_t$ | `exp_avg` | the first moment, in the eigenbasis |
| $v_t$ | `exp_avg_sq` | the second moment, in the eigenbasis |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | their decay rates (`betas`) |
| $\beta_s$ | `shampoo_beta` | the decay of $L$ and $R$ ($\beta_2$ when `None`) |
| $\eta$ | `lr` | the learning rate |
| $\eta_t$ | `step_size` | the step size, with both bias corrections |
| $\epsilon$ | `eps` | added to $\sqrt{v_t}$ before the bias correction |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |
| $f$ | `precondition_frequency` | the steps between refreshes of the bases |
| $t$ | `step` | Adam's step count, which starts at the second call |

## The geometry

For a weight matrix $W$ ($n \times m$) with gradient $G_t$, Shampoo keeps the two statistics

$$L_t = \beta_s L_{t-1} + (1-\beta_s)\, G_t G_t^\top \quad (n\times n) \qquad
  R_t = \beta_s R_{t-1} + (1-\beta_s)\, G_t^\top G_t \quad (m\times m),$$

the correlations between rows and between columns. Their Kronecker product approximates the
$nm \times nm$ second moment of the whole gradient ([the arithmetic](core/kronecker.md)). Its
eigenvectors $Q_L \otimes Q_R$ are a rotation of the weight space in which the gradient's
coordinates are as uncorrelated as this approximation can make them, which is exactly where a
diagonal (per-coordinate) method is right. On a rotated ill-conditioned quadratic, Adam in the
original coordinates fights the rotation; Adam in the eigenbasis does not see it.

## The algorithm

With $Q_L, Q_R$ the current eigenbases,

$$\begin{aligned}
G'_t &= Q_L^\top G_t Q_R && \text{rotate into the eigenbasis}\\
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, G'_t \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, G'^2_t && \text{Adam there}\\
W_t &= W_{t-1} - \eta_t\, Q_L \frac{m_t}{\sqrt{v_t} + \epsilon} Q_R^\top,
  \quad \eta_t = \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} && \text{rotate the step back}\\
W_t &\leftarrow (1 - \eta\lambda)\, W_t && \text{decoupled decay, after the step}
\end{aligned}$$

and *after* the step, $L$ and $R$ take in $G_t$, and every `precondition_frequency` steps the bases
are refreshed. The current gradient therefore never shapes the basis it is rotated by.

**The first step only collects statistics**: $L_1, R_1$ from $G_1$, $Q_L, Q_R$ from a full
eigendecomposition of them, and no change to the weights (not even weight decay). Adam's step count
starts at the second call.

**Refreshing the basis.** Instead of a new eigendecomposition ($O(n^3)$, slow on accelerators), one
step of power iteration from the old basis: sort the old eigenvectors by their estimated eigenvalues
$\mathrm{diag}(Q^\top L Q)$, then $Q \leftarrow \mathrm{QR}(L Q)$. Since $L$ changes slowly, one step
keeps $Q$ close to its eigenvectors.

**Moving the moments with the basis.** $m_t$ is a vector in the old basis: it is rotated back to the
weight space with the old bases and into the new one, $m \leftarrow Q_{L}'^{\top} Q_L\, m\, Q_R^\top Q'_R$.
$v_t$ holds squares and is *not* rotated (a rotation of squares is not the square of a rotation);
it is only permuted with the sort, so each coordinate keeps the second moment of the eigenvector it
follows. This is the authors' choice, and the reason a short refresh interval matters.

**Vectors and large dimensions.** A dimension larger than `max_precond_dim` (a vocabulary of 50 000
rows) keeps no statistic and is left unrotated: an embedding is rotated on its model dimension only.
A vector or a scalar has no dimension to rotate (the authors' `precondition_1d=False`) and gets
plain Adam, still with the first step skipped. A tensor of more dimensions (a convolution kernel)
keeps one statistic per dimension.

## Memory and compute, for an $n \times m$ matrix

State: Adam's $m$ and $v$ ($2nm$), the statistics $L, R$ and the bases $Q_L, Q_R$ ($2n^2 + 2m^2$);
for a square matrix six times the parameter, three times Adam's state. Each step: four matrix
products to rotate in and out and two for the statistics, $\approx 6nm(n+m)$ flops, against Adam's
$\approx 10nm$; every `precondition_frequency` steps, the power iteration and QR,
$O(n^3 + m^3)$. Measured numbers are on this page (the plots below) and in the report.

## How it differs from the authors' code

The authors' `SOAP` ([nikhilvyas/SOAP](https://github.com/nikhilvyas/SOAP), `soap.py`) is followed
exactly, including two details worth knowing: $\epsilon$ is added to $\sqrt{v_t}$ *before* the bias
correction is folded into the step size (so it is effectively $\epsilon/\sqrt{1-\beta_2^t}$, the form
[Adam](adam.md)'s page warns is not Adam's), and the decay is applied after the step, to the updated
weights. The statistics are created in the parameter's dtype (the authors create them in the default
dtype, `float32`); options for merging dimensions, preconditioning vectors and normalising gradients
are left out.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.kronecker import dimension_statistic, indexed, multiply_dimensions, store_indexed, working_dtype
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_betas, check_in_unit_interval, check_non_negative
from .core.weight_decay import WeightDecay


def check_positive_int(name: str, value: Any) -> None:
    r"""A count that must be a whole number $\ge 1$: a refresh interval, a dimension, a rank."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {name}: {value} (must be an integer >= 1)")


def adam_in_basis(state: dict[str, Any], group: dict[str, Any], param: torch.Tensor,
                  rotated_grad: torch.Tensor) -> tuple[torch.Tensor, float]:
    r"""
    ### Adam, on a gradient expressed in another basis

    Shared by SOAP (a full rotation) and [GaLore](galore.md) (a projection onto a few directions).
    Advances the step count and both moments, and returns the normalised step $m_t/(\sqrt{v_t}+\epsilon)$,
    still in the rotated basis, with its step size
    $\eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)$. $\epsilon$ is added before the bias correction, as in both
    authors' code (which descends from the same Hugging Face `AdamW`).
    """
    beta1, beta2 = group["betas"]
    step = advance(state)
    # $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,G'_t \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\,G'^2_t$$
    state["exp_avg"].lerp_(rotated_grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(rotated_grad, rotated_grad, value=1 - beta2)
    normalised = state["exp_avg"] / state["exp_avg_sq"].sqrt().add_(group["eps"])
    step_size = learning_rate(group, param) * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
    return normalised, step_size


class SOAP(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The authors' names and defaults.

    * `lr` is $\eta$ (default $3\times 10^{-3}$); start from AdamW's tuned value.
    * `betas` $(\beta_1, \beta_2)$ (default $(0.95, 0.95)$): shorter memories than Adam's defaults;
      the authors found $\beta_2 = 0.95$ to $0.99$ best for language models.
    * `shampoo_beta` $\beta_s$, the decay of the statistics $L, R$; `None` (default) uses $\beta_2$.
    * `eps` $\epsilon$ (default $10^{-8}$), added to $\sqrt{v_t}$ before the bias correction.
    * `weight_decay` $\lambda$ (default $0.01$), decoupled, applied after the step.
    * `precondition_frequency` (default 10): steps between refreshes of the bases. The paper finds
      SOAP far less sensitive to it than Shampoo (whose inverse roots go stale): 10 to 100 work.
    * `max_precond_dim` (default 10 000): a dimension larger than this is not rotated.
    * `maximize` ascends the objective instead.
    """

    # Its update works on whole matrices: the element-wise fast path does not apply, and under FSDP2
    # each process gathers the whole matrix ([distributed](core/distributed.md)).
    elementwise = False
    whole_tensors = True

    def __init__(self, params: ParamsT, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.95),
                 shampoo_beta: float | None = None, eps: float = 1e-8, weight_decay: float = 0.01,
                 precondition_frequency: int = 10, max_precond_dim: int = 10000, *,
                 maximize: bool = False) -> None:
        check_betas(betas)
        if shampoo_beta is not None:
            check_in_unit_interval("shampoo_beta", shampoo_beta)
        check_non_negative("eps", eps)
        check_positive_int("precondition_frequency", precondition_frequency)
        check_positive_int("max_precond_dim", max_precond_dim)
        # The authors decay the updated weights, which is decoupled decay applied after the step.
        self.weight_decay = WeightDecay(weight_decay, weight_decouple=True)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps,
            precondition_frequency=precondition_frequency, max_precond_dim=max_precond_dim,
            maximize=maximize, **self.weight_decay.defaults(),
        ))

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        Adam's moments (in the rotated basis, so of the parameter's shape) and one statistic per
        dimension, `shampoo_stat_0`, `shampoo_stat_1`, ..., none for a dimension too large to
        precondition nor for vectors and scalars. `step` counts Adam's steps: it stays at 0 through the
        first call, which only collects (and sets `collected`).
        """
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        rotated = param.ndim >= 2
        store_indexed(state, "shampoo_stat", [
            param.new_zeros(size, size) if rotated and size <= group["max_precond_dim"] else None
            for size in param.shape
        ])

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                   param: torch.Tensor) -> None:
        r"""
        ### One SOAP step

        The first call builds the bases from the first gradient and stops there, so that the
        gradient of a step is never rotated by a basis it helped build.
        """
        # The statistics are summed in memory order: a transposed (non-contiguous) gradient would add
        # the same numbers in another order, and where a statistic has repeated eigenvalues (a rank-
        # deficient $G G^\top$, early on) a rounding-sized change turns its eigenvectors by a finite angle.
        grad = grad.contiguous()
        if not state.get("collected"):
            self.update_statistics(state, group, grad)
            statistics = indexed(state, "shampoo_stat", grad.ndim)
            store_indexed(state, "eigenbasis", [None if s is None else self.eigenvectors(s) for s in statistics])
            state["collected"] = True
            return
        bases = indexed(state, "eigenbasis", grad.ndim)
        # $$G'_t = Q_L^\top G_t Q_R$$
        rotated_grad = multiply_dimensions(grad, bases)
        normalised, step_size = adam_in_basis(state, group, param, rotated_grad)
        # $$W_t = W_{t-1} - \eta_t\, Q_L \frac{m_t}{\sqrt{v_t}+\epsilon} Q_R^\top$$
        param.add_(multiply_dimensions(normalised, bases, transpose=True), alpha=-step_size)
        # $$W_t \leftarrow (1-\eta\lambda)\, W_t$$
        self.weight_decay(param, grad, group)
        self.update_statistics(state, group, grad)
        if state["step"] % group["precondition_frequency"] == 0:
            self.refresh_bases(state)

    def update_statistics(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> None:
        r"""
        $$L_t = \beta_s L_{t-1} + (1-\beta_s)\, G_t G_t^\top \qquad R_t = \beta_s R_{t-1} + (1-\beta_s)\, G_t^\top G_t$$
        An exponential average, not Shampoo's sum: with Adam's moments living in the basis, the basis
        should follow the recent gradients.
        """
        shampoo_beta = group["shampoo_beta"] if group["shampoo_beta"] is not None else group["betas"][1]
        for dim, statistic in enumerate(indexed(state, "shampoo_stat", grad.ndim)):
            if statistic is not None:
                statistic.lerp_(dimension_statistic(grad, dim), 1 - shampoo_beta)

    @staticmethod
    def eigenvectors(statistic: torch.Tensor) -> torch.Tensor:
        r"""
        The first basis, from a full eigendecomposition: `eigh` returns eigenvalues in ascending
        order; the columns are flipped so that the largest comes first, the order the power iteration
        keeps. (The authors add $10^{-30} I$ first, which changes nothing in `float32` or `float64`.)
        """
        _, vectors = torch.linalg.eigh(statistic.to(working_dtype(statistic)))
        return vectors.flip(1).to(statistic.dtype)

    def refresh_bases(self, state: dict[str, Any]) -> None:
        r"""
        ### One power-iteration step per basis, and the moments moved along

        $m_t$ goes back to the weight space with the old bases, the bases are refreshed, and $m_t$
        comes into the new ones. $v_t$ is only permuted, dimension by dimension, by the sort.
        """
        ndim = state["exp_avg"].ndim
        bases = indexed(state, "eigenbasis", ndim)
        exp_avg = multiply_dimensions(state["exp_avg"], bases, transpose=True)
        exp_avg_sq = state["exp_avg_sq"]
        refreshed = []
        for dim, (statistic, basis) in enumerate(zip(indexed(state, "shampoo_stat", ndim), bases)):
            if statistic is None:
                refreshed.append(None)
                continue
            dtype = working_dtype(statistic)
            statistic, basis = statistic.to(dtype), basis.to(dtype)
            # The eigenvalues the old basis sees, $\mathrm{diag}(Q^\top L Q)$, largest first.
            order = torch.argsort(torch.diagonal(basis.T @ statistic @ basis), descending=True)
            exp_avg_sq = exp_avg_sq.index_select(dim, order)
            # $$Q \leftarrow \mathrm{QR}(L\,Q)$$
            basis, _ = torch.linalg.qr(statistic @ basis[:, order])
            refreshed.append(basis.to(state["exp_avg"].dtype))
        store_indexed(state, "eigenbasis", refreshed)
        state["exp_avg_sq"] = exp_avg_sq
        state["exp_avg"] = multiply_dimensions(exp_avg, refreshed)
