r"""
# PSGD Kron: a Kronecker-factored preconditioner fitted by its own gradient step

Xi-Lin Li's preconditioned SGD ([Li, 2015](https://arxiv.org/abs/1512.04202); [Li, 2018, Kronecker
factors](https://arxiv.org/abs/1809.10232)) does not *compute* a preconditioner from statistics, as
[Shampoo](shampoo.md) does with its inverse roots; it *learns* one. The preconditioner $P = Q^\top Q$
is a parameter of its own, and every so often it takes a gradient step on a criterion whose minimum
is the preconditioner we want. "Kron" is the version with $Q = Q_L \otimes Q_R$, one triangular factor
per side of a weight matrix, as packaged by Evan Walters (`kron-torch`).

```algorithm
\hat m_t = \frac{\beta\, m_{t-1} + (1-\beta)\, g_t}{1-\beta^t} @ debiased = momentum_buffer / (1 - beta**step)
\textcolor{orange}{\text{every } \lceil 1/p_t\rceil \text{ steps:}}\;
  Q_i \leftarrow Q_i - \eta_Q\,
  \frac{\mathrm{triu}(A_{(i)}A_{(i)}^\top - B_{(i)}B_{(i)}^\top)}
  {\lVert A_{(i)}A_{(i)}^\top + B_{(i)}B_{(i)}^\top\rVert}\, Q_i
  @ factor.sub_(torch.triu(difference) @ factor * (precond_lr / scale))
u_t = \mathrm{clip}\big(Q_L^\top Q_L\, \hat m_t\, Q_R^\top Q_R\big)
  @ direction = self.precondition(factors, debiased)
\theta_t = (1-\eta\lambda)\,\theta_{t-1} - \eta\, u_t @ param.add_(direction.view_as(param), alpha=-lr)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$, $g_t$ | `param`, `grad` | the parameter and its gradient |
| $m_t$, $\hat m_t$ | `momentum_buffer`, `debiased` | the average of the gradients, and debiased |
| $\beta$ | `beta` | its decay |
| $Q$ | `factors` | $Q_L, Q_R$, kept as `preconditioner_0` and `_1` (upper triangular, or diagonal) |
| $Q_i$ | `factor` | one of them |
| $A$ | `whitened` | the probe gradient seen through $Q$, $Q_L \tilde m\, Q_R^\top$ |
| $B$ | `conjugate` | the noise seen through $Q^{-\top}$, $Q_L^{-\top} V Q_R^{-1}$ |
| $V$ | `noise` | a standard normal probe |
| $\eta_Q$ | `precond_lr` | the step size of the preconditioner's own descent |
| $p_t$ | `probability` | the probability of updating the preconditioner at step $t$ |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the decoupled weight decay, of matrices |
| $u_t$ | `direction` | the preconditioned, clipped step |

## The geometry: what $P$ should be, and a criterion that finds it

For a gradient $g$ with second moment $\mathbb{E}[g g^\top]$, the preconditioner of full-matrix
AdaGrad, and of Shampoo's approximation, is $P = \mathbb{E}[g g^\top]^{-1/2}$. PSGD gets it as the
minimiser of

$$c(P) = \mathbb{E}\big[g^\top P\, g + v^\top P^{-1} v\big], \qquad v \sim \mathcal{N}(0, I),$$

whose gradient in $P$ vanishes where $P\,\mathbb{E}[g g^\top]\,P = \mathbb{E}[v v^\top] = I$. No root,
no eigendecomposition: $c$ is minimised by gradient steps, one per preconditioner update, on
$P = Q^\top Q$ with $Q$ upper triangular (a group under multiplication, so the step can be taken
*relative* to $Q$, $Q \leftarrow Q - \eta_Q\, \nabla\, Q$, and $Q$ stays triangular and invertible).
With $A = Q g$ and $B = Q^{-\top} v$ the relative gradient is $\mathrm{triu}(A A^\top - B B^\top)$; at the
fixed point the two terms balance.

For a weight matrix, $Q = Q_L \otimes Q_R$ makes $A = Q_L G Q_R^\top$ and $B = Q_L^{-\top} V Q_R^{-1}$ two
$n \times m$ matrices, and the gradient for each factor is the contraction of $A A^\top - B B^\top$ over
the other side: $A A^\top - B B^\top$ for $Q_L$ ($n \times n$), $A^\top A - B^\top B$ for $Q_R$. The step is
divided by a cheap lower bound of the spectral norm of $A A^\top + B B^\top$ (one step of power
iteration from its largest column), which makes $\eta_Q = 0.1$ a step size that needs no tuning: the
fit is scale-free. Preconditioning applies $P = Q_L^\top Q_L \otimes Q_R^\top Q_R$ to the debiased
momentum, $Q_L^\top Q_L\, \hat m_t\, Q_R^\top Q_R$, and the step's RMS is clipped to $1.1$ (so the
learning rate is about Adam's, a little smaller: the default is $3\times 10^{-4}$).

**The probe.** Here $g$ is the debiased momentum (the package's default,
`momentum_into_precond_update=True`) plus a tiny perturbation,
$\tilde m = \hat m_t + \sqrt{\epsilon_{32}}\,\mathrm{mean}|\hat m_t|\, V$, with the same $V$ as the
noise ($\epsilon_{32} = 2^{-23}$, `float32`'s epsilon, whatever the dtype): it keeps $A A^\top$ of full
rank when the momentum is not. The package adds it to $\hat m_t$ *in place*, so on the steps that
update the preconditioner the weights move along the perturbed momentum too; this class does the same.

**Balancing.** $Q_L \otimes Q_R = (c Q_L) \otimes (Q_R / c)$: the factors can drift apart in scale
while their product stays put. Before each update the factors are rescaled to equal largest
entries (their geometric mean). This changes no product and, since the update is equivariant to it,
no later step either, only rounding; the package balances at random, at about one update in 100.

## The update probability and its schedule

Fitting $Q$ costs more than using it (two triangular solves and four products per factor), but $Q$
changes slowly once it has been fitted. The preconditioner is therefore updated with a probability

$$p_t = \mathrm{clip}\big(p_{\max}\, e^{-\delta\,(t - 1 - t_0)},\; p_{\min},\; p_{\max}\big),$$

$1$ for the first $t_0 = 500$ steps, then decaying to $p_{\min} = 0.03$ by step $\approx 4000$ (with
$\delta = 0.001$). "Probability" is the package's word: the draw is deterministic, a counter that
updates when it reaches $1/p_t$, so every $\lceil 1/p_t\rceil$ steps (34 once $p_t = 0.03$).

## Memory and compute, for an $n \times m$ matrix

State: the momentum ($nm$) and the two factors ($n^2 + m^2$, kept as full matrices although only
the upper triangles are used): three times the parameter for a square matrix, Adam's two plus one.
Measured in `float32` (`scripts/matrix_costs.py`): 12 MiB for $1024 \times 1024$ (Adam's 8), 84 MiB
for $4096 \times 1024$ (Adam's 32): the $4096^2$ factor dominates; `max_size_triangular` below 4096
would make it a vector. Each step preconditions with four matrix products, $\approx 4nm(n+m)$ flops;
an update adds the products with $Q$, two triangular solves, the four contractions and the products
$\nabla Q_i$, $O(n^3 + m^3 + nm(n+m))$. Measured on one CPU thread of a busy shared machine: a step
that updates costs 1.1 s for $1024 \times 1024$, 13 s for $4096 \times 1024$; one that does not, about
0.36 s and 0.5 s (Adam: 33 ms and 185 ms). With $p = 0.03$ the average is close to the second.

## Vectors, kernels and embeddings

A tensor of more than two dimensions is seen as a matrix, merging either all leading dimensions
or all trailing ones (whichever gives the squarer shape, as the package does). A vector (or a
scalar, a vector of one) has a *diagonal* factor: an element-wise preconditioner fitted by the same
criterion, $q \leftarrow q - \eta_Q\,(a^2 - b^2)\, q / \lVert a^2 + b^2\rVert_\infty$. So does every
dimension larger than `max_size_triangular` (8192): a $50\,000 \times 768$ embedding gets a diagonal
factor for its vocabulary and a triangular $768 \times 768$ one for its model dimension. Weight decay
is applied to matrices only, as in the package.

## How it differs from the package

It follows `kron.py` of [evanatyourservice/kron_torch](https://github.com/evanatyourservice/kron_torch)
(`kron-torch` 0.3.3) with its defaults, including its quirks (the perturbed momentum, the update and
the clip, the decay of matrices only). Differences: the factors are kept in the parameter's dtype
and fitted in it (`float32` for half precisions; the package fits in `float32` always, and solves its
triangular systems in `float32` even when asked for `float64`); the noise $V$ is drawn from a
generator seeded with the step count rather than from torch's global generator, so a run is
reproducible and a checkpoint continues bit-identically; the update schedule counts each parameter's
own steps (the package counts the optimizer's, the same unless a parameter skips steps); balancing is
deterministic (above). Left out: `memory_save_mode`, `merge_dims=False`, fitting on raw gradients,
`mu_dtype` and `precond_dtype`.
"""

import math
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.kronecker import dimension_statistic, working_dtype
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_in_unit_interval, check_non_negative
from .core.weight_decay import WeightDecay
from .soap import check_positive_int

# The size of the probe's perturbation, relative to the momentum's mean magnitude: $\sqrt{\epsilon}$ of
# `float32`, in every dtype.
PERTURBATION = math.sqrt(torch.finfo(torch.float32).eps)
# The step's RMS is clipped to this.
MAX_UPDATE_RMS = 1.1


def matrix_shape(shape: torch.Size) -> tuple[int, ...]:
    r"""
    The shape the preconditioner sees: a scalar as a vector of one, a vector or a matrix as it is, a
    tensor of more dimensions as a matrix, (leading) $\times$ (last) or (first) $\times$ (trailing),
    whichever has the smaller excess of columns over rows (the package's rule).
    """
    if len(shape) == 0:
        return (1,)
    if len(shape) <= 2:
        return tuple(shape)
    leading = (math.prod(shape[:-1]), shape[-1])
    trailing = (shape[0], math.prod(shape[1:]))
    return leading if leading[1] - leading[0] <= trailing[1] - trailing[0] else trailing


def along(dim: int, tensor: torch.Tensor, apply: Any) -> torch.Tensor:
    r"""
    Apply `apply` to the unfolding of `tensor` whose rows are indexed by dimension `dim` (for a matrix:
    the matrix itself for `dim=0`, its transpose for `dim=1`), and fold the result back.
    """
    moved = tensor.movedim(dim, 0)
    return apply(moved.reshape(moved.shape[0], -1)).reshape(moved.shape).movedim(0, dim)


def spectral_norm_lower_bound(matrix: torch.Tensor, largest_entry: torch.Tensor) -> torch.Tensor:
    r"""
    A cheap lower bound of $\lVert S\rVert_2$ for a symmetric $S$: start from its column of largest
    norm, $x = S e_j$, and take one power-iteration step, $\lVert S\, (S x)/\lVert S x\rVert\rVert$
    (computed on $S$ divided by its largest entry, so that the squares cannot overflow).
    """
    scaled = matrix / largest_entry
    column = scaled[:, torch.argmax((scaled * scaled).sum(0))]
    direction = scaled.T @ column
    return (scaled @ (direction / direction.norm())).norm() * largest_entry


class Kron(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The package's defaults.

    * `lr` $\eta$ (default $3\times 10^{-4}$): the step's RMS is at most $1.1\,\eta$; start from a third of
      Adam's tuned learning rate.
    * `momentum` $\beta$ (default 0.9): the decay of the debiased gradient average (the package's `b1`).
    * `weight_decay` $\lambda$ (default 0): decoupled, for matrices only.
    * `precond_lr` $\eta_Q$ (default 0.1): the preconditioner's step size, scale-free; rarely tuned.
    * `precond_init_scale` (default 1): $Q$ starts as this times the identity (shared by the factors).
    * `max_size_triangular` (default 8192): a larger dimension gets a diagonal factor.
    * `min_ndim_triangular` (default 2): tensors of fewer dimensions get diagonal factors only.
    * `update_prob_max`, `update_prob_min`, `update_prob_decay`, `update_prob_flat_start` (defaults
      $1$, $0.03$, $0.001$, $500$): the schedule of $p_t$ above. `update_prob_min=1` updates at every step.
    * `maximize` ascends the objective instead.
    """

    # Its update works on whole matrices: the element-wise fast path does not apply, and under FSDP2
    # each process gathers the whole matrix ([distributed](core/distributed.md)).
    elementwise = False
    whole_tensors = True

    def __init__(self, params: ParamsT, lr: float = 3e-4, momentum: float = 0.9, weight_decay: float = 0.0,
                 precond_lr: float = 0.1, precond_init_scale: float = 1.0, max_size_triangular: int = 8192,
                 min_ndim_triangular: int = 2, update_prob_max: float = 1.0, update_prob_min: float = 0.03,
                 update_prob_decay: float = 0.001, update_prob_flat_start: int = 500, *,
                 maximize: bool = False) -> None:
        check_in_unit_interval("momentum", momentum)
        check_non_negative("precond_lr", precond_lr)
        if not precond_init_scale > 0:
            raise ValueError(f"Invalid precond_init_scale: {precond_init_scale} (must be > 0)")
        check_positive_int("max_size_triangular", max_size_triangular)
        check_positive_int("min_ndim_triangular", min_ndim_triangular)
        check_non_negative("update_prob_decay", update_prob_decay)
        check_non_negative("update_prob_flat_start", update_prob_flat_start)
        for name, probability in (("update_prob_max", update_prob_max), ("update_prob_min", update_prob_min)):
            if not 0.0 < probability <= 1.0:
                raise ValueError(f"Invalid {name}: {probability} (must be in (0, 1])")
        if update_prob_min > update_prob_max:
            raise ValueError(f"Invalid update_prob_min: {update_prob_min} (must be <= update_prob_max)")
        # The package adds $\lambda\theta_{t-1}$ to the preconditioned step: decoupled decay.
        self.weight_decay = WeightDecay(weight_decay, weight_decouple=True)
        super().__init__(params, dict(
            lr=lr, momentum=momentum, precond_lr=precond_lr, precond_init_scale=precond_init_scale,
            max_size_triangular=max_size_triangular, min_ndim_triangular=min_ndim_triangular,
            update_prob_max=update_prob_max, update_prob_min=update_prob_min, update_prob_decay=update_prob_decay,
            update_prob_flat_start=update_prob_flat_start, maximize=maximize, **self.weight_decay.defaults(),
        ))

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The momentum, in the parameter's shape; one factor per dimension of the matrix view, an
        upper-triangular matrix (starting as a multiple of $I$) or a diagonal kept as a vector; and
        `steps_since_update`, the counter behind the update probability.
        """
        state["step"] = new_step_count(group, param)
        state["steps_since_update"] = 0
        state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        shape = matrix_shape(param.shape)
        # Each factor gets the $k$-th root of the initial scale, so that their product has it.
        scale = group["precond_init_scale"] ** (1 / len(shape))
        for dim, size in enumerate(shape):
            diagonal = size == 1 or size > group["max_size_triangular"] or len(shape) < group["min_ndim_triangular"]
            identity = param.new_ones(size) if diagonal else torch.eye(size, dtype=param.dtype, device=param.device)
            state[f"preconditioner_{dim}"] = identity.mul_(scale)

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor,
                   param: torch.Tensor) -> None:
        r"""
        ### One Kron step

        Momentum, perhaps an update of the preconditioner, the preconditioned and clipped step, decay.
        """
        beta = group["momentum"]
        step = advance(state)
        # $$m_t = \beta m_{t-1} + (1-\beta)\, g_t$$
        momentum_buffer = state["momentum_buffer"].lerp_(grad, 1 - beta)
        due = self.preconditioner_is_due(state, group, step)
        if param.numel() == 0:
            return
        shape = matrix_shape(param.shape)
        dtype = working_dtype(param)
        factors = [state[f"preconditioner_{dim}"].to(dtype) for dim in range(len(shape))]
        # $$\hat m_t = m_t / (1-\beta^t)$$, seen as a vector or a matrix.
        debiased = momentum_buffer / (1 - beta**step)
        debiased = debiased.reshape(shape).to(dtype)

        if due:
            debiased = self.update_preconditioner(factors, debiased, group["precond_lr"], step)
            for dim, factor in enumerate(factors):
                state[f"preconditioner_{dim}"].copy_(factor)

        # $$u_t = Q_L^\top Q_L\, \hat m_t\, Q_R^\top Q_R$$
        direction = self.precondition(factors, debiased)
        # The step's RMS clipped to $1.1$: $u_t \leftarrow u_t \min(1, 1.1/\mathrm{RMS}(u_t))$.
        direction.mul_(torch.clamp(MAX_UPDATE_RMS / (direction.square().mean().sqrt() + 1e-12), max=1.0))
        # $$\theta_t = (1-\eta\lambda)\,\theta_{t-1} - \eta\, u_t$$, the decay for matrices only.
        if param.ndim >= 2:
            self.weight_decay(param, grad, group)
        lr = learning_rate(group, param)
        param.add_(direction.view_as(param), alpha=-lr)

    @staticmethod
    def preconditioner_is_due(state: dict[str, Any], group: dict[str, Any], step: float) -> bool:
        r"""
        $$p_t = \mathrm{clip}\big(p_{\max}\, e^{-\delta\,(t - 1 - t_0)},\; p_{\min},\; p_{\max}\big)$$
        and the package's deterministic draw: count the steps, update when the count reaches $1/p_t$.
        """
        probability = group["update_prob_max"] * math.exp(
            -group["update_prob_decay"] * (step - 1 - group["update_prob_flat_start"]))
        probability = min(max(probability, group["update_prob_min"]), group["update_prob_max"])
        state["steps_since_update"] += 1
        if state["steps_since_update"] < 1 / probability:
            return False
        state["steps_since_update"] = 0
        return True

    def update_preconditioner(self, factors: list[torch.Tensor], debiased: torch.Tensor, precond_lr: float,
                              step: float) -> torch.Tensor:
        r"""
        ### One gradient step on the criterion, for every factor

        Returns the perturbed momentum $\tilde m$, which the step then preconditions (the package's
        in-place perturbation). `factors` are updated in place.
        """
        balance(factors)
        # $V$, from a generator seeded with the step count: the same probe after a checkpoint. Drawn in
        # `float32` in every dtype, since torch draws other numbers for other dtypes from one seed.
        generator = torch.Generator(device=debiased.device).manual_seed(int(step))
        noise = torch.randn(debiased.shape, generator=generator, device=debiased.device).to(debiased.dtype)
        # $$\tilde m = \hat m_t + \sqrt{\epsilon_{32}}\;\mathrm{mean}|\hat m_t|\; V$$
        perturbed = debiased + PERTURBATION * debiased.abs().mean() * noise
        # $$A = Q_L \tilde m\, Q_R^\top \qquad B = Q_L^{-\top} V Q_R^{-1}$$
        whitened, conjugate = perturbed, noise
        for dim, factor in enumerate(factors):
            whitened = along(dim, whitened, lambda rows, q=factor: q[:, None] * rows if q.ndim == 1 else q @ rows)
            conjugate = along(dim, conjugate, lambda rows, q=factor: rows / q[:, None] if q.ndim == 1 else
                              torch.linalg.solve_triangular(q.T, rows, upper=False))
        tiny = torch.finfo(debiased.dtype).tiny
        for dim, factor in enumerate(factors):
            if factor.ndim == 1:
                # A diagonal factor: the diagonals of the contractions, $\sum_{\text{others}} A^2 - B^2$.
                others = [d for d in range(whitened.ndim) if d != dim]
                whitened_sq = whitened.square().sum(others) if others else whitened.square()
                conjugate_sq = conjugate.square().sum(others) if others else conjugate.square()
                # $$q \leftarrow q - \eta_Q\, \frac{a^2 - b^2}{\lVert a^2 + b^2\rVert_\infty}\, q$$
                scale = torch.clamp((whitened_sq + conjugate_sq).abs().max(), min=tiny)
                factor.sub_((whitened_sq - conjugate_sq) * factor * (precond_lr / scale))
                continue
            # $A_{(i)} A_{(i)}^\top$ and $B_{(i)} B_{(i)}^\top$: $A A^\top$ for $Q_L$, $A^\top A$ for $Q_R$.
            whitened_stat = dimension_statistic(whitened, dim)
            conjugate_stat = dimension_statistic(conjugate, dim)
            difference = whitened_stat - conjugate_stat
            total = whitened_stat + conjugate_stat
            largest = total.abs().max()
            scale = spectral_norm_lower_bound(total, largest) if largest > 0 else largest
            scale = torch.clamp(scale, min=tiny)
            # $$Q_i \leftarrow Q_i - \eta_Q\,
            #   \frac{\mathrm{triu}(A A^\top - B B^\top)}{\lVert A A^\top + B B^\top\rVert}\, Q_i$$
            factor.sub_(torch.triu(difference) @ factor * (precond_lr / scale))
        return perturbed

    @staticmethod
    def precondition(factors: list[torch.Tensor], momentum: torch.Tensor) -> torch.Tensor:
        r"""$Q_L^\top Q_L\, \hat m\, Q_R^\top Q_R$: dimension $i$ multiplied by $Q_i^\top Q_i$ (by $q_i^2$)."""
        for dim, factor in enumerate(factors):
            momentum = along(dim, momentum, lambda rows, q=factor: q[:, None] ** 2 * rows if q.ndim == 1 else
                             q.T @ (q @ rows))
        return momentum


def balance(factors: list[torch.Tensor]) -> None:
    r"""
    Rescale the factors, in place, so that their largest entries all equal their geometric mean: the
    product $Q_L \otimes Q_R$ is unchanged, and no factor drifts towards overflow while another
    drifts towards underflow.
    """
    if len(factors) < 2:
        return
    largest = torch.stack([factor.abs().max() for factor in factors])
    geometric_mean = largest.log().mean().exp()
    for factor, entry in zip(factors, largest):
        factor.mul_(geometric_mean / entry)
