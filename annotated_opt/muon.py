r"""
# Muon: orthogonalised momentum for the hidden matrices

[Muon](https://kellerjordan.github.io/posts/muon/) (Keller Jordan et al., 2024) treats a weight
matrix as a linear map rather than as a bag of numbers. It keeps SGD's momentum and replaces each
update $B$ by the nearest **semi-orthogonal** matrix: with the singular value decomposition
$B = U\Sigma V^\top$, the update becomes $UV^\top$, every singular value set to one. The directions
of the update are kept; how strongly each direction is pushed is made equal. In a momentum matrix of
a transformer a few directions dominate (the singular values fall off steeply); orthogonalising
boosts the rare directions that carry little of the norm but matter for learning.
[Moonshot AI](https://arxiv.org/abs/2502.16982) scaled it to a 16B-parameter language model at
about half the compute of AdamW.

$$
\begin{aligned}
B_t &= \mu\, B_{t-1} + (1-\mu)\, G_t \\
\tilde B_t &= \begin{cases} (1-\mu)\, G_t + \mu\, B_t & \text{Nesterov} \\ B_t & \text{otherwise} \end{cases} \\
O_t &= \mathrm{NS}_5(\tilde B_t) \approx U V^\top \quad\text{where } \tilde B_t = U\Sigma V^\top \\
\theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \eta\, \rho(A, B)\; O_t
\end{aligned}
$$

($B$ is `momentum_buffer`; $\rho$ is the shape-dependent learning-rate adjustment below.)

```algorithm
B_t = \mu\, B_{t-1} + \textcolor{orange}{(1-\mu)}\, G_t  @ buffer.lerp_(grad, 1 - momentum)
\tilde B_t = \textcolor{orange}{(1-\mu)}\, G_t + \mu\, B_t \ \text{(Nesterov)}, \quad \text{else } \tilde B_t = B_t
    @ update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
\textcolor{orange}{O_t = \mathrm{NS}_k(\tilde B_t) \approx U V^\top}
    @ orthogonal = orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"],
\textcolor{orange}{\mathrm{NS}_k\!: \ X \leftarrow aX + (bA + cA^2)X, \ A = XX^\top, \ k \text{ times from }
    X = \tilde B_t / \max(\lVert\tilde B_t\rVert_F, \epsilon)}
    @ x = torch.addmm(x, polynomial, x, beta=a)
\theta \leftarrow (1 - \eta\lambda)\,\theta \quad \text{(decoupled decay, with the unadjusted } \eta\text{)}
    @ self.weight_decay(param, grad, group)
\theta_t = \theta - \eta\, \textcolor{orange}{\rho}\, \textcolor{orange}{O_t}
    @ param.add_(orthogonal, alpha=-step_size)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter, a matrix |
| $G_t$ | `grad` | the gradient |
| $B_t, \tilde B_t$ | `buffer`, `update` | the momentum buffer (`momentum_buffer`), and what is orthogonalised |
| $\mu$ | `momentum` | the momentum |
| $O_t$ | `orthogonal` | the orthogonalised update, $\approx UV^\top$ |
| $X$ | `x` | the iterate of the Newton–Schulz iteration |
| $a, b, c$ | `a`, `b`, `c` | its coefficients (`ns_coefficients`) |
| $k$ | `ns_steps` | its number of steps |
| $\rho$ | `lr_adjustment` | the shape-dependent factor on the learning rate (`adjust_lr_fn`) |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |
| $\epsilon$ | `eps` | guards the normalisation of an all-zero update |

## Why five matrix products approximate $UV^\top$

Computing an SVD at every step would be slow (and does not run well in `bfloat16`). The trick is that
odd matrix polynomials act on the singular values alone. For $X = U S V^\top$,

$$X X^\top X = U S V^\top V S U^\top U S V^\top = U S^3 V^\top,$$

so with $A = X X^\top$ the quintic step

$$X \;\leftarrow\; aX + b\,AX + c\,A^2X = U\,\big(aS + bS^3 + cS^5\big)\,V^\top = U\, p(S)\, V^\top$$

keeps $U$ and $V$ and applies the scalar polynomial $p(s) = as + bs^3 + cs^5$ to every singular
value separately. Iterating it $k$ times applies $p^{\circ k}$. If the iterates of $p$ drive every
$s \in (0, 1]$ towards 1, then $X_k \to U\,\mathrm{I}\,V^\top = UV^\top$. The input is first divided by
its Frobenius norm, $\|X\|_F = \sqrt{\sum s_i^2} \ge s_{\max}$, so that every singular value starts
in $(0, 1]$, where the polynomial is designed to work. (Only two small products per step: $A$ is
$n \times n$ for the *shorter* side $n$, which is why a tall matrix is transposed first.)

## What the coefficients trade

The classical choice makes $1$ a fixed point of high order: $p(1) = 1$, $p'(1) = p''(1) = 0$ gives
$(a, b, c) = (\tfrac{15}{8}, -\tfrac{10}{8}, \tfrac38)$, the quintic Newton–Schulz iteration, which
converges to *exactly* one, very fast once near it. Its weakness is at the other end: near zero
$p(s) \approx a s$, so a small singular value grows only by $a = 1.875$ per step, and the smallest
singular values of a gradient ($10^{-3}$ of the largest, after normalisation, is common) need a dozen
steps to reach one.

Muon's coefficients, $(a, b, c) = (3.4445, -4.7750, 2.0315)$, were tuned to maximise the slope $a$
at zero while keeping the iterates bounded: small singular values grow $3.4\times$ per step
($3.4^5 \approx 480\times$ in five steps, so a singular value above about $1/500$ of the norm
reaches the band below; a smaller one is lifted but not yet to it). The price is that $1$ is no longer a fixed point,
$p(1) = a + b + c = 0.70$: the large singular values do not converge but oscillate in a band,
roughly $[0.7, 1.2]$, so $\mathrm{NS}_5$ returns $U S' V^\top$ with $S'$ near, not at, the identity.
Jordan found that this costs nothing in training quality, while five steps of the classical
iteration would leave the small directions far from one. The figure on this page shows $p^{\circ 5}$
for the three coefficient sets; torch's test list also uses $(3.4, -4.7, 2.0)$.

## The learning-rate adjustments

An orthogonal update has a fixed size: an $A \times B$ semi-orthogonal matrix has $\min(A, B)$
singular values equal to one, so its entries have root mean square $1/\sqrt{\max(A, B)}$. The
adjustment $\rho(A, B)$ (`adjust_lr_fn`, where $A$ is the number of rows, the output dimension of a
linear layer) sets what that size should be:

* `"original"` (the default, Jordan's): $\rho = \sqrt{\max(1, A/B)}$. Wide and square matrices take
  $O_t$ as it is; a tall one ($A > B$) is scaled up so that the update's spectral norm is
  $\sqrt{A/B}$, the scale that keeps the change of a layer's output per unit of input the same for
  every shape. Tuned learning rates are around $0.02$.
* `"match_rms_adamw"` (Moonshot's): $\rho = 0.2\sqrt{\max(A, B)}$, which makes the update's root mean
  square $0.2$ for every shape, the typical RMS of an AdamW update. Then Muon can reuse the learning
  rate and weight decay tuned for AdamW.

Weight decay is decoupled and uses the **unadjusted** $\eta$: $\theta \leftarrow (1-\eta\lambda)\theta$.
(Torch's documentation calls it an L2 penalty; the code decays the weights directly, as here.)

## Nesterov and the momentum convention

The buffer is an exponential moving average, $B_t = \mu B_{t-1} + (1-\mu) G_t$, not SGD's sum
$\mu B_{t-1} + G_t$ (torch's docstring shows the sum; its code, like Jordan's, the average). The
scale does not matter, since orthogonalisation removes it. Nesterov's look-ahead (the default)
orthogonalises $(1-\mu)G_t + \mu B_t$: the average as it will be if the next gradient equals this
one, which reacts faster to a change of direction, as [NAdam](nadam.md) does for Adam.

## Only the hidden matrices

Orthogonalisation is meaningful for a matrix that maps one hidden space to another. The embedding
(a lookup table, whose rows are used one at a time), the output head (whose rows are per-class
scores), and every vector (biases, norm gains) are trained with AdamW instead; torch's `Muon` refuses
anything that is not 2-d. `split_for_muon` divides a model's parameters that way, and the recipe is
two optimizers stepped together:

```python
hidden, rest = split_for_muon(model)
muon = Muon(hidden, lr=0.02, momentum=0.95, weight_decay=0.01)
adamw = AdamW(rest, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.01)
...
loss.backward()
muon.step(); adamw.step()
muon.zero_grad(); adamw.zero_grad()
```

(With `adjust_lr_fn="match_rms_adamw"`, Muon takes AdamW's learning rate and decay.) A convolution
kernel would need flattening to a matrix first; torch's `Muon` does not, so `split_for_muon` leaves it to AdamW.

## Matching `torch.optim.Muon`

Torch runs the iteration in `bfloat16`, whatever the parameter's dtype, as Jordan's code does: the
update has `bfloat16` precision (about $10^{-3}$ relative) even for a `float64` model. This class
does the same by default, so it equals torch to the bit; `ns_dtype=torch.float32` (not in torch) runs
the iteration in single precision. Torch keeps no step count for Muon, and neither does this class.

State: the momentum buffer, one tensor the size of the parameter (4 bytes per `float32` parameter);
compute: $5 \times 2$ matrix products of sizes $n \times m \times n$ and $n \times n \times m$ per step
and matrix ($n \le m$ its sides), about $10\,n^2 m$ multiply-adds, far more than an element-wise optimizer but small
next to a forward and backward pass at a realistic batch size.
"""

import math
from typing import Any

import torch
from torch import nn

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.validation import check_count, check_non_negative, check_passed_on, check_unpacks
from .core.weight_decay import WeightDecay

# Jordan's coefficients, torch's defaults: the largest slope at zero that keeps the iterates bounded.
MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
# The classical quintic Newton–Schulz iteration: $p(1) = 1$, $p'(1) = p''(1) = 0$.
NEWTON_SCHULZ_COEFFICIENTS = (15 / 8, -10 / 8, 3 / 8)
ADJUSTMENTS = ("original", "match_rms_adamw")


# The options of the iteration and of the step size, in the order `check_iteration_options` takes them.
ITERATION_OPTIONS = ("ns_coefficients", "ns_steps", "eps", "adjust_lr_fn")


def check_iteration_options(ns_coefficients: Any, ns_steps: Any, eps: Any, adjust_lr_fn: Any) -> None:
    r"""
    torch checks the iteration only when it first steps, and only as far as it must: three coefficients
    and fewer than 100 steps, as a `range` takes them. The same checks, with the same exceptions, run
    here when a group is made, where a mistake is easier to find. Anything else is the iteration's to
    take (but NaN, refused everywhere in this library): a negative count runs no step, a negative
    $\epsilon$ never clamps, infinite coefficients give torch's non-finite update. `adjust_lr_fn` is
    checked as torch's constructor checks it.
    """
    check_unpacks("ns_coefficients", ns_coefficients, 3)
    for index, coefficient in enumerate(ns_coefficients):
        check_passed_on(f"ns_coefficients[{index}]", coefficient)
    check_count("ns_steps", ns_steps, 100)
    check_passed_on("eps", eps)
    if adjust_lr_fn is not None and adjust_lr_fn not in ADJUSTMENTS:
        raise ValueError(f"Invalid adjust_lr_fn: {adjust_lr_fn!r} (Adjust learning rate function "
                         f"{adjust_lr_fn} is not supported; use one of {', '.join(ADJUSTMENTS)}, or None)")


def orthogonalize(matrix: torch.Tensor, coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
                  steps: int = 5, eps: float = 1e-7, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    r"""
    ### The Newton–Schulz iteration

    $\mathrm{NS}_k(M) \approx UV^\top$ for $M = U\Sigma V^\top$: `steps` applications of
    $X \leftarrow aX + (bA + cA^2)X$ with $A = XX^\top$, computed in `dtype` (torch's is `bfloat16`).
    Returns a new tensor of dtype `dtype`; `matrix` is not modified.
    """
    a, b, c = coefficients
    # A copy in the working precision (`to` would return `matrix` itself when it is already in
    # `dtype`, and the division below would then change the caller's tensor).
    x = matrix.to(dtype, copy=True)
    # Work on the wide orientation, so that $A = XX^\top$ is the smaller square.
    tall = matrix.size(0) > matrix.size(1)
    if tall:
        x = x.T
    # Every singular value into $(0, 1]$: $s_{\max} \le \|X\|_F$. The clamp keeps a zero update zero.
    # $$X_0 = \frac{M}{\max(\|M\|_F, \epsilon)}$$
    x.div_(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        # `addmm(input, m1, m2, beta, alpha)` is $\beta\cdot\text{input} + \alpha\, m_1 m_2$: one
        # product and the sum in one call.
        # $$P = bA + cA^2$$
        polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        # $$X \leftarrow aX + PX = U\,(aS + bS^3 + cS^5)\,V^\top$$
        x = torch.addmm(x, polynomial, x, beta=a)
    return x.T if tall else x


def lr_adjustment(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    r"""
    ### $\rho(A, B)$, the shape-dependent factor on the learning rate

    $A$ rows (outputs), $B$ columns (inputs); `None` is `"original"`, as in torch.
    """
    rows, columns = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        # $$\rho = 0.2\sqrt{\max(A, B)}$$ an update of root mean square $0.2$
        return 0.2 * math.sqrt(max(rows, columns))
    # $$\rho = \sqrt{\max(1, A/B)}$$
    # A matrix without columns has an empty update, which any factor leaves empty (torch divides by
    # zero here, and fails on it).
    return math.sqrt(max(1, rows / columns)) if columns else 1.0


class Muon(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Muon`; `ns_dtype` is ours.

    * `lr` is $\eta$ (default $10^{-3}$). With the default adjustment, values around $0.02$ are the
      tuned ones in Jordan's and torch's examples; with `"match_rms_adamw"`, use AdamW's.
    * `weight_decay` is $\lambda$ (default $0.1$), decoupled, with the unadjusted $\eta$.
    * `momentum` is $\mu$ (default $0.95$, a memory of 20 steps); `nesterov` (default on) uses the
      look-ahead.
    * `ns_coefficients` are $(a, b, c)$ and `ns_steps` is $k$ (defaults Jordan's, and 5): see the
      trade above. More steps bring the singular values closer to one at $2k$ products per step.
    * `eps` (default $10^{-7}$) only guards the normalisation of an all-zero update.
    * `adjust_lr_fn`: `None`/`"original"` or `"match_rms_adamw"` (above).
    * `ns_dtype`: the precision of the iteration, `bfloat16` as torch (default) or `float32`.

    Every parameter must be a matrix; see `split_for_muon`.
    """

    # Its update works on whole matrices: the element-wise fast path does not apply, and under FSDP2
    # each process gathers the whole matrix ([distributed](core/distributed.md)).
    elementwise = False
    whole_tensors = True

    supports_complex = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        ns_dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        check_non_negative("momentum", momentum)
        check_iteration_options(ns_coefficients, ns_steps, eps, adjust_lr_fn)
        # Decoupled decay, the only kind torch's Muon has.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=True)
        defaults = dict(
            lr=lr,
            **self.weight_decay.defaults(),
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=tuple(ns_coefficients),
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
            ns_dtype=ns_dtype,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        Only matrices: anything else is refused when its group is added, as torch refuses it. A group's
        own iteration options are checked as the constructor's are (torch finds a bad one in its step,
        or, for `adjust_lr_fn`, not at all: it steps with no adjustment).
        """
        if ITERATION_OPTIONS & param_group.keys():
            settings = {**self.defaults, **param_group}
            check_iteration_options(*(settings[name] for name in ITERATION_OPTIONS))
        params = param_group["params"]
        param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        for p in param_group["params"]:
            tensor = p[1] if isinstance(p, tuple) else p
            if isinstance(tensor, torch.Tensor) and tensor.ndim != 2:
                raise ValueError(f"Muon only supports 2D parameters, got one of shape {tuple(tensor.shape)} "
                                 "(train it with AdamW; see split_for_muon)")
        super().add_param_group(param_group)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$B_0 = 0$; no step count (none is needed, and torch keeps none)."""
        state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Muon step

        Momentum, the orthogonalised update, the decay and the adjusted step.
        """
        momentum = group["momentum"]
        buffer = state["momentum_buffer"]
        # $$B_t = \mu\, B_{t-1} + (1-\mu)\, G_t$$
        buffer.lerp_(grad, 1 - momentum)
        # $$\tilde B_t = (1-\mu)\,G_t + \mu\, B_t \quad\text{or}\quad B_t$$
        update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
        # $$O_t = \mathrm{NS}_k(\tilde B_t) \approx UV^\top$$
        orthogonal = orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"],
                                   group["ns_dtype"])
        # $$\theta \leftarrow (1 - \eta\lambda)\,\theta$$ with the unadjusted $\eta$
        self.weight_decay(param, grad, group)
        # $$\theta_t = \theta - \eta\,\rho(A, B)\, O_t$$
        step_size = learning_rate(group, param) * lr_adjustment(group["adjust_lr_fn"], param.shape)
        param.add_(orthogonal, alpha=-step_size)


def split_for_muon(model: nn.Module, head: nn.Module | None = None) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    r"""
    ### Muon's parameters and AdamW's

    Returns `(hidden, rest)`: the weight matrices of the hidden layers, for Muon, and everything else,
    for AdamW. A parameter goes to Muon when it is 2-d and belongs neither to an `nn.Embedding` nor
    to the output `head`. `head` defaults to the last `nn.Linear` of the model (in registration order,
    the usual place of a classifier or language-model head); pass it when the model is built otherwise.
    Vectors (biases, normalisation gains), embeddings, the head and any tensor of another rank
    (convolution kernels) go to AdamW. Frozen parameters (`requires_grad=False`) are left out.
    """
    if head is None:
        linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
        head = linears[-1] if linears else None
    # Parameters that must not be orthogonalised whatever their shape: lookup tables and the head.
    excluded = {id(p) for module in model.modules() if isinstance(module, nn.Embedding) or module is head
                for p in module.parameters()}
    hidden, rest = [], []
    for p in model.parameters():
        if p.requires_grad:
            (hidden if p.ndim == 2 and id(p) not in excluded else rest).append(p)
    return hidden, rest
