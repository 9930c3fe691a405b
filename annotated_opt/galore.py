r"""
# GaLore: Adam on a low-rank projection of the gradient

[Zhao et al., 2024](https://arxiv.org/abs/2403.03507) ("Gradient Low-Rank Projection") save the memory
of [Adam](adam.md)'s moments, not by approximating them, but by running Adam on a smaller gradient:
the gradient of a weight matrix, projected onto the few directions that carry most of it.

```algorithm
P = \textcolor{orange}{\text{top-}r \text{ singular vectors of } G_t, \text{ every } T \text{ steps}}
  @ state["projection"] = self.projection(grad, rank)
R_t = \textcolor{orange}{G_t P^\top} @ low_rank_grad = self.project(grad, state["projection"])
m_t = \beta_1 m_{t-1} + (1-\beta_1)\, R_t \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, R_t^2
  @ soap.py: state["exp_avg"].lerp_(rotated_grad, 1 - beta1)
W_t = W_{t-1} - \eta_t\, \textcolor{orange}{\alpha}\, \frac{m_t}{\sqrt{v_t}+\epsilon}\, \textcolor{orange}{P}
  @ param.add_(update, alpha=-step_size)
W_t \leftarrow (1-\eta\lambda)\, W_t @ self.weight_decay(param, grad, group)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $W$ | `param` | the weight matrix, $n \times m$ |
| $G_t$ | `grad` | its gradient |
| $P$ | `projection` | the projection: $r$ orthonormal rows ($r \times m$), or columns ($n \times r$) |
| $r$ | `rank` | the rank of the projection |
| $T$ | `update_proj_gap` | steps between two projections |
| $R_t$ | `low_rank_grad` | the projected gradient, $n \times r$ |
| $m_t$, $v_t$ | `exp_avg`, `exp_avg_sq` | Adam's moments, of the projected gradient, with the decays `betas` |
| $\epsilon$ | `eps` | added to $\sqrt{v_t}$ |
| $\eta$ | `lr` | the learning rate |
| $\eta_t$ | `step_size` | $\eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)$ |
| $\alpha$ | `scale` | the scale of the projected-back step |
| $\lambda$ | `weight_decay` | the decoupled weight decay |

## The geometry

The gradient of a weight matrix is, in practice, of low rank: a batch pushes a layer in a few
directions, and those directions change slowly. Write the gradient's singular value decomposition
$G_t = U \Sigma V^\top$ ($n \ge m$). Its top $r$ right singular vectors, the rows of
$P = V_{:r}^\top$ ($r \times m$), span the column directions that carry most of $G_t$ (all of it
if the rank of $G_t$ is $r$ or less). Then

$$R_t = G_t P^\top \quad (n \times r)$$

holds the gradient's coordinates in those directions, and $R_t P$ is the best rank-$r$
approximation of $G_t$. Adam runs on $R_t$: its moments are $n \times r$ instead of $n \times m$,
and its step, an $n \times r$ matrix, is carried back to the weights by $P$. When $n < m$ the
projection is taken on the other side, $R_t = P^\top G_t$ with $P = U_{:, :r}$ ($n \times r$): always
on the smaller dimension, so that the larger one keeps its full resolution.

Unlike LoRA, the weights are not restricted to a low-rank change: $P$ is recomputed every $T$
steps (`update_proj_gap`) from the gradient of that step, so over training the updates move through
many subspaces and add up to a full-rank change. Between two refreshes, the optimizer takes
low-rank steps in one subspace.

**The moments are not moved with the projection.** When $P$ changes, $m$ and $v$ keep the numbers
accumulated in the old coordinates and carry on in the new ones. For $T$ of a few hundred steps the
authors found this harmless (the subspaces of consecutive refreshes overlap); [SOAP](soap.md), which
refreshes its full basis much more often, rotates $m$ explicitly.

**The scale.** $\alpha$ (`scale`, the paper's 0.25 for its language models) multiplies the step
after projection back: the projected step has the norm of an Adam step in $r$ directions only,
and the authors tune its size with $\alpha$ (their learning rate is then that of Adam's, or larger).

## Memory and compute, for an $n \times m$ matrix ($n \ge m$, rank $r$)

State: the moments, $2nr$, and the projection, $rm$; against Adam's $2nm$. For $n = m = 1024$
and $r = 128$: $3.9 \times 10^5$ numbers against $2.1 \times 10^6$, 5.3 times less (measured: 1.5 MiB
against Adam's 8 MiB in `float32`); for $4096 \times 1024$, 4.5 MiB against 32 MiB, 7.1 times less.
The saving is the paper's point: with `bfloat16` weights and these moments, a 7B model trains on
one 24 GB card.

Extra compute per step: two products with $P$, $2 \times 2nmr$ flops ($5.4 \times 10^8$ for
$1024 \times 1024$ and $r = 128$, about what Adam's own arithmetic costs in memory traffic), and every
$T$ steps an SVD, $O(nm\min(n, m))$. Measured with `scripts/matrix_costs.py` (one CPU thread of a
busy shared machine, each step including drawing its gradient): a step costs about what Adam's does
(33 ms for $1024 \times 1024$, 107 ms against Adam's 185 ms for $4096 \times 1024$, where the moments
it touches are 7 times smaller), a step with an SVD 1.1 s and 2.1 s; with $T = 200$ the SVD adds
5 to 10 ms per step on average.

## Vectors, kernels and embeddings

Only matrices are projected. Biases, norm gains and scalars, and tensors of more than two
dimensions (a convolution kernel), get plain Adam with the same step size, $\epsilon$ and decay (as
in the authors' scripts, which put only the attention and MLP matrices in the GaLore group). A group
with `rank=None` is not projected at all: that is the place for a very large embedding, where the
authors too use Adam (a $50\,000 \times 768$ embedding would be projected on its model dimension,
and its SVD, $O(50\,000 \times 768^2)$, is affordable, but its gradient touches only the rows of
the batch's tokens and a shared low-rank subspace serves it badly).

## How it differs from the authors' code

It follows `GaLoreAdamW` of [jiaweizzhao/GaLore](https://github.com/jiaweizzhao/GaLore)
(`galore_torch/adamw.py` and `galore_projector.py`, as released in `galore-torch` 1.0), with its
`proj_type="std"` (the smaller side), its Adam (the Hugging Face `AdamW`: $\epsilon = 10^{-6}$ added
to $\sqrt{v_t}$ before the bias correction is folded into the step size, decay of the updated weights
after the step) and its refresh rule: a new $P$ at the first step and whenever the count of steps
already taken is a multiple of $T$. Two differences: the authors compute the SVD in `float32` even
for `float64` weights (here it runs in the parameter's dtype, `float32` for half precisions), and
keep their projector as a Python object in the state; here it is a plain tensor, `projection`, so
checkpoints hold only tensors. The other `proj_type`s (both sides, the larger side) are left out.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.kronecker import working_dtype
from .core.scalars import new_step_count
from .core.validation import check_betas, check_non_negative
from .core.weight_decay import WeightDecay
from .soap import adam_in_basis, check_positive_int


def projected_rank(param: torch.Tensor, group: dict[str, Any]) -> int:
    r"""
    The rank the projection of `param` will have: $\min(r, n, m)$ for a non-empty matrix in a group
    with a rank, $0$ for everything else (which then gets plain Adam).
    """
    rank = group["rank"]
    if rank is None or param.ndim != 2 or param.numel() == 0:
        return 0
    return min(rank, *param.shape)


def projects_columns(shape: torch.Size) -> bool:
    r"""A tall or square matrix ($n \ge m$) is projected on its columns, $G P^\top$; a wide one on its rows."""
    return shape[0] >= shape[1]


class GaLore(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The authors' names; their defaults, and the paper's settings for `rank`, `update_proj_gap`, `scale`.

    * `lr` is $\eta$ (default $10^{-3}$). The paper uses $0.01$ with `scale` $0.25$ for LLaMA
      pre-training: the projected step is smaller than Adam's, so the product of the two is what to tune.
    * `betas` $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$) and `eps` $\epsilon$ (default $10^{-6}$):
      Adam's, in the projected space.
    * `weight_decay` $\lambda$ (default 0): decoupled, applied to the updated weights.
    * `rank` $r$ (default 128): the memory knob. The paper uses 128 for 60M-parameter and 512 for
      1B-parameter models (a quarter of the model width); below that, quality drops. `None`, in a
      group, switches the projection off for that group's parameters.
    * `update_proj_gap` $T$ (default 200): steps between SVDs. The paper found 50 to 1000 equally
      good; shorter costs SVDs, longer leaves the subspace stale.
    * `scale` $\alpha$ (default 0.25): multiplies the projected-back step.
    * `maximize` ascends the objective instead.
    """

    # Its update works on whole matrices: the element-wise fast path does not apply, and under FSDP2
    # each process gathers the whole matrix ([distributed](core/distributed.md)).
    elementwise = False
    whole_tensors = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0, rank: int | None = 128, update_proj_gap: int = 200,
                 scale: float = 0.25, *, maximize: bool = False) -> None:
        check_betas(betas)
        check_non_negative("eps", eps)
        if rank is not None:
            check_positive_int("rank", rank)
        check_positive_int("update_proj_gap", update_proj_gap)
        check_non_negative("scale", scale)
        # The authors decay the updated weights: decoupled decay, after the step.
        self.weight_decay = WeightDecay(weight_decay, weight_decouple=True)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, rank=rank, update_proj_gap=update_proj_gap, scale=scale,
            maximize=maximize, **self.weight_decay.defaults(),
        ))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""A group's own `rank` (`None` or a count) and `update_proj_gap` are checked like the constructor's."""
        if param_group.get("rank") is not None:
            check_positive_int("rank", param_group["rank"])
        if "update_proj_gap" in param_group:
            check_positive_int("update_proj_gap", param_group["update_proj_gap"])
        super().add_param_group(param_group)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        Adam's moments, of the projected shape, $n \times r$ or $r \times m$, for a projected matrix, of
        the parameter's shape otherwise. The projection itself, `projection`, comes with the first
        gradient.
        """
        rank = projected_rank(param, group)
        shape = param.shape
        if rank:
            shape = (shape[0], rank) if projects_columns(shape) else (rank, shape[1])
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = param.new_zeros(shape)
        state["exp_avg_sq"] = param.new_zeros(shape)

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                   param: torch.Tensor) -> None:
        r"""
        ### One GaLore step

        Where it differs from Adam: the gradient is projected before the moments see it, and the
        step is projected back (and scaled) before it reaches the weights.
        """
        rank = projected_rank(param, group)
        if not rank:
            # Plain Adam: the same moments and step size, on the gradient itself.
            update, step_size = adam_in_basis(state, group, param, grad)
            param.add_(update, alpha=-step_size)
            self.weight_decay(param, grad, group)
            return
        # A new projection at the first step and then every $T$ steps, counted before this step.
        if state["step"].item() % group["update_proj_gap"] == 0:
            state["projection"] = self.projection(grad, rank)
        # $$R_t = G_t P^\top \quad \text{or} \quad P^\top G_t$$
        low_rank_grad = self.project(grad, state["projection"])
        normalised, step_size = adam_in_basis(state, group, param, low_rank_grad)
        # $$\alpha\, \frac{m_t}{\sqrt{v_t}+\epsilon}\, P$$ back in the weights' $n \times m$ shape.
        update = self.project_back(normalised, state["projection"], param.shape).mul_(group["scale"])
        # $$W_t = W_{t-1} - \eta_t\, \alpha\, \frac{m_t}{\sqrt{v_t}+\epsilon}\, P$$
        param.add_(update, alpha=-step_size)
        # $$W_t \leftarrow (1-\eta\lambda)\, W_t$$
        self.weight_decay(param, grad, group)

    @staticmethod
    def projection(grad: torch.Tensor, rank: int) -> torch.Tensor:
        r"""
        $P$ from the SVD $G_t = U\Sigma V^\top$ (singular values in decreasing order): the first $r$
        rows of $V^\top$ for a tall matrix, the first $r$ columns of $U$ for a wide one. Computed in
        `float32` for half precisions, which LAPACK lacks, and stored in the parameter's dtype.
        """
        left, _, right = torch.linalg.svd(grad.to(working_dtype(grad)), full_matrices=False)
        basis = right[:rank] if projects_columns(grad.shape) else left[:, :rank]
        return basis.to(grad.dtype)

    @staticmethod
    def project(grad: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
        r"""$G P^\top$ ($n \times r$) for a tall matrix, $P^\top G$ ($r \times m$) for a wide one."""
        return grad @ projection.T if projects_columns(grad.shape) else projection.T @ grad

    @staticmethod
    def project_back(low_rank: torch.Tensor, projection: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        r"""
        $R P$ or $P R$, back to the weights' shape `shape`, the side chosen by the weights' shape (the
        authors choose it from $R$'s, which agrees, since $r \le \min(n, m)$).
        """
        return low_rank @ projection if projects_columns(shape) else projection @ low_rank
