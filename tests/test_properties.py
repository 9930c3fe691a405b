"""
The property battery: every registered optimizer, in each of its configurations, meets the bar
torch.optim sets for its own optimizers. Each test is one property of `registry.PROPERTIES`; an entry
skips one only through its `exemptions`, with a reason.
"""

import copy
import math
import warnings

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from annotated_opt.core.distributed import read_count
from annotated_opt.core.nonfinite import NonFiniteGradientError
from annotated_opt.core.verification import param_groups, parameter_set

from .battery import (
    ALL,
    as_taken,
    assert_finite,
    assert_same_params,
    cases,
    closure_for,
    entries,
    exempt,
    noise,
    run,
    same,
    shaped,
    state_tensors,
    twin,
)
from .helpers import save_and_load

# The awkward parameter set of the verification harness, in the entry's kind (`parameter_set`): 0-d,
# vectors, a matrix, a 4-d tensor, zero-size ones, a non-contiguous one (matrices of every shape for an
# optimizer of matrices), then one without a gradient every third step and one always frozen.


def awkward_without_grad(info):
    count = len(parameter_set(info, 0, torch.float64))
    return lambda index, step: index == count - 1 or (index == count - 2 and step % 3 == 0)


def awkward(info, config, seed=0, dtype=torch.float64):
    params = parameter_set(info, seed, dtype)
    return params, info.build(param_groups(params, config), **config)


def run_awkward(info, optimizer, params, steps, seed=0):
    run(optimizer, params, steps, seed, without_grad=awkward_without_grad(info))


# ---------------------------------------------------------------------------------------------- state


@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "weights-only-file"])
@pytest.mark.parametrize(("info", "config"), cases())
def test_state_dict_round_trip(info, config, through_file) -> None:
    exempt(info, "state_dict_round_trip")
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 8))
    state = optimizer.state_dict()
    if through_file:
        state = save_and_load(state)
    copies = twin(params)
    restored = info.build(param_groups(copies, config), **config)
    restored.load_state_dict(state)
    assert same(restored.state_dict(), optimizer.state_dict())

    run_awkward(info, optimizer, params, range(8, 16))
    run_awkward(info, restored, copies, range(8, 16))
    assert_same_params(params, copies)
    assert same(restored.state_dict(), optimizer.state_dict())


@pytest.mark.parametrize(("info", "config"), cases())
def test_older_state_dict_without_newer_keys(info, config) -> None:
    """Group options at their default may be missing (a checkpoint saved before they existed)."""
    exempt(info, "older_state_dict")
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 6))
    state = copy.deepcopy(optimizer.state_dict())
    state.pop("skipped_steps", None)
    dropped = set()
    for group in state["param_groups"]:
        for key in list(group):
            default = optimizer.defaults.get(key, object())
            if key not in ("params", "param_names") and not isinstance(default, torch.Tensor) and group[key] == default:
                dropped.add(key)
                del group[key]
    assert {"nonfinite", "master_weights"} <= dropped

    copies = twin(params)
    restored = info.build(param_groups(copies, config), **config)
    restored.load_state_dict(state)
    assert same(restored.state_dict(), optimizer.state_dict())
    run_awkward(info, optimizer, params, range(6, 12))
    run_awkward(info, restored, copies, range(6, 12))
    assert_same_params(params, copies)


@pytest.mark.parametrize("info", entries())
def test_loading_does_not_alias_or_modify_the_source(info) -> None:
    exempt(info, "load_does_not_alias")
    config = info.configs[-1]
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 4))
    state = optimizer.state_dict()
    snapshot = copy.deepcopy(state)
    copies = twin(params)
    restored = info.build(param_groups(copies, config), **config)
    restored.load_state_dict(state)
    source_storage = {t.untyped_storage().data_ptr() for t in state_tensors(optimizer) if t.numel()}
    assert not any(t.untyped_storage().data_ptr() in source_storage for t in state_tensors(restored) if t.numel())
    run_awkward(info, restored, copies, range(4, 7))
    assert same(state, snapshot)
    assert same(optimizer.state_dict(), snapshot)


@pytest.mark.parametrize(("info", "config"), cases())
def test_deepcopy_continues_identically(info, config) -> None:
    exempt(info, "deepcopy")
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 5))
    copies, copied = copy.deepcopy((params, optimizer))
    assert type(copied) is type(optimizer)
    assert all(p is q for p, q in zip(copies, (p for g in copied.param_groups for p in g["params"])))
    assert repr(copied) == repr(optimizer)
    run_awkward(info, optimizer, params, range(5, 10))
    run_awkward(info, copied, copies, range(5, 10))
    assert_same_params(params, copies)
    assert same(copied.state_dict(), optimizer.state_dict())


# ---------------------------------------------------------------------------------------------- edge inputs


@pytest.mark.parametrize(("info", "config"), cases())
def test_step_without_gradients_changes_nothing(info, config) -> None:
    exempt(info, "no_grad_step_is_noop")
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 4))
    before_params = [p.detach().clone() for p in params]
    before_state = copy.deepcopy(optimizer.state_dict())
    run(optimizer, params, [4], without_grad=lambda index, step: True)
    assert_same_params(params, before_params)
    assert same(optimizer.state_dict(), before_state)


@pytest.mark.parametrize(("info", "config"), cases())
def test_zero_gradients_change_nothing(info, config) -> None:
    """From the first step, zero gradients without weight decay leave the parameters exactly as they are."""
    exempt(info, "zero_grad_is_noop")
    params, optimizer = awkward(info, config)
    for group in optimizer.param_groups:
        if "weight_decay" in group:
            group["weight_decay"] = 0.0
    before = [p.detach().clone() for p in params]
    run(optimizer, params, range(1, 6), gradient=lambda p, index, step: torch.zeros_like(p))
    assert_same_params(params, before)
    assert_finite(optimizer, params)


@pytest.mark.parametrize(("info", "config"), cases())
def test_zero_size_parameters_change_nothing_else(info, config) -> None:
    exempt(info, "zero_size_params")
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_()
    alone = twin([weight])
    # The zero-size members of the entry's parameter set: (0,) and (2, 0, 3), or a (0, 3) matrix.
    empty = [p for p in parameter_set(info, 3, torch.float64) if p.numel() == 0]
    shapes = [p.shape for p in empty]
    with_empty = info.build([weight, *empty], **config)
    without = info.build(alone, **config)
    run(with_empty, [weight, *empty], range(1, 8))
    run(without, alone, range(1, 8))
    assert_same_params([weight], alone)
    assert empty and [p.shape for p in empty] == shapes
    assert_finite(with_empty, [weight, *empty])


@pytest.mark.parametrize(("info", "config"), cases())
def test_frozen_parameter_is_untouched_then_trains(info, config) -> None:
    exempt(info, "frozen_then_unfrozen")
    generator = torch.Generator().manual_seed(4)
    trained = torch.randn(shaped(info, (3, 4)), generator=generator, dtype=torch.float64).requires_grad_()
    frozen = torch.randn(shaped(info, (5,)), generator=generator, dtype=torch.float64).requires_grad_()
    frozen_before = frozen.detach().clone()
    alone = twin([trained])
    optimizer = info.build([trained, frozen], **config)
    reference = info.build(alone, **config)
    # The state it starts with: none, or (Adagrad, as torch's) the state created with its group.
    initial_state = copy.deepcopy(optimizer.state.get(frozen, {}))
    # While frozen, the parameter is invisible: untouched (even with weight decay), its state too, and
    # the others train exactly as if it were not there.
    run(optimizer, [trained, frozen], range(1, 6), without_grad=lambda index, step: index == 1)
    run(reference, alone, range(1, 6))
    assert torch.equal(frozen.detach(), frozen_before)
    assert same(optimizer.state.get(frozen, {}), initial_state)
    assert_same_params([trained], alone)
    # Unfrozen, it trains.
    run(optimizer, [trained, frozen], range(6, 11))
    assert not torch.equal(frozen.detach(), frozen_before)
    assert_finite(optimizer, [trained, frozen])


@pytest.mark.parametrize(("info", "config"), cases())
def test_non_contiguous_parameter_matches_contiguous(info, config) -> None:
    exempt(info, "non_contiguous")
    generator = torch.Generator().manual_seed(5)
    strided = torch.randn(6, 4, generator=generator, dtype=torch.float64).t().requires_grad_()
    dense = strided.detach().contiguous().requires_grad_()
    strides = strided.stride()
    assert not strided.is_contiguous()
    first, second = info.build([strided], **config), info.build([dense], **config)
    run(first, [strided], range(1, 9))
    run(second, [dense], range(1, 9))
    assert strided.stride() == strides
    # Element-wise updates are bit-identical; a reduction (a row norm) may add in another order over a
    # strided tensor, hence the tolerance of a few roundings.
    torch.testing.assert_close(strided.detach(), dense.detach(), rtol=1e-13, atol=1e-15)
    for (key, a), b in zip(first.state[strided].items(), second.state[dense].values()):
        torch.testing.assert_close(as_tensors(a), as_tensors(b), rtol=1e-13, atol=1e-15, msg=key)


def as_tensors(value):
    """A state entry for `assert_close`: a number as a tensor, a list (L-BFGS's history) entry by entry."""
    if isinstance(value, list):
        return [as_tensors(v) for v in value]
    return value if value is None else torch.as_tensor(value)


@pytest.mark.parametrize(("info", "config"), cases())
def test_add_param_group_mid_run(info, config) -> None:
    exempt(info, "add_param_group")
    params, optimizer = awkward(info, config)
    run_awkward(info, optimizer, params, range(1, 4))
    generator = torch.Generator().manual_seed(6)
    extra = torch.randn(2, 3, generator=generator, dtype=torch.float64).requires_grad_()
    lr = optimizer.param_groups[0]["lr"] / 4
    # Prepared as `build` prepares the first groups (Nero projects it onto its constraints).
    (new_group,) = info.prepared([{"params": [extra], "lr": lr}], **config)
    extra_before = extra.detach().clone()
    optimizer.add_param_group(new_group)
    group = optimizer.param_groups[-1]
    assert set(optimizer.defaults) <= set(group) and group["lr"] == lr
    everything = [*params, extra]
    run_awkward(info, optimizer, everything, range(4, 7))
    assert not torch.equal(extra.detach(), extra_before)
    assert_finite(optimizer, everything)

    # The new group is part of every later checkpoint.
    copies = twin(everything)
    restored = info.build(param_groups(copies[:-1], config), **config)
    restored.add_param_group({"params": [copies[-1]], "lr": lr})
    restored.load_state_dict(save_and_load(optimizer.state_dict()))
    run_awkward(info, optimizer, everything, range(7, 10))
    run_awkward(info, restored, copies, range(7, 10))
    assert_same_params(everything, copies)


# ---------------------------------------------------------------------------------------------- complex


def complex_parameters(info, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shaped(info, shape), generator=generator, dtype=torch.complex128).requires_grad_()
            for shape in ((3,), (2, 4), ())]


@pytest.mark.parametrize(("info", "config"), cases())
def test_complex_parameters_behave_as_their_real_views(info, config) -> None:
    exempt(info, "complex_as_real")
    complex_params = complex_parameters(info, 7)
    if not getattr(info.cls, "supports_complex", True):
        with pytest.raises(ValueError, match="complex"):
            info.build(complex_params, **config)
        return
    real_params = [torch.view_as_real(p.detach()).clone().requires_grad_() for p in complex_params]
    complex_optimizer = info.build(param_groups(complex_params, config), **config)
    real_optimizer = info.build(param_groups(real_params, config), **config)

    def real_gradient(p, index, step):
        z = torch.view_as_complex(p.detach())
        return torch.view_as_real(0.5 * z + noise(z.shape, step, 0, index, z.dtype))

    run(complex_optimizer, complex_params, range(1, 9))
    run(real_optimizer, real_params, range(1, 9), gradient=real_gradient)
    assert_same_params([torch.view_as_real(p) for p in complex_params], real_params)
    for z, x in zip(complex_params, real_params):
        assert same(complex_optimizer.state[z], real_optimizer.state[x])


# ---------------------------------------------------------------------------------------------- dtypes


def bounded_gradient(p, index, step):
    """Gradients of magnitude in [0.5, 2], random sign: representable in every dtype, never zero."""
    magnitude = noise(p.shape, step, 1, index, torch.float64).abs().clamp(0.5, 2.0)
    sign = noise(p.shape, step, 2, index, torch.float64).sign()
    return (magnitude * torch.where(sign == 0, 1.0, sign)).to(p.dtype)


# Largest error relative to the parameters' scale after 6 steps, against the same run in float64.
NATIVE_TOLERANCE = {torch.float64: 0.0, torch.float32: 1e-6, torch.bfloat16: 0.03, torch.float16: 0.005}


@pytest.mark.parametrize("dtype", list(NATIVE_TOLERANCE), ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize(("info", "config"), cases())
def test_native_dtypes(info, config, dtype) -> None:
    exempt(info, "native_dtypes")
    exact = parameter_set(info, 8, torch.float64)[:4]
    low = [p.detach().to(dtype).requires_grad_() for p in exact]
    exact = [p.detach().to(dtype).double().requires_grad_() for p in low]
    low_optimizer = info.build(param_groups(low, config), **config)
    exact_optimizer = info.build(param_groups(exact, config), **config)
    run(low_optimizer, low, range(1, 7), gradient=lambda p, i, s: bounded_gradient(p, i, s))
    run(exact_optimizer, exact, range(1, 7), gradient=lambda p, i, s: bounded_gradient(p, i, s).to(dtype).double())
    assert_finite(low_optimizer, low)
    assert all(p.dtype == dtype for p in low)
    # Parameter-sized state (moments, buffers) is kept in the parameter's dtype, as torch.optim keeps it;
    # smaller statistics (a step count, per-row norms, NAdam's product of momentum coefficients) may be
    # kept more precisely. A 0-d parameter has the shape of every scalar statistic, so for it the entries
    # checked are those that are parameter-sized for the other parameters.
    def floating(value):
        return isinstance(value, torch.Tensor) and value.is_floating_point()

    sized = {key for p in low if p.ndim > 0 for key, value in low_optimizer.state[p].items()
             if floating(value) and value.shape == p.shape}
    for p in low:
        for key, value in low_optimizer.state[p].items():
            if floating(value) and (value.shape == p.shape if p.ndim > 0 else key in sized):
                assert value.dtype == dtype, key
    # Zero-size parameters (a matrix optimizer's first four include one) have no values to compare.
    scale = max(p.abs().max().item() for p in exact if p.numel())
    error = max((p.double() - q).abs().max().item() for p, q in zip(low, exact) if p.numel())
    assert error <= NATIVE_TOLERANCE[dtype] * scale


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize(("info", "config"), cases())
def test_master_weights_follow_float32_exactly(info, config, dtype) -> None:
    """
    With the same gradients, a half-precision parameter with master weights follows float32 training
    bit for bit: its master is the float32 parameter, itself is the master rounded, and the state is
    float32 state. Also across a checkpoint saved and loaded with weights_only=True.
    """
    exempt(info, "master_weights")
    low = [p.detach().to(dtype).requires_grad_() for p in parameter_set(info, 9, torch.float32)[:4]]
    low_optimizer = info.build(param_groups(low, config), **config)
    for group in low_optimizer.param_groups:
        group["master_weights"] = True
    # The float32 run starts where the low-precision one does once built (building may prepare the
    # parameters: Nero projects them).
    full = [p.detach().float().requires_grad_() for p in low]
    full_optimizer = info.build(param_groups(full, config), **config)

    def gradients(p, index, step):
        return bounded_gradient(p, index, step).to(dtype).to(p.dtype)

    def check(low, full, low_optimizer, full_optimizer):
        for p, q in zip(low, full):
            state, reference = low_optimizer.state[p], full_optimizer.state[q]
            assert torch.equal(state["master_param"], q.detach())
            assert torch.equal(p.detach(), q.detach().to(dtype))
            assert same({k: v for k, v in state.items() if k != "master_param"}, reference)

    run(low_optimizer, low, range(1, 6), gradient=gradients)
    run(full_optimizer, full, range(1, 6), gradient=gradients)
    check(low, full, low_optimizer, full_optimizer)

    low_copies = twin(low)
    restored = info.build(param_groups(low_copies, config), **config)
    restored.load_state_dict(save_and_load(low_optimizer.state_dict()))
    for optimizer, params in ((low_optimizer, low), (restored, low_copies), (full_optimizer, full)):
        run(optimizer, params, range(6, 10), gradient=gradients)
    check(low, full, low_optimizer, full_optimizer)
    check(low_copies, full, restored, full_optimizer)


# ---------------------------------------------------------------------------------------------- bad gradients


def two_groups(info, config, policy):
    generator = torch.Generator().manual_seed(10)
    params = [torch.randn(shaped(info, shape), generator=generator, dtype=torch.float64).requires_grad_()
              for shape in ((3,), (2, 2), (4,), (2, 3))]
    groups = [{"params": params[:2], "nonfinite": policy}, {"params": params[2:], "nonfinite": policy}]
    return params, info.build(groups, **config)


def poisoned(value: float):
    """Good gradients, except one entry of the last parameter (of the last group)."""

    def gradient(p, index, step):
        g = 0.5 * p.detach() + noise(p.shape, step, 0, index, p.dtype)
        if index == 3:
            g[1, 2] = value
        return g

    return gradient


BAD_VALUES = [pytest.param(math.nan, id="nan"), pytest.param(math.inf, id="inf"), pytest.param(-math.inf, id="-inf")]


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize(("info", "config"), cases())
def test_nonfinite_gradient_raises_and_changes_nothing(info, config, bad) -> None:
    exempt(info, "nonfinite_raise")
    params, optimizer = two_groups(info, config, "raise")
    run(optimizer, params, range(1, 4))
    before_params = [p.detach().clone() for p in params]
    before_state = copy.deepcopy(optimizer.state_dict())
    with pytest.raises(NonFiniteGradientError, match="parameter 1 of group 1.*Nothing was updated"):
        run(optimizer, params, [4], gradient=poisoned(bad))
    assert_same_params(params, before_params)
    assert same(optimizer.state_dict(), before_state)
    # The error leaves the optimizer usable.
    run(optimizer, params, range(5, 7))
    assert_finite(optimizer, params)


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize(("info", "config"), cases())
def test_nonfinite_gradient_skips_the_step_when_asked(info, config, bad) -> None:
    exempt(info, "nonfinite_skip")
    params, optimizer = two_groups(info, config, "skip")
    run(optimizer, params, range(1, 4))
    copies, copied = copy.deepcopy((params, optimizer))
    before_state = copy.deepcopy(optimizer.state_dict())
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        run(optimizer, params, [4], gradient=poisoned(bad))
    assert_same_params(params, copies)
    after, count = read_count(optimizer.state_dict())
    assert count == optimizer.skipped_steps == 1
    assert same(after, read_count(before_state)[0])
    # The run goes on as if the bad step had never been taken.
    run(optimizer, params, range(5, 8))
    run(copied, copies, range(5, 8))
    assert_same_params(params, copies)
    assert_finite(optimizer, params)


# ---------------------------------------------------------------------------------------------- constructor


def invalid_values(info):
    """Every numeric constructor argument must refuse NaN, and a negative value unless the entry allows it."""
    for name, default in info.defaults.items():
        if isinstance(default, bool) or default is None:
            continue
        if isinstance(default, float):
            yield name, math.nan
            if name not in info.negative_args:
                yield name, -1.0
        elif isinstance(default, int):
            if name not in info.negative_args:
                yield name, -1
        elif isinstance(default, tuple) and all(isinstance(v, float) for v in default):
            for index in range(len(default)):
                for bad in (math.nan,) if name in info.negative_args else (math.nan, -0.5):
                    yield name, default[:index] + (bad,) + default[index + 1:]
        elif isinstance(default, str):
            yield name, "no-such-choice"


def argument_cases():
    return [pytest.param(info, name, value, id=f"{info.key}-{name}={value}")
            for info in ALL for name, value in invalid_values(info)]


def param(info):
    return [torch.zeros(shaped(info, (3,)), requires_grad=True)]


@pytest.mark.parametrize(("info", "name", "value"), argument_cases())
def test_invalid_constructor_argument_raises_naming_it(info, name, value) -> None:
    exempt(info, "invalid_arguments")
    with pytest.raises(ValueError) as error:
        info.build(param(info), **{name: value})
    singular = name[:-1] if name.endswith("s") else name
    assert singular in str(error.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("nonfinite", "sometimes"), ("master_weights", "yes"), ("lr", -1.0), ("lr", math.nan),
     ("lr", torch.tensor([0.1, 0.2]))],
    ids=["nonfinite", "master_weights", "negative-lr", "nan-lr", "tensor-lr-with-two-values"],
)
@pytest.mark.parametrize("info", entries())
def test_invalid_group_option_raises_naming_it(info, option, value) -> None:
    exempt(info, "invalid_arguments")
    with pytest.raises(ValueError, match=f"Invalid {option}"):
        info.build([{"params": param(info), option: value}], **info.configs[0])
    optimizer = info.build(param(info), **info.configs[0])
    with pytest.raises(ValueError, match=f"Invalid {option}"):
        optimizer.add_param_group({"params": param(info), option: value})
    assert len(optimizer.param_groups) == 1


def warning_messages(build) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("info", entries())
def test_parameter_lists_behave_as_in_torch(info) -> None:
    exempt(info, "parameter_lists")
    with pytest.raises(ValueError, match="empty parameter list"):
        info.build([], **info.configs[0])
    p = torch.zeros(shaped(info, (2,)), requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        info.build([{"params": [p]}, {"params": [p]}], **info.configs[0])
    # A duplicate gets exactly torch's warning.
    expected = warning_messages(lambda: torch.optim.SGD([p, p], lr=0.1))
    assert expected and warning_messages(lambda: info.build([p, p], **info.configs[0])) == expected


@pytest.mark.parametrize("info", entries())
def test_sparse_gradient_raises_clearly(info) -> None:
    exempt(info, "sparse_gradient")
    p = torch.randn(4, 2, generator=torch.Generator().manual_seed(13)).requires_grad_()
    optimizer = info.build([p], **info.configs[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 2), (4, 2))
    if getattr(optimizer, "sparse_gradients", False):
        # An optimizer of sparse gradients only (SparseAdam, as torch's) refuses a dense one instead.
        with pytest.raises(RuntimeError, match="does not support dense gradients"):
            optimizer.step(closure_for([p], 1, gradient=lambda q, index, step: sparse.to_dense()))
        return
    if not getattr(optimizer, "supports_sparse", False):
        with pytest.raises(RuntimeError, match="does not support sparse gradients"):
            optimizer.step(closure_for([p], 1, gradient=lambda q, index, step: sparse))
        return
    # An optimizer with a sparse step (SGD, Adagrad, as in torch): on a first step the rows the gradient
    # does not name have a zero gradient, and the sparse step equals the dense one.
    q = p.detach().clone().requires_grad_()
    dense = info.build([q], **info.configs[0])
    optimizer.step(closure_for([p], 1, gradient=lambda q, index, step: sparse))
    dense.step(closure_for([q], 1, gradient=lambda q, index, step: sparse.to_dense()))
    assert torch.equal(p, q)


# ---------------------------------------------------------------------------------------------- hooks, lr, closure


def hook_events(optimizer, params) -> list[str]:
    """Every kind of hook, recording when it fires for `optimizer` (not for an optimizer it wraps)."""
    events = []
    record = lambda name: lambda opt, *rest: events.append(name) if opt is optimizer else None  # noqa: E731
    handles = [register_optimizer_step_pre_hook(record("global step pre")),
               register_optimizer_step_post_hook(record("global step post"))]
    try:
        optimizer.register_step_pre_hook(record("step pre"))
        optimizer.register_step_post_hook(record("step post"))
        optimizer.register_state_dict_pre_hook(record("state_dict pre"))
        optimizer.register_state_dict_post_hook(record("state_dict post"))
        optimizer.register_load_state_dict_pre_hook(record("load pre"))
        optimizer.register_load_state_dict_post_hook(record("load post"))
        run(optimizer, params, range(1, 3))
        optimizer.load_state_dict(optimizer.state_dict())
        run(optimizer, params, [3])
    finally:
        for handle in handles:
            handle.remove()
    return events


@pytest.mark.parametrize("info", entries())
def test_hooks_fire_in_torch_order(info) -> None:
    exempt(info, "hooks")
    ours = [torch.ones(shaped(info, (3,)), dtype=torch.float64, requires_grad=True)]
    theirs = [torch.ones(3, dtype=torch.float64, requires_grad=True)]
    expected = hook_events(torch.optim.SGD(theirs, lr=0.1), theirs)
    assert hook_events(info.build(ours, **info.configs[0]), ours) == expected


@pytest.mark.parametrize(("info", "config"), cases())
def test_tensor_learning_rate_gives_the_same_steps(info, config) -> None:
    """A tensor lr, scheduled in place, steps exactly like the same float lr (torch.optim accepts both too)."""
    exempt(info, "tensor_lr")
    # A float32 tensor, as `torch.tensor(0.01)` gives; the float run uses the number it holds.
    lr = torch.tensor(config.get("lr", info.defaults.get("lr")))
    results = []
    for as_tensor in (False, True):
        params = parameter_set(info, 11, torch.float64)
        value = lr.clone() if as_tensor else lr.item()
        optimizer = info.build(params, **{**config, "lr": value})
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        run(optimizer, params, range(1, 7), scheduler=scheduler, without_grad=awkward_without_grad(info))
        results.append((params, optimizer.param_groups[0]["lr"]))
    assert_same_params(results[0][0], results[1][0])
    assert isinstance(results[1][1], torch.Tensor) and results[1][1].item() == results[0][1]


@pytest.mark.parametrize("info", entries())
def test_closure_runs_with_gradients_and_its_loss_is_returned(info) -> None:
    exempt(info, "closure")
    model = torch.nn.Linear(3, 1).double()
    # The layer's weight and bias in the shapes the entry takes (Muon: matrices), read through views of
    # the layer's own shapes in the forward pass.
    shapes = [p.shape for p in model.parameters()]
    params = [p.detach().reshape(shaped(info, p.shape)).clone().requires_grad_() for p in model.parameters()]
    optimizer = info.build(params, **info.configs[0])
    inputs = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        optimizer.zero_grad()
        weight, bias = (p.view(shape) for p, shape in zip(params, shapes))
        loss = torch.nn.functional.linear(inputs, weight, bias).pow(2).mean()
        loss.backward()
        as_taken(optimizer, params, 1)
        return loss

    before = [p.detach().clone() for p in params]
    loss = optimizer.step(closure)
    assert calls and all(calls)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    assert any(not torch.equal(b, p) for b, p in zip(before, params))


def test_every_property_is_tested_and_every_test_names_its_property() -> None:
    """The registry's list of properties and the battery stay in step: each is checked by a test here."""
    import inspect

    from annotated_opt.core.registry import PROPERTIES

    from . import test_properties, test_property_fuzz

    source = inspect.getsource(test_properties) + inspect.getsource(test_property_fuzz)
    for name in PROPERTIES:
        assert f'exempt(info, "{name}")' in source, name
