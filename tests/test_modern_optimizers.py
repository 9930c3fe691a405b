"""What is particular to Lion, Adan, ADOPT, AdEMAMix and MARS, beyond the registry's reference checks."""

import math

import lion_pytorch
import pytest
import torch

from annotated_opt import ADOPT, MARS, Adan, AdEMAMix, Lion
from annotated_opt.ademamix import alpha_schedule, beta3_schedule
from annotated_opt.toys import counterexample


def tensors(seed: int, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_() for shape in shapes]


def set_gradients(params: list[torch.Tensor], step: int, scale: float = 1.0) -> None:
    generator = torch.Generator().manual_seed(step)
    for p in params:
        p.grad = scale * (0.5 * p.detach() + torch.randn(p.shape, generator=generator, dtype=p.dtype))


def test_lion_maximize_is_the_authors_lion_on_the_negated_gradient() -> None:
    ours, theirs = tensors(0, (4, 3)), tensors(0, (4, 3))
    mine = Lion(ours, lr=0.01, weight_decay=0.5, maximize=True)
    reference = lion_pytorch.Lion(theirs, lr=0.01, weight_decay=0.5)
    for step in range(1, 60):
        set_gradients(ours, step)
        set_gradients(theirs, step)
        theirs[0].grad.neg_()
        mine.step()
        reference.step()
        torch.testing.assert_close(ours[0], theirs[0], rtol=1e-12, atol=0)


def test_lion_moves_every_coordinate_by_exactly_the_learning_rate_and_keeps_one_tensor() -> None:
    (param,) = tensors(1, (50,))
    optimizer = Lion([param], lr=0.003)
    for step in range(1, 6):
        before = param.detach().clone()
        set_gradients([param], step)
        optimizer.step()
        torch.testing.assert_close((param - before).abs(), torch.full_like(before, 0.003), rtol=1e-12, atol=0)
    assert set(optimizer.state[param]) == {"exp_avg"}


def test_adan_first_difference_is_zero_and_previous_gradient_is_kept_negated() -> None:
    (param,) = tensors(2, (6,))
    optimizer = Adan([param])
    set_gradients([param], 1)
    gradient = param.grad.clone()
    optimizer.step()
    state = optimizer.state[param]
    assert torch.equal(state["exp_avg_diff"], torch.zeros_like(gradient))
    assert torch.equal(state["neg_pre_grad"], -gradient)
    # n_1 = (1 - beta3) g_1^2: the corrected gradient of the first step is the gradient itself.
    torch.testing.assert_close(state["exp_avg_sq"], 0.01 * gradient**2, rtol=1e-14, atol=0)


@pytest.mark.parametrize(("no_prox", "factor"), [(False, 1 / (1 + 0.1 * 0.5)), (True, 1 - 0.1 * 0.5)])
def test_adan_decay_is_proximal_unless_no_prox(no_prox: bool, factor: float) -> None:
    """With a zero gradient the step is the decay alone: a division by 1 + lr*wd, or AdamW's factor."""
    (param,) = tensors(3, (5,))
    before = param.detach().clone()
    param.grad = torch.zeros_like(param)
    Adan([param], lr=0.1, weight_decay=0.5, no_prox=no_prox).step()
    torch.testing.assert_close(param.detach(), before * factor, rtol=1e-15, atol=0)


def test_adopt_first_step_only_sets_the_second_moment() -> None:
    (param,) = tensors(4, (5,))
    before = param.detach().clone()
    optimizer = ADOPT([param], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    set_gradients([param], 1)
    gradient = param.grad.clone()
    optimizer.step()
    assert torch.equal(param.detach(), before)
    assert torch.equal(optimizer.state[param]["exp_avg_sq"], gradient * gradient)
    set_gradients([param], 2)
    optimizer.step()
    assert not torch.equal(param.detach(), before)


def test_adopt_closure_returns_the_loss_and_moves_from_the_second_step() -> None:
    model = torch.nn.Linear(3, 1).double()
    optimizer = ADOPT(model.parameters(), lr=0.01)
    inputs = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))

    def closure() -> torch.Tensor:
        assert torch.is_grad_enabled()
        optimizer.zero_grad()
        loss = model(inputs).pow(2).mean()
        loss.backward()
        return loss

    before = [p.detach().clone() for p in model.parameters()]
    assert optimizer.step(closure).ndim == 0
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    optimizer.step(closure)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_adopt_clipping_bounds_each_normalised_gradient() -> None:
    """After v_0 from a tiny gradient, a large one would normalise to 1e6; clipped, m_1 = (1-beta1) * 1."""
    param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = ADOPT([param], lr=0.1, eps=1e-12)
    param.grad = torch.full_like(param, 1e-6)
    optimizer.step()
    param.grad = torch.tensor([1.0, -1.0, 1e-7], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(optimizer.state[param]["exp_avg"], torch.tensor([0.1, -0.1, 0.01], dtype=torch.float64),
                               rtol=1e-12, atol=0)


def test_adopt_unclipped_solves_the_counterexample_for_any_beta2_where_adam_fails() -> None:
    for beta2 in (0.99, 0.5):
        adopt = counterexample.run(counterexample.CONTENDERS["ADOPT, no clipping"], 3000, lr=1.0, betas=(0.9, beta2))
        adam = counterexample.run(counterexample.CONTENDERS["Adam"], 3000, lr=1.0, betas=(0.9, beta2))
        assert adopt[-1] < -0.3 and adam[-1] > 0.9, beta2


def test_adopt_clipped_turns_round_on_the_counterexample_once_the_bound_passes_the_spike() -> None:
    """The page's numbers: still near +1 after 3000 steps (t^(1/4) = 7.4 < 13), heading down later."""
    trajectory = counterexample.run(ADOPT, 3000)
    assert trajectory[-1] > 0.9
    assert 3000**0.25 < 13 < 29_000**0.25 + 0.1


def test_ademamix_schedules_start_and_end_where_the_paper_says() -> None:
    assert alpha_schedule(0, 8.0, 100) == 0.0
    assert alpha_schedule(25, 8.0, 100) == 2.0
    assert alpha_schedule(100, 8.0, 100) == alpha_schedule(7, 8.0, None) == 8.0
    assert beta3_schedule(100, 0.9, 0.9999, 100) == beta3_schedule(1, 0.9, 0.9999, None) == 0.9999
    torch.testing.assert_close(beta3_schedule(0, 0.9, 0.9999, 100), 0.9, rtol=1e-7, atol=0)


def test_ademamix_beta3_half_life_grows_linearly_and_the_official_eps_shifts_it_slightly() -> None:
    """The paper's closed form, against the official code's (with 1e-8 inside the logarithm)."""
    beta1, beta3, warmup = 0.9, 0.9999, 1000
    differences = []
    for step in range(warmup):
        a = step / warmup
        paper = math.exp(math.log(beta1) * math.log(beta3) / ((1 - a) * math.log(beta3) + a * math.log(beta1)))
        official = beta3_schedule(step, beta1, beta3, warmup)
        differences.append(official - paper)
        half_life = math.log(0.5) / math.log(official)
        expected = (1 - a) * math.log(0.5) / math.log(beta1 + 1e-8) + a * math.log(0.5) / math.log(beta3 + 1e-8)
        assert half_life == pytest.approx(expected, rel=1e-9)
    assert 1e-6 < max(differences) < 1e-5
    assert min(differences) >= 0


def test_ademamix_with_beta1_zero_uses_the_gradient_as_fast_average() -> None:
    (param,) = tensors(6, (4,))
    optimizer = AdEMAMix([param], betas=(0.0, 0.999, 0.9999))
    for step in range(1, 4):
        set_gradients([param], step)
        optimizer.step()
        assert torch.equal(optimizer.state[param]["exp_avg"], param.grad)


def test_mars_without_correction_on_small_gradients_is_torch_adamw() -> None:
    """gamma = 0 and gradients of norm < 1 leave c_t = g_t: MARS is then AdamW, on every shape."""
    ours, theirs = tensors(7, (4, 3), (5,)), tensors(7, (4, 3), (5,))
    mine = MARS(ours, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, gamma=0.0, optimize_1d=True)
    reference = torch.optim.AdamW(theirs, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    for step in range(1, 50):
        set_gradients(ours, step, scale=0.05)
        set_gradients(theirs, step, scale=0.05)
        mine.step()
        reference.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_mars_fallback_for_non_matrices_is_adamw_with_the_1d_settings() -> None:
    ours, theirs = tensors(8, (3, 2, 2)), tensors(8, (3, 2, 2))
    mine = MARS(ours, lr=0.01, lr_1d=0.004, betas_1d=(0.8, 0.9), weight_decay_1d=0.2)
    reference = torch.optim.AdamW(theirs, lr=0.004, betas=(0.8, 0.9), weight_decay=0.2)
    for step in range(1, 30):
        set_gradients(ours, step)
        set_gradients(theirs, step)
        mine.step()
        reference.step()
        torch.testing.assert_close(ours[0], theirs[0], rtol=1e-12, atol=0)


def test_mars_previous_gradient_survives_zero_grad_without_set_to_none() -> None:
    """The official code keeps the .grad tensor itself, which zero_grad(set_to_none=False) then overwrites."""
    results = []
    for set_to_none in (True, False):
        torch.manual_seed(9)
        model = torch.nn.Linear(4, 3).double()
        optimizer = MARS(model.parameters(), lr=0.01, gamma=0.5)
        for step in range(1, 8):
            optimizer.zero_grad(set_to_none=set_to_none)
            inputs = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(step))
            model(inputs).pow(2).sum().backward()
            optimizer.step()
        results.append(model.weight.detach().clone())
    assert torch.equal(results[0], results[1])
