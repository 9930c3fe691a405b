r"""
# Nero: learning by turning

[Liu, Bernstein, Meister & Yue, 2021](https://arxiv.org/abs/2102.07227) look at a layer one *neuron* at a
time: the row $w_i$ of the weight matrix that produces output $i$ (for a convolution, everything that
produces one output channel). Two observations drive the method.

* In a network with normalisation layers, the loss does not depend on the scale or the mean of a
  neuron's weights, only on their *direction*. So fix them: keep every neuron at zero mean and unit
  norm, and let the optimizer only turn it. No weight decay, no initialisation scale to tune, and
  the step size has a meaning, an angle.
* Adam's per-coordinate normalisation is finer than it needs to be. Normalising each neuron's
  gradient by the running size of that neuron's gradient already makes the step scale-free, with one
  number of state per neuron instead of one per weight.

For every neuron (row) $i$ of a parameter, with $g_i$ its gradient, Nero keeps

$$v_{i,t} = \beta\, v_{i,t-1} + (1-\beta)\,\lVert g_{i,t}\rVert^2 \qquad
  w_{i} \leftarrow w_{i} - \eta\,\sigma\,\frac{g_{i,t}}{\sqrt{v_{i,t} / (1 - \beta^t)}},$$

then projects the row back onto the constraint set,

$$w_i \leftarrow w_i - \text{mean}(w_i) \qquad w_i \leftarrow \frac{w_i}{\lVert w_i\rVert}.$$

A normalised gradient step of length $\eta$ on the unit sphere, followed by the projection, turns the
neuron by an angle of about $\eta$ radians. $\sigma$ is a per-parameter scale fixed at the first step:
the mean neuron norm, which is 1 for a constrained parameter, so it only matters for the unconstrained
ones.

Vectors (biases, the gains of normalisation layers) and scalars are not constrained: every element is
its own "neuron", with $\lVert g_i\rVert = |g_i|$, and $\sigma$ is the mean $|w|$ at the first step
($0.01$ when that is zero, as for a freshly zeroed bias). Each element of a vector then moves by about
$\eta$ times the vector's mean magnitude per step, like Adam without momentum. Nor is a matrix whose
neurons have a single weight each (a linear layer with one input): a one-element row with zero mean
is zero, so it cannot have unit norm. Such a parameter is left free like a vector (its rows are its
elements, so it is updated exactly like one).

```algorithm
v_{i,t} = \beta\, v_{i,t-1} + (1 - \beta)\, \lVert g_{i,t}\rVert^2
    @ exp_avg_sq.mul_(beta).addcmul_(neuron_grad_norm, neuron_grad_norm, value=1 - beta)
w_i \leftarrow w_i - \eta\, \sigma\, g_{i,t} / \sqrt{v_{i,t} / (1 - \beta^t)}
    @ param.sub_(normalised.mul_(learning_rate(group, param) * state["scale"]))
w_i \leftarrow \text{project}(w_i): \ \text{zero mean, unit norm}
    @ project(param, *self.constraint(group, param))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $w$ | `param` | the weights; $w_i$ is the row of neuron $i$ |
| $g$ | `grad` | the gradient |
| $v$ | `exp_avg_sq` | the average squared gradient norm of each neuron |
| $\beta$ | `beta` | its decay |
| $\sigma$ | `scale` | the typical neuron norm, fixed at the first step |
| $\eta$ | `lr` | the learning rate: the relative change of a neuron per step |

## Initialisation is part of the method

The constraints must hold *before* the first step: a row that is not centred and normalised would be
snapped onto the sphere by the first projection, a jump unrelated to the gradient. The official code
silently projects every parameter in the constructor, which also silently rewrites a pretrained model.
Here that is an explicit call, `Nero.initialize(model)` (the name and the idea are
[NeroPlus](nero_plus.md)'s), and the constructor refuses parameters that do not satisfy the constraints
(mean within $0.01$ of 0, norm within $1\%$ of 1) with a message that says so.

Projecting is not exactly idempotent: a row that already has zero mean and unit norm comes back
changed by rounding errors. So `initialize` is for a fresh model, and `initialize_missing` for one
that may already be constrained, a model resumed from a checkpoint: it projects only the parameters
the constructor would refuse, and leaves the others exactly as they are, so that training continues
bit for bit.

## Complex parameters

Complex parameters are refused, with a clear error. Every other optimizer here treats a complex
parameter as its real view (a last dimension holding the real and imaginary parts), but for Nero the
real view changes what a neuron is. A complex vector's view is a matrix whose rows are the pairs
(real, imaginary), so every element would be pinned to $(a, -a)$ with $a = \pm 1/\sqrt 2$; a complex
matrix's rows would be centred over their real and imaginary parts together, which is not the mean of
the complex row. Constraints for complex weights would be another algorithm.

## Differences from the official code

* A 0/0 (a neuron whose gradient has always been exactly zero) gives a zero step, as in the official
  code, which replaces NaN by 0 afterwards; here only NaN is replaced, as there.
* The official code projects in its constructor and fails on parameters added later
  (`add_param_group`) or on non-contiguous tensors (it uses `view`); neither happens here.
* $\sigma$ is NaN in the official code for a parameter with no elements; here it is $0.01$.
* A matrix whose neurons have one weight each becomes NaN in the official code (its rows are
  centred to zero, then divided by their zero norm); here it is left unconstrained (see above).
* pytorch_optimizer's `Nero` adds an $\epsilon$ ($10^{-8}$) to both the denominator and the
  projection, projects lazily at a parameter's first step, and counts steps per *group*, so a
  parameter that skips a step gets the wrong bias correction. With `eps=0` and a gradient on every
  step it equals this class, which the tests check.

`constraints` is a group option (and can be set per parameter through `opt_args`), so an output
layer can be left free: with unit-norm rows its logits are bounded by the norm of its input.

## Cost

The state is one number per neuron ($v$), plus $\sigma$ and the step count per parameter: for a
matrix of $n$ rows, $4n$ bytes where Adam keeps 8 bytes per weight. The step reads each row several
times, since a row's norms must be complete before the row is written: the gradient's norm, then the
mean and the norm of the stepped row for the projection. The [fast path](core/fastpath.md)
(`fused=True`) compiles this very step, and its generated code reads the parameter and the gradient in
each of four loops over the rows. On a CPU that is no faster than the readable step's separate
operations: on the [Speed](../speed.md) page's 31.7 M parameters, 66.7 ms against the readable
57.6 ms in one run, 69.5 ms against 69 ms in another. Leave `fused` off for Nero on a CPU.
"""

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.distributed import full
from .core.options import learning_rate, param_option
from .core.scalars import advance, new_step_count
from .core.validation import check_in_unit_interval

# How far from the constraints an "initialised" parameter may be.
INITIALISATION_TOLERANCE = 0.01


def neuron_rows(x: torch.Tensor) -> torch.Tensor:
    r"""
    A parameter as a matrix with one row per neuron (output), or one row for a vector or scalar. (The
    row length is spelled out: `reshape(0, -1)` of a parameter with no neurons is ambiguous.)
    """
    return x.reshape(x.shape[0], math.prod(x.shape[1:])) if x.ndim > 1 else x.reshape(1, x.numel())


def has_neurons_with_several_weights(x: torch.Tensor) -> bool:
    r"""A matrix or convolution whose rows have more than one weight: the parameters that can be constrained."""
    return x.ndim > 1 and math.prod(x.shape[1:]) > 1


def row_shape(x: torch.Tensor) -> tuple[int, ...]:
    r"""The shape that broadcasts one value per neuron against `x`: $(n_{out}, 1, \dots, 1)$."""
    return (x.shape[0],) + (1,) * (x.ndim - 1) if x.ndim > 1 else ()


def row_norms(x: torch.Tensor) -> torch.Tensor:
    r"""$\lVert w_i\rVert$ for every neuron, shaped to broadcast against `x`."""
    return torch.linalg.vector_norm(neuron_rows(x), dim=1).reshape(row_shape(x))


def row_means(x: torch.Tensor) -> torch.Tensor:
    r"""$\text{mean}(w_i)$ for every neuron, shaped to broadcast against `x`."""
    return neuron_rows(x).mean(dim=1).reshape(row_shape(x))


@torch.no_grad()
def project(param: torch.Tensor, max_norm: float, fixed_norm: bool, zero_mean: bool) -> None:
    r"""
    ### The projection onto the constraint set

    In place, for every neuron: subtract its mean (`zero_mean`), then rescale it to norm `max_norm`
    (`fixed_norm`), or only shrink it when its norm exceeds `max_norm` (not `fixed_norm`);
    `max_norm = inf` leaves the norm free. A zero row is left as it is.
    """
    if param.numel() == 0:
        return
    if zero_mean and param.ndim > 0:
        # $$w_i \leftarrow w_i - \text{mean}(w_i)$$
        param.sub_(row_means(param))
    # (A comparison rather than `math.isinf`: the compiler can guard on it when `max_norm` changes.)
    if max_norm == math.inf:
        return
    norms = row_norms(param)
    # $$w_i \leftarrow w_i \cdot \frac{r}{\lVert w_i\rVert}$$ with $r$ = `max_norm` (the division
    # is written as one, as in the official code).
    divisor = norms / max_norm
    if not fixed_norm:
        # Only shrink: $w_i \leftarrow w_i \cdot \min(1, r/\lVert w_i\rVert)$.
        divisor = divisor.clamp(min=1.0)
    param.div_(torch.where(norms > 0, divisor, torch.ones_like(divisor)))


def parameter_groups(params: Any) -> list[dict[str, Any]]:
    r"""
    `params` as a list of group dictionaries, whatever form it came in: a module, tensors, named
    tensors, or groups. The entries of `"params"` are kept as given (named pairs stay named), so
    the result can be handed to the optimizer's constructor.
    """
    if isinstance(params, nn.Module):
        params = params.parameters()
    if isinstance(params, torch.Tensor):
        params = [params]
    params = list(params)
    if not params:
        # Nothing to wrap: the constructor reports the empty list as torch does.
        return []
    if isinstance(params[0], dict):
        return [{**group, "params": list(group["params"])} for group in params]
    return [{"params": params}]


def group_tensors(group: dict[str, Any]) -> list[torch.Tensor]:
    r"""The tensors of a group whose entries may be named pairs."""
    return [p[1] if isinstance(p, tuple) else p for p in group["params"]]


class Nero(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    * `lr` is $\eta$ (default $0.01$, the official default): roughly the angle, in radians, by which
      a neuron turns per step.
    * `beta` is $\beta$ (default $0.999$), the memory of the per-neuron gradient size.
    * `constraints` (default `True`): keep the rows of matrices and convolutions at zero mean and unit
      norm; `False` leaves them free (they still get per-neuron normalised steps).
    * `maximize` ascends the objective.

    Call `Nero.initialize(model)` before building the optimizer.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    # The constraint options `initialize` accepts, with their defaults.
    constraint_defaults: dict[str, Any] = {"constraints": True}
    # The constraints have no meaning for complex weights (see above).
    supports_complex = False

    def __init__(self, params: ParamsT, lr: float = 0.01, beta: float = 0.999, *, constraints: bool = True,
                 maximize: bool = False, foreach: bool | None = None, fused: bool | None = None) -> None:
        check_in_unit_interval("beta", beta)
        defaults = dict(lr=lr, beta=beta, constraints=constraints, maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    @classmethod
    def constraint(cls, group: dict[str, Any], param: torch.Tensor) -> tuple[float, bool, bool]:
        r"""
        The constraint of one parameter as `(max_norm, fixed_norm, zero_mean)`: unit norm and zero
        mean per neuron for a matrix or convolution (with more than one weight per neuron) when
        `constraints` is on, none otherwise.
        """
        if has_neurons_with_several_weights(param) and param_option(group, param, "constraints"):
            return 1.0, True, True
        return math.inf, False, False

    @staticmethod
    def neuron_norm(x: torch.Tensor) -> torch.Tensor:
        r"""
        The size of each neuron: the row norm for a matrix or convolution, and $|x|$ element-wise
        for a vector or scalar (each element its own neuron).
        """
        return row_norms(x) if x.ndim > 1 else x.abs()

    @classmethod
    def initialize(cls, params: nn.Module | Iterable[Any], **options: Any) -> list[dict[str, Any]]:
        r"""
        ### Projecting a model onto the constraints

        Projects every parameter of `params` (a module, tensors, named tensors or groups) in place.
        `options` are the constraint options (for Nero, `constraints`), as the constructor will get
        them; a group's own values and a parameter's `opt_args` win, as they will in the optimizer.
        Returns the parameters as a list of groups, ready for the constructor, so that a generator
        such as `model.parameters()` is not consumed twice.
        """
        return cls._project(params, options, only_missing=False)

    @classmethod
    def initialize_missing(cls, params: nn.Module | Iterable[Any], **config: Any) -> list[dict[str, Any]]:
        r"""
        ### Initialising only what needs it

        `initialize` for the parameters the constructor would refuse; those that already satisfy their
        constraints are left exactly as they are. `config` may be a whole constructor configuration:
        the constraint options are read from it. Use it on a model that may already be constrained (one
        resumed from a checkpoint); the registry builds every Nero through it.
        """
        options = {name: config[name] for name in cls.constraint_defaults if name in config}
        return cls._project(params, options, only_missing=True)

    @classmethod
    def _project(cls, params: Any, options: dict[str, Any], only_missing: bool) -> list[dict[str, Any]]:
        groups = parameter_groups(params)
        settings = [{**cls.constraint_defaults, **options, **group} for group in groups]
        # Complex parameters are refused before anything is changed.
        if not cls.supports_complex and any(torch.is_complex(p) for group in groups for p in group_tensors(group)):
            raise ValueError(f"{cls.__name__} does not support complex parameters")
        for group, setting in zip(groups, settings):
            for param in group_tensors(group):
                if not (only_missing and cls.initialisation_problem(setting, param) is None):
                    project(param, *cls.constraint(setting, param))
        return groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        ### Refusing an uninitialised model

        Every group, from the constructor or added later, is checked: each constrained parameter must
        already satisfy its constraints. A group that fails is not added.
        """
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for index, param in enumerate(group["params"]):
            problem = self.initialisation_problem(group, param)
            if problem is not None:
                self.param_groups.pop()
                raise ValueError(f"{type(self).__name__}: parameter {index} of shape {tuple(param.shape)} "
                                 f"is not initialised: {problem}")

    @classmethod
    def initialisation_problem(cls, group: dict[str, Any], param: torch.Tensor) -> str | None:
        r"""
        What keeps `param` from satisfying its constraints (within the tolerance) and what to do about
        it, or `None` when it satisfies them.
        """
        max_norm, fixed_norm, zero_mean = cls.constraint(group, param)
        if param.numel() == 0 or (math.isinf(max_norm) and not zero_mean):
            return None
        advice = f"call {cls.__name__}.initialize(model) (or on the parameters) before building the optimizer"
        # Under FSDP2 a parameter is a shard of rows, and its largest deviation is this shard's until
        # `full` completes it: every process must find the same problem, or none.
        with torch.no_grad():
            if zero_mean and param.ndim > 0:
                worst = full(row_means(param).abs().max()).item()
                if not worst < INITIALISATION_TOLERANCE:
                    return f"a neuron has mean {worst:.3g} (must be 0); {advice}"
            if not math.isinf(max_norm):
                norms = row_norms(param)
                if fixed_norm and not full((norms > 0).all()):
                    # Projecting cannot help: a zero row has no direction to rescale.
                    return ("a neuron's weights are all zero, and projecting cannot give it a norm; initialise "
                            "the layer randomly, or leave it unconstrained through its opt_args")
                deviation = norms / max_norm - 1
                if fixed_norm:
                    deviation = deviation.abs()
                worst = full(deviation.max()).item()
                if not worst < INITIALISATION_TOLERANCE:
                    target = f"be {max_norm}" if fixed_norm else f"not exceed {max_norm}"
                    return f"a neuron's norm is off by {worst:.1%} (it must {target}); {advice}"
        return None

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The step count, one second moment per neuron, $v_0 = 0$, and the scale
        $\sigma = \text{mean}_i \lVert w_i\rVert$ ($0.01$ if that is not positive).
        """
        state["step"] = new_step_count(group, param)
        norms = self.neuron_norm(param.detach())
        state["exp_avg_sq"] = torch.zeros_like(norms)
        scale = norms.mean() if norms.numel() > 0 else norms.new_zeros(())
        state["scale"] = torch.where(scale > 0, scale, torch.full_like(scale, 0.01))

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Nero step
        """
        beta = group["beta"]
        bias_correction = 1 - beta ** advance(state)
        exp_avg_sq = state["exp_avg_sq"]
        # $$v_{i,t} = \beta\, v_{i,t-1} + (1-\beta)\,\lVert g_{i,t}\rVert^2$$
        neuron_grad_norm = self.neuron_norm(grad)
        exp_avg_sq.mul_(beta).addcmul_(neuron_grad_norm, neuron_grad_norm, value=1 - beta)
        # $$\hat g_{i,t} = \frac{g_{i,t}}{\sqrt{v_{i,t}/(1-\beta^t)}}$$, with $0/0 = 0$.
        normalised = grad / (exp_avg_sq / bias_correction).sqrt()
        normalised.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
        # $$w \leftarrow w - \eta\,\sigma\,\hat g_t$$
        param.sub_(normalised.mul_(learning_rate(group, param) * state["scale"]))
        # Back onto the constraint set: zero mean and unit norm per neuron.
        project(param, *self.constraint(group, param))
