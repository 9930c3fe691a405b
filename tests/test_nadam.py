"""NAdam: the momentum schedule and first step by hand, and torch's float32 momentum product."""

import copy
import math

import pytest
import torch

from annotated_opt import NAdam, nadam
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import verify_config


def test_momentum_schedule_values() -> None:
    assert nadam.momentum_coefficient(0.9, 0.004, 1) == pytest.approx(0.9 * (1 - 0.5 * 0.96**0.004))
    assert nadam.momentum_coefficient(0.9, 0.0, 7) == pytest.approx(0.45)
    assert nadam.momentum_coefficient(0.9, 0.004, 10**6) == pytest.approx(0.9)


def test_first_two_steps_by_hand() -> None:
    lr, beta1, beta2, eps, psi = 0.1, 0.9, 0.999, 1e-8, 0.004
    gradients = [0.3, -1.2]
    mu = [beta1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in (1, 2, 3)]
    x, m, v, product = 1.5, 0.0, 0.0, 1.0
    for t, g in enumerate(gradients, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        product *= mu[t - 1]
        denominator = math.sqrt(v / (1 - beta2**t)) + eps
        x -= lr * (1 - mu[t - 1]) / (1 - product) * g / denominator
        x -= lr * mu[t] / (1 - product * mu[t]) * m / denominator
    p = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    optimizer = NAdam([p], lr=lr)
    for g in gradients:
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    # The product is kept in float32, like torch's: agreement to float32 rounding only.
    assert p.item() == pytest.approx(x, rel=1e-7)


def test_float32_product_is_what_makes_us_equal_to_torch(monkeypatch) -> None:
    info = REGISTRY["nadam"]
    assert verify_config(info, {"lr": 0.01}, steps=150).error == 0.0
    monkeypatch.setattr(nadam, "new_scalar", lambda group, param, value: torch.tensor(value, dtype=torch.float64))
    assert verify_config(info, {"lr": 0.01}, steps=150).param_error > 1e-13


def test_reloading_keeps_the_product_in_float32_and_continues_bit_for_bit() -> None:
    params = [torch.nn.Parameter(torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))]
    optimizer = NAdam(params, lr=0.01)
    twin_params = None
    for step in range(20):
        if step == 5:
            twin_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
            twin = NAdam(twin_params, lr=0.01)
            twin.load_state_dict(copy.deepcopy(optimizer.state_dict()))
            assert twin.state[twin_params[0]]["mu_product"].dtype == torch.float32
        for group in ([params] if twin_params is None else [params, twin_params]):
            group[0].grad = torch.sin(group[0].detach() * (step + 1))
        optimizer.step()
        if twin_params is not None:
            twin.step()
    assert torch.equal(params[0], twin_params[0])


def test_a_torch_checkpoint_continues_as_torch_continues_from_it() -> None:
    """
    torch's loading casts `mu_product` to float64 for float64 parameters, and torch.optim.NAdam steps on with
    it, away from its own uninterrupted run; ours, loading the same checkpoint, takes torch's resumed steps.
    """
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(4, dtype=torch.float64, generator=generator)]
    gradients = [torch.randn(4, dtype=torch.float64, generator=generator) for _ in range(30)]

    def steps(optimizer, params, grads):
        for g in grads:
            params[0].grad = g.clone()
            optimizer.step()

    uninterrupted = [p.clone() for p in start]
    original = torch.optim.NAdam(uninterrupted, lr=0.01)
    steps(original, uninterrupted, gradients[:10])
    checkpoint = copy.deepcopy(original.state_dict())
    runs = []
    for cls in (torch.optim.NAdam, NAdam):
        params = [p.clone() for p in uninterrupted]
        resumed = cls(params, lr=0.01)
        resumed.load_state_dict(copy.deepcopy(checkpoint))
        assert resumed.state[params[0]]["mu_product"].dtype == torch.float64
        steps(resumed, params, gradients[10:])
        runs.append(params[0])
    steps(original, uninterrupted, gradients[10:])
    assert torch.equal(*runs)
    assert not torch.equal(runs[0], uninterrupted[0])
