"""The LR finder: the exponential sweep, the stopping rule, and leaving the model and optimizer as they were."""

import copy
import itertools
import math

import pytest
import torch
from torch import nn

import annotated_opt
from annotated_opt.composable import adam, lr_find, momentum
from annotated_opt.composable.lr_finder import LRFinderResult, centered_average
from annotated_opt.toys.digits import load_digits, mlp

from .helpers import toy_problem, train_steps

OPTIMIZERS = {
    "torch.optim.Adam": lambda params: torch.optim.Adam(params, lr=0.01),
    "annotated_opt.AdamW": lambda params: annotated_opt.AdamW(params, lr=0.01),
    "composable.adam": lambda params: adam(params, lr=0.01, weight_decay=0.01),
    "torch.optim.SGD": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
}


def regression_batches(inputs: torch.Tensor, targets: torch.Tensor):
    return itertools.repeat((inputs, targets))


def mse(model: nn.Module):
    return lambda batch: nn.functional.mse_loss(model(batch[0]), batch[1])


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple:
    return copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())


def assert_same(a, b) -> None:
    """Equal nested state dicts: tensors bit for bit, everything else by value."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_sweep_leaves_weights_optimizer_state_and_gradients_as_they_were(name) -> None:
    model, inputs, targets = toy_problem(0)
    optimizer = OPTIMIZERS[name](model.parameters())
    train_steps(model, optimizer, inputs, targets, 3)
    twin_model = copy.deepcopy(model)
    twin = OPTIMIZERS[name](twin_model.parameters())
    # A deep copy: torch's optimizers keep the very tensors of an in-memory state dict.
    twin.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    model_before, optimizer_before = snapshot(model, optimizer)
    grads_before = [p.grad.clone() for p in model.parameters()]

    result = lr_find(model, optimizer, regression_batches(inputs, targets), mse(model), start_lr=1e-4,
                     end_lr=1e4, num_steps=60)
    assert result.stopped_early

    assert_same(model.state_dict(), model_before)
    assert_same(optimizer.state_dict(), optimizer_before)
    for p, g in zip(model.parameters(), grads_before):
        assert torch.equal(p.grad, g)
    # And training goes on exactly as if the sweep had never happened.
    assert train_steps(model, optimizer, inputs, targets, 5) == train_steps(twin_model, twin, inputs, targets, 5)


def test_the_model_is_restored_even_when_the_loss_raises() -> None:
    model, inputs, targets = toy_problem(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model_before, optimizer_before = snapshot(model, optimizer)
    calls = itertools.count()

    def failing_loss(batch):
        if next(calls) == 5:
            raise RuntimeError("data error")
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    with pytest.raises(RuntimeError, match="data error"):
        lr_find(model, optimizer, regression_batches(inputs, targets), failing_loss, start_lr=1e-3, end_lr=1.0)
    assert_same(model.state_dict(), model_before)
    assert_same(optimizer.state_dict(), optimizer_before)


def test_the_sweep_is_exponential_and_stops_once_a_quadratic_diverges() -> None:
    r"""
    On $\frac12 h\theta^2$ gradient descent multiplies $\theta$ by $1 - \eta h$, so it diverges only
    for $\eta > 2/h$. With $h = 4$: the sweep must run past $\eta = 0.5$ and stop there, never before.
    """
    theta = nn.Parameter(torch.ones((), dtype=torch.float64))
    model = nn.Module()
    model.theta = theta
    optimizer = torch.optim.SGD([theta], lr=0.1)
    result = lr_find(model, optimizer, itertools.repeat(None), lambda _: 2.0 * theta**2, start_lr=1e-3,
                     end_lr=1e2, num_steps=100, smoothing=0.0)
    assert result.lrs[:3] == pytest.approx([1e-3 * 10 ** (5 * k / 99) for k in range(3)], rel=1e-12)
    assert result.stopped_early and len(result.lrs) < 100
    assert result.lrs[-1] > 0.5
    # Below the threshold the loss only falls; the raw curve's minimum is before it.
    below = [loss for lr, loss in zip(result.lrs, result.losses) if lr < 0.5]
    assert all(b <= a for a, b in zip(below, below[1:]))
    assert result.suggestion == result.lr_at_minimum / 10 and result.lr_at_minimum <= 0.6
    assert theta.item() == 1.0


def test_centered_average_by_hand() -> None:
    assert centered_average([1.0, 2.0, 6.0, 3.0, 8.0], 1) == [1.5, 3.0, 11 / 3, 17 / 3, 5.5]
    assert centered_average([4.0, math.inf, 1.0], 1)[0] == math.inf


def test_on_digits_our_composable_sgd_and_torch_sgd_give_the_same_sweep() -> None:
    data = load_digits()

    def sweep(make_optimizer):
        model = mlp()
        generator = torch.Generator().manual_seed(0)
        batches = ((data.train_x[b], data.train_y[b])
                   for b in torch.randperm(len(data.train_y), generator=generator).split(64))
        return lr_find(model, make_optimizer(model.parameters()), itertools.cycle(list(batches)),
                       lambda batch: nn.functional.cross_entropy(model(batch[0]), batch[1]),
                       start_lr=1e-4, end_lr=10.0, num_steps=60)

    ours = sweep(lambda params: momentum(params, lr=0.1, momentum=0.9))
    theirs = sweep(lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9))
    assert ours.lrs == theirs.lrs
    torch.testing.assert_close(torch.tensor(ours.losses), torch.tensor(theirs.losses), rtol=1e-5, atol=1e-6)
    assert ours.suggestion == theirs.suggestion


def test_the_suggestion_ignores_non_finite_points() -> None:
    result = LRFinderResult(lrs=[0.01, 0.1, 1.0, 10.0], losses=[2.0, 1.0, 0.5, math.nan],
                            smoothed_losses=[2.0, 1.2, math.nan, math.inf], stopped_early=True)
    assert result.lr_at_minimum == 0.1
    assert result.suggestion == pytest.approx(0.01)
