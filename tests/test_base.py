"""Behaviour of the base class that no registered optimizer exercises yet."""

import pytest
import torch

from annotated_opt import SGD, Adam


class RealOnlySGD(SGD):
    """An optimizer whose algorithm is undefined for complex numbers says so with one attribute."""

    supports_complex = False


def test_complex_parameters_are_refused_where_the_algorithm_is_undefined() -> None:
    real = torch.zeros(2, requires_grad=True)
    complex_param = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(ValueError, match="RealOnlySGD does not support complex parameters"):
        RealOnlySGD([real, complex_param], lr=0.1)
    optimizer = RealOnlySGD([real], lr=0.1)
    with pytest.raises(ValueError, match="complex"):
        optimizer.add_param_group({"params": [("z", complex_param)]})
    assert len(optimizer.param_groups) == 1
    SGD([complex_param], lr=0.1)


def test_an_overriding_step_is_scoped_like_the_template() -> None:
    """Subclasses that write their own step get the per-step bookkeeping without asking for it."""

    class OwnStep(SGD):
        def step(self, closure=None):
            assert self._step_depth == 1
            return super().step(closure)

    p = torch.ones(2, requires_grad=True)
    optimizer = OwnStep([p], lr=0.5)
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer._step_depth == 0 and p.tolist() == [0.5, 0.5]


def test_step_refuses_arguments_it_does_not_take_as_torch_does() -> None:
    """`step` takes a closure and what `group_arguments` declares (none, here): anything else is a `TypeError`."""
    params = [torch.zeros(2, requires_grad=True)]
    params[0].grad = torch.ones(2)
    for optimizer in (torch.optim.Adam(params), Adam(params)):
        with pytest.raises(TypeError):
            optimizer.step(None, 8)
        with pytest.raises(TypeError):
            optimizer.step(bs=8)
    assert torch.equal(params[0].detach(), torch.zeros(2))
