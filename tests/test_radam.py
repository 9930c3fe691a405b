"""RAdam: the rectification term, the three thresholds, the SGD fallback, checked by hand."""

import math

import pytest
import torch

from annotated_opt import RAdam
from annotated_opt.radam import passes_threshold, rectification, rho_infinity, sma_length


def simulate(gradients: list[float], lr: float, betas: tuple[float, float], eps: float, threshold: float,
             inclusive: bool, amsgrad: bool = False, degenerated_to_sgd: bool = True) -> list[float]:
    """RAdam on one scalar, in plain Python floats, written out from the paper and torch's docs."""
    beta1, beta2 = betas
    x, m, v, v_max = 1.0, 0.0, 0.0, 0.0
    rho_inf = 2 / (1 - beta2) - 1
    xs = []
    for t, g in enumerate(gradients, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)
        rho = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
        adaptive = rho >= threshold if inclusive else rho > threshold
        m_hat = m / (1 - beta1**t)
        if adaptive:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            v_used = v_max if amsgrad else v
            x -= lr * r * m_hat * math.sqrt(1 - beta2**t) / (math.sqrt(v_used) + eps)
        elif degenerated_to_sgd:
            x -= lr * m_hat
        xs.append(x)
    return xs


def run_ours(gradients: list[float], **kwargs) -> list[float]:
    p = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    optimizer = RAdam([p], **kwargs)
    xs = []
    for g in gradients:
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        xs.append(p.item())
    return xs


GRADIENTS = [3.0 * math.sin(0.7 * t) + (5.0 if t % 17 == 0 else 0.0) for t in range(1, 61)]


@pytest.mark.parametrize(
    ("convention", "bound", "inclusive"), [("torch", 5.0, False), ("official", 5.0, True), ("paper", 4.0, False)]
)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_matches_the_algorithm_written_out_by_hand(convention, bound, inclusive, amsgrad) -> None:
    kwargs = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-6)
    expected = simulate(GRADIENTS, threshold=bound, inclusive=inclusive, amsgrad=amsgrad, **kwargs)
    actual = run_ours(GRADIENTS, rectify_threshold=convention, amsgrad=amsgrad, **kwargs)
    assert actual == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_sma_length_and_rectification_values() -> None:
    assert rho_infinity(0.999) == pytest.approx(1999.0)
    # rho_1 = rho_inf - 2 beta2 / (1 - beta2) = 1 for every beta2.
    for beta2 in (0.9, 0.99, 0.999):
        assert sma_length(beta2, 1) == pytest.approx(1.0)
    assert math.isnan(rectification(0.999, 4))
    # r_t grows towards 1 and never passes it.
    values = [rectification(0.999, t) for t in (6, 10, 100, 1000, 10_000, 100_000)]
    assert values == sorted(values)
    assert 0 < values[0] and values[-1] <= 1 and values[-1] == pytest.approx(1.0, abs=1e-3)
    # By hand at t = 6, beta2 = 0.9: rho_inf = 19.
    rho = 19 - 12 * 0.9**6 / (1 - 0.9**6)
    assert rectification(0.9, 6) == pytest.approx(math.sqrt((rho - 4) * (rho - 2) * 19 / (15 * 17 * rho)))


def test_the_three_conventions_at_their_boundaries() -> None:
    # With beta2 = 0.999, rho_5 is about 4.996: the paper's rule takes the adaptive step at t = 5,
    # the official and torch rules only at t = 6.
    rho_5, rho_6 = sma_length(0.999, 5), sma_length(0.999, 6)
    assert 4 < rho_5 < 5 < rho_6
    assert passes_threshold(rho_5, "paper") and not passes_threshold(rho_5, "official")
    assert not passes_threshold(rho_5, "torch") and passes_threshold(rho_6, "torch")
    # Exactly at 5 the official rule (>=) and torch's (>) part ways.
    assert passes_threshold(5.0, "official") and not passes_threshold(5.0, "torch")
    assert passes_threshold(4.5, 4.25) and not passes_threshold(4.25, 4.25)


def test_paper_convention_changes_step_5_only_in_branch() -> None:
    gradients = [1.0, -2.0, 0.5, 3.0, 1.5, -1.0]
    paper = run_ours(gradients, lr=0.1, rectify_threshold="paper")
    torch_rule = run_ours(gradients, lr=0.1)
    assert paper[:4] == torch_rule[:4]
    assert paper[4] != torch_rule[4]


def test_sgd_fallback_and_its_absence() -> None:
    p = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([0.5, -3.0], dtype=torch.float64)
    RAdam([p], lr=0.1).step()
    # Step 1: m_hat = g, so SGD moves by exactly lr * g.
    assert torch.equal(p.detach(), torch.tensor([2.0 - 0.05, -1.0 + 0.3], dtype=torch.float64))

    q = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    optimizer = RAdam([q], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True, degenerated_to_sgd=False)
    for _ in range(5):
        q.grad = torch.tensor([0.5, -3.0], dtype=torch.float64)
        optimizer.step()
    # No update in the first five steps, but the decoupled decay still applies (unlike the official code).
    assert torch.allclose(q.detach(), torch.tensor([2.0, -1.0], dtype=torch.float64) * 0.95**5, rtol=1e-14)


def test_each_group_uses_its_own_beta2() -> None:
    """The official step-size cache was once shared by all groups; ours has no cache to share."""
    gradients = GRADIENTS[:20]
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    optimizer = RAdam([{"params": [a]}, {"params": [b], "betas": (0.9, 0.9)}], lr=0.05, betas=(0.9, 0.999))
    xs_a, xs_b = [], []
    for g in gradients:
        a.grad = torch.tensor(g, dtype=torch.float64)
        b.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        xs_a.append(a.item())
        xs_b.append(b.item())
    assert xs_a == run_ours(gradients, lr=0.05, betas=(0.9, 0.999))
    assert xs_b == run_ours(gradients, lr=0.05, betas=(0.9, 0.9))


@pytest.mark.parametrize("threshold", ["pytorch", 3.5, float("nan")])
def test_invalid_threshold_raises(threshold) -> None:
    with pytest.raises(ValueError, match="Invalid rectify_threshold"):
        RAdam([torch.nn.Parameter(torch.zeros(2))], rectify_threshold=threshold)
