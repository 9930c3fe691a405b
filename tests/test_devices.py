"""
Every optimizer on a GPU, where torch sees one: the steps of its reference there, and a fast path that
takes the readable steps there too.

A GPU brings what a CPU test cannot see: an operation that takes its operands on one device and gets
a 0-d tensor kept on the CPU (a step count, as torch keeps it by default) refuses it, where the same
operation on the CPU accepts anything. Each optimizer's first configuration steps the battery's
awkward parameter set (`parameter_set`: shapes, strides, a 0-d and an empty parameter) on the GPU,
float64, and is compared with its torch twin on the GPU where it has one (a drop-in must take the
twin's steps on every device), else with its own steps on the CPU. The fast path (`fused=True` and
`foreach=True`, each where the constructor takes it) is compiled by inductor's GPU code generation,
and compared with the readable steps on the GPU.

Tolerance: 1e-10 relative to the largest weight over 6 steps. GPU kernels contract multiplications
and additions into fused multiply-adds and compute `pow` to within an ulp or two, so a float64 step
differs from the CPU's by a few units in the last place (about 1e-16); a wrong update differs by the
order of a learning rate.

These tests need a CUDA device: on a machine without one they are skipped, and say so.
"""

import pytest
import torch

from annotated_opt.core import fastpath
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import import_object, parameter_set, row_sparse, takes_sparse_gradients
from tests import battery

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

STEPS = 6
TOLERANCE = 1e-10
ELEMENTWISE = [info for info in battery.ALL if info.factory is None and fastpath.covers(info.cls)]


def on(device, info):
    """The entry's parameter set, float64, on `device`."""
    return [p.detach().to(device).requires_grad_(p.requires_grad) for p in parameter_set(info, 0, torch.float64)]


def run(info, optimizer, params):
    """`STEPS` steps of the battery's gradients, in the form the entry takes them (row-sparse: SparseAdam)."""
    for step in range(STEPS):
        closure = battery.closure_for(params, step)

        def taken(closure=closure, step=step):
            loss = closure()
            if takes_sparse_gradients(info.cls):
                for p in params:
                    p.grad = row_sparse(p.grad, step)
            return loss

        optimizer.step(taken)
    return params


def stepped(info, device, **flags):
    """The parameters after `STEPS` steps of the entry's first configuration on `device`."""
    params = on(device, info)
    config = dict(info.configs[0]) if info.configs else {}
    return run(info, info.build(params, **config, **flags), params)


def assert_close(params, others):
    for p, q in zip(params, others):
        assert p.shape == q.shape and p.dtype == q.dtype
        if p.numel() == 0:
            continue
        scale = p.abs().max().clamp_min(1e-30)
        error = ((p.detach().cpu() - q.detach().cpu()).abs().max() / scale.cpu()).item()
        assert error <= TOLERANCE, f"relative difference {error:.2e}"


# Optimizers whose steps on a GPU are not the CPU's steps, by design rather than by error: no device
# reproduces them exactly, so on a GPU they are only checked to step to finite values.
DEVICE_DEPENDENT = {
    # Its probe vectors come from a generator on the parameter's device, and a GPU's generator draws
    # other numbers than a CPU's from the same seed.
    "kron": "random probes drawn on the device",
    # Both start from a decomposition of a rank-deficient matrix (the first gradient's $GG^\top$, or
    # a gradient of fewer rows than the rank kept): its eigen- or singular vectors for repeated
    # values are any basis of their space, and LAPACK and cuSOLVER return different ones.
    "soap": "eigenbases of repeated eigenvalues, which LAPACK and cuSOLVER choose differently",
    "galore": "singular bases of repeated singular values, which LAPACK and cuSOLVER choose differently",
}


def reference_steps(info):
    """The torch twin's steps on the GPU where there is one, else ours on the CPU."""
    reference = info.reference
    if reference is None or not reference.is_torch_optim:
        return stepped(info, "cpu")
    params = on("cuda", info)
    config = {k: v for k, v in (info.configs[0] if info.configs else {}).items() if k not in reference.ours_only}
    return run(info, import_object(reference.target)(params, **config, **reference.kwargs), params)


@pytest.mark.parametrize("info", [info for info in battery.ALL if info.key not in DEVICE_DEPENDENT],
                         ids=lambda info: info.key)
def test_gpu_steps_equal_the_reference_steps(info):
    assert_close(reference_steps(info), stepped(info, "cuda"))


@pytest.mark.parametrize("key", sorted(DEVICE_DEPENDENT))
def test_device_dependent_steps_are_finite_on_a_gpu(key):
    params = stepped(REGISTRY[key], "cuda")
    assert all(torch.isfinite(p).all() for p in params)


def fast_flags(info):
    """The flags that select the fast path and that the constructor takes: both, or its torch twin's."""
    taken = []
    for flag in ("fused", "foreach"):
        try:
            info.build([torch.zeros(2, requires_grad=True)], **{flag: True})
        except TypeError:
            continue
        taken.append(flag)
    return taken


@pytest.mark.parametrize(("info", "flag"), [pytest.param(info, flag, id=f"{info.key}-{flag}")
                                            for info in ELEMENTWISE for flag in fast_flags(info)])
def test_gpu_fast_path_equals_readable(info, flag, monkeypatch):
    monkeypatch.setattr(fastpath, "BACKEND", "inductor")
    torch._dynamo.reset()
    assert_close(stepped(info, "cuda"), stepped(info, "cuda", **{flag: True}))
