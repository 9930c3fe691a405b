"""Each optimizer equals its independent reference, in float64, after every one of 100 steps."""

import pytest
import torch

from annotated_opt import SGD, Adam
from annotated_opt.core.registry import OptimizerInfo
from annotated_opt.core.verification import SEEDS, STEPS, make_parameters, verify, verify_config

from .helpers import VERIFIED, config_cases


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("info", "config"), config_cases(VERIFIED))
def test_matches_reference(info: OptimizerInfo, config: dict, seed: int) -> None:
    result = verify_config(info, config, seed=seed, steps=STEPS)
    assert result.steps == STEPS
    assert result.error <= info.reference.tolerance, f"{result.error:.2e} at {result.worst}"


def test_every_configuration_option_is_exercised() -> None:
    """The acceptance list of configurations is covered, not just the defaults."""
    used = {key for info in VERIFIED for config in info.configs for key, value in config.items() if value}
    for option in ("weight_decay", "momentum", "dampening", "nesterov", "centered", "amsgrad", "maximize",
                   "decoupled_weight_decay", "fold_bias_correction", "lr_decay", "initial_accumulator_value"):
        assert option in used, option


def test_harness_parameters_are_awkward() -> None:
    params = make_parameters(0, torch.float64)
    assert any(p.ndim == 0 for p in params)
    assert any(p.ndim == 4 for p in params)
    assert any(p.numel() == 0 for p in params)
    assert any(not p.is_contiguous() for p in params)


def test_harness_detects_a_wrong_learning_rate() -> None:
    """A reference that differs by 0.1% in lr must be reported, or the harness proves nothing."""
    info = next(i for i in VERIFIED if i.cls is SGD)

    def slightly_wrong(groups, **config):
        return torch.optim.SGD(groups, **{**config, "lr": config["lr"] * 1.001})

    result = verify_config(info, {"lr": 0.05, "momentum": 0.9}, steps=5, reference_factory=slightly_wrong)
    assert result.error > 1e-5


def test_harness_detects_a_missing_state_entry() -> None:
    """Our state must hold every tensor the reference keeps."""
    info = next(i for i in VERIFIED if i.cls is Adam)
    with pytest.raises(AssertionError, match="max_exp_avg_sq"):
        verify_config(info, {"lr": 0.01}, steps=2,
                      reference_factory=lambda groups, **config: torch.optim.Adam(groups, amsgrad=True, **config))


def test_summary_sentence_reports_the_check() -> None:
    info = next(i for i in VERIFIED if i.cls is SGD)
    summary = verify(info, seeds=(0,), steps=10)
    assert summary.passed
    assert "torch.optim.SGD" in summary.sentence()
    assert "10 steps" in summary.sentence()


def test_folded_bias_correction_equals_textbook_form() -> None:
    """The page's claim: with eps_hat = eps * sqrt(1 - beta2^t) the folded step is the same step."""
    params = [make_parameters(3, torch.float64)[2] for _ in range(2)]
    params[1] = params[0].detach().clone().requires_grad_()
    textbook = Adam([params[0]], lr=0.01, eps=1e-3)
    folded = Adam([params[1]], lr=0.01, eps=1e-3, fold_bias_correction=True)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        noise = torch.randn(params[0].shape, generator=generator, dtype=torch.float64)
        for p in params:
            p.grad = p.detach() + noise
        textbook.step()
        folded.step()
        torch.testing.assert_close(params[1], params[0], rtol=1e-12, atol=0)


def test_folded_form_with_unscaled_eps_is_a_different_optimizer() -> None:
    """Folding the corrections but keeping eps unscaled (the paper's Section 2) changes the steps."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1e-4, 1e-4], dtype=torch.float64)
    beta2, eps, lr = 0.999, 1e-3, 0.1
    v = (1 - beta2) * p.grad**2
    m = 0.1 * p.grad
    correct = p.detach() - lr * (m / 0.1) / ((v / (1 - beta2)).sqrt() + eps)
    unscaled = p.detach() - lr * (1 - beta2) ** 0.5 / 0.1 * m / (v.sqrt() + eps)
    Adam([p], lr=lr, eps=eps, fold_bias_correction=True).step()
    torch.testing.assert_close(p.detach(), correct, rtol=1e-12, atol=0)
    assert (unscaled - correct).abs().max() > 1e-3
