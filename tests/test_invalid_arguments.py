"""
Invalid arguments fail as they fail in torch: for every class with a `torch.optim` twin (looked up by name,
so a twin added later is covered without editing this file), every constructor argument of the twin is
given a list of bad and borderline values, and each is run through torch's class and ours (build, then
two steps). Where torch refuses a value, ours must refuse it with an exception of the same type (at
construction, naming the argument, if torch refuses it there; at the latest in the step where torch
does if torch refuses it only when it steps); where torch accepts it, ours must accept it too, and step
to the same parameters.

The only exceptions are listed in `STRICTER` and `LENIENT` below, each with its reason; for them the test
asserts what we do instead. torch's own list of invalid inputs, each `OptimizerInfo.optim_error_inputs_func`
of `optim_db`, is run the same way, against its expected exception type and message.
"""

import copy
import inspect
import math
import re
import warnings

import pytest
import torch
from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db

import annotated_opt

TWINS = sorted(name for name, cls in vars(torch.optim).items() if isinstance(cls, type)
               and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
               and hasattr(annotated_opt, name))
# The shapes of the parameters stepped: a matrix and a vector, and two matrices for the optimizers that
# take matrices only (both torch's and ours refuse anything else).
SHAPES = ((3, 2), (2,))
MATRICES_ONLY = {"Muon": ((3, 2), (4, 3))}

# Values for an argument whose default is a number: out of range, not finite, of the wrong type, tensors.
NUMBERS = [-1.0, -1, 0, 0.0, 0.5, 1.0, 1.5, 2, math.nan, math.inf, -math.inf, "0.1", None, 1j, True, [0.1],
           torch.tensor(0.1), torch.tensor(-0.1), torch.tensor(2.0), torch.tensor([0.1]), torch.tensor([2.0]),
           torch.tensor([0.1, 0.2]), torch.tensor(math.nan)]
FLAGS = [None, 0, 1, True, False]
# Arguments that torch reads only when another one is set: the bad value is tried with that one set.
CONTEXT = {"dampening": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}}


def candidates(name: str, default):
    if isinstance(default, bool) or (default is None and name in ("foreach", "fused")):
        return FLAGS
    if name == "line_search_fn":
        return [None, "strong_wolfe", "armijo", 1]
    if isinstance(default, tuple):
        # Wrong lengths, a list, a tensor, and each entry replaced by each number above.
        whole = [(), default[:1], default + default[-1:], list(default)]
        if None not in default:
            whole.append(torch.tensor(default))
        return whole + [default[:i] + (v,) + default[i + 1:] for i in range(len(default)) for v in NUMBERS]
    return NUMBERS


def is_nan(value) -> bool:
    return (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, torch.Tensor) and value.numel() == 1 and value.isnan().item())


def not_a_count(value) -> bool:
    """Not a finite number >= 1 (`None` is `max_eval`'s default)."""
    try:
        return value is not None and not bool(1 <= value < math.inf)
    except (TypeError, RuntimeError):
        return True


# Where ours refuses what torch accepts (or refuses only inside its step with another type), and why.
# Each entry: classes (None: all), arguments, which values, the reason. Ours refuses these at
# construction with a ValueError, TypeError or RuntimeError naming the argument.
STRICTER = [
    (None, None, lambda v: is_nan(v) or (isinstance(v, tuple) and any(is_nan(x) for x in v)),
     "NaN is refused everywhere; torch's SGD compares with `<`, which NaN passes, and then steps to NaN"),
    ({"LBFGS"}, {"max_iter", "max_eval", "history_size"}, not_a_count,
      "torch compares these counts only for equality: 0 or a negative means no limit, a string is never met, "
     "and an infinite max_iter makes the default max_eval NaN"),
    (None, None, lambda v: isinstance(v, complex),
     "a complex number where a real one is expected is a TypeError here; torch's L-BFGS finds out only "
     "when its step compares it (NotImplementedError)"),
]
# Where ours accepts what torch refuses, and why. Ours must build and step to finite parameters.
LENIENT = [
    ({"Adafactor"}, {"d"}, lambda v: bool(0 < v < 1),
     "a clipping threshold below 1, which the paper and `transformers` allow (torch refuses d < 1)"),
]


def listed(table, cls_name: str, argument: str, value) -> bool:
    def matches(entry):
        classes, arguments, predicate, _ = entry
        if (classes is not None and cls_name not in classes) or (arguments is not None and argument not in arguments):
            return False
        try:
            return predicate(value)
        except (TypeError, RuntimeError):
            return False
    return any(matches(entry) for entry in table)


def outcome(cls, kwargs: dict):
    """('construct' | 'step' | 'ok', the exception or None, the parameters), after two steps."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(shape, generator=generator) for shape in MATRICES_ONLY.get(cls.__name__, SHAPES)]
    grads = [torch.randn(p.shape, generator=generator) for p in params]

    def closure():
        for p, g in zip(params, grads):
            p.grad = g.clone()
        return torch.tensor(1.0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optimizer = cls(params, **copy.deepcopy(kwargs))
        except Exception as error:  # noqa: BLE001 - the type is what is compared
            return "construct", error, params
        try:
            for _ in range(2):  # some values are read from the second step on (SGD's dampening)
                closure()
                optimizer.step(closure)
        except Exception as error:  # noqa: BLE001
            return "step", error, params
    return "ok", None, params


def cases():
    out = []
    for name in TWINS:
        for argument, parameter in inspect.signature(getattr(torch.optim, name).__init__).parameters.items():
            if argument in ("self", "params"):
                continue
            for value in candidates(argument, parameter.default):
                kwargs = {**CONTEXT.get(argument, {}), argument: value}
                out.append(pytest.param(name, argument, kwargs, id=f"{name}-{argument}={value!r}"))
    return out


def names_argument(error: Exception, argument: str) -> bool:
    return argument.rstrip("s") in str(error)


@pytest.mark.parametrize(("name", "argument", "kwargs"), cases())
def test_a_bad_argument_fails_as_in_torch(name, argument, kwargs) -> None:
    value = kwargs[argument]
    theirs, their_error, their_params = outcome(getattr(torch.optim, name), kwargs)
    ours, our_error, params = outcome(getattr(annotated_opt, name), kwargs)
    if listed(STRICTER, name, argument, value):
        assert ours == "construct" and isinstance(our_error, ValueError | TypeError | RuntimeError), our_error
        assert names_argument(our_error, argument), our_error
    elif listed(LENIENT, name, argument, value):
        assert theirs == "construct" and ours == "ok", (their_error, our_error)
        assert all(p.isfinite().all() for p in params)
    elif theirs == "ok":
        assert ours == "ok", f"torch accepts it, we raise {our_error!r}"
        # And steps as torch does, NaN and infinities included: equal to float32 rounding, which a tensor
        # learning rate (read as the number it holds) and torch's multi-tensor kernels may change.
        torch.testing.assert_close(params, their_params, rtol=1e-6, atol=1e-6, equal_nan=True)
    elif theirs == "construct":
        assert ours == "construct" and isinstance(our_error, type(their_error)), (their_error, our_error)
        assert names_argument(our_error, argument), our_error
    else:
        assert ours in ("construct", "step") and isinstance(our_error, type(their_error)), (their_error, our_error)


def error_cases():
    return [pytest.param(info, error_input, id=f"{info.name}-{error_input.optimizer_error_input.desc}")
            for info in optim_db if info.name in TWINS
            for error_input in info.optim_error_inputs_func(device="cpu", dtype=torch.float32)]


@pytest.mark.parametrize(("info", "error_input"), error_cases())
def test_torchs_own_invalid_inputs_fail_as_torch_expects(info, error_input) -> None:
    """`optim_error_inputs_func`: torch's list of invalid inputs, with the exception type and message it expects."""
    inputs = error_input.optimizer_error_input
    cls = getattr(annotated_opt, info.name)
    params = copy.deepcopy(inputs.params) if inputs.params is not None else [torch.nn.Parameter(torch.ones(2))]
    error_type = error_input.error_type
    if error_input.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
        if issubclass(error_type, Warning):
            with pytest.warns(error_type, match=error_input.error_regex):
                cls(params, **inputs.kwargs)
            return
        with pytest.raises(error_type) as error:
            cls(params, **inputs.kwargs)
    else:
        # Refused at the step by torch; ours may refuse it earlier, when the parameter is added.
        with pytest.raises(error_type) as error:
            cls(params, **inputs.kwargs).step()
    # torch's message, or ours naming the argument in its own words.
    message = str(error.value)
    assert re.search(error_input.error_regex, message) or any(names_argument(error.value, k) for k in inputs.kwargs)
