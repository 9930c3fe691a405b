"""LAMB: the variants derived by hand, and pytorch_optimizer's Lamb in each configuration where its
semantics are ours, in float64."""

import math

import pytest
import pytorch_optimizer
import torch

from annotated_opt import WeightDecay
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import gradient_closure, make_parameters, param_groups, verify_config
from annotated_opt.lamb import LAMB

DT = torch.float64


def by_hand(w0, grads, lr, betas, eps, wd, *, bias_correction=True, bounds=(0.0, math.inf), trust_clip=False,
            trust_eps=0.0, adapt=True):
    """The paper's update written out for one tensor: moments, (corrected) Adam direction, decay inside
    the update, phi, the ratio, and the step."""
    beta1, beta2 = betas
    w, m, v = w0.clone(), torch.zeros_like(w0), torch.zeros_like(w0)
    history = []
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if bias_correction:
            r = (m / (1 - beta1**t)) / (torch.sqrt(v / (1 - beta2**t)) + eps)
        else:
            r = m / (torch.sqrt(v) + eps)
        u = r + wd * w
        w_norm, u_norm = math.sqrt(float((w * w).sum())), math.sqrt(float((u * u).sum()))
        phi = min(max(w_norm, bounds[0]), bounds[1])
        ratio = phi / (u_norm + trust_eps) if w_norm > 0 and u_norm > 0 else 1.0
        if trust_clip:
            ratio = min(ratio, 1.0)
        if not adapt:
            ratio = 1.0
        w = w - lr * ratio * u
        history.append(w.clone())
    return history


def run(p0, grads, **config):
    p = p0.clone().requires_grad_()
    optimizer = LAMB([p], **config)
    history = []
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
        history.append(p.detach().clone())
    return history, optimizer.state[p]


def sequence(shape, steps=3, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=DT) * scale, [torch.randn(shape, generator=gen, dtype=DT)
                                                                 for _ in range(steps)]


VARIANTS = [
    pytest.param({}, {}, id="paper-defaults"),
    pytest.param({"bias_correction": False}, {"bias_correction": False}, id="no-bias-correction"),
    pytest.param({"weight_norm_bounds": (0.5, 1.5)}, {"bounds": (0.5, 1.5)}, id="phi-clamped"),
    pytest.param({"trust_clip": True}, {"trust_clip": True}, id="lambc"),
    pytest.param({"trust_eps": 0.3}, {"trust_eps": 0.3}, id="eps-in-ratio"),
]


@pytest.mark.parametrize(("ours", "theirs"), VARIANTS)
@pytest.mark.parametrize("shape", [(4, 3), (5,), ()], ids=["matrix", "vector", "scalar"])
def test_three_steps_by_hand(ours, theirs, shape) -> None:
    w0, grads = sequence(shape, scale=2.0)
    lr, betas, eps, wd = 0.1, (0.9, 0.99), 1e-3, 0.05
    expected = by_hand(w0, grads, lr, betas, eps, wd, **theirs)
    history, state = run(w0, grads, lr=lr, betas=betas, eps=eps, weight_decay=wd, **ours)
    for a, b in zip(history, expected):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    assert set(state) >= {"step", "exp_avg", "exp_avg_sq", "weight_norm", "adam_norm", "trust_ratio"}


def test_the_bounds_and_the_clip_actually_bind() -> None:
    """So that the variants above test something: each changes the trajectory."""
    w0, grads = sequence((4, 3), scale=2.0)
    base = by_hand(w0, grads, 0.1, (0.9, 0.99), 1e-3, 0.05)[-1]
    for variant in ({"bounds": (0.5, 1.5)}, {"trust_clip": True}, {"trust_eps": 0.3}, {"bias_correction": False}):
        other = by_hand(w0, grads, 0.1, (0.9, 0.99), 1e-3, 0.05, **variant)[-1]
        assert (other - base).abs().max() > 1e-4, variant


def test_step_norm_is_lr_times_weight_norm() -> None:
    """The defining property: an adapted layer moves by exactly lr * ||w|| per step."""
    w0, grads = sequence((6, 5), steps=5, scale=3.0)
    p = w0.clone().requires_grad_()
    optimizer = LAMB([p], lr=0.01, weight_decay=0.1)
    for g in grads:
        before = p.detach().clone()
        p.grad = g
        optimizer.step()
        torch.testing.assert_close((p.detach() - before).norm(), 0.01 * before.norm(), rtol=1e-12, atol=0)


def test_zero_weights_move_like_adam() -> None:
    """||w|| = 0 gives ratio 1: the first step of a zero tensor is Adam's (corrections included)."""
    zero = torch.zeros(3, 2, dtype=DT, requires_grad=True)
    twin = torch.zeros(3, 2, dtype=DT, requires_grad=True)
    grad = torch.arange(6, dtype=DT).reshape(3, 2) - 2.5
    zero.grad, twin.grad = grad.clone(), grad.clone()
    LAMB([zero], lr=0.1).step()
    torch.optim.Adam([twin], lr=0.1, eps=1e-6).step()
    torch.testing.assert_close(zero.detach(), twin.detach(), rtol=1e-14, atol=0)


def test_undecayed_groups_are_adam_unless_always_adapt() -> None:
    """apex/timm convention: without decay a parameter takes torch.optim.Adam's step exactly."""
    params = make_parameters(0, DT)[:4]
    adam_params = [p.detach().clone().requires_grad_() for p in params]
    ours = LAMB([{"params": params[:2], "weight_decay": 0.0}, {"params": params[2:], "weight_decay": 0.1}],
                lr=0.01, always_adapt=False)
    adam = torch.optim.Adam(adam_params[:2], lr=0.01, eps=1e-6)
    for step in range(1, 20):
        for p, q in zip(params, adam_params):
            p.grad = 0.5 * p.detach() + step
            q.grad = 0.5 * q.detach() + step
        ours.step()
        adam.step()
    for p, q in zip(params[:2], adam_params[:2]):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-13, atol=0)
    assert ours.state[params[3]]["trust_ratio"] != 1


def test_l2_decay_goes_through_the_moments() -> None:
    """A WeightDecay object in L2 mode: g + wd w enters m and v, and nothing is added to the update."""
    w0, grads = sequence((4, 3), steps=3, scale=2.0)
    w, m, v = w0.clone(), torch.zeros_like(w0), torch.zeros_like(w0)
    p = w0.clone().requires_grad_()
    optimizer = LAMB([p], lr=0.1, betas=(0.9, 0.99), eps=1e-3, weight_decay=WeightDecay(0.05, weight_decouple=False))
    for t, g in enumerate(grads, start=1):
        g2 = g + 0.05 * w
        m, v = 0.9 * m + 0.1 * g2, 0.99 * v + 0.01 * g2 * g2
        r = (m / (1 - 0.9**t)) / (torch.sqrt(v / (1 - 0.99**t)) + 1e-3)
        w = w - 0.1 * (w.norm() / r.norm()) * r
        p.grad = g.clone()
        optimizer.step()
        torch.testing.assert_close(p.detach(), w, rtol=1e-13, atol=1e-15)


# ---- pytorch_optimizer's Lamb --------------------------------------------------------------------


def test_decoupled_decay_matches_pytorch_optimizer_default_decay() -> None:
    """pytorch_optimizer's weight_decouple=True (its default) is our decoupled_weight_decay=True."""
    info = REGISTRY["lamb"]
    config = {**info.configs[1], "decoupled_weight_decay": True}

    def reference(groups, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k not in info.reference.ours_only + ("decoupled_weight_decay",)}
        return pytorch_optimizer.Lamb(groups, adam_debias=True, weight_decouple=True, **kwargs)

    for seed in (0, 1):
        result = verify_config(info, config, seed=seed, reference_factory=reference)
        assert result.error <= 1e-10, f"{result.error:.2e} at {result.worst}"


def test_other_bounds_match_pytorch_optimizer_with_another_clamp() -> None:
    """pytorch_optimizer's bound is the class attribute `clamp`; at 2 it binds on the harness's tensors."""
    clamp_two = type("LambClampTwo", (pytorch_optimizer.Lamb,), {"clamp": 2.0})
    info = REGISTRY["lamb"]
    config = {**info.configs[1], "weight_norm_bounds": (0.0, 2.0)}

    def reference(groups, **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k not in info.reference.ours_only}
        return clamp_two(groups, adam_debias=True, weight_decouple=False, **kwargs)

    result = verify_config(info, config, seed=0, reference_factory=reference)
    assert result.error <= 1e-10, f"{result.error:.2e} at {result.worst}"
    unclamped = verify_config(info, info.configs[1], seed=0, reference_factory=reference)
    assert unclamped.error > 1e-3


def test_pytorch_optimizer_default_is_a_first_moment_correction_outside_the_ratio() -> None:
    """Its default (adam_debias=False) divides the step size by 1 - beta1^t outside the trust ratio: the
    same as ours without bias correction under a learning rate schedule 1 / (1 - beta1^t)."""
    seed, steps, beta1 = 0, 30, 0.9
    ours_params = make_parameters(seed, DT)
    theirs_params = [p.detach().clone().requires_grad_() for p in ours_params]
    config = {"lr": 0.01, "weight_decay": 0.05}
    ours = LAMB(param_groups(ours_params, config), bias_correction=False, weight_norm_bounds=(0.0, 10.0),
                trust_eps=1e-6, **config)
    schedule = torch.optim.lr_scheduler.LambdaLR(ours, lambda t: 1 / (1 - beta1 ** (t + 1)))
    theirs = pytorch_optimizer.Lamb(param_groups(theirs_params, config), weight_decouple=False, **config)
    for step in range(1, steps + 1):
        for params, optimizer in ((ours_params, ours), (theirs_params, theirs)):
            gradient_closure(params, step, seed)()
            optimizer.step()
        schedule.step()
        for p, q in zip(ours_params, theirs_params):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-11, atol=1e-13)
    first_step_ratio = 1 / (1 - beta1)
    assert first_step_ratio == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight_norm_bounds": (2.0, 1.0)}, "Invalid weight_norm_bounds"),
        ({"weight_norm_bounds": (-1.0, 1.0)}, "Invalid weight_norm_bounds"),
        ({"trust_eps": -1.0}, "Invalid trust_eps: -1.0"),
        ({"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
        ({"eps": -1.0}, "Invalid eps: -1.0"),
    ],
)
def test_invalid_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LAMB([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)
