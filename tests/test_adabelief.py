"""AdaBelief: every flag combination against the official package, its quirks, and the textbook form."""

import contextlib
import io
import itertools
import math

import pytest
import torch

from annotated_opt import AdaBelief
from annotated_opt.core import verification
from annotated_opt.core.registry import REGISTRY

FLAGS = ("rectify", "amsgrad", "weight_decouple", "fixed_decay", "degenerated_to_sgd")


def official(*args, **kwargs):
    """`adabelief_pytorch.AdaBelief` without its banner."""
    from adabelief_pytorch import AdaBelief as OfficialAdaBelief

    with contextlib.redirect_stdout(io.StringIO()):
        return OfficialAdaBelief(*args, print_change_log=False, **kwargs)


@pytest.mark.parametrize("rectify", [False, True], ids=["adam-step", "rectified"])
def test_every_flag_combination_matches_the_official_package(rectify, monkeypatch) -> None:
    """All 2^5 combinations of the flags (16 per case), 100 steps each, every state tensor compared.

    beta2 = 0.99 puts the first rectified step at t = 6, well inside the run. To keep 32 runs fast the
    harness gets fewer parameters: a scalar and a 4-d tensor, plus its non-contiguous one, the one
    whose gradient is sometimes missing and the frozen one."""
    monkeypatch.setattr(verification, "PARAM_SHAPES", ((), (2, 1, 3, 2)))
    info = REGISTRY["adabelief"]
    for values in itertools.product([False, True], repeat=4):
        config = dict(zip(FLAGS[1:], values), rectify=rectify, lr=0.01, betas=(0.9, 0.99), weight_decay=0.01)
        result = verification.verify_config(info, config, seed=sum(values), steps=100)
        assert result.steps == 100
        assert result.error <= 1e-10, f"{config}: {result.error:.2e} at {result.worst}"


def scalar_run(optimizer: torch.optim.Optimizer, p: torch.Tensor, gradients: list[float]) -> list[float]:
    xs = []
    for g in gradients:
        p.grad = torch.full_like(p, g)
        optimizer.step()
        xs.append(p.item())
    return xs


def scalar() -> torch.Tensor:
    return torch.tensor(1.0, dtype=torch.float64, requires_grad=True)


GRADIENTS = [2.0 * math.cos(0.3 * t) + 0.5 for t in range(1, 81)]


@pytest.mark.parametrize("rectify", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_textbook_form_is_adam_with_the_belief(rectify, amsgrad) -> None:
    """The textbook form written out by hand: s_t without eps, eps once outside the root."""
    lr, beta1, beta2, eps, wd = 0.05, 0.9, 0.99, 1e-8, 0.1
    x, m, s, s_max = 1.0, 0.0, 0.0, 0.0
    rho_inf = 2 / (1 - beta2) - 1
    expected = []
    for t, g in enumerate(GRADIENTS, start=1):
        x *= 1 - lr * wd
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * (g - m) ** 2
        s_max = max(s_max, s)
        s_used = s_max if amsgrad else s
        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        if not rectify:
            x -= lr * (m / bc1) / (math.sqrt(s_used / bc2) + eps)
            expected.append(x)
            continue
        rho = rho_inf - 2 * t * beta2**t / bc2
        if rho >= 5:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            x -= lr * r * math.sqrt(bc2) / bc1 * m / (math.sqrt(s_used) + eps)
        else:
            x -= lr * m / bc1
        expected.append(x)

    p = scalar()
    optimizer = AdaBelief([p], lr=lr, betas=(beta1, beta2), weight_decay=wd, amsgrad=amsgrad, rectify=rectify,
                          textbook=True)
    assert optimizer.param_groups[0]["eps"] == eps
    assert scalar_run(optimizer, p, GRADIENTS) == pytest.approx(expected, rel=1e-12)
    assert "exp_avg_var" in optimizer.state[p]


def test_official_eps_accumulates_in_the_state_and_the_textbook_one_does_not() -> None:
    """A steady gradient g = 1: m_k = 1 - beta1^k, so the residual is beta1^k and
    s_T = sum_k (1 - beta2) beta2^(T-k) beta1^(2k), plus, officially, eps (1 - beta2^T) / (1 - beta2)."""
    beta1, beta2, eps, steps = 0.5, 0.9, 1e-6, 300
    gradients = [1.0] * steps
    belief = sum((1 - beta2) * beta2 ** (steps - k) * beta1 ** (2 * k) for k in range(1, steps + 1))
    accumulated = eps * (1 - beta2**steps) / (1 - beta2)
    for make in (lambda p: AdaBelief([p], betas=(beta1, beta2), eps=eps),
                 lambda p: official([p], betas=(beta1, beta2), eps=eps)):
        p = scalar()
        optimizer = make(p)
        scalar_run(optimizer, p, gradients)
        assert optimizer.state[p]["exp_avg_var"].item() == pytest.approx(belief + accumulated, rel=1e-12)
    p = scalar()
    textbook = AdaBelief([p], betas=(beta1, beta2), eps=eps, textbook=True)
    scalar_run(textbook, p, gradients)
    assert textbook.state[p]["exp_avg_var"].item() == pytest.approx(belief, rel=1e-6)
    assert belief < 1e-9 * accumulated


@pytest.mark.parametrize("make", [AdaBelief, official], ids=["ours", "official"])
def test_amsgrad_changes_nothing_when_rectified(make) -> None:
    """The official rectified step reads s_t, not its maximum: with rectify=True, amsgrad is inert."""
    gradients = [5.0] * 10 + [0.1 * (-1) ** t for t in range(60)]
    runs = {}
    for rectify, amsgrad in itertools.product([False, True], repeat=2):
        p = scalar()
        optimizer = make([p], lr=0.01, betas=(0.9, 0.99), amsgrad=amsgrad, rectify=rectify)
        runs[rectify, amsgrad] = scalar_run(optimizer, p, gradients)
    assert runs[True, True] == runs[True, False]
    assert runs[False, True] != runs[False, False]


def test_positional_arguments_follow_the_official_order() -> None:
    """labml.ai's AdaBelief passed its flags to RAdam in the wrong order; pin ours down."""
    p = scalar()
    optimizer = AdaBelief([p], 0.02, (0.8, 0.9), 1e-12, 0.1, True, False, True, False, False)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (0.02, (0.8, 0.9), 1e-12, 0.1)
    assert group["amsgrad"] is True and group["rectify"] is False and group["degenerated_to_sgd"] is False
    assert optimizer.weight_decay.weight_decouple is False and optimizer.weight_decay.absolute is True

    q = scalar()
    first = AdaBelief([q])
    q.grad = torch.tensor(0.5, dtype=torch.float64)
    first.step()
    # The default takes the SGD step at t = 1: m_hat = g.
    assert q.item() == pytest.approx(1.0 - 1e-3 * 0.5, rel=1e-15)


def test_l2_mode_leaves_param_grad_alone_unlike_the_official_package() -> None:
    grads = {}
    for name, make in (("ours", AdaBelief), ("official", official)):
        p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor([0.5, 0.5], dtype=torch.float64)
        make([p], weight_decay=0.1, weight_decouple=False).step()
        grads[name] = p.grad.tolist()
    assert grads["ours"] == [0.5, 0.5]
    assert grads["official"] == pytest.approx([0.6, 0.7])


def test_official_cache_is_shared_with_a_group_added_later() -> None:
    """A group added with add_param_group reads the first group's cached step sizes in the official
    package; ours computes them from the group's own beta2."""
    gradients = GRADIENTS[:30]
    alone = []
    for make in (AdaBelief, official):
        p = scalar()
        alone.append(scalar_run(make([p], lr=0.01, betas=(0.9, 0.9)), p, gradients))
    assert alone[0] == pytest.approx(alone[1], rel=1e-12)

    results = {}
    for name, make in (("ours", AdaBelief), ("official", official)):
        a, b = scalar(), scalar()
        optimizer = make([a], lr=0.01, betas=(0.9, 0.999))
        optimizer.add_param_group({"params": [b], "betas": (0.9, 0.9)})
        xs = []
        for g in gradients:
            a.grad = torch.tensor(g, dtype=torch.float64)
            b.grad = torch.tensor(g, dtype=torch.float64)
            optimizer.step()
            xs.append(b.item())
        results[name] = xs
    assert results["ours"] == alone[0]
    assert results["official"] != pytest.approx(alone[1], rel=1e-6)


def test_default_eps_depends_on_the_form() -> None:
    assert AdaBelief([scalar()]).param_groups[0]["eps"] == 1e-16
    assert AdaBelief([scalar()], textbook=True).param_groups[0]["eps"] == 1e-8
    assert AdaBelief([scalar()], eps=1e-10, textbook=True).param_groups[0]["eps"] == 1e-10
