"""The Adam-family schedules: values by hand, the floor after the end, both ways of using them."""

import copy
import math

import pytest
import torch

from annotated_opt import AdamW
from annotated_opt.schedules.lr_schedules import (
    LinearWarmup,
    LRSchedule,
    Noam,
    ScheduledLR,
    WarmupCosine,
    attach,
    detach,
)

from .helpers import save_and_load


def test_linear_warmup_values() -> None:
    schedule = LinearWarmup(warmup=4)
    assert [schedule(t) for t in range(1, 7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [LinearWarmup(warmup=0)(t) for t in (1, 2, 100)] == [1.0, 1.0, 1.0]


def test_noam_values() -> None:
    schedule = Noam(d_model=512, warmup=4000)
    assert schedule(1) == pytest.approx(512**-0.5 * 4000**-1.5)
    assert schedule(2000) == pytest.approx(512**-0.5 * 2000 * 4000**-1.5)
    assert schedule(4000) == pytest.approx((512 * 4000) ** -0.5)
    assert schedule(16000) == pytest.approx(512**-0.5 / 16000**0.5)
    # The peak is at the end of the warmup.
    assert schedule(3999) < schedule(4000) > schedule(4001)
    # No warmup: no division by zero, just the decay.
    assert Noam(d_model=64, warmup=0)(1) == pytest.approx(1 / 8)
    assert Noam(d_model=64, warmup=0)(4) == pytest.approx(1 / 16)


def test_warmup_cosine_values_and_floor() -> None:
    schedule = WarmupCosine(warmup=10, total_steps=110, floor=0.1)
    assert schedule(5) == pytest.approx(0.5)
    assert schedule(10) == pytest.approx(1.0)
    # Half way through the decay the cosine is at its midpoint, (1 + floor) / 2.
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(35) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert schedule(109) > 0.1
    assert [schedule(t) for t in (110, 111, 200, 10**6)] == [0.1, 0.1, 0.1, 0.1]


def test_warmup_cosine_without_warmup_and_with_no_decay_phase() -> None:
    schedule = WarmupCosine(warmup=0, total_steps=4, floor=0.0)
    assert [schedule(t) for t in range(1, 6)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * t / 4)) for t in (1, 2, 3)] + [0.0, 0.0])
    immediate = WarmupCosine(warmup=3, total_steps=3, floor=0.2)
    assert [immediate(t) for t in range(1, 6)] == pytest.approx([1 / 3, 2 / 3, 0.2, 0.2, 0.2])


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (LinearWarmup, {"warmup": -1}, "Invalid warmup: -1"),
        (LinearWarmup, {"warmup": 2.5}, "Invalid warmup: 2.5"),
        (Noam, {"d_model": 0}, "Invalid d_model: 0"),
        (WarmupCosine, {"warmup": 10, "total_steps": 5}, "Invalid total_steps: 5"),
        (WarmupCosine, {"total_steps": 5, "floor": 1.5}, "Invalid floor: 1.5"),
    ],
)
def test_invalid_arguments_raise(cls, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_description_round_trip() -> None:
    for schedule in (LinearWarmup(3), Noam(256, 100), WarmupCosine(5, 50, 0.05)):
        assert LRSchedule.from_description(schedule.describe()) == schedule
    with pytest.raises(ValueError, match="Invalid lr_schedule name"):
        LRSchedule.from_description({"name": "triangle"})


SCHEDULE = WarmupCosine(warmup=4, total_steps=12, floor=0.1)


def model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1).double()
    return model, torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)


def train(model, optimizer, inputs, targets, steps, scheduler=None) -> list[float]:
    rates = []
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        rates.append(optimizer.param_groups[0]["lr"])
        if scheduler is not None:
            scheduler.step()
    return rates


def test_inside_the_optimizer_sets_the_rate_before_each_update() -> None:
    model, inputs, targets = model_and_data()
    optimizer = attach(AdamW(model.parameters(), lr=0.1, weight_decay=0.1), SCHEDULE)
    rates = train(model, optimizer, inputs, targets, 15)
    assert rates == pytest.approx([0.1 * SCHEDULE(t) for t in range(1, 16)], rel=1e-15)
    assert rates[-4:] == pytest.approx([0.01] * 4)

    # The same updates as torch's AdamW with its lr set by hand before each step: the schedule drives
    # the step and the decoupled decay alike.
    reference_model, _, _ = model_and_data()
    reference = torch.optim.AdamW(reference_model.parameters(), lr=0.1, weight_decay=0.1)
    for t in range(1, 16):
        reference.param_groups[0]["lr"] = 0.1 * SCHEDULE(t)
        reference.zero_grad()
        torch.nn.functional.mse_loss(reference_model(inputs), targets).backward()
        reference.step()
    for p, q in zip(model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=0)


def test_torch_scheduler_form_gives_the_same_rates_and_updates() -> None:
    model, inputs, targets = model_and_data()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = ScheduledLR(optimizer, SCHEDULE)
    rates = train(model, optimizer, inputs, targets, 15, scheduler)
    assert rates == pytest.approx([0.1 * SCHEDULE(t) for t in range(1, 16)], rel=1e-15)

    inside_model, _, _ = model_and_data()
    inside = attach(AdamW(inside_model.parameters(), lr=0.1), SCHEDULE)
    train(inside_model, inside, inputs, targets, 15)
    for p, q in zip(model.parameters(), inside_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=0)

    # It is LambdaLR with the step shifted by one.
    lambda_model, _, _ = model_and_data()
    lambda_optimizer = torch.optim.AdamW(lambda_model.parameters(), lr=0.1)
    lambda_scheduler = torch.optim.lr_scheduler.LambdaLR(lambda_optimizer, lambda epoch: SCHEDULE(epoch + 1))
    assert train(lambda_model, lambda_optimizer, inputs, targets, 15, lambda_scheduler) == rates



@pytest.mark.parametrize("attach_first", [True, False], ids=["attach-then-load", "load-then-attach"])
def test_inside_state_dict_round_trip_continues_identically(attach_first) -> None:
    model, inputs, targets = model_and_data()
    optimizer = attach(AdamW(model.parameters(), lr=0.1), SCHEDULE)
    train(model, optimizer, inputs, targets, 6)

    twin_model = copy.deepcopy(model)
    twin = AdamW(twin_model.parameters(), lr=0.1)
    state = save_and_load(optimizer.state_dict())
    if attach_first:
        attach(twin, SCHEDULE)
        twin.load_state_dict(state)
    else:
        twin.load_state_dict(state)
        attach(twin, SCHEDULE)
    assert twin.param_groups[0]["lr_schedule_step"] == 6

    assert train(twin_model, twin, inputs, targets, 10) == train(model, optimizer, inputs, targets, 10)
    for p, q in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(p, q)


def test_scheduler_state_dict_round_trip_continues_identically() -> None:
    model, inputs, targets = model_and_data()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = ScheduledLR(optimizer, SCHEDULE)
    train(model, optimizer, inputs, targets, 6, scheduler)

    twin_model = copy.deepcopy(model)
    twin = torch.optim.AdamW(twin_model.parameters(), lr=0.1)
    twin_scheduler = ScheduledLR(twin, LinearWarmup(100))
    twin.load_state_dict(save_and_load(optimizer.state_dict()))
    twin_scheduler.load_state_dict(save_and_load(scheduler.state_dict()))
    assert twin_scheduler.schedule == SCHEDULE

    expected = train(model, optimizer, inputs, targets, 10, scheduler)
    assert train(twin_model, twin, inputs, targets, 10, twin_scheduler) == expected
    assert expected[-1] == pytest.approx(0.01)


def test_attach_is_idempotent_and_detach_stops_scheduling() -> None:
    model, inputs, targets = model_and_data()
    optimizer = attach(attach(AdamW(model.parameters(), lr=0.1), LinearWarmup(4)), LinearWarmup(4))
    assert train(model, optimizer, inputs, targets, 2) == pytest.approx([0.025, 0.05])
    detach(optimizer)
    assert "lr_schedule" not in optimizer.param_groups[0]
    assert train(model, optimizer, inputs, targets, 2) == pytest.approx([0.05, 0.05])


def test_each_group_is_scheduled_from_its_own_rate() -> None:
    model, inputs, targets = model_and_data()
    optimizer = AdamW([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=0.1)
    attach(optimizer, LinearWarmup(2))
    train(model, optimizer, inputs, targets, 1)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.05, 0.005])
