r"""
# LARS: layer-wise adaptive rate scaling

[You, Gitman & Ginsburg, 2017](https://arxiv.org/abs/1708.03888) trained ImageNet classifiers with
batches of 8k to 32k images. The usual recipe for a larger batch is the *linear scaling rule*: $k$
times the batch, $k$ times the learning rate, since one large step should do the work of $k$ small
ones ([Goyal et al., 2017](https://arxiv.org/abs/1706.02677)). Past a few thousand images this breaks:
the learning rate becomes so large that training diverges in its first steps, even with a warm-up.

Their diagnosis is that one global learning rate cannot suit every layer. What a step does to a layer
is best measured *relative* to the layer, $\kappa\lVert g\rVert / \lVert w\rVert$, and the ratio
$\lVert w\rVert / \lVert g\rVert$ differs widely between layers (and between the weights and the
biases of one layer), and changes during training. A learning rate that is safe for the layer with the smallest
ratio barely moves the others; one that suits most layers makes the relative step of that layer
huge, and it blows up. The plot below measures the ratio on a small network.

So LARS gives every layer $l$ (every parameter tensor) its own *local* rate, the **trust ratio**,

$$\rho^l = \kappa\,\frac{\lVert w^l\rVert}{\lVert g^l\rVert + \lambda\lVert w^l\rVert + \epsilon},$$

where $\kappa$ is the *trust coefficient* (about $10^{-3}$), $\lambda$ the weight decay and $\epsilon$ a
guard against division by zero. The step of the layer is then $\eta\rho^l(g^l + \lambda w^l)$, whose
norm is at most $\eta\kappa\lVert w^l\rVert$: each layer changes by a fixed fraction of its own size,
whatever the scale of its gradient. The denominator is the triangle-inequality bound of
$\lVert g + \lambda w\rVert$. Momentum then runs on the scaled direction:

$$d^l_t = \rho^l\,(g^l_t + \lambda w^l_{t-1}) \qquad b_t = \mu\, b_{t-1} + d^l_t \qquad
  w^l_t = w^l_{t-1} - \eta\, b_t.$$

Everything after the scaling is [SGD](sgd.md)'s momentum step, which this class inherits unchanged
(`momentum_direction`); LARS only changes what goes into the buffer. The paper writes the momentum
with the learning rate *inside* the buffer, $v_t = \mu v_{t-1} + \eta_t d_t$,
$w_t = w_{t-1} - v_t$, which is the same optimizer as long as $\eta$ is constant and differs when a
schedule changes it (`lr_in_momentum`).

```algorithm
u = g + \lambda w  @ update = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad
\textcolor{orange}{\rho = \kappa \lVert w\rVert / (\lVert g\rVert + \lambda \lVert w\rVert + \epsilon)}
    @ ratio = trust_ratio(group, full(torch.linalg.vector_norm(param)), norm, weight_decay, lr)
\textcolor{orange}{d = \rho\, u}  @ update = update * ratio
b_t = \mu\, b_{t-1} + d, \quad w_t = w_{t-1} - \eta\, b_t \quad \text{(SGD's momentum step)}
    @ weight.add_(self.momentum_direction(state, group, update), alpha=-lr)
```

## A worked example

Two layers, no decay, $\kappa = 10^{-3}$. Layer A is large with a small gradient,
$\lVert w\rVert = 10$ and $\lVert g\rVert = 0.01$; layer B is small with a large one,
$\lVert w\rVert = 1$ and $\lVert g\rVert = 1$.

| | $\rho = \kappa\lVert w\rVert/\lVert g\rVert$ | LARS step | SGD step |
|---|---|---|---|
| A | $10^{-3} \cdot 10 / 0.01 = 1$ | $0.1\%\ \eta$ | $0.1\%\ \eta$ |
| B | $10^{-3} \cdot 1 / 1 = 10^{-3}$ | $0.1\%\ \eta$ | $100\%\ \eta$ |

(the steps are the change of the layer per step relative to its size: $\eta\rho\lVert g\rVert/\lVert w\rVert$
for LARS, $\eta\lVert g\rVert/\lVert w\rVert$ for SGD)

With SGD, keeping B's change per step under 1% forces $\eta \le 0.01$, and then A changes by
$0.001\%$ per step: it barely trains. With LARS both change by the same fraction, and $\eta$ can be
a thousand times larger before B is in danger.

## Notation

| math | code | |
|---|---|---|
| $w$ | `param`, `weight` | the layer's weights (its float32 master under master weights) |
| $g$ | `grad` | its gradient, after MXNet's rescale and clip |
| $u = g + \lambda w$ | `update` | the decayed gradient; after the scaling, $d = \rho u$ |
| $\rho$ | `ratio` | the trust ratio |
| $\lambda$ | `weight_decay` | the layer's decay, $0$ when excluded |
| $\kappa$, $\epsilon$ | `trust_coefficient`, `eps` | |
| $\eta$ | `lr` | the global rate (with any per-parameter scale) |
| $v$ | `velocity` | the buffer with $\eta$ inside (`lr_in_momentum`); else [SGD](sgd.md)'s buffer $b$ |

## The conventions real code disagrees on

Every well-known implementation makes different choices, and each one is an explicit option here.
`LARS_CONVENTIONS` below collects them so that `LARS(params, lr=..., **LARS_CONVENTIONS["mxnet"])`
behaves like MXNet; the tests check each against an independent computation.

| | ratio denominator | $\epsilon$ | no adaptation for | no decay for | momentum |
|---|---|---|---|---|---|
| paper | $\Vert g\Vert+\lambda\Vert w\Vert$ | 0 | — | — | $\eta$ inside |
| MXNet | $\Vert g\Vert+\lambda\Vert w\Vert$ | $10^{-8}$ | names ending `bias`, `gamma`, `beta` | — | $\eta$ inside |
| apex LARC | $\Vert g\Vert+\lambda\Vert w\Vert$ | $10^{-8}$ | — | — | torch; clip mode |
| Lightning bolts | $\Vert g\Vert+\lambda\Vert w\Vert$ | $10^{-8}$ | groups with $\lambda = 0$ | — | torch |
| MAE, MoCo v3 | $\Vert g+\lambda w\Vert$ | 0 | vectors and scalars | vectors and scalars | torch |
| pytorch_optimizer | $\Vert g\Vert+\lambda\Vert w\Vert$ | 0 | vectors and scalars | vectors and scalars | torch |
| SimCLR, optax | $\Vert g+\lambda w\Vert$ | 0 | chosen by name | chosen by name | $\eta$ inside |

* **Which norm.** `trust_ratio_norm="gradient"` uses $\lVert g\rVert + \lambda\lVert w\rVert$;
  `"update"` uses the norm of the decayed gradient itself, $\lVert g + \lambda w\rVert$.
* **Zero norms.** A fresh zero-initialised bias has $\lVert w\rVert = 0$, so $\rho = 0$ and it could
  never move. Every implementation falls back to $\rho = 1$ (plain SGD) when $\lVert w\rVert = 0$ or
  the gradient norm is $0$; MXNet also when the ratio is NaN, which the comparison below does too.
  Two variants exist: pytorch_optimizer tests the whole denominator instead of $\lVert g\rVert$ (with
  decay, a zero gradient then gives $\rho = \kappa/\lambda$, not 1), and LARC and bolts skip the weight
  decay as well as the scaling for such a layer. Neither is reproduced; both only matter when a
  gradient is exactly zero.
* **What is excluded.** Excluding a parameter from *adaptation* (it gets $\rho = 1$) and from
  *decay* ($\lambda = 0$ for it) are two separate switches: MXNet adapts everything but names ending
  in `bias`, `gamma` or `beta` and still decays them. A rule can use the name (`no_adaptation_suffixes`,
  `no_decay_suffixes`; this needs named parameters, `model.named_parameters()`, which torch keeps as
  `param_names` in each group, so the state dict stays a plain picklable dictionary), the number of
  dimensions (`max_ndim_without_adaptation`, `max_ndim_without_decay`), or the decay
  (`adapt_without_decay=False` adapts only what is decayed, the bolts and SimCLR convention).
  A complex parameter is optimised as its real view, as everywhere in this library, and the dimension
  rules see that view: a complex vector counts as a matrix (its view has a last dimension of 2).
* **LARC's clip mode** ([NVIDIA apex](https://github.com/NVIDIA/apex/blob/master/apex/parallel/LARC.py))
  caps the local rate at the global one: the effective rate is $\min(\rho, \eta)$, i.e. the
  direction is scaled by $\min(\rho/\eta, 1)$ (`larc_clip=True`; its default $\kappa$ is $0.02$).
* **MXNet's pre-processing.** `rescale_grad` multiplies the gradient first and `clip_gradient` clips
  it element-wise to $[-c, c]$. MXNet computes the ratio from the rescaled gradient *before* clipping,
  and so does this class (with `trust_ratio_norm="gradient"`).

LARC and bolts also overwrite `p.grad` with the scaled direction (as does pytorch_optimizer's LARS);
this class never modifies `p.grad`.

## Why each convention exists

None of these choices is arbitrary; each answers a real problem, and knowing the problem tells you
which to pick.

* **$\epsilon$ in the denominator.** The paper assumes both norms are positive. Code cannot: a
  gradient of exactly zero (a dead ReLU layer, a frozen embedding row) would divide by zero. With
  the fallback to $\rho = 1$ below, $\epsilon$ only matters when the denominator is tiny but not
  zero; there it caps $\rho$ at $\kappa\lVert w\rVert/\epsilon$.
* **$\lVert g\rVert + \lambda\lVert w\rVert$ or $\lVert g + \lambda w\rVert$.** The first is the
  paper's, a bound on the second by the triangle inequality, so the scaled step has norm *at most*
  $\kappa\lVert w\rVert$. The second makes the scaled step's norm *exactly* $\kappa\lVert w\rVert$
  (as [LAMB](lamb.md) does with its own update), at the cost of one more norm. They differ most when
  $g$ and $\lambda w$ point in opposite directions, late in training when the gradient and the decay
  nearly balance: there the first takes a small step, while the second still takes a step of norm
  $\kappa\lVert w\rVert$, in the direction of whatever is left of $g + \lambda w$.
* **Not adapting biases and normalisation parameters.** The trust ratio is meant for weight
  matrices, whose norm says how big the layer is. A bias or a batch-norm shift starts at zero: its
  first step falls back to $\rho = 1$, and after it its norm is tiny, so is its ratio, and it
  barely moves. A batch-norm gain is a vector of ones whose norm $\sqrt n$ is unrelated to its
  gradient's scale. Excluding them keeps them on
  plain SGD. By *name* (MXNet's `bias`, `gamma`, `beta`) needs the model's naming scheme; by *number
  of dimensions* (vectors and scalars) works for any model without knowing it; by *decay*
  (bolts, SimCLR) reuses the group that already excludes them from decay, one switch for both.
* **Not decaying them.** Decaying a normalisation gain towards zero fights the normalisation
  itself; decaying a bias regularises little. Most recipes therefore exclude the same
  parameters from decay as from adaptation; MXNet decays everything and excludes only from
  adaptation, so the two switches are separate here.
* **$\eta$ inside or outside the buffer.** Inside (the paper, MXNet, optax) the buffer holds
  past *steps*; outside (torch) it holds past *directions*, and the current $\eta$ scales all of
  them. With a constant rate they agree; with a schedule, inside means that a step taken at a high
  rate keeps its size as it decays from the buffer, outside means that lowering $\eta$ shrinks the
  momentum at once.
* **LARC's clip.** Without it, a layer whose ratio $\rho$ exceeds $\eta$ gets a *larger* step
  than SGD would give it. Clipping to $\min(\rho, \eta)$ means LARS can only slow a layer
  down, never speed it up: a safer drop-in for a recipe tuned for SGD (its default $\kappa$ is
  $0.02$).
* **MXNet's rescale and clip.** `rescale_grad` undoes the sum over a batch (or a loss scale);
  element-wise clipping protects against single huge values. The ratio reads the norm before the
  clip, so clipping changes the direction but not the layer's rate.

## The fast path

A per-tensor loop launches a handful of small operations per layer: two norms, the ratio, the
update. MXNet's fused LARS instead computes all squared norms of a list of tensors in one kernel
(`multi_sum_sq`), all the local rates in one more (`multi_lars`), and then updates every tensor in one
multi-tensor SGD kernel. Here `foreach=True` or `fused=True` hands this very `step_param` to the
compiler over the group's tensors, as for every optimizer ([the fast path](core/fastpath.md)): each
layer's norms stay its own, and the compiler fuses the rest of the layer's step into few loops. The
rules by name and by shape are decided on the host while the step is traced, so they cost nothing at
run time. The tests run both paths on every configuration and convention and check they agree.

## Master weights for half precision

With $\kappa = 10^{-3}$ a layer changes by about $\eta\kappa$ of its norm per step, often less than the
resolution of bfloat16 ($2^{-8}$) or float16 ($2^{-11}$): the update rounds away. Every optimizer here
can keep float32 master weights ([master weights](precision.md), the group option `master_weights`);
`multi_precision=True` is MXNet's name for it and switches it on for every group. The norms, ratio,
momentum and update are then computed on the float32 master, which `params_with_grads` hands to this
class in place of the parameter, and the parameter receives the rounded result. (MXNet takes the norms
of the float16 weights instead; the difference is below float16's resolution.) The master and the
momentum buffer stay float32 across a checkpoint, as for every optimizer.
"""

from typing import Any

import torch

from .core.base import ParamsT
from .core.distributed import full
from .core.options import learning_rate, param_option
from .core.validation import check_non_negative
from .sgd import SGD

# The two denominators of the ratio: $\lVert g\rVert + \lambda\lVert w\rVert$ and $\lVert g + \lambda w\rVert$.
TRUST_RATIO_NORMS = ("gradient", "update")

# The choices of each well-known implementation, as keyword arguments of `LARS`.
# `max_ndim_*=-1` switches the dimension rules off wherever the source excludes nothing by shape.
LARS_CONVENTIONS: dict[str, dict[str, Any]] = {
    # You et al., Algorithm 1: no $\epsilon$, every tensor adapted and decayed, $\eta$ in the buffer.
    "paper": dict(eps=0.0, lr_in_momentum=True, max_ndim_without_adaptation=-1, max_ndim_without_decay=-1),
    # MXNet's `LARS` optimizer: exclusion from adaptation by name, decay for all.
    "mxnet": dict(eps=1e-8, lr_in_momentum=True, no_adaptation_suffixes=("bias", "gamma", "beta"),
                  max_ndim_without_adaptation=-1, max_ndim_without_decay=-1),
    # NVIDIA apex's `LARC` wrapper around torch's SGD, in its default clip mode.
    "larc": dict(trust_coefficient=0.02, eps=1e-8, larc_clip=True, max_ndim_without_adaptation=-1,
                 max_ndim_without_decay=-1),
    # PyTorch Lightning bolts: adaptation only where there is decay.
    "bolts": dict(eps=1e-8, adapt_without_decay=False, max_ndim_without_adaptation=-1, max_ndim_without_decay=-1),
    # The LARS of MAE and MoCo v3: the update's norm, vectors excluded from both.
    "mae": dict(eps=0.0, trust_ratio_norm="update", max_ndim_without_adaptation=1, max_ndim_without_decay=1),
    # pytorch_optimizer's `LARS`: the gradient's norm, vectors excluded from both.
    "pytorch_optimizer": dict(eps=0.0, max_ndim_without_adaptation=1, max_ndim_without_decay=1),
    # `optax.lars`: the update's norm and the rate inside the momentum trace.
    "optax": dict(eps=0.0, trust_ratio_norm="update", lr_in_momentum=True, max_ndim_without_adaptation=-1,
                  max_ndim_without_decay=-1),
}


def trust_ratio(group: dict[str, Any], weight_norm: torch.Tensor, norm: torch.Tensor,
                weight_decay: float | torch.Tensor, lr: float | torch.Tensor) -> torch.Tensor:
    r"""
    ### The local rate of a layer

    The factor that multiplies a layer's decayed gradient $g + \lambda w$. `weight_norm` is
    $\lVert w\rVert$; `norm` is $\lVert g\rVert$ or $\lVert g + \lambda w\rVert$ depending on
    `trust_ratio_norm`. Written with tensor operations only (0-d tensors), so that no step waits for
    the device to decide, and a compiled step is one graph.

    `weight_decay` and `lr` are the layer's own (through `opt_args` or the exclusion rules); `lr` is
    only read by LARC's clip mode.
    """
    eta, eps = group["trust_coefficient"], group["eps"]
    if group["trust_ratio_norm"] == "gradient":
        # $$\rho = \kappa\,\frac{\lVert w\rVert}{\lVert g\rVert + \lambda\lVert w\rVert + \epsilon}$$
        ratio = eta * weight_norm / (norm + weight_decay * weight_norm + eps)
    else:
        # $$\rho = \kappa\,\frac{\lVert w\rVert}{\lVert g + \lambda w\rVert + \epsilon}$$
        ratio = eta * weight_norm / (norm + eps)
    if group["larc_clip"]:
        # LARC's clip mode: the effective rate $\eta\cdot\min(\rho/\eta, 1) = \min(\rho, \eta)$.
        # $$\rho \leftarrow \min\left(\frac{\rho}{\eta},\ 1\right)$$
        ratio = torch.clamp(ratio / lr, max=1.0)
    # $\rho = 1$ when either norm is zero, or NaN (the comparisons are false for NaN).
    # $$\rho \leftarrow \begin{cases} \rho & \lVert w\rVert > 0 \text{ and } \lVert\cdot\rVert > 0 \\
    #   1 & \text{otherwise} \end{cases}$$
    # `torch.where` rather than an `if`: no synchronisation with the device is needed to decide.
    usable = (weight_norm > 0) & (norm > 0)
    return torch.where(usable, ratio, torch.ones_like(ratio))


class LARS(SGD):
    r"""
    ## Hyper-parameters

    * `lr` is the global rate $\eta$ (default $1$). The relative change of an adapted layer per
      step is at most $\eta\kappa$, and $\eta\kappa/(1-\mu)$ with momentum: with the defaults, $0.1\%$
      and about $1\%$. Large-batch recipes scale $\eta$ with the batch and warm it up.
    * `momentum` $\mu$ (default $0.9$), `dampening` $\tau$ and `nesterov` as in [SGD](sgd.md).
    * `weight_decay` is $\lambda$ (a number: it always enters as $\lambda w$ inside the scaled direction).
    * `trust_coefficient` is $\kappa$ (default $10^{-3}$; LARC uses $0.02$).
    * `eps` is $\epsilon$ (default $10^{-8}$, as MXNet and LARC; the paper has none).
    * `trust_ratio_norm`: `"gradient"` (default) or `"update"`, see the table above.
    * `max_ndim_without_adaptation` / `max_ndim_without_decay` (default $1$ for both): parameters with
      at most this many dimensions (biases, normalisation gains, scalars) are not adapted / not
      decayed; $-1$ switches the rule off.
    * `no_adaptation_suffixes` / `no_decay_suffixes` (default none): parameter names ending in one of
      these are not adapted / not decayed. They need named parameters.
    * `adapt_without_decay` (default `True`): `False` adapts only parameters whose decay is non-zero.
    * `larc_clip` (default `False`): LARC's clip mode.
    * `lr_in_momentum` (default `False`): keep $\eta$ inside the buffer as the paper and MXNet do,
      $v_t = \mu v_{t-1} - \eta d_t$, $w_t = w_{t-1} + v_t$; no dampening then.
    * `rescale_grad` (default 1) and `clip_gradient` (default `None`): MXNet's gradient pre-processing.
    * `multi_precision` (default `False`): float32 master weights for float16/bfloat16 parameters, the
      `master_weights` option of every optimizer here under MXNet's name (a group may set
      `master_weights` itself).
    * `foreach` / `fused` (default off): the [fast path](core/fastpath.md), this class's step compiled
      over the group's tensors.

    Every option lives in the parameter groups, so it can differ per group; `lr`, `lr_scale` and
    `weight_decay` can also be set per parameter through `opt_args`.

    **Starting points.** $\eta$ is not SGD's learning rate: an adapted layer moves by
    $\eta\rho^l$ times its decayed gradient, with $\rho^l \approx \kappa\lVert w\rVert/\lVert g\rVert$,
    so $\eta\kappa$ is the relative change per step and a rate tuned for [SGD](sgd.md) does not carry
    over. Tune $\eta$ on its own scale, warm it up, and scale it with the batch as the large-batch
    recipes do. To reproduce a paper or a codebase, start from its entry in `LARS_CONVENTIONS` and
    change only what its recipe changes.
    """

    # The trust ratio needs the whole gradient's norm: SGD's sparse step is not inherited.
    supports_sparse = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        trust_ratio_norm: str = "gradient",
        max_ndim_without_adaptation: int = 1,
        max_ndim_without_decay: int = 1,
        no_adaptation_suffixes: tuple[str, ...] = (),
        no_decay_suffixes: tuple[str, ...] = (),
        adapt_without_decay: bool = True,
        larc_clip: bool = False,
        lr_in_momentum: bool = False,
        rescale_grad: float = 1.0,
        clip_gradient: float | None = None,
        multi_precision: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        # `multi_precision` becomes the group option `master_weights`, which must be a real boolean
        # (a truthy string such as `"false"` would otherwise switch it on).
        if multi_precision is not True and multi_precision is not False:
            raise ValueError(f"Invalid multi_precision: {multi_precision!r} (must be True or False)")
        if not isinstance(weight_decay, (int, float)):
            raise ValueError(
                f"Invalid weight_decay: {weight_decay!r} (LARS applies the decay inside the scaled "
                "direction; pass a number)"
            )
        # The LARS options, kept aside until `add_param_group` can merge them into the defaults (see
        # below): [SGD](sgd.md)'s constructor adds the first group before this class could.
        self.lars_defaults = dict(
            trust_coefficient=trust_coefficient,
            eps=eps,
            trust_ratio_norm=trust_ratio_norm,
            max_ndim_without_adaptation=max_ndim_without_adaptation,
            max_ndim_without_decay=max_ndim_without_decay,
            no_adaptation_suffixes=tuple(no_adaptation_suffixes),
            no_decay_suffixes=tuple(no_decay_suffixes),
            adapt_without_decay=adapt_without_decay,
            larc_clip=larc_clip,
            lr_in_momentum=lr_in_momentum,
            rescale_grad=rescale_grad,
            clip_gradient=clip_gradient,
            master_weights=multi_precision,
        )
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, maximize=maximize, foreach=foreach,
                         fused=fused)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        ### Checking every group

        The LARS options join the defaults when the constructor adds its first group (the constructor
        of [SGD](sgd.md) does not know them), and each group is checked as it is added, so a later
        `add_param_group` with a bad value fails just as the constructor would.
        """
        # The first call comes from the constructor: the LARS options join the defaults then.
        if not self.param_groups:
            self.defaults.update(self.lars_defaults)
        super().add_param_group(param_group)
        # A group that fails the checks is removed again, so the optimizer is left as it was.
        group = self.param_groups[-1]
        try:
            self.check_group(group)
        except ValueError:
            self.param_groups.pop()
            raise

    @staticmethod
    def check_group(group: dict[str, Any]) -> None:
        r"""
        Every LARS option of one group, with an error that names the option and the value. The
        checks that need a reason: the dimension rules take $-1$ as "off" and nothing more negative;
        `lr_in_momentum` with dampening has no meaning (the paper's buffer has no dampening term);
        a rule by name needs the names, which only `named_parameters()` provides.
        """
        # Suffixes are matched with `str.endswith`, which wants a tuple.
        for name in ("no_adaptation_suffixes", "no_decay_suffixes"):
            group[name] = tuple(group[name])
        # None of these has a meaning below zero: a negative $\kappa$ or rescale would turn the step
        # uphill, a negative $\epsilon$ or $\lambda$ could make the denominator vanish or change sign.
        for name in ("trust_coefficient", "eps", "weight_decay", "rescale_grad"):
            check_non_negative(name, group[name])
        if group["clip_gradient"] is not None:
            check_non_negative("clip_gradient", group["clip_gradient"])
        # A number of dimensions, or $-1$ to switch the rule off; the only negative value that means something.
        for name in ("max_ndim_without_adaptation", "max_ndim_without_decay"):
            value = group[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ValueError(f"Invalid {name}: {value!r} (a number of dimensions, or -1 for none)")
        # A misspelt norm would otherwise silently mean `"update"` (the `else` of `trust_ratio`).
        if group["trust_ratio_norm"] not in TRUST_RATIO_NORMS:
            raise ValueError(f"Invalid trust_ratio_norm: {group['trust_ratio_norm']!r} "
                             f"(expected one of {TRUST_RATIO_NORMS})")
        if group["lr_in_momentum"] and group["dampening"] != 0:
            raise ValueError(f"Invalid dampening: {group['dampening']} with lr_in_momentum=True "
                             "(the learning-rate-inside buffer has no dampening)")
        # Without names, a rule by name would match nothing, and every parameter would be adapted and
        # decayed as if no rule had been given.
        uses_names = group["no_adaptation_suffixes"] or group["no_decay_suffixes"]
        if uses_names and "param_names" not in group:
            raise ValueError(
                "Invalid no_adaptation_suffixes/no_decay_suffixes: excluding by name needs named "
                "parameters, e.g. LARS(model.named_parameters(), ...)"
            )

    def weight_decay_of(self, group: dict[str, Any], param: torch.Tensor, name: str | None) -> float:
        r"""
        $\lambda$ for this parameter: zero when a decay-exclusion rule matches it,
        $$\lambda^l = \begin{cases} 0 & \text{if excluded} \\ \lambda & \text{otherwise} \end{cases}$$
        where a parameter is excluded when it has at most `max_ndim_without_decay` dimensions or its
        name ends in one of `no_decay_suffixes`, and $\lambda$ is the parameter's own (through `opt_args`)
        when it has one.
        """
        if param.ndim <= group["max_ndim_without_decay"]:
            return 0.0
        if name is not None and name.endswith(group["no_decay_suffixes"]):
            return 0.0
        return param_option(group, param, "weight_decay")

    def adapts(self, group: dict[str, Any], param: torch.Tensor, name: str | None, weight_decay: float) -> bool:
        r"""
        Whether this parameter gets a trust ratio, or $\rho = 1$ (plain SGD). The same two rules
        as for the decay, by dimensions and by name, and a third: with `adapt_without_decay=False`
        only a parameter whose $\lambda^l$ (after the decay rules) is non-zero is adapted.
        """
        if param.ndim <= group["max_ndim_without_adaptation"]:
            return False
        if name is not None and name.endswith(group["no_adaptation_suffixes"]):
            return False
        return group["adapt_without_decay"] or weight_decay != 0

    def group_arguments(self, group: dict[str, Any]) -> dict[str, Any]:
        r"""
        ### The names, once per group

        The rules by name need each parameter's name: the template step calls this once per group
        and step, before any parameter moves, and hands the names to every `step_param` of the
        group. Everything else is the base class's step: gradients, complex parameters, master
        weights, the non-finite check, and with `foreach=True` or `fused=True` the
        [fast path](core/fastpath.md).
        """
        return {"names": self.parameter_names(group)}

    def parameter_names(self, group: dict[str, Any]) -> dict[int, str]:
        r"""
        `{id(state): name}` for the parameters of a group with rules by name (empty otherwise: without
        such rules no decision reads a name). The name is found through the parameter's state because
        the tensor `params_with_grads` yields may be another one (a real view, a float32 master); the
        state it yields is always the parameter's own. Only parameters that already have state are
        listed. In the [fast path](core/fastpath.md) each lookup makes the compiled graph specific to
        the states it was traced with: with rules by name a group takes one graph per call of at most
        32 parameters, without them one for all calls alike.
        """
        if not (group["no_adaptation_suffixes"] or group["no_decay_suffixes"]):
            return {}
        names = group.get("param_names", ())
        return {id(self.state[p]): name for p, name in zip(group["params"], names) if p in self.state}

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                   names: dict[int, str] | None = None) -> None:
        r"""
        ### One layer

        `names` are the group's parameter names by state (`group_arguments`), empty when the group has
        none. `param` is $w$ (under master weights, its float32 master).
        """
        # Called directly (not through `step`), the names are looked up here.
        if names is None:
            names = self.parameter_names(group)
        name = names.get(id(state)) if names else None
        # $\eta$, with any per-parameter `lr` or `lr_scale`.
        lr = learning_rate(group, param)

        # MXNet's pre-processing, $g \leftarrow \text{rescale}\cdot g$; the ratio's
        # $\lVert g\rVert$ is taken here, before clipping.
        if group["rescale_grad"] != 1:
            grad = grad * group["rescale_grad"]
        # $$\lVert g\rVert = \sqrt{\textstyle\sum_i g_i^2}$$ the whole tensor's Euclidean norm. Under
        # FSDP2 the tensors are one process's shards: `full` makes each norm the whole layer's, the same
        # on every process.
        grad_norm = full(torch.linalg.vector_norm(grad))
        if group["clip_gradient"] is not None:
            # $$g \leftarrow \max(-c, \min(g, c))$$
            grad = grad.clamp(-group["clip_gradient"], group["clip_gradient"])

        # $\lambda^l$: the group's decay, or $0$ for an excluded parameter.
        weight_decay = self.weight_decay_of(group, param, name)
        # The decayed gradient $u = g + \lambda w$.
        update = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad

        if self.adapts(group, param, name, weight_decay):
            # The denominator's norm: $\lVert g\rVert$ (before the clip), or $\lVert g + \lambda w\rVert$.
            norm = grad_norm if group["trust_ratio_norm"] == "gradient" else full(torch.linalg.vector_norm(update))
            # $$\rho = \kappa\,\frac{\lVert w\rVert}{\lVert g\rVert + \lambda\lVert w\rVert + \epsilon}
            #   \quad\text{or}\quad \kappa\,\frac{\lVert w\rVert}{\lVert g + \lambda w\rVert + \epsilon}$$
            # (with LARC's clip and the fallback to $1$), a 0-d tensor: no synchronisation here.
            ratio = trust_ratio(group, full(torch.linalg.vector_norm(param)), norm, weight_decay, lr)
            # $$\textcolor{orange}{d_t = \rho\,(g_t + \lambda w_{t-1})}$$
            update = update * ratio

        # The scaled direction goes into the momentum, by torch's convention or the paper's.
        self.apply_update(state, group, update, param, lr)

    def apply_update(self, state: dict[str, Any], group: dict[str, Any], update: torch.Tensor,
                     weight: torch.Tensor, lr: float) -> None:
        r"""
        ### Momentum on the scaled direction

        torch's convention is [SGD](sgd.md)'s `momentum_direction`, inherited as it is. With
        `lr_in_momentum` the buffer holds the step itself (MXNet, the paper, optax):

        $$v_t = \mu\, v_{t-1} - \eta\, d_t \qquad w_t = w_{t-1} + v_t,$$

        with $v_1 = -\eta d_1$, and Nesterov's $w_t = w_{t-1} + \mu v_t - \eta d_t$.
        """
        if not group["lr_in_momentum"]:
            # $$w_t = w_{t-1} - \eta\, b_t$$
            weight.add_(self.momentum_direction(state, group, update), alpha=-lr)
            return
        momentum = group["momentum"]
        if momentum == 0:
            # Without momentum the two conventions are the same step, $$w_t = w_{t-1} - \eta\, d_t$$
            weight.add_(update, alpha=-lr)
            return
        velocity = state.get("velocity")
        if velocity is None:
            # The first velocity is the first step itself, $$v_1 = -\eta\, d_1$$
            velocity = state["velocity"] = update.mul(-lr)
        else:
            # $$v_t = \mu\, v_{t-1} - \eta\, d_t$$
            velocity.mul_(momentum).add_(update, alpha=-lr)
        if group["nesterov"]:
            # $$w_t = w_{t-1} + \mu\, v_t - \eta\, d_t$$
            weight.add_(velocity, alpha=momentum).add_(update, alpha=-lr)
        else:
            # $$w_t = w_{t-1} + v_t$$
            weight.add_(velocity)
