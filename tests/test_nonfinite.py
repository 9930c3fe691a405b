"""The non-finite gradient policy in detail: names, mixed policies, two-pass steps, false alarms, records."""

import math
import warnings

import pytest
import torch

from annotated_opt import SGD, Adam, GenericAdaptiveOptimizer
from annotated_opt.core.nonfinite import SMALL_GRADIENT, NonFiniteGradientError, find_bad_gradients, finite_verdict
from annotated_opt.core.registry import REGISTRY


def model_with_grads(nan_in: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).double()
    model(torch.randn(5, 3, dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        model.get_parameter(nan_in).grad[0] = math.nan
    return model


def test_error_names_the_parameter_and_counts_the_bad_values() -> None:
    model = model_with_grads("1.bias")
    optimizer = Adam(model.named_parameters(), lr=0.1)
    with pytest.raises(NonFiniteGradientError, match=r"parameter 3 of group 0 \('1.bias'\): 1 NaN and 0 inf among 2"):
        optimizer.step()
    assert not optimizer.state


def test_raise_wins_over_skip_and_ignored_groups_are_not_checked() -> None:
    model = model_with_grads("1.weight")
    first, second = list(model[0].parameters()), list(model[1].parameters())

    mixed = SGD([{"params": first, "nonfinite": "raise"}, {"params": second, "nonfinite": "skip"}], lr=0.1)
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        mixed.step()
    assert mixed.skipped_steps == 1

    model[0].weight.grad[0, 0] = math.inf
    with pytest.raises(NonFiniteGradientError, match="parameter 0 of group 0"):
        mixed.step()

    # The bad gradient of an ignored group goes through, as in torch.optim; the checked group is fine.
    model[0].weight.grad[0, 0] = 1.0
    ignoring = SGD([{"params": first}, {"params": second, "nonfinite": "ignore"}], lr=0.1)
    ignoring.step()
    assert torch.isnan(model[1].weight[0]).all() and torch.isfinite(model[0].weight).all()


def test_huge_finite_gradients_are_not_a_false_alarm() -> None:
    """Their sum overflows to inf (the quick screen fails), but no value is bad: the step proceeds."""
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    p.grad = torch.full((2,), 1e308, dtype=torch.float64)
    assert math.isinf(p.grad.sum().item())
    assert find_bad_gradients([{"params": [p]}]) == []
    SGD([p], lr=1e-308).step()
    assert p.tolist() == pytest.approx([-1.0, -1.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_the_verdict_finds_one_bad_value_in_any_gradient_small_or_large(bad) -> None:
    """Small gradients are screened together, large ones one by one: a bad value is found in either."""
    generator = torch.Generator().manual_seed(0)
    sizes = [(3,), (SMALL_GRADIENT,), (SMALL_GRADIENT + 1,), (40, 300), (7, 5)]
    grads = [torch.randn(size, generator=generator) for size in sizes]
    # Half-precision vectors, one of them every other element of a larger one: joined as they are.
    grads += [torch.randn(8, generator=generator).half(), torch.randn(16, generator=generator).half()[::2],
              torch.randn(SMALL_GRADIENT * 2, generator=generator).bfloat16()]
    assert bool(finite_verdict(grads))
    for index, grad in enumerate(grads):
        position = torch.randint(grad.numel(), (), generator=generator)
        kept = grad.view(-1)[position].item()
        grad.view(-1)[position] = bad
        assert not bool(finite_verdict(grads)), f"bad value in gradient {index} of shape {tuple(grad.shape)}"
        grad.view(-1)[position] = kept
    assert bool(finite_verdict(grads))


class TwoPasses(GenericAdaptiveOptimizer):
    """A step with two gradient evaluations, as SAM's: descend, re-evaluate, descend again."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param, grad, _ in self.params_with_grads(group):
                param.add_(grad, alpha=-group["lr"])
        with torch.enable_grad():
            closure()
        return super().step()


def test_gradients_that_change_within_a_step_are_checked_again() -> None:
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    optimizer = TwoPasses([{"params": [p], "nonfinite": "skip"}], lr=0.5)
    p.grad = torch.ones_like(p)

    def closure():
        p.grad = torch.tensor([math.nan, 1.0], dtype=torch.float64)

    with pytest.warns(RuntimeWarning, match="skipped a step"):
        optimizer.step(closure)
    # The first pass ran (finite gradients), the second saw the new NaN and was skipped; the step,
    # one call to `step` however many passes it makes, is counted once.
    assert p.tolist() == [0.5, 0.5]
    assert optimizer.skipped_steps == 1


def test_skipped_steps_are_saved_in_the_state_dict() -> None:
    p = torch.ones(2, requires_grad=True)
    optimizer = SGD([p], lr=0.1, momentum=0.9)
    for group in optimizer.param_groups:
        group["nonfinite"] = "skip"
    p.grad = torch.tensor([math.inf, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.step()
        optimizer.step()
    state = optimizer.state_dict()
    assert state["skipped_steps"] == 2
    restored = SGD([torch.ones(2, requires_grad=True)], lr=0.1, momentum=0.9)
    restored.load_state_dict(state)
    assert restored.skipped_steps == 2
    # A state dict from torch.optim itself has no count: it starts at 0.
    restored.load_state_dict(torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1).state_dict())
    assert restored.skipped_steps == 0


@pytest.mark.parametrize("key", sorted(REGISTRY), ids=str)
def test_every_constructor_takes_the_policy_as_a_keyword_and_it_takes_effect(key) -> None:
    # A weight matrix only, which every optimizer takes (Muon refuses vectors); a NaN in its gradient.
    weight = torch.nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    optimizer = REGISTRY[key].build([weight], nonfinite="skip", master_weights=False)
    assert all(group["nonfinite"] == "skip" and group["master_weights"] is False for group in optimizer.param_groups)
    weight.grad = torch.ones_like(weight)
    weight.grad[0, 0] = math.nan
    before = weight.detach().clone()
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        optimizer.step(lambda: (weight * weight.grad.nan_to_num()).sum())
    assert torch.equal(weight, before) and optimizer.skipped_steps == 1
    with pytest.raises(ValueError, match="nonfinite"):
        REGISTRY[key].build([weight], nonfinite="sometimes")


@pytest.mark.parametrize("fused", [False, True])
def test_the_template_step_screens_the_gradients_of_all_groups_once(monkeypatch, fused) -> None:
    from annotated_opt.core import nonfinite

    screens = []
    real = nonfinite.find_bad_gradients
    monkeypatch.setattr(nonfinite, "find_bad_gradients", lambda groups: screens.append(1) or real(groups))
    params = [torch.ones(3, requires_grad=True) for _ in range(3)]
    for p in params:
        p.grad = torch.ones(3)
    optimizer = Adam([{"params": [p]} for p in params], lr=0.1, fused=fused)
    optimizer.step()
    optimizer.step()
    assert len(screens) == 2
    # A bad gradient in the last group still stops the step before the first group changes.
    before = [p.clone() for p in params]
    params[2].grad = torch.tensor([1.0, math.inf, 1.0])
    with pytest.raises(NonFiniteGradientError):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
