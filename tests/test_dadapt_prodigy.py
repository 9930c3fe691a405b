"""D-Adaptation and Prodigy: one global estimate d, how it grows, and where ours departs from the authors' code."""

import contextlib
import io

import prodigyopt
import pytest
import torch

from annotated_opt import DAdaptAdam, Prodigy

from .helpers import toy_problem, train_steps

CLASSES = [DAdaptAdam, Prodigy]


@pytest.mark.parametrize("cls", CLASSES)
def test_the_estimate_is_global_one_group_or_two_give_the_same_run(cls) -> None:
    """d is one number for the whole model: splitting the parameters into groups changes nothing."""
    model, inputs, targets = toy_problem(0)
    split = toy_problem(0)[0]
    one = cls(model.parameters())
    params = list(split.parameters())
    two = cls([{"params": params[:2]}, {"params": params[2:]}])
    train_steps(model, one, inputs, targets, 60)
    train_steps(split, two, inputs, targets, 60)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), split.parameters()))
    assert one.param_groups[0]["d"] == two.param_groups[0]["d"] == two.param_groups[1]["d"]


@pytest.mark.parametrize("cls", CLASSES)
def test_d_grows_from_d0_and_never_decreases(cls) -> None:
    model, inputs, targets = toy_problem(1)
    optimizer = cls(model.parameters())
    ds = []
    for _ in range(80):
        train_steps(model, optimizer, inputs, targets, 1)
        ds.append(optimizer.param_groups[0]["d"])
    assert all(b >= a for a, b in zip(ds, ds[1:]))
    assert ds[-1] > 1e3 * 1e-6


@pytest.mark.parametrize("cls", CLASSES)
def test_a_global_option_differing_in_a_group_is_refused(cls) -> None:
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="growth_rate.*same in every group"):
        cls([{"params": [a]}, {"params": [b], "growth_rate": 1.5}])
    optimizer = cls([a])
    with pytest.raises(ValueError, match="betas.*same in every group"):
        optimizer.add_param_group({"params": [b], "betas": (0.5, 0.9)})


@pytest.mark.parametrize("cls", CLASSES)
def test_a_group_with_zero_lr_is_untouched_and_does_not_change_the_estimate(cls) -> None:
    model, inputs, targets = toy_problem(2)
    alone = toy_problem(2)[0]
    frozen = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    with_frozen = cls([{"params": model.parameters()}, {"params": [frozen], "lr": 0.0, "weight_decay": 0.1}])
    without = cls(alone.parameters())
    for _ in range(20):
        frozen.grad = torch.ones(3, dtype=torch.float64)
        train_steps(model, with_frozen, inputs, targets, 1)
        train_steps(alone, without, inputs, targets, 1)
    assert torch.equal(frozen.detach(), torch.ones(3, dtype=torch.float64))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), alone.parameters()))


def test_authors_prodigy_moves_a_zero_lr_group_without_momentum() -> None:
    """The quirk the page describes: with beta1 = 0 the authors' code steps an lr=0 group by lr_max*d*g/(d*eps)."""
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs = prodigyopt.Prodigy([{"params": [p]}, {"params": [q], "lr": 0.0}], betas=(0.0, 0.99))
    for _ in range(3):
        p.grad = torch.ones(3, dtype=torch.float64)
        q.grad = torch.full((3,), 1e-3, dtype=torch.float64)
        theirs.step()
    assert (q.detach() - 1).abs().max() > 0.1
    r = torch.ones(3, dtype=torch.float64, requires_grad=True)
    s = torch.ones(3, dtype=torch.float64, requires_grad=True)
    ours = Prodigy([{"params": [r]}, {"params": [s], "lr": 0.0}], betas=(0.0, 0.99))
    for _ in range(3):
        r.grad = torch.ones(3, dtype=torch.float64)
        s.grad = torch.full((3,), 1e-3, dtype=torch.float64)
        ours.step()
    assert torch.equal(s.detach(), torch.ones(3, dtype=torch.float64))


def test_prodigy_keeps_a_single_zero_as_the_start_of_an_all_zero_parameter() -> None:
    bias, weight = torch.zeros(5, requires_grad=True), torch.randn(5, requires_grad=True)
    optimizer = Prodigy([bias, weight])
    bias.grad, weight.grad = torch.ones(5), torch.ones(5)
    optimizer.step()
    assert optimizer.state[bias]["p0"].shape == () and optimizer.state[weight]["p0"].shape == (5,)


def test_prodigy_slice_p_shrinks_the_estimate_state() -> None:
    weight = torch.randn(4, 5, requires_grad=True)
    optimizer = Prodigy([weight], slice_p=3)
    weight.grad = torch.ones(4, 5)
    optimizer.step()
    assert optimizer.state[weight]["s"].shape == (7,) and optimizer.state[weight]["p0"].shape == (7,)


def test_per_group_learning_rates_scale_that_groups_share() -> None:
    """Our extension: a group's lr multiplies its own eta; halving it halves that group's first step."""
    a, b = torch.ones(3, requires_grad=True, dtype=torch.float64), torch.ones(3, requires_grad=True,
                                                                             dtype=torch.float64)
    optimizer = DAdaptAdam([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad = b.grad = torch.ones(3, dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(1 - b.detach(), 0.5 * (1 - a.detach()), rtol=1e-9, atol=0)
