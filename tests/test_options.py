"""Per-parameter options, the weight-decay modes and the model-to-groups helper."""

import pytest
import torch

from annotated_opt import SGD, Adam, AdamW, WeightDecay, param_groups_without_decay


def fresh(value: list[float]) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(value, dtype=torch.float64))


def test_parameter_options_override_the_group() -> None:
    a, b, c = fresh([1.0]), fresh([1.0]), fresh([1.0])
    b.opt_args = {"lr_scale": 0.1}
    c.opt_args = {"lr": 0.5, "lr_scale": None}
    optimizer = SGD([a, b, c], lr=1.0)
    for p in (a, b, c):
        p.grad = torch.ones_like(p)
    optimizer.step()
    # Hand-derived: theta - lr * lr_scale * g.
    assert a.item() == 0.0
    assert b.item() == pytest.approx(0.9, abs=1e-15)
    assert c.item() == 0.5


def test_parameter_weight_decay_override() -> None:
    a, b = fresh([2.0]), fresh([2.0])
    b.opt_args = {"weight_decay": 0.0}
    optimizer = AdamW([a, b], lr=0.1, weight_decay=0.5)
    for p in (a, b):
        p.grad = torch.zeros_like(p)
    optimizer.step()
    # Zero gradient: Adam's step is 0/(0+eps) = 0, so only the decay moves a.
    assert a.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5), abs=1e-15)
    assert b.item() == 2.0


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        # L2: g + wd * p = 1 + 0.5 * 2 = 2; p - lr * 2 = 2 - 0.2
        (WeightDecay(0.5, weight_decouple=False), 1.8),
        # decoupled: p * (1 - lr * wd) - lr * g = 2 * 0.95 - 0.1
        (WeightDecay(0.5), 1.8),
        # absolute: p * (1 - wd) - lr * g = 1.0 - 0.1
        (WeightDecay(0.5, absolute=True), 0.9),
    ],
)
def test_weight_decay_modes_on_sgd(decay, expected) -> None:
    p = fresh([2.0])
    p.grad = torch.ones_like(p)
    SGD([p], lr=0.1, weight_decay=decay).step()
    assert p.item() == pytest.approx(expected, abs=1e-14)


def test_l2_and_decoupled_differ_for_adam() -> None:
    """The reason AdamW exists: for Adam, L2 decay is normalised away, decoupled decay is not."""
    results = {}
    for decoupled in (False, True):
        p = fresh([2.0])
        p.grad = torch.tensor([1e3], dtype=torch.float64)
        Adam([p], lr=0.1, weight_decay=0.5, decoupled_weight_decay=decoupled).step()
        results[decoupled] = p.item()
    # First Adam step is lr * sign(g) whatever the gradient's size: L2's 1 extra unit vanishes.
    assert results[False] == pytest.approx(2.0 - 0.1, abs=1e-9)
    assert results[True] == pytest.approx(2.0 * 0.95 - 0.1, abs=1e-9)


def test_weight_decay_never_touches_grad() -> None:
    p = fresh([2.0, 3.0])
    p.grad = torch.ones_like(p)
    grad_before = p.grad.clone()
    Adam([p], weight_decay=0.1, maximize=True).step()
    assert torch.equal(p.grad, grad_before)


def test_param_groups_without_decay() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3),
        torch.nn.LayerNorm(3),
    )
    model[0].weight.requires_grad_(False)
    groups = param_groups_without_decay(model, weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert groups[0]["param_names"] == ["3.weight"]
    assert set(groups[1]["param_names"]) == {"0.bias", "1.weight", "1.bias", "3.bias", "4.weight", "4.bias"}
    optimizer = AdamW(groups, lr=0.1)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]


def test_param_groups_by_name_only() -> None:
    model = torch.nn.Linear(3, 2)
    groups = param_groups_without_decay(model, 0.1, no_decay_suffixes=(), max_ndim_without_decay=-1)
    assert len(groups) == 1 and groups[0]["param_names"] == ["weight", "bias"]
