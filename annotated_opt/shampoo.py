r"""
# Shampoo: a preconditioner for each side of a matrix

[Gupta, Koren & Singer, 2018](https://arxiv.org/abs/1802.09568) asked what full-matrix
[AdaGrad](adagrad.md) would do for a weight matrix, and how to afford it. Full-matrix AdaGrad
preconditions the flattened gradient $g = \mathrm{vec}(G)$ with $H^{-1/2}$, $H = \sum_t g_t g_t^\top$:
for a $1024 \times 1024$ layer, $H$ has $10^{12}$ entries. Shampoo keeps one statistic per side
instead,

$$L_t = \beta_2 L_{t-1} + w\, G_t G_t^\top \quad (n \times n) \qquad
  R_t = \beta_2 R_{t-1} + w\, G_t^\top G_t \quad (m \times m),$$

($\beta_2 = w = 1$: the running sums of the paper; $\beta_2 < 1$, $w = 1-\beta_2$: an average) and
preconditions with their inverse fourth roots,

$$P_t = L_t^{-1/4}\; \bar G_t\; R_t^{-1/4}.$$

```algorithm
W \leftarrow (1 - \eta\lambda)\, W \ \text{(decoupled)}, \quad \text{or } G_t \leftarrow G_t + \lambda W \ \text{(L2)}
    @ grad = self.weight_decay(param, grad.contiguous(), group)
\tilde G_t = \beta_1 \tilde G_{t-1} + (1-\beta_1)\, G_t, \quad \bar G_t = \tilde G_t / (1 - \beta_1^t)
    @ averaged = state["filtered_grad"].lerp_(grad, 1 - beta1) / (1 - beta1**step)
L_t = \beta_2 L_{t-1} + w\, G_t G_t^\top, \quad R_t = \beta_2 R_{t-1} + w\, G_t^\top G_t \quad \text{(per block)}
    @ statistic.mul_(beta2).add_(dimension_statistic(block, dim), alpha=weight)
L^{-1/4} \leftarrow (L_t / c_2)^{-1/4}, \ R^{-1/4} \leftarrow (R_t / c_2)^{-1/4}
    \quad \text{(regularised by } \epsilon\text{, every } f \text{ steps)}
    @ state[f"{side}_inv_root_{index}"] = inverse_root(statistic / correction, 4, group["eps"])
P_t = L^{-1/4}\, \bar G_t\, R^{-1/4} \quad \text{(the latest roots)}
    @ preconditioned = multiply_dimensions(block, roots)
P_t \leftarrow \frac{\lVert P^{\text{graft}}_t\rVert}{\lVert P_t\rVert + 10^{-16}}\, P_t, \quad
    P^{\text{graft}}_t = \frac{\bar G_t}{\sqrt{V_t / c^{g}_2} + \epsilon_g}
    @ preconditioned.mul_(graft_blocks[index].norm() / (preconditioned.norm() + 1e-16))
W_t = W_{t-1} - \eta\, P_t  @ param.add_(direction.view_as(param), alpha=-learning_rate(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $W$ | `param` | the parameter, seen as a matrix |
| $G_t, \tilde G_t, \bar G_t$ | `grad`, `filtered_grad`, `averaged` | the gradient, its average, that corrected |
| $L, R$ | `statistic` | the statistics of the rows and of the columns, per block (`left`, `right`) |
| $w$ | `weight` | the weight of a new term: $1$ for a sum, $1-\beta_2$ for an average |
| $c_2$ | `correction` | the bias correction, $1-\beta_2^t$ for an average, $1$ for a sum |
| $d_i$ | `eigenvalues` | the eigenvalues of $L_t / c_2 + \epsilon I$ (or of $R_t / c_2 + \epsilon I$) |
| $P_t$ | `preconditioned`, `direction` | the preconditioned direction, of one block, and of the matrix |
| $P^{\text{graft}}_t$ | `grafted` | the grafted method's step |
| $V_t$ | `grafting_sq`, `squares` | the grafted method's sum or average of $G_t^2$ |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay of the gradient average and of $L, R$ (`betas`) |
| $\beta_g$ | `grafting_beta2`, `beta` | the grafted method's decay ($1$: AdaGrad) |
| $\eta$ | `lr` | the learning rate |
| $\epsilon, \epsilon_g$ | `eps`, `grafting_eps` | the regularisation of the roots, and the grafted method's |
| $\lambda$ | `weight_decay` | the weight decay, decoupled or L2 |
| $f$ | `precondition_frequency` | the steps between inverse roots |
| $t$ | `step` | the step count |

## The geometry: why two fourth roots

For a matrix, $\mathrm{vec}(L^{a} G R^{b}) = (L^{a} \otimes R^{b})\, \mathrm{vec}(G)$ (rows first). The paper
shows $H \preceq r\, L^{1/2} \otimes R^{1/2}$ with $r$ the rank of the gradients ([the
arithmetic](core/kronecker.md)): the Kronecker product of the two square roots bounds full-matrix
AdaGrad's statistic, so $(L^{1/2} \otimes R^{1/2})^{-1/2} = L^{-1/4} \otimes R^{-1/4}$ stands in for
$H^{-1/2}$. Each side takes a fourth root because each carries half of the exponent. A tensor of order
$k$ would take $-1/(2k)$ on each of its $k$ sides; here every parameter of two or more dimensions is
seen as a matrix, (first dimension) $\times$ (the rest), as the reference implementation does for a
convolution kernel.

What it buys: the gradient is whitened along both the row and the column directions at once, so a
loss whose curvature is a rotated ellipse (a rotated ill-conditioned quadratic) looks round to it,
while a diagonal method such as Adam only rescales the axes it happens to be given.

## The inverse roots, stably

Every `precondition_frequency` steps, for $A = L_t / c_2$ (with the bias correction
$c_2 = 1-\beta_2^t$ when $\beta_2 < 1$): an eigendecomposition of $A + \epsilon I$, eigenvalues
$d_i$; if the smallest is below $\epsilon$ (the statistic is rank-deficient, as it always is
early on, or rounding made it slightly indefinite) all are shifted so that it is exactly $\epsilon$;
then $A^{-1/4} \approx Q\,\mathrm{diag}(d_i^{-1/4})\,Q^\top$. The epsilon (default $10^{-12}$)
bounds the root by $\epsilon^{-1/4} = 1000$: directions the gradients never visited are amplified by
a thousand, which is why Shampoo needs grafting. Between computations the stale roots are reused.

## Grafting

Shampoo's step has the right *direction* but a poorly scaled *length* (the roots of a sum grow and
shrink in ways no learning-rate schedule anticipates). Grafting (Agarwal et al., 2020) keeps the
direction and borrows the length from an element-wise method run on the same gradients,

$$P_t \leftarrow \frac{\lVert P^{\text{graft}}_t\rVert}{\lVert P_t\rVert + 10^{-16}}\, P_t
\qquad P^{\text{graft}}_t = \frac{\bar G_t}{\sqrt{V_t / c^{g}_2} + \epsilon_g},$$

per block, with $V_t$ AdaGrad's sum of squares (`grafting_beta2=1`) or Adam's average. Before
`start_preconditioning_step` the grafted method's own step is taken.

## Momentum and decay

$\bar G_t$ is the bias-corrected average of the gradients with $\beta_1$ (not grafted: both directions
use it). The step is $W_t = W_{t-1} - \eta\, P_t$, with decoupled decay ($W \leftarrow (1-\eta\lambda) W$)
or L2 ($G \leftarrow G + \lambda W$ before anything else).

## Blocking, vectors and embeddings

A dimension larger than `max_preconditioner_dim` is cut into blocks of that size, and each block is a
matrix of its own with its own $L$, $R$ and grafting norm: a $50\,000 \times 768$ embedding with
blocks of 1024 becomes 49 blocks of $1024 \times 768$, $O(b^3)$ work per block instead of
$O(50\,000^3)$. Vectors and scalars have no second side: they take the grafted method's step alone
(the reference implementation preconditions a vector with a full $n \times n$ statistic and the
exponent $-1/2$, full-matrix AdaGrad; this class does not: a bias or a norm gain has nothing to gain from it).

## Memory and compute, for an $n \times m$ matrix

State: the gradient average and the grafting accumulator ($2nm$), $L$, $R$ and their roots
($2n^2 + 2m^2$): for a square matrix six times the parameter, three times Adam's state. Each step two
products for the statistics and two for the preconditioning, $\approx 4nm(n+m)$ flops; every
`precondition_frequency` steps two eigendecompositions, $O(n^3 + m^3)$ (about $9n^3$ each).

## Which implementation this follows

[facebookresearch/optimizers](https://github.com/facebookresearch/optimizers)' `DistributedShampoo`
with its default `RootInvShampooPreconditionerConfig` (eigendecomposition, `epsilon` before and after,
`inverse exponent` $1/4$ for matrices), AdaGrad or Adam grafting, `beta3 = beta1`, a step count per
parameter (theirs is per group: the same unless a parameter skips steps). It differs for vectors
(above) and merges the dimensions of a kernel into a matrix as their `merge_small_dims` does with a
target dimensionality of 2.
"""

import math
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.kronecker import dimension_statistic, multiply_dimensions, store_indexed, working_dtype
from .core.options import learning_rate
from .core.validation import check_in_unit_interval, check_non_negative
from .core.weight_decay import WeightDecay
from .soap import check_positive_int


def check_decay_up_to_one(name: str, value: Any) -> None:
    r"""A statistic's decay in $(0, 1]$: $1$ is a running sum (AdaGrad), below $1$ an average."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in (0, 1])")


def matrix_blocks(matrix: torch.Tensor, size: int) -> list[torch.Tensor]:
    r"""The blocks of at most `size` $\times$ `size`, row of blocks by row of blocks; views, not copies."""
    return [block for rows in matrix.split(size, 0) for block in rows.split(size, 1)]


def inverse_root(statistic: torch.Tensor, root: int, eps: float) -> torch.Tensor:
    r"""
    $A^{-1/r}$ of a symmetric positive semi-definite $A$, regularised as the reference does:

    $$A + \epsilon I = Q\,\mathrm{diag}(d)\,Q^\top \qquad
      d \leftarrow d - d_{\min} + \epsilon \text{ if } d_{\min} < \epsilon \qquad
      A^{-1/r} \approx Q\,\mathrm{diag}(d^{-1/r})\,Q^\top$$

    A matrix function, unlike an eigenbasis: where eigenvalues repeat, any choice of eigenvectors gives
    the same result.
    """
    dtype = working_dtype(statistic)
    identity = torch.eye(statistic.shape[0], dtype=dtype, device=statistic.device)
    eigenvalues, eigenvectors = torch.linalg.eigh(statistic.to(dtype) + eps * identity)
    smallest = eigenvalues.min().item() if eigenvalues.numel() else eps
    if smallest < eps:
        eigenvalues = eigenvalues - smallest + eps
    return ((eigenvectors * eigenvalues.pow(-1.0 / root)) @ eigenvectors.T).to(statistic.dtype)


class Shampoo(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The reference's defaults, except grafting, which is on (Adam's) because Shampoo without it needs
    a learning rate tuned for its own, drifting step length.

    * `lr` $\eta$ (default $10^{-2}$). With grafting the step has the grafted method's length: start
      from the learning rate that method would use.
    * `betas` $(\beta_1, \beta_2)$ (default $(0.9, 1.0)$): the gradient average, and the decay of $L, R$
      ($1$ sums as the paper does; $0.999$ averages and is bias-corrected).
    * `eps` $\epsilon$ (default $10^{-12}$), the regularisation of the roots above.
    * `weight_decay` $\lambda$ (default 0), decoupled unless `decoupled_weight_decay=False` (L2).
    * `max_preconditioner_dim` (default 1024): the block size.
    * `precondition_frequency` (default 1): steps between inverse roots; 10 to 100 in practice, where
      the eigendecompositions would otherwise dominate the step.
    * `start_preconditioning_step` (default `None`: `precondition_frequency`): the grafted method alone
      before it, while $L, R$ are still poor estimates.
    * `grafting_beta2` (default $0.999$, Adam's): the grafted method's decay; $1$ is AdaGrad, `None`
      switches grafting off. `grafting_eps` (default $10^{-10}$) is its $\epsilon$.
    * `maximize` ascends the objective instead.
    """

    # Its update works on whole matrices: the element-wise fast path does not apply, and under FSDP2
    # each process gathers the whole matrix ([distributed](core/distributed.md)).
    elementwise = False
    whole_tensors = True

    def __init__(self, params: ParamsT, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 1.0),
                 eps: float = 1e-12, weight_decay: float | WeightDecay = 0.0, max_preconditioner_dim: int = 1024,
                 precondition_frequency: int = 1, start_preconditioning_step: int | None = None,
                 grafting_beta2: float | None = 0.999, grafting_eps: float = 1e-10, *,
                 maximize: bool = False, decoupled_weight_decay: bool = True) -> None:
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas} (expected two values)")
        check_in_unit_interval("beta1", betas[0])
        check_decay_up_to_one("beta2", betas[1])
        check_non_negative("eps", eps)
        check_positive_int("max_preconditioner_dim", max_preconditioner_dim)
        check_positive_int("precondition_frequency", precondition_frequency)
        if start_preconditioning_step is None:
            start_preconditioning_step = precondition_frequency
        check_positive_int("start_preconditioning_step", start_preconditioning_step)
        if grafting_beta2 is not None:
            check_decay_up_to_one("grafting_beta2", grafting_beta2)
        check_non_negative("grafting_eps", grafting_eps)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=decoupled_weight_decay)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, max_preconditioner_dim=max_preconditioner_dim,
            precondition_frequency=precondition_frequency, start_preconditioning_step=start_preconditioning_step,
            grafting_beta2=grafting_beta2, grafting_eps=grafting_eps, maximize=maximize,
            **self.weight_decay.defaults(),
        ))

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The gradient average and the grafting accumulator have the parameter's shape; $L$, $R$ and
        their roots are one matrix per block $k$ (rows of blocks first), `left_k`, `right_k`,
        `left_inv_root_k`, `right_inv_root_k`. The roots start as
        the identity, so a step before the first root is computed is the averaged gradient itself.
        """
        state["step"] = 0
        if group["betas"][0] > 0:
            state["filtered_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["grafting_beta2"] is not None:
            state["grafting_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if param.ndim >= 2:
            blocks = matrix_blocks(self.as_matrix(param), group["max_preconditioner_dim"])
            for side, size_of in (("left", lambda b: b.shape[0]), ("right", lambda b: b.shape[1])):
                store_indexed(state, side, [param.new_zeros(size_of(b), size_of(b)) for b in blocks])
                store_indexed(state, f"{side}_inv_root", [torch.eye(size_of(b), dtype=param.dtype) for b in blocks])

    @staticmethod
    def as_matrix(tensor: torch.Tensor) -> torch.Tensor:
        r"""(first dimension) $\times$ (all the others): a linear layer as it is, a kernel per output channel."""
        return tensor.reshape(tensor.shape[0], math.prod(tensor.shape[1:]))

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                   param: torch.Tensor) -> None:
        r"""
        ### One Shampoo step

        The decay first (L2 changes the gradient every statistic sees), then the statistics, the
        averaged gradient, the grafted and the Shampoo directions, and the step.
        """
        # Statistics summed in memory order, as in [SOAP](soap.md): a transposed gradient gives the
        # same bits as its contiguous copy.
        grad = self.weight_decay(param, grad.contiguous(), group)
        state["step"] += 1
        step = state["step"]
        beta1 = group["betas"][0]
        # $$\tilde G_t = \beta_1 \tilde G_{t-1} + (1-\beta_1)\,G_t \qquad \bar G_t = \tilde G_t/(1-\beta_1^t)$$
        averaged = grad
        if beta1 > 0:
            averaged = state["filtered_grad"].lerp_(grad, 1 - beta1) / (1 - beta1**step)
        grafted = self.grafted_direction(state, group, grad, averaged)
        if param.ndim < 2:
            # A vector: the grafted method alone (or the averaged gradient without grafting).
            direction = averaged if grafted is None else grafted
        else:
            direction = self.shampoo_direction(state, group, grad, averaged, grafted)
        # $$W_t = W_{t-1} - \eta\,P_t$$
        param.add_(direction.view_as(param), alpha=-learning_rate(group, param))

    def grafted_direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                          averaged: torch.Tensor) -> torch.Tensor | None:
        r"""
        $$V_t = \beta_g V_{t-1} + w_g\, G_t^2 \qquad
          P^{\text{graft}}_t = \frac{\bar G_t}{\sqrt{V_t/c^g_2} + \epsilon_g}$$
        with $w_g = 1$ and $c^g_2 = 1$ for AdaGrad ($\beta_g = 1$), $w_g = 1-\beta_g$ and
        $c^g_2 = 1-\beta_g^t$ for Adam.
        """
        beta = group["grafting_beta2"]
        if beta is None:
            return None
        squares = state["grafting_sq"]
        if beta < 1:
            squares.mul_(beta).addcmul_(grad, grad, value=1 - beta)
            correction = 1 - beta ** state["step"]
        else:
            squares.addcmul_(grad, grad)
            correction = 1.0
        return averaged / (squares / correction).sqrt_().add_(group["grafting_eps"])

    def shampoo_direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                          averaged: torch.Tensor, grafted: torch.Tensor | None) -> torch.Tensor:
        r"""
        ### The statistics, the roots when due, and the preconditioned, grafted blocks

        Returns the direction as a matrix; blocks are views into it, so writing a block writes the
        direction.
        """
        step = state["step"]
        beta2 = group["betas"][1]
        size = group["max_preconditioner_dim"]
        start = group["start_preconditioning_step"]
        # $w = 1$ for a sum, $1-\beta_2$ for an average, which then needs $c_2 = 1-\beta_2^t$.
        weight, correction = (1.0, 1.0) if beta2 == 1 else (1 - beta2, 1 - beta2**step)
        compute_roots = (step % group["precondition_frequency"] == 0 and step > start) or step == start
        grad_blocks = matrix_blocks(self.as_matrix(grad), size)
        for index, block in enumerate(grad_blocks):
            for dim, side in enumerate(("left", "right")):
                # $$L_t = \beta_2 L_{t-1} + w\,G G^\top \qquad R_t = \beta_2 R_{t-1} + w\,G^\top G$$
                statistic = state[f"{side}_{index}"]
                statistic.mul_(beta2).add_(dimension_statistic(block, dim), alpha=weight)
                if compute_roots:
                    # $$L^{-1/4} \text{ of } L_t/c_2$$
                    state[f"{side}_inv_root_{index}"] = inverse_root(statistic / correction, 4, group["eps"])
        direction = self.as_matrix(averaged).clone()
        graft_blocks = matrix_blocks(self.as_matrix(grafted), size) if grafted is not None else None
        for index, block in enumerate(matrix_blocks(direction, size)):
            if graft_blocks is not None and step < start:
                # Before the roots are trusted: the grafted method's own step.
                block.copy_(graft_blocks[index])
                continue
            # $$P_t = L_t^{-1/4}\,\bar G_t\,R_t^{-1/4}$$
            roots = (state[f"left_inv_root_{index}"], state[f"right_inv_root_{index}"])
            preconditioned = multiply_dimensions(block, roots)
            if graft_blocks is not None:
                # $$P_t \leftarrow \lVert P^{\text{graft}}_t\rVert / (\lVert P_t\rVert + 10^{-16})\; P_t$$
                preconditioned.mul_(graft_blocks[index].norm() / (preconditioned.norm() + 1e-16))
            block.copy_(preconditioned)
        return direction

