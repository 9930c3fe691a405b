"""Schedules (hand-computed values), combine_scheds with several phases, the parameter scheduler, the recorder."""

import math

import pytest
import torch

from annotated_opt.composable import (
    ParamScheduler,
    Recorder,
    adam,
    combine_scheds,
    momentum,
    sched_const,
    sched_cos,
    sched_exp,
    sched_lin,
)
from annotated_opt.schedules import annealing
from annotated_opt.schedules.functional import CombinedSchedule, sample


def test_schedules_by_hand() -> None:
    assert sched_lin(1.0, 3.0)(0.25) == 1.5
    assert sched_lin(1.0, 3.0)(1.0) == 3.0
    # cos(pi/3) = 1/2: 0 + 0.5 * (2 - 0) * 1.5
    assert sched_cos(2.0, 0.0)(1 / 3) == pytest.approx(1.5, abs=1e-15)
    # cos(pi/2) = 0: halfway
    assert sched_cos(0.1, 0.3)(0.5) == pytest.approx(0.2, abs=1e-15)
    # 1 * 8^(1/3) = 2
    assert sched_exp(1.0, 8.0)(1 / 3) == pytest.approx(2.0, rel=1e-15)
    assert sched_exp(1e-4, 1.0)(0.5) == pytest.approx(1e-2, rel=1e-12)
    assert sched_const(0.7)(0.0) == sched_const(0.7)(0.3) == sched_const(0.7)(1.0) == 0.7


def test_schedules_are_the_annealing_primitives() -> None:
    for schedule, shape in ((sched_lin, annealing.linear), (sched_cos, annealing.cosine),
                            (sched_exp, annealing.exponential)):
        for position in (0.0, 0.3, 0.77, 1.0):
            assert schedule(0.5, 0.01)(position) == shape(0.5, 0.01, position)


def test_exponential_schedule_refuses_non_positive_values_when_built() -> None:
    with pytest.raises(ValueError, match="positive"):
        sched_exp(0.0, 1.0)


def test_three_phases_by_hand() -> None:
    schedule = combine_scheds([0.25, 0.25, 0.5], [sched_lin(0.0, 1.0), sched_const(1.0), sched_cos(1.0, 0.0)])
    expected = {0.0: 0.0, 0.125: 0.5, 0.2: 0.8, 0.25: 1.0, 0.4: 1.0, 0.5: 1.0, 0.75: 0.5, 1.0: 0.0}
    for position, value in expected.items():
        assert schedule(position) == pytest.approx(value, abs=1e-15), position
    # Outside [0, 1] the schedule holds its end values.
    assert schedule(-0.5) == 0.0 and schedule(1.5) == pytest.approx(0.0, abs=1e-15)
    assert isinstance(schedule, CombinedSchedule) and repr(schedule).count("[") == 3


def test_warmup_decay_anneal_with_four_phases_and_a_zero_length_phase() -> None:
    # [0.6, 0.3, 0.1] sums to 0.9999999999999999 in floating point: the course's `== 1` refused it.
    assert sum([0.6, 0.3, 0.1]) != 1.0
    schedule = combine_scheds([0.6, 0.0, 0.3, 0.1],
                              [sched_lin(0.0, 6.0), sched_const(99.0), sched_exp(1.0, 8.0), sched_const(0.5)])
    assert schedule(0.3) == pytest.approx(3.0, rel=1e-12)
    # Inside the third phase, one third of the way: 8^(1/3) = 2.
    assert schedule(0.7) == pytest.approx(2.0, rel=1e-9)
    assert schedule(0.95) == 0.5
    assert schedule(1.0) == 0.5
    assert 99.0 not in sample(schedule, 1001)


def test_ten_equal_phases_are_accepted() -> None:
    assert sum([0.1] * 10) != 1.0
    schedule = combine_scheds([0.1] * 10, [sched_lin(i, i + 1) for i in range(10)])
    assert schedule(0.55) == pytest.approx(5.5, rel=1e-12)
    assert schedule(1.0) == pytest.approx(10.0, rel=1e-15)


@pytest.mark.parametrize(("pcts", "message"), [
    ([0.5, 0.6], "sum to"),
    ([0.5, 0.4], "sum to"),
    ([1.2, -0.2], "index 1"),
    ([1.0], "one fraction per schedule"),
    ([], "one fraction per schedule"),
])
def test_bad_phases_are_refused(pcts, message) -> None:
    scheds = [sched_const(1.0), sched_const(2.0)] if pcts else []
    with pytest.raises(ValueError, match=message):
        combine_scheds(pcts, scheds)


def test_cosine_restarts_of_increasing_period_jump_back_at_each_phase_start() -> None:
    schedule = combine_scheds([1 / 7, 2 / 7, 4 / 7], [sched_cos(1.0, 0.1)] * 3)
    values = sample(schedule, 701)
    # Phases end at 1/7 and 3/7 (positions 100/700 and 300/700): low just before, high just after.
    for boundary in (100, 300):
        assert values[boundary - 1] < 0.101 and values[boundary + 1] > 0.999
    assert values[-1] == pytest.approx(0.1, abs=1e-15)


# ----- The parameter scheduler -----


def test_param_scheduler_sets_each_group_from_its_own_schedule_on_torch_sgd() -> None:
    params = [torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)]
    optimizer = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=1.0, momentum=0.9)
    scheduler = ParamScheduler(optimizer, "lr", [sched_lin(0.1, 0.0), sched_const(0.5)], total_steps=4)
    seen = []
    for _ in range(6):
        seen.append(scheduler.values())
        scheduler.step()
    assert [v[0] for v in seen] == pytest.approx([0.1, 0.075, 0.05, 0.025, 0.0, 0.0], abs=1e-15)
    assert all(v[1] == 0.5 for v in seen)


def test_param_scheduler_drives_one_element_of_torch_betas() -> None:
    param = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.Adam([param], betas=(0.9, 0.999))
    scheduler = ParamScheduler(optimizer, "betas", sched_lin(0.95, 0.85), total_steps=2, index=0)
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.999)
    scheduler.step()
    assert optimizer.param_groups[0]["betas"] == pytest.approx((0.9, 0.999))
    scheduler.step()
    assert optimizer.param_groups[0]["betas"] == pytest.approx((0.85, 0.999))


def test_scheduled_momentum_changes_the_composable_step_as_computed_by_hand() -> None:
    # lr 1, every gradient 1, momentum 0.9 -> 0 over 2 steps.
    # Step 1 (beta 0.9): b = 1, theta = -1.  Step 2 (beta 0.45): b = 0.45 + 1, theta = -2.45.
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = momentum([param], lr=1.0)
    scheduler = ParamScheduler(optimizer, "momentum", sched_lin(0.9, 0.0), total_steps=2)
    for _ in range(2):
        param.grad = torch.ones(1, dtype=torch.float64)
        optimizer.step()
        scheduler.step()
    assert param.item() == pytest.approx(-2.45, abs=1e-15)
    assert optimizer.param_groups[0]["momentum"] == 0.0


def test_param_scheduler_refuses_a_hyper_parameter_the_optimizer_does_not_have() -> None:
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="'momentum'"):
        ParamScheduler(optimizer, "momentum", sched_const(0.9), total_steps=10)
    with pytest.raises(ValueError, match="2 given for 1"):
        ParamScheduler(optimizer, "lr", [sched_const(0.1), sched_const(0.2)], total_steps=10)


def test_param_scheduler_resumes_from_its_state_dict() -> None:
    optimizer = adam([torch.zeros(1, requires_grad=True)])
    scheduler = ParamScheduler(optimizer, "lr", sched_cos(1.0, 0.0), total_steps=10)
    for _ in range(3):
        scheduler.step()
    resumed_optimizer = adam([torch.zeros(1, requires_grad=True)])
    resumed = ParamScheduler(resumed_optimizer, "lr", sched_cos(1.0, 0.0), total_steps=10)
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.values() == scheduler.values() == [annealing.cosine(1.0, 0.0, 0.3)]


# ----- The recorder -----


def test_recorder_keeps_the_values_each_step_used() -> None:
    params = [torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)]
    optimizer = momentum([{"params": params[:1]}, {"params": params[1:], "momentum": 0.5}], lr=1.0)
    lr_scheduler = ParamScheduler(optimizer, "lr", sched_lin(1.0, 0.0), total_steps=4)
    recorder = Recorder(optimizer, names=("lr", "momentum"))
    for step in range(4):
        for p in params:
            p.grad = torch.ones(2)
        optimizer.step()
        recorder.record(torch.tensor(float(step)))
        lr_scheduler.step()
    assert recorder.lrs == [1.0, 0.75, 0.5, 0.25]
    assert recorder.hyper("lr", group=0) == recorder.lrs
    assert recorder.values["momentum"] == [[0.9, 0.5]] * 4
    assert recorder.losses == [0.0, 1.0, 2.0, 3.0] and len(recorder) == 4
    assert all(isinstance(loss, float) for loss in recorder.losses)
    assert math.isclose(recorder.lrs[-1], 0.25)
