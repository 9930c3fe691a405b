r"""
# The fast path: the annotated update, compiled

Every optimizer here is written for reading: `step_param` updates one parameter with a few tensor
operations, each beside its equation. Run as written, each operation is one pass over memory, and each
pass is dispatched from Python, parameter after parameter. An optimizer step is memory-bound: Adam must
read $\theta, g, m, v$ and write $\theta, m, v$, 28 bytes per `float32` parameter, and nothing else is
needed. Written as eight separate operations it moves about twice that, and on a model of a thousand
small tensors the Python dispatch costs more than the arithmetic.

torch's answer is a second implementation of each algorithm: a `foreach` one over lists of tensors, and
a `fused` kernel in C++ and CUDA. Here there is no second copy of any algorithm. The fast path hands the
very same `step_param` to `torch.compile`, traced over all the parameters of a group at once:

$$\text{fast step of a group} = \mathrm{compile}\Big(\textstyle\sum_{k \in \text{group}}
  \texttt{step\_param}(s_k, \text{group}, g_k, \theta_k)\Big),$$

and the compiler (TorchInductor) fuses the operations of each parameter into one loop that reads and
writes each tensor once, with no temporaries. Because the traced code *is* the annotated code, a new
element-wise optimizer gets its fast path without a line written for it, and a change to an
algorithm cannot leave the fast path behind.

`fused=True` or `foreach=True` selects it, torch's names for torch's fast implementations: given to
the constructor (an optimizer with a torch twin takes the flags its twin takes, RAdam only `foreach`;
one without a twin takes both) or set in a parameter group. A group with `differentiable=True` keeps
the readable step: the compiled update runs without autograd.

The step is the same optimizer in every other respect: it goes through `params_with_grads` (complex
views, `maximize`, master weights, per-parameter options), keeps its state under the same keys, in
the same tensors, so state dicts load into either path and continue identically, and schedulers and
hooks see a plain `torch.optim.Optimizer`.

## Numbers that change from step to step

A compiled graph is specialised on the Python numbers it reads: a learning rate of `0.001` becomes a
constant in the generated code, and a scheduler that sets `0.00099` would force a recompilation at
every step. The numbers that change must reach the graph as tensors. Two things make that work without
touching the optimizers:

* the fast path hands `step_param` the group with its learning rate as a `float64` tensor (one
  per group, refilled from the group's value at every step), so a schedule changes a value, not a
  graph;
* `learning_rate` reads a tensor learning rate with `.item()`, and `step_param` passes its step sizes
  to fused operations as `alpha=` or `value=`, which take Python numbers. Inside the traced region
  `SymbolicScalars` keeps such numbers as 0-d tensors: `.item()` returns the tensor itself, and
  `p.add_(u, alpha=s)` with a tensor `s` becomes `p.add_(u * s)`, the same arithmetic, which the
  compiler fuses into the same loop.

Schedules change other options too: `OneCycleLR` cycles Adam's $\beta_1$ or SGD's momentum at every
step, and a user may anneal the weight decay. These stay Python floats in the group. The compiler
specialises a float the first time it sees it and, once it has seen it change, makes it an input of the
graph, provided every operation that uses it can take a tensor there. `lerp_`'s weight, `alpha=`,
`value=` and the base of $\beta^t$ cannot: left to them, 30 steps of Adam under a one-cycle schedule
compiled 29 graphs (54 s on a CPU). So inside the traced region `SymbolicScalars` hands each float
given to an arithmetic operation over as a 0-d tensor of the dtype it would have taken there
(`_numbers_as_inputs`): the first change of a value costs one more graph, and no later change does. A
Python branch on an option (`if momentum == 0`) becomes a guard, which recompiles only if the branch
turns. One option is still fixed in the graph: ASGD's `alpha`, an exponent, which stays a number so
that `x ** 0.5` remains the square root the compiler recognises; no scheduler of torch changes it.

Step counts are the other changing number: as tensors they are graph inputs like the learning rate.
They advance in place ([`advance`](scalars.md)), and so does every state tensor: a tensor stored back
into a state dictionary would be an output of the graph, one per parameter, replayed in Python after
every call. The compiled update returns nothing, except [LAMB](../lamb.md)'s: it keeps each layer's
norms and trust ratio for inspection, new tensors at every step.

## The state, made before the first graph

An optimizer makes its state the first time a parameter has a gradient (`init_state`: Adam's zeros for
$m$ and $v$, its step count). Traced as it runs, the first step of `torch.compile(opt.step)` would be a
graph of its own, which makes the state and then updates it, and the second step, finding the state
made, would compile a second graph. Dynamo knows this of torch's optimizers: inside a compiled step it
runs a method called `_init_group` as plain Python instead of tracing it, and traces the rest with the
state it made. The template step calls such a method (the base class's `_init_group`, for all the groups
at once) inside a compiled step only: one graph from the first step on, no more than torch's own
optimizers compile (the tests compile each twin beside ours on a small network). A step that adds to its
state itself, as [LARS](../lars.md) makes its velocity at its first step (and torch's SGD its momentum
buffer), still compiles a second graph for the steps after it. On a small network with inductor, Adam's
first six compiled steps took 4.0 s to compile instead of 7.2 (torch's Adam: 3.0 s).

## Scalars computed once, not once per element

A number computed from such tensors is itself a 0-d tensor: Adam's step size
$-\eta / (1 - \beta_1^t)$ is a power, a subtraction and a division of 0-d tensors. The compiler fuses
every operation that feeds an element-wise loop into that loop, and a 0-d operand is no exception: left
alone, it evaluates both powers, a square root and the divisions in `float64` once for every vector of
elements, 4 times the time of torch's fused Adam at 31.7 M parameters, for a pass that moves the bytes
it must. So where a 0-d tensor meets a parameter-sized one in an operation, `SymbolicScalars` hands it
over as a buffer of its own (`as_strided((), ())`, a view that the compiler can only read from
memory): the scalar formulas are computed once per tensor, in a small kernel of their own, and the loop
over the elements reads one number.

## NaN tests the compiler can vectorise

On a CPU the generated loop works on vectors of 16 floats, but TorchInductor tests `isnan` one element
at a time, and `nan_to_num` tests with it: Sophia's compiled step, which turns a $0/0$ into $0$ with
`nan_to_num_`, took twice Adam's time for the same bytes. `x != x` is the same test (NaN is the one value
unequal to itself) and is vectorised; in eager mode it is the slower one (a mask, then a masked fill:
ten times `nan_to_num_`'s time). So the optimizers write `nan_to_num`, and inside the traced region
`SymbolicScalars` hands it to the compiler as selections on `x != x` and on $\pm\infty$
(`_vectorised_nan_to_num`): the same values, in the same fused loop.

## Bad gradients without a synchronisation

In eager mode the [non-finite check](nonfinite.md) forms its verdict with one reduction over all the
gradients and reads it once on the host, before anything changes. Under `torch.compile(opt.step)` a host
read would end the graph. The verdict then stays on the device, as torch's `found_inf` does in its
fused kernels: each parameter's update is computed into fresh tensors, and written back only where the
verdict says so,

$$\theta_k \leftarrow \mathrm{where}(\text{finite}, \theta_k^{\text{new}}, \theta_k),$$

and the same for every state tensor. The compiler fuses the select into the update's loop, so the
skip costs no extra pass. What cannot happen inside a graph is raising an error or warning: under
`torch.compile`, `"raise"` and `"skip"` both skip on the device; the verdict of the last step is kept
in the optimizer's `found_inf` for the caller to read when it chooses to synchronise.

## Numbers computed once per group

[Schedule-Free](../schedule_free_sgd.md) advances the weight of its average once per group and step,
and [Sophia](../sophia.md) takes the batch size as an argument of `step`. Both go through the base
class's template step: its `group_arguments` computes such numbers before any parameter moves and
hands them to each `step_param` as keywords, and the fast path hands the same keywords to the compiled
update. A number that changes at every step (the average's weight $c_{t+1} = 1/t$) is a float the
compiler sees change after its first graph, and from then on an input of the graph, like a scheduled
option. A number computed from such a symbol inside `step_param` is a formula that the generated loop
evaluates again for every vector of elements: Schedule-Free AdamW's $1 - \beta_2^t$, from the group's
count, took a power per vector and doubled its step time, so it is computed in `group_arguments`, once.

## Values used twice: computed again, not stored

A layer-wise step ([LAMB](../lamb.md), [Nero](../nero.md)) uses its update twice: a norm of it must be
complete before the update is applied, so one loop reduces it and a later loop writes it. The compiler
chooses, for such a value, between storing it in a buffer of its own and computing it again in each
loop that uses it. By default it stores any value that reads more than four inputs, and an update
reads the parameter, the gradient, the moments and the step's numbers: a fresh tensor of the
parameter's size at every step, written once and read once. On a CPU, a block of more than 32 MB
comes fresh from the system at each allocation and is page-faulted in page by page (the
[Speed](../../speed.md) page measures it). Reading the inputs again costs less: the fast path tells
the compiler to compute again any value of up to `RECOMPUTED_READS` inputs. On the Speed page's
31.7 M parameters (one thread, medians of 11 steps, each optimizer in a process of its own),
LAMB's fast step went from 100 ms to 51 ms (4.8 to 2.3 times fused Adam), for the same compile time
(30 s and 32 s) and the same results, since each copy of the value is the same arithmetic on the
same inputs; an element-wise step has no such value and compiles to the same loop (Adam: 1.01 and
0.97 times fused Adam).

The compiler does not always manage: TorchInductor 2.13 fails on [NeroPlus](../nero_plus.md)'s graph
when it computes the update again (in its fusion of loops over the same rows). A failed compilation
has run nothing, so the fast path compiles that graph again with the compiler's own choice, and keeps
to it for that optimizer (`FastPath.update_chunk`).

## Many optimizers in one process

Dynamo keeps the graphs it compiles from a function on the function's code object, guards each on the
optimizer it was traced with, and stops compiling the function once it holds a limit of graphs
(`recompile_limit`), counting those of optimizers already freed. So each optimizer's fast path compiles
its own copy of the group update (`compiled_update_group`): the fiftieth optimizer of a sweep compiles
its step as the first did, and its graphs are freed with it. One optimizer alone may still need more
graphs than the limit allows (`RECOMPILE_LIMIT`, one per structure of a chunk of parameters): the
chunks beyond it take the readable update, with the same results, and a `FastPathFallbackWarning`
says so once, so that a slow fast path is never a silent one. A step compiled by the user,
`torch.compile(opt.step)`, is different: `step` is one function for every optimizer of its class,
torch's as ours. Twenty Adam optimizers built one after another and each stepped through
`torch.compile(opt.step)` compile 8 graphs, for `torch.optim.Adam` as for ours; then dynamo warns that
it hit `recompile_limit` (8 by default), and the later optimizers run uncompiled. In such a process,
raise `torch._dynamo.config.recompile_limit`, or let `fused=True` compile the update.

## What is not covered

[D-Adaptation](../dadapt_adam.md) and [Prodigy](../prodigy.md) override `step`: each step sums inner
products over every parameter of every group before it can move any, two passes with a global number
between them, and neither authors' class has a fast implementation to stand for.
The layer-wise optimizers ([LARS](lars.md), [LAMB](lamb.md), [Nero](nero.md)) compute each layer's norms
inside `step_param`, so the fast path compiles them like the rest, one tensor's norms never mixed with
another's (LARS's rules by parameter name reach its `step_param` through `group_arguments`, and are
decided while the step is traced); since a norm must be known before any element of its layer is
written, their compiled step reads each layer more than once (LAMB in three loops, Nero in four; the
Speed page measures what that costs). A `step_param` that branches on the value of a tensor (with `if`,
rather than [`choose`](scalars.md) or a mask) cannot be traced into one graph: its fast path is compiled
in pieces, cut at each such branch, and `torch.compile(opt.step, fullgraph=True)` refuses it with a
message naming the line. None of the optimizers here does: even [ADOPT](../adopt.md)'s first step, which
only initialises $v$, is the ordinary update with values that make it do nothing.

One step is not a single graph under `torch.compile(opt.step)`: Schedule-Free's, whose counters (the
steps, the sum of the weights, the largest learning rate so far) are Python numbers in each group, as
in the authors' checkpoints, and whose weight compares the learning rate with the largest so far on
the host. Compiled whole, it is cut there and still takes the readable steps; its fast path
(`fused=True`) computes those numbers on the host and is one graph per chunk like any other. Under a
whole-step compile a step skipped on the device for a bad gradient still advances those counters.
"""

import inspect
import math
import types
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# Groups with enough distinct structures (shapes, dtypes, options) to need more graphs than dynamo's
# default of 8 per function still compile; each graph is built once. The limit counts the graphs of one
# optimizer: each has its own copy of the compiled function (`compiled_update_group`). Past the limit, a
# chunk that needs another graph takes the readable update, and a `FastPathFallbackWarning` says so once.
RECOMPILE_LIMIT = 64


def covers(optimizer_class: type) -> bool:
    r"""
    Whether the fast path applies to `optimizer_class`: it updates each parameter on its own, through the
    base class's `step` (torch wraps `step` in a profiling hook, so the wrappers are looked through), on
    dense gradients (a sparse gradient's rows change from step to step, which no one graph holds).
    """
    from .base import GenericAdaptiveOptimizer

    base_step = inspect.unwrap(optimizer_class.step) is inspect.unwrap(GenericAdaptiveOptimizer.step)
    return base_step and optimizer_class.elementwise and not optimizer_class.sparse_gradients


def selected(group: dict[str, Any]) -> bool:
    r"""
    Whether `group` asked for the fast path: torch's `fused=True` or `foreach=True`, but not with
    `differentiable=True`. The compiled update runs without autograd, so a differentiable group takes
    the readable step, which autograd records (torch refuses `fused` with `differentiable`, and most of
    its `foreach` steps fail on it).
    """
    return bool((group.get("fused") or group.get("foreach")) and not group.get("differentiable"))


def _computed_once(value: Any) -> Any:
    r"""
    A 0-d tensor about to meet a larger one, as a buffer of its own under the compiler (see "Scalars
    computed once" above); anything else, and everything outside a traced region, as it is.
    """
    if isinstance(value, torch.Tensor) and value.dim() == 0 and torch.compiler.is_compiling():
        return value.as_strided((), ())
    return value


def _scaled(tensor: torch.Tensor, scale: Any) -> torch.Tensor:
    if isinstance(scale, float):
        return tensor * _number_input(scale, tensor.dtype)
    return tensor * _computed_once(scale)


# For each fused operation that takes a Python number as a keyword, the same arithmetic with a tensor
# in its place: $\theta + \alpha u$, $\theta + v\,t_1/t_2$, $\theta + v\,t_1 t_2$.
_TENSOR_SCALE_FORMS = {
    torch.Tensor.add_: ("alpha", lambda self, other, s: self.add_(_scaled(other, s))),
    torch.Tensor.add: ("alpha", lambda self, other, s: self.add(_scaled(other, s))),
    torch.Tensor.sub_: ("alpha", lambda self, other, s: self.sub_(_scaled(other, s))),
    torch.Tensor.addcdiv_: ("value", lambda self, t1, t2, s: self.add_(_scaled(t1 / t2, s))),
    torch.Tensor.addcdiv: ("value", lambda self, t1, t2, s: self.add(_scaled(t1 / t2, s))),
    torch.Tensor.addcmul_: ("value", lambda self, t1, t2, s: self.add_(_scaled(t1 * t2, s))),
    torch.Tensor.addcmul: ("value", lambda self, t1, t2, s: self.add(_scaled(t1 * t2, s))),
}


def _vectorised_nan_to_num(
    tensor: torch.Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> torch.Tensor:
    r"""
    `tensor.nan_to_num(nan, posinf, neginf)` as selections the compiler vectorises: NaN where
    `tensor != tensor`, then $\pm\infty$ (to the dtype's extremes unless told otherwise; an infinity
    that stays one is not selected at all).
    """
    limits = torch.finfo(tensor.dtype)
    result = torch.where(tensor != tensor, nan, tensor)
    for infinity, value in ((math.inf, limits.max if posinf is None else posinf),
                            (-math.inf, limits.min if neginf is None else neginf)):
        if value != infinity:
            result = torch.where(result == infinity, value, result)
    return result


_NAN_TO_NUM = {
    torch.Tensor.nan_to_num: _vectorised_nan_to_num,
    torch.nan_to_num: _vectorised_nan_to_num,
    torch.Tensor.nan_to_num_: lambda tensor, *args, **kwargs: tensor.copy_(
        _vectorised_nan_to_num(tensor, *args, **kwargs)),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point()


_IN_PLACE_ARITHMETIC = {torch.Tensor.mul_: True, torch.Tensor.div_: True, torch.Tensor.add_: True,
                        torch.Tensor.sub_: True, torch.Tensor.lerp_: True}


_WEIGHTED = {torch.Tensor.lerp_, torch.Tensor.lerp, torch.lerp}


def _updates_a_number_in_place(func: Any, args: Sequence[Any]) -> bool:
    return _IN_PLACE_ARITHMETIC.get(func, False) and _is_number(args[0])


class SymbolicScalars(TorchFunctionMode):
    r"""
    Inside this mode, numbers read from tensors stay tensors: `.item()` returns the 0-d tensor (in
    `float64`, the precision of a Python number), and a
    tensor given as `alpha=` or `value=` is multiplied in. Outside a traced region it changes nothing
    of substance (the same formulas, evaluated as tensors); inside one it keeps every changing number
    a graph input, so the graph is compiled once.
    """

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _NAN_TO_NUM and torch.compiler.is_compiling():
            return _NAN_TO_NUM[func](*args, **kwargs)
        if func is torch.Tensor.item:
            # A Python number is a double (or an integer): the tensor that stands for it is too, so
            # the scalar arithmetic rounds as it would on the host.
            # (A learning rate held as a tensor of shape `(1,)` reads as the 0-d tensor it stands for.)
            number = args[0].reshape(())
            return number.to(torch.float64 if number.is_floating_point() else torch.int64)
        if _updates_a_number_in_place(func, args):
            # `t.mul_(x)` for a 0-d `float32` state tensor `t` rounds the Python number $x$ to `float32`
            # first; a `float64` tensor standing for $x$ must be rounded the same way.
            args = [args[0], *(a.to(args[0].dtype) if _is_number(a) else a for a in args[1:])]
        elif _meets_a_larger_tensor(args, kwargs):
            if func in _WEIGHTED and len(args) > 2 and _is_number(args[2]):
                # `m.lerp_(g, w)` takes a Python number $w$ in the precision of `m`, and a tensor $w$ only
                # in that precision: the tensor standing for $w$ is rounded as the number would be.
                args = [*args[:2], args[2].to(args[0].dtype), *args[3:]]
            args = [_computed_once(a) for a in args]
            kwargs = {key: _computed_once(value) for key, value in kwargs.items()}
        form = _TENSOR_SCALE_FORMS.get(func)
        if form is not None and _is_scale_to_rewrite(kwargs.get(form[0])):
            keyword, rewrite = form
            return rewrite(*args, kwargs[keyword])
        name = getattr(func, "__name__", None)
        if name in _ARITHMETIC:
            args, kwargs = _numbers_as_inputs(name, args, kwargs)
        return func(*args, **kwargs)


# The operations through which the optimizers use their hyper-parameters: arithmetic, comparisons,
# interpolation, clipping and selection, each of which takes a tensor wherever it takes a Python number.
# By name: the reflected operators (`Tensor.__rpow__`) reach the mode as other objects than the
# attributes of `torch.Tensor`, which the compiler's guards would then disagree about.
_ARITHMETIC = frozenset([
    *(f"{prefix}{name}__" for name in ("add", "sub", "mul", "truediv") for prefix in ("__", "__r", "__i")),
    *(f"__{name}__" for name in ("lt", "le", "gt", "ge", "eq", "ne")),
    *(f"{name}{suffix}" for name in ("add", "sub", "mul", "div", "lerp") for suffix in ("", "_")),
    # A power's base ($\beta^t$), never its exponent: `x ** 0.5` stays the square root the compiler
    # recognises, and no one schedules an exponent.
    "__rpow__",
    "clamp", "clamp_",
    "where",
])


def _is_scale_to_rewrite(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or (isinstance(value, float) and torch.compiler.is_compiling())


def _number_input(value: Any, dtype: torch.dtype, kinds: tuple[type, ...] = (float,)) -> Any:
    r"""
    Inside a traced region, a Python number of one of `kinds` as a 0-d tensor of `dtype` holding the
    same value; anything else, and everything outside a traced region, as it is.
    """
    if isinstance(value, kinds) and not isinstance(value, bool) and torch.compiler.is_compiling():
        return torch.ones((), dtype=dtype) * value
    return value


# A clamp takes its two bounds both as numbers or both as tensors: an integer bound beside a float
# one (Rprop's default step sizes, `(1e-6, 50)`) becomes a tensor too.
_BOUNDS = frozenset(["clamp", "clamp_"])


def _numbers_as_inputs(
    name: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    r"""
    ### Hyper-parameters that change

    Inside a traced region, each float given to the arithmetic operation called `name` as a 0-d tensor
    of the dtype the Python number would have taken in it (that of the operation's first
    floating-point tensor): it holds the same value and rounds the same way, a constant stays a
    constant, and a value that changes stays an input of the graph (see "Numbers that change from step
    to step" above). `torch.ones(()) * x` rather than `torch.tensor(x)`, which would pin the value.
    """
    tensors = [value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)]
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    kinds = (float, int) if name in _BOUNDS else (float,)
    return ([_number_input(a, dtype, kinds) for a in args],
            {key: _number_input(value, dtype, kinds) for key, value in kwargs.items()})


def _meets_a_larger_tensor(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    r"""Whether an operation mixes 0-d tensors with tensors of one dimension or more."""
    dims = [value.dim() == 0 for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)]
    return any(dims) and not all(dims)


def _guarded_step_param(
    optimizer: Any, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
    finite: torch.Tensor,
    arguments: dict[str, Any],
) -> None:
    r"""
    `step_param` into fresh tensors, kept only where `finite` holds: the device-side skip. Under the
    compiler the copies are never made; they are names for the values the fused loop computes.
    """
    work_param = optimizer._carry_options(param, param.clone())
    # A parameter with master weights is updated through its master, which its state holds too: it is
    # the `param` here, written once below, and not again (from a copy made before the update) as state.
    work_state = {key: value.clone() if isinstance(value, torch.Tensor) else value
                  for key, value in state.items() if value is not param}
    optimizer.step_param(work_state, group, grad, work_param, **arguments)
    # $$\theta \leftarrow \mathrm{where}(\text{finite}, \theta^{\text{new}}, \theta)$$
    param.copy_(torch.where(finite, work_param, param))
    for key, value in work_state.items():
        old = state.get(key)
        if isinstance(value, torch.Tensor) and isinstance(old, torch.Tensor):
            old.copy_(torch.where(finite, value, old))
        elif isinstance(value, torch.Tensor):
            # State created by this step (SGD's momentum buffer): zero where the step is skipped.
            state[key] = torch.where(finite, value, torch.zeros_like(value))
        else:
            state[key] = value


def update_group(
    optimizer: Any,
    group: dict[str, Any],
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    states: list[dict[str, Any]],
    arguments: dict[str, Any],
    finite: torch.Tensor | None,
) -> None:
    r"""
    ### The traced body

    The readable loop of the base class's `step`, over lists: `step_param` for each parameter of the
    group, with the group's numbers of this step (`arguments`), or its guarded form when the verdict on
    the gradients is a tensor (under `torch.compile`). Gradients are switched off by a `with`, not by
    the `no_grad` decorator: dynamo compiles a decorated function through a wrapper of its own, whose
    one code object would hold the graphs of every copy (`own_copy` below).
    """
    with torch.no_grad(), SymbolicScalars():
        for param, grad, state in zip(params, grads, states):
            if finite is None:
                optimizer.step_param(state, group, grad, param, **arguments)
            else:
                _guarded_step_param(optimizer, state, group, grad, param, finite, arguments)


# The compiler's backend: `inductor` generates the fused kernels. The tests trace every optimizer with
# `aot_eager`, which goes through the same capture (the graph, its guards, the functionalised
# in-place updates) in a fraction of the time, and compile a few with `inductor` itself.
BACKEND = "inductor"


# The most inputs a value read by two loops may have and still be computed again in each.
RECOMPUTED_READS = 16


def own_copy(function: types.FunctionType) -> types.FunctionType:
    r"""`function` with a code object of its own, which is where dynamo keeps the graphs compiled from it."""
    return types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__,
                              function.__defaults__, function.__closure__)


def compiled_update_group(backend: str, fullgraph: bool, recomputes: bool = True) -> Any:
    r"""
    The compiled update of one optimizer: dynamo keeps a graph per structure (options, shapes) and
    guards which one applies. `fullgraph=False` is the fallback that compiles in pieces, for a step that
    cannot be traced as one graph.

    Each optimizer compiles its own copy of `update_group` (see "Many optimizers in one process" above):
    shared, the compiler's count of graphs would include those of optimizers long freed, and after
    about thirty optimizers every later fast path would run the readable update instead, silently.

    The guards already check every input's size and stride before a graph runs, so the generated code
    is told not to check them again (`size_asserts`): on a model of a thousand small tensors the second
    check cost as much as the arithmetic. With `recomputes`, a value used in two loops is computed again
    in each rather than stored, up to `RECOMPUTED_READS` inputs (see "Values used twice" above).
    """
    function = own_copy(update_group)
    if backend != "inductor":
        return torch.compile(function, fullgraph=fullgraph, backend=backend)
    options = {"size_asserts": False}
    if recomputes:
        options["realize_reads_threshold"] = RECOMPUTED_READS
    return torch.compile(function, fullgraph=fullgraph, backend=backend, options=options)


# At most this many parameters go into one compiled call. The compiler unrolls the loop over a group's
# parameters, so its time grows with their number (about a second per parameter on a busy CPU); a
# model of a thousand tensors would wait half an hour for one graph. Parameters of one shape and dtype
# are put next to each other, so that the chunks of a model with many tensors of a few shapes are
# mostly alike and share a graph: a thousand tensors of one shape need two graphs (the full chunk and
# the remainder). A call of Adam on 32 parameters of a thousand elements takes about 115 µs on a CPU,
# of which its one generated kernel takes 22: the rest is the compiler's guards on the 160 tensors
# (17 µs), its wrappers, and one small buffer for each scalar computed once (two per parameter). On a
# thousand small tensors that is 3.7 ms of calls, as long as torch's whole fused Adam step.
CHUNK = 32


def chunks(items: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    r"""
    `items` (parameter, gradient, state) sorted for the compiled calls: the 0-d parameters apart, the
    others in chunks of at most `CHUNK`, alike ones together (same dtype and shape, in the order each
    kind first appears). The update of one parameter does not depend on another's, so the order is
    free; within a kind the order is kept, so a parameter listed twice is still updated twice in its
    order.
    """
    alike: dict[tuple[torch.dtype, torch.Size], list[Any]] = {}
    for item in items:
        param = item[0]
        key = (param.dtype, param.shape)
        same = alike.get(key)
        if same is None:
            alike[key] = [item]
        else:
            same.append(item)
    numbers = [item for key, same in alike.items() if not key[1] for item in same]
    ordered = [item for key, same in alike.items() if key[1] for item in same]
    return numbers, [ordered[start:start + CHUNK] for start in range(0, len(ordered), CHUNK)]


class FastPathFallbackWarning(RuntimeWarning):
    r"""Some of a fast-path step ran the readable update: the same results, without the speed."""


class FastPath:
    r"""
    ### The fast path of one optimizer

    Holds the learning-rate tensor of each group (by position), and calls the compiled group update on
    chunks of the group. Nothing here is saved: it is rebuilt after a copy or a load.
    """

    def __init__(self) -> None:
        self.learning_rates: dict[int, torch.Tensor] = {}
        # Set when this optimizer's step could not be traced as one graph: later steps go straight to
        # the compiled function that accepts pieces, instead of tracing and failing again.
        self.in_pieces = False
        # Cleared when the compiler failed on this optimizer's graph with values computed again: later
        # steps leave the choice to store them to the compiler.
        self.recomputes = True
        # This optimizer's compiled functions, by (backend, fullgraph, recomputes).
        self.compiled: dict[tuple[str, bool, bool], Any] = {}
        # Set once the compiler's limit of graphs has sent a chunk to the readable update, and said so.
        self.warned_of_the_limit = False

    def group_inputs(self, index: int, group: dict[str, Any], device: torch.device) -> dict[str, Any]:
        r"""
        The group as the graph sees it: every option as it is, a float learning rate as a tensor of one
        element. Its shape is `(1,)`, not `()`: dynamo treats a 0-d `float64` input as a number that
        may be read on the host, makes a symbol for it, and when nothing reads it traces the whole step
        a second time without it. `SymbolicScalars` reads it as a 0-d tensor.
        """
        lr = group["lr"]
        if isinstance(lr, torch.Tensor):
            return group
        held = self.learning_rates.get(index)
        if held is None or held.device != device:
            held = self.learning_rates[index] = torch.zeros(1, dtype=torch.float64, device=device)
        held.fill_(lr)
        return {**group, "lr": held}

    def step_group(
        self,
        optimizer: Any,
        index: int,
        group: dict[str, Any],
        items: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]],
        arguments: dict[str, Any],
        finite: torch.Tensor | None,
    ) -> None:
        r"""
        Update the parameters of one group. Inside a graph that is already being traced (the user
        compiled `opt.step`), the body is traced inline; otherwise the compiled function runs it,
        chunk by chunk.
        """
        if not items:
            return
        if torch.compiler.is_compiling():
            params, grads, states = (list(column) for column in zip(*items))
            update_group(optimizer, group, params, grads, states, arguments, finite)
            return
        numbers, alike_chunks = chunks(items)
        # A 0-d parameter (one number, where a fused pass has nothing to gain) takes the readable step:
        # inside the traced step it would be mistaken for one of the scalars `SymbolicScalars` handles.
        for param, grad, state in numbers:
            optimizer.step_param(state, group, grad, param, **arguments)
        if not alike_chunks:
            return
        inputs = self.group_inputs(index, group, alike_chunks[0][0][0].device)
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            for chunk in alike_chunks:
                params, grads, states = (list(column) for column in zip(*chunk))
                self.update_chunk(optimizer, inputs, params, grads, states, arguments, finite)

    def update_chunk(self, optimizer: Any, group: dict[str, Any], *columns: Any) -> None:
        r"""
        One compiled call. If the compiler itself fails on the graph with values computed again
        (TorchInductor 2.13 does on NeroPlus's, in its fusion of the loops over the same rows), the
        call is compiled again with the compiler's own choice: a failed compilation has run nothing.
        """
        try:
            self.compiled_call(optimizer, group, *columns)
        except torch._dynamo.exc.BackendCompilerFailed:
            if not self.recomputes:
                raise
            self.recomputes = False
            self.compiled_call(optimizer, group, *columns)

    def compiled_call(self, optimizer: Any, group: dict[str, Any], *columns: Any) -> None:
        r"""The compiled call, with the two ways out when one graph cannot do."""
        if not self.in_pieces:
            try:
                self.compiled_function(True)(optimizer, group, *columns)
                return
            except torch._dynamo.exc.FailOnRecompileLimitHit:
                # Past the compiler's limit of graphs for one optimizer (`RECOMPILE_LIMIT` structures):
                # the same update, run as it is written, and said once.
                self.warn_of_the_limit(optimizer)
                update_group(optimizer, group, *columns)
                return
            except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError):
                # A Python branch on a tensor's value, or a number read from one, that no one graph holds.
                self.in_pieces = True
        self.compiled_function(False)(optimizer, group, *columns)

    def warn_of_the_limit(self, optimizer: Any) -> None:
        r"""
        The first time this optimizer's compiled calls run out of graphs: the results are the same, the
        speed is not, and a user who asked for `fused=True` should not have to find that out alone.
        """
        if self.warned_of_the_limit:
            return
        self.warned_of_the_limit = True
        warnings.warn(
            f"{type(optimizer).__name__}'s fast path needs more than {RECOMPILE_LIMIT} compiled graphs "
            "(one per structure of a chunk of parameters: shapes, dtypes, options); the chunks beyond them "
            "take the readable update, with the same results, more slowly. Raise "
            "annotated_opt.core.fastpath.RECOMPILE_LIMIT before the first step to compile them all.",
            FastPathFallbackWarning, stacklevel=2)

    def compiled_function(self, fullgraph: bool) -> Any:
        r"""This optimizer's compiled update, made at its first use."""
        key = (BACKEND, fullgraph, self.recomputes)
        function = self.compiled.get(key)
        if function is None:
            function = self.compiled[key] = compiled_update_group(*key)
        return function
