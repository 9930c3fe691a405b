"""Sophia: the clip, the Hessian hook, the batch size argument, and the worked example."""

import pytest
import sophia_opt
import torch

from annotated_opt import Sophia
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import verify_config
from tests.references.authors_packages import SophiaG


def test_without_an_estimate_every_coordinate_moves_by_exactly_lr() -> None:
    """h = 0: the ratio clips everywhere, a sign step of size lr (the paper's safeguard)."""
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([3.0, -1e-6, 1e-3], dtype=torch.float64)
    Sophia([p], lr=0.01, weight_decay=0.0).step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.99, -1.99, 0.49], dtype=torch.float64),
                               rtol=1e-15, atol=0)


def test_with_a_large_estimate_the_step_is_newton_like() -> None:
    """rho*B*h larger than |m|: the step is lr * m / (rho*B*h + eps), unclipped."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = Sophia([p], lr=0.1, betas=(0.5, 0.9), rho=0.5, weight_decay=0.0, bs=4)
    p.grad = torch.tensor([20.0, -40.0], dtype=torch.float64)
    optimizer.update_hessian()
    h = 0.1 * p.grad**2
    optimizer.step()
    m = 0.5 * torch.tensor([20.0, -40.0], dtype=torch.float64)
    expected = torch.tensor([1.0, -2.0], dtype=torch.float64) - 0.1 * m / (0.5 * 4 * h + 1e-15)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=0)
    assert (m.abs() / (0.5 * 4 * h)).max() < 1


def test_the_hessian_refresh_is_part_of_what_is_verified() -> None:
    """A reference that never refreshes its estimate is caught: the hook's path is really compared."""
    info = REGISTRY["sophia"]

    class NeverRefreshed(SophiaG):
        def update_hessian(self):
            pass

    result = verify_config(info, info.configs[1], steps=10, reference_factory=NeverRefreshed)
    assert result.error > 1e-3


def test_step_bs_argument_overrides_the_group_value() -> None:
    p, q = (torch.ones(4, dtype=torch.float64, requires_grad=True) for _ in range(2))
    by_argument, by_option = Sophia([p], lr=0.1, bs=5120), Sophia([q], lr=0.1, bs=8)
    for step in range(6):
        grad = torch.linspace(-1, 1, 4, dtype=torch.float64) + step
        p.grad, q.grad = grad.clone(), grad.clone()
        by_argument.update_hessian()
        by_option.update_hessian()
        by_argument.step(bs=8)
        by_option.step()
    assert torch.equal(p, q)


@pytest.mark.parametrize("bs", [0, 2.5])
def test_bs_must_be_a_positive_integer(bs) -> None:
    with pytest.raises(ValueError, match="bs"):
        Sophia([torch.zeros(2, requires_grad=True)], bs=bs)


def test_float16_zero_momentum_without_estimate_is_a_zero_step() -> None:
    """eps = 1e-15 is 0 in float16; 0/0 must not poison the parameter."""
    p = torch.ones(2, dtype=torch.float16, requires_grad=True)
    p.grad = torch.tensor([0.0, 1.0], dtype=torch.float16)
    Sophia([p], lr=0.01, weight_decay=0.0).step()
    assert torch.isfinite(p).all() and p[0] == 1


@pytest.mark.slow
def test_worked_example_on_the_character_model_refreshes_and_learns() -> None:
    from annotated_opt.toys.sophia_charlm import train_sophia

    run = train_sophia(steps=40, k=10)
    assert run.refresh_step_seconds > 0
    assert sum(run.losses[-10:]) / 10 < sum(run.losses[:10]) / 10
    assert 0 < run.unclipped_fraction < 1


@pytest.mark.parametrize("fused", [False, True])
def test_step_takes_bs_as_the_authors_sophiag_does(fused, monkeypatch) -> None:
    """`step(closure, bs)` positionally and `step(bs=...)` by name, on the readable and the fast path,
    against the authors' `SophiaG` given the same `bs` at each step; anything else is refused."""
    from annotated_opt.core import fastpath

    monkeypatch.setattr(fastpath, "BACKEND", "aot_eager")
    torch.manual_seed(0)
    start = torch.randn(3, 4, dtype=torch.float64)
    ours_p, theirs_p = (start.clone().requires_grad_() for _ in range(2))
    ours = Sophia([ours_p], lr=0.05, rho=0.5, fused=fused)
    theirs = sophia_opt.SophiaG([theirs_p], lr=0.05, rho=0.5)
    generator = torch.Generator().manual_seed(1)
    for step, bs in enumerate([64, 8, 32, 8, 16, 4]):
        ours_p.grad = torch.randn(3, 4, generator=generator, dtype=torch.float64)
        theirs_p.grad = ours_p.grad.clone()
        ours.update_hessian()
        theirs.update_hessian()
        if step % 2:
            ours.step(None, bs)
        else:
            ours.step(bs=bs)
        theirs.step(bs=bs)
    torch.testing.assert_close(ours_p.detach(), theirs_p.detach(), rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batch'"):
        ours.step(batch=8)
    with pytest.raises(TypeError, match="too many positional arguments"):
        ours.step(None, 8, 8)


def test_capturable_on_the_cpu_is_refused_as_the_authors_sophiag_refuses_it() -> None:
    """The authors' flag is taken and stored; on a device a CUDA graph cannot capture, both classes raise
    `AssertionError` at the step, and ours leaves the parameter as it was."""
    start = torch.randn(3, dtype=torch.float64)
    ours_p, theirs_p = (start.clone().requires_grad_() for _ in range(2))
    ours_p.grad = torch.ones(3, dtype=torch.float64)
    theirs_p.grad = torch.ones(3, dtype=torch.float64)
    ours, theirs = Sophia([ours_p], capturable=True), sophia_opt.SophiaG([theirs_p], capturable=True)
    assert ours.param_groups[0]["capturable"] is True
    for optimizer in (ours, theirs):
        with pytest.raises(AssertionError):
            optimizer.step(bs=8)
    assert torch.equal(ours_p.detach(), start)
