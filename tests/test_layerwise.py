"""What the shared compatibility tests check for optimizers with a reference, for Nero and NeroPlus too
(built through the registry, which initialises the parameters); and the digits task for all four
layer-wise optimizers."""

import copy
import math

import pytest
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import gradient_closure, make_parameters, param_groups
from annotated_opt.lamb import LAMB
from annotated_opt.lars import LARS
from annotated_opt.nero import Nero
from annotated_opt.nero_plus import NeroPlus
from annotated_opt.toys.digits import load_digits, mlp, train

from .helpers import config_cases, toy_problem, train_steps

NERO_FAMILY = [REGISTRY["nero"], REGISTRY["neroplus"]]


def build(info, config, seed=0):
    model, inputs, targets = toy_problem(seed)
    return model, info.build(model.parameters(), **config), inputs, targets


@pytest.mark.parametrize(("info", "config"), config_cases(NERO_FAMILY))
def test_registry_build_runs_on_the_awkward_parameters(info, config) -> None:
    """0-d, zero-size, 4-d, non-contiguous, a sometimes-missing and a frozen gradient."""
    params = make_parameters(0, torch.float64)
    frozen = params[-1].detach().clone()
    optimizer = info.build(param_groups(params, config), **config)
    for step in range(1, 31):
        closure = gradient_closure(params, step, 0)
        closure()
        optimizer.step(closure)
        assert all(torch.isfinite(p).all() for p in params)
    assert torch.equal(params[-1].detach(), frozen)
    for p in params:
        max_norm, fixed, zero_mean = info.cls.constraint(optimizer.param_groups[0], p)
        if p.ndim > 1 and p.numel() and fixed:
            norms = p.detach().reshape(p.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(norms, torch.full_like(norms, max_norm), rtol=1e-12, atol=0)


@pytest.mark.parametrize("info", NERO_FAMILY, ids=lambda i: i.key)
def test_deepcopy_scheduler_closure_and_hooks(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[0])
    events = []
    optimizer.register_step_pre_hook(lambda *args: events.append("pre"))
    optimizer.register_step_post_hook(lambda *args: events.append("post"))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    train_steps(model, optimizer, inputs, targets, 4, scheduler)
    assert optimizer.param_groups[0]["lr"] == info.configs[0]["lr"] / 4
    assert events == ["pre", "post"] * 4
    twin = copy.deepcopy(optimizer)
    assert type(twin) is info.cls and repr(twin).startswith(info.cls.__name__)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        return loss

    assert optimizer.step(closure).ndim == 0


@pytest.mark.parametrize("info", NERO_FAMILY, ids=lambda i: i.key)
def test_sparse_gradients_and_empty_lists_are_refused(info) -> None:
    with pytest.raises(ValueError, match="empty parameter list"):
        info.build([])
    p = torch.nn.Parameter(torch.zeros(4))
    optimizer = info.build([p])
    p.grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2), (4,))
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optimizer.step()


# ---- digits --------------------------------------------------------------------------------------


def free_head(model):
    """The output layer unconstrained, as ALF advises for NeroPlus (and as `constraints=False` for Nero)."""
    model[2].weight.opt_args = {"constraints": False, "fixed_norm": False, "max_norm": math.inf, "zero_mean": False}
    return model


# Four epochs only: a modest bar (chance is 0.1); scripts/digits_layerwise.py reports full runs.
DIGITS = {
    "LARS": lambda m: LARS(m.parameters(), lr=5.0, momentum=0.9),
    "LAMB": lambda m: LAMB(m.parameters(), lr=0.02),
    "Nero": lambda m: Nero(Nero.initialize(free_head(m).parameters()), lr=0.03),
    "NeroPlus": lambda m: NeroPlus(NeroPlus.initialize(free_head(m).parameters()), lr=0.01),
}


@pytest.mark.parametrize("name", list(DIGITS))
def test_digits_trains(name) -> None:
    data = load_digits()
    result = train(mlp(), DIGITS[name], data, epochs=4)
    assert result.test_accuracy > 0.75, result.test_accuracy
