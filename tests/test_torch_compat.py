"""Everything that works with torch.optim works with ours: checkpoints, schedulers, closures, hooks."""

import copy
import io

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from annotated_opt.registry import OptimizerInfo

from .helpers import VERIFIED, config_cases, toy_problem, train_steps


def build(info: OptimizerInfo, config: dict, seed: int = 0):
    model, inputs, targets = toy_problem(seed)
    return model, info.build(model.parameters(), **config), inputs, targets


def assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "torch.save"])
@pytest.mark.parametrize(("info", "config"), config_cases(VERIFIED))
def test_state_dict_round_trip_continues_bit_identically(info, config, through_file) -> None:
    model, optimizer, inputs, targets = build(info, config)
    train_steps(model, optimizer, inputs, targets, 7)

    twin_model = copy.deepcopy(model)
    twin = info.build(twin_model.parameters(), **config)
    state = optimizer.state_dict()
    if through_file:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    twin.load_state_dict(state)

    expected = train_steps(model, optimizer, inputs, targets, 8)
    actual = train_steps(twin_model, twin, inputs, targets, 8)
    assert actual == expected
    assert_same_parameters(model, twin_model)


@pytest.mark.parametrize("info", VERIFIED, ids=lambda i: i.key)
def test_loading_does_not_alias_the_source(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[-1])
    train_steps(model, optimizer, inputs, targets, 3)
    state = optimizer.state_dict()
    snapshot = copy.deepcopy(state)
    twin_model = copy.deepcopy(model)
    twin = info.build(twin_model.parameters(), **info.configs[-1])
    twin.load_state_dict(state)
    train_steps(twin_model, twin, inputs, targets, 3)
    for index, entries in snapshot["state"].items():
        for key, value in entries.items():
            assert torch.equal(torch.as_tensor(state["state"][index][key]), torch.as_tensor(value)), key


@pytest.mark.parametrize("info", VERIFIED, ids=lambda i: i.key)
def test_deepcopy_continues_identically(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[-1])
    train_steps(model, optimizer, inputs, targets, 3)
    twin_model = copy.deepcopy(model)
    twin = copy.deepcopy(optimizer)
    # Re-point the copy at the copied model's parameters, as a checkpoint load would.
    twin_fresh = info.build(twin_model.parameters(), **info.configs[-1])
    twin_fresh.load_state_dict(twin.state_dict())
    assert train_steps(model, optimizer, inputs, targets, 5) == train_steps(twin_model, twin_fresh, inputs,
                                                                            targets, 5)
    assert type(twin) is type(optimizer)
    assert repr(optimizer).startswith(info.cls.__name__)


@pytest.mark.parametrize(("info", "config"), config_cases(VERIFIED)[::2])
def test_lr_scheduler_drives_ours_like_the_reference(info, config) -> None:
    """A torch scheduler changes our lr at the same steps and by the same amount as torch's own."""
    from annotated_opt.verification import reference_constructor

    model, optimizer, inputs, targets = build(info, config)
    ref_model = copy.deepcopy(model)
    reference = reference_constructor(info)(ref_model.parameters(), **config)
    ours_sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(reference, step_size=3, gamma=0.5)
    ours = train_steps(model, optimizer, inputs, targets, 10, ours_sched)
    theirs = train_steps(ref_model, reference, inputs, targets, 10, ref_sched)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), rtol=1e-10, atol=0)
    assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"]


@pytest.mark.parametrize("info", VERIFIED, ids=lambda i: i.key)
def test_closure_is_evaluated_with_gradients_and_its_loss_returned(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[0])
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        return loss

    # The gradient at the current weights first, as a training loop computes it (SAM needs it).
    closure()
    calls.clear()
    before = [p.detach().clone() for p in model.parameters()]
    loss = optimizer.step(closure)
    assert calls == [True]
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("info", VERIFIED, ids=lambda i: i.key)
def test_step_hooks_fire_in_order(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[0])
    events = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: events.append("pre"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: events.append("post"))
    # A wrapper's step calls its base's step, which fires the global hooks again for the base: count
    # only the calls for the optimizer under test.
    handle = register_optimizer_step_pre_hook(lambda opt, a, k: events.append("global-pre") if opt is optimizer
                                              else None)
    try:
        train_steps(model, optimizer, inputs, targets, 2)
    finally:
        handle.remove()
    assert events == ["global-pre", "pre", "post"] * 2


@pytest.mark.parametrize("info", VERIFIED, ids=lambda i: i.key)
def test_add_param_group_mid_run(info) -> None:
    model, optimizer, inputs, targets = build(info, info.configs[0])
    extra = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    train_steps(model, optimizer, inputs, targets, 2)
    optimizer.add_param_group({"params": [extra]})

    def closure():
        extra.grad = torch.full_like(extra, 0.5)
        return extra.sum()

    closure()
    optimizer.step(closure)
    assert not torch.equal(extra.detach(), torch.ones(3, dtype=torch.float64))
