"""
Parity with torch's own list of optimizer configurations, `optim_db` (shipped in the torch wheel, in
`torch.testing._internal.common_optimizers`): every `OptimizerInfo` whose class name exists in
`annotated_opt` (looked up by name, so a twin added later is covered without editing this file), every
configuration its `optim_inputs_func(device="cpu")` returns, each also with the implementation flags
torch's own tests add (`foreach`, `differentiable`, `fused`, through torch's helper
`_get_optim_inputs_including_global_cliquey_kwargs`). Ours and torch's class step side by side with the
same gradients; after every step every parameter and every state tensor must be equal: bit for bit in
float32, within 1e-15 relative in float64.

What is left out, and why: the configurations torch itself marks as unsupported on the CPU are not
returned for `device="cpu"` (the `capturable=True` lists, run on CUDA only, and `fused` for optimizers
whose `supports_fused_on` lacks the CPU).

The reference for a configuration is torch's class with the same arguments, except that `fused=True`
is compared with torch's for-loop (`fused=False`): our `fused` gives the readable step's results (see
[implementation flags](implementation.md)), and torch's fused kernels round differently from its own
for-loop. How far they are apart is asserted too, so the day torch's fused and for-loop agree, or ours
gets a fused path that must then match torch's, this test says so.
"""

import copy

import pytest
import torch
from torch.testing._internal.common_optimizers import _get_optim_inputs_including_global_cliquey_kwargs, optim_db

import annotated_opt
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import row_sparse, takes_sparse_gradients

from .battery import shaped

STEPS = 4
TWINS = [info for info in optim_db if hasattr(annotated_opt, info.optim_cls.__name__)]


def cases() -> list:
    return [
        pytest.param(info, optim_input.kwargs, dtype, id=f"{info.name}-{optim_input.desc}-{str(dtype)[6:]}")
        for info in TWINS
        for optim_input in _get_optim_inputs_including_global_cliquey_kwargs("cpu", torch.float64, info)
        for dtype in (torch.float32, torch.float64)
    ]


def parameters(info, dtype: torch.dtype) -> list[torch.Tensor]:
    """
    A matrix, a vector and a scalar, as a small layer and its bias and gain would be; in the shapes the
    registry entry takes (their matrix views for Muon, as the property battery gives them).
    """
    entry = REGISTRY[info.optim_cls.__name__.lower()]
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(shaped(entry, shape), generator=generator, dtype=dtype) for shape in ((4, 3), (3,), ())]


def gradient_closure(params: list[torch.Tensor], step: int, sparse: bool):
    r"""
    A closure that sets the gradients of step `step` at the current parameters, $g = \tfrac12\theta + \xi$
    with seeded noise $\xi$, and returns the loss they are the gradient of, $\sum \tfrac14\theta^2 + \xi\theta$
    (L-BFGS evaluates it several times per step). Row-sparse for an optimizer of sparse gradients only.
    """
    generator = torch.Generator().manual_seed(step)
    noise = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]

    def closure() -> torch.Tensor:
        loss = torch.zeros((), dtype=params[0].dtype)
        for p, xi in zip(params, noise):
            value = p.detach()
            p.grad = row_sparse(0.5 * value + xi, step) if sparse else 0.5 * value + xi
            loss = loss + (0.25 * value * value + xi * value).sum()
        return loss

    return closure


FAST_PATH_FLOAT32_RTOL = 1e-5


def assert_equal(ours, theirs, what: str, float32_rtol: float = 0.0) -> None:
    """
    Tensors or numbers; a list (L-BFGS's history) entry by entry, `None` (a slot not used yet) only as
    `None`. `float32_rtol` allows that much relative rounding in single precision (our fast path).
    """
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), what
        for index, (mine, their) in enumerate(zip(ours, theirs)):
            assert_equal(mine, their, f"{what}[{index}]", float32_rtol)
        return
    if theirs is None or ours is None:
        assert ours is theirs, what
        return
    if not (isinstance(ours, torch.Tensor) and isinstance(theirs, torch.Tensor)):
        # A number (L-BFGS's step length `t`, which torch keeps as the `lr` it was given, int, float or
        # tensor) is compared by its value.
        ours, theirs = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(theirs, dtype=torch.float64)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    if ours.dtype == torch.float64:
        scale = theirs.abs().max().item() if theirs.numel() else 0.0
        error = (ours - theirs).abs().max().item() if theirs.numel() else 0.0
        assert error <= 1e-15 * scale, f"{what}: relative error {error / scale:.3g}"
    elif float32_rtol:
        torch.testing.assert_close(ours, theirs, rtol=float32_rtol, atol=float32_rtol, msg=what)
    else:
        assert torch.equal(ours, theirs), f"{what}: {(ours - theirs).abs().max().item():.3g}"


def run_side_by_side(info, kwargs: dict, dtype: torch.dtype, reference_kwargs: dict):
    ours_params = parameters(info, dtype)
    theirs_params = copy.deepcopy(ours_params)
    ours = getattr(annotated_opt, info.name)(ours_params, **copy.deepcopy(kwargs))
    theirs = info.optim_cls(theirs_params, **copy.deepcopy(reference_kwargs))
    for step in range(1, STEPS + 1):
        ours.step(gradient_closure(ours_params, step, takes_sparse_gradients(ours)))
        theirs.step(gradient_closure(theirs_params, step, takes_sparse_gradients(ours)))
        yield step, ours, theirs, ours_params, theirs_params


@pytest.mark.parametrize(("info", "kwargs", "dtype"), cases())
def test_steps_equal_torchs(info, kwargs, dtype) -> None:
    reference_kwargs = {**kwargs, "fused": False} if kwargs.get("fused") else kwargs
    # torch's SparseAdam and Muon compute with a tensor lr in the tensor's own precision (float32), ours
    # with the number it holds (the battery's tensor_lr property): in float64 the reference gets the same
    # number as a float64 tensor, still through torch's tensor path.
    if dtype == torch.float64 and isinstance(kwargs.get("lr"), torch.Tensor):
        reference_kwargs = {**reference_kwargs, "lr": kwargs["lr"].double()}
    # `foreach=True` and `fused=True` run our fast path, the same step compiled: in float32 the compiler
    # may round an operation differently (within a few units in the last place), in float64 it agrees.
    rtol = FAST_PATH_FLOAT32_RTOL if kwargs.get("foreach") or kwargs.get("fused") else 0.0
    for step, ours, theirs, ours_params, theirs_params in run_side_by_side(info, kwargs, dtype, reference_kwargs):
        for index, (p, q) in enumerate(zip(ours_params, theirs_params)):
            assert_equal(p, q, f"param {index} after step {step}", rtol)
            for key, value in theirs.state[q].items():
                assert_equal(ours.state[p][key], value, f"state {key!r} of param {index} after step {step}", rtol)
    # Every group option torch stores is stored, with torch's value.
    for mine, torchs in zip(ours.param_groups, theirs.param_groups):
        compared = [k for k in torchs if k != "params" and k not in reference_kwargs.keys() - kwargs.keys()]
        compared = [k for k in compared if not (k == "fused" and kwargs.get("fused"))]
        assert {k: mine[k] for k in compared} == {k: torchs[k] for k in compared}


FUSED = [case for case in cases() if case.values[1].get("fused")]


@pytest.mark.parametrize(("info", "kwargs", "dtype"), FUSED)
def test_torchs_fused_kernel_is_within_rounding_of_its_for_loop(info, kwargs, dtype) -> None:
    """What `fused=True` would give in torch: the for-loop's numbers (ours) up to a few units of rounding."""
    tolerance = {torch.float32: 1e-5, torch.float64: 1e-13}[dtype]
    for _, _, _, ours_params, theirs_params in run_side_by_side(info, kwargs, dtype, kwargs):
        for p, q in zip(ours_params, theirs_params):
            torch.testing.assert_close(p, q, rtol=tolerance, atol=tolerance)
