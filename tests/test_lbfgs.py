"""L-BFGS against torch.optim.LBFGS on Rosenbrock and least squares, and the pieces of its page."""

import pytest
import torch
from torch.testing._internal.common_optimizers import optim_db

from annotated_opt import LBFGS
from annotated_opt.core.verification import relative_error
from annotated_opt.lbfgs import Trial, cubic_minimiser, two_loop_direction

from .helpers import save_and_load

TORCH_CONFIGS = next(info for info in optim_db if info.optim_cls is torch.optim.LBFGS).optim_inputs_func(device="cpu")


def rosenbrock(params):
    x, y = params[0][0], params[0][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def least_squares_problem():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(30, 8, generator=generator, dtype=torch.float64)
    b = torch.randn(30, generator=generator, dtype=torch.float64)

    def loss(params):
        weight, bias = params
        return 0.5 * ((a @ weight + bias - b) ** 2).sum()

    return loss


PROBLEMS = {
    "rosenbrock": (rosenbrock, lambda: [torch.tensor([-1.5, 2.0], dtype=torch.float64)]),
    "least-squares": (least_squares_problem(), lambda: [torch.zeros(8, dtype=torch.float64),
                                                        torch.zeros((), dtype=torch.float64)]),
}


def closure_for(loss, params, optimizer):
    def closure():
        optimizer.zero_grad()
        value = loss(params)
        value.backward()
        return value

    return closure


def assert_same_state(ours, reference, ours_params, reference_params, tolerance=1e-12):
    state, reference_state = ours.state[ours_params[0]], reference.state[reference_params[0]]
    assert set(state) == set(reference_state)
    for key, value in reference_state.items():
        assert relative_error(state[key], value) <= tolerance, key


def configs():
    cases = [pytest.param(case.kwargs, id=case.desc) for case in TORCH_CONFIGS]
    cases += [pytest.param({"history_size": 3, "max_iter": 7}, id="short history"),
              pytest.param({"history_size": 3, "line_search_fn": "strong_wolfe", "max_iter": 5, "max_eval": 8},
                           id="short history, strong_wolfe, max_eval")]
    return cases


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("config", configs())
def test_equals_torch(problem, config) -> None:
    """torch's own configurations (with and without the line search): parameters and state after every step."""
    loss, start = PROBLEMS[problem]
    ours_params = [p.requires_grad_() for p in start()]
    reference_params = [p.requires_grad_() for p in start()]
    ours = LBFGS(ours_params, **config)
    reference = torch.optim.LBFGS(reference_params, **config)
    for _ in range(15):
        ours_loss = ours.step(closure_for(loss, ours_params, ours))
        reference_loss = reference.step(closure_for(loss, reference_params, reference))
        assert relative_error(ours_loss.detach(), reference_loss.detach()) <= 1e-12
        for mine, theirs in zip(ours_params, reference_params):
            assert relative_error(mine.detach(), theirs.detach()) <= 1e-12
        assert_same_state(ours, reference, ours_params, reference_params)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_solves_least_squares(line_search_fn) -> None:
    """A convex quadratic in 9 unknowns: the normal equations' solution, found within a few dozen iterations."""
    loss, start = PROBLEMS["least-squares"]
    params = [p.requires_grad_() for p in start()]
    optimizer = LBFGS(params, max_iter=100, line_search_fn=line_search_fn, tolerance_grad=1e-10,
                      tolerance_change=1e-14)
    optimizer.step(closure_for(loss, params, optimizer))
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(30, 8, generator=generator, dtype=torch.float64)
    b = torch.randn(30, generator=generator, dtype=torch.float64)
    solution = torch.linalg.lstsq(torch.cat([a, torch.ones(30, 1, dtype=torch.float64)], 1), b).solution
    assert torch.allclose(torch.cat([params[0].detach(), params[1].detach()[None]]), solution, atol=1e-9)


def test_checkpoints_interchange_with_torch() -> None:
    loss, start = PROBLEMS["rosenbrock"]
    config = {"line_search_fn": "strong_wolfe", "max_iter": 3}
    reference_params = [p.requires_grad_() for p in start()]
    reference = torch.optim.LBFGS(reference_params, **config)
    for _ in range(3):
        reference.step(closure_for(loss, reference_params, reference))
    ours_params = [p.detach().clone().requires_grad_() for p in reference_params]
    ours = LBFGS(ours_params, **config)
    ours.load_state_dict(save_and_load(reference.state_dict()))
    back_params = [p.detach().clone().requires_grad_() for p in reference_params]
    back = torch.optim.LBFGS(back_params, **config)
    back.load_state_dict(save_and_load(ours.state_dict()))
    for _ in range(3):
        for params, optimizer in ((reference_params, reference), (ours_params, ours), (back_params, back)):
            optimizer.step(closure_for(loss, params, optimizer))
    assert torch.equal(ours_params[0], reference_params[0])
    assert torch.equal(back_params[0], reference_params[0])


def test_two_loop_recursion_applies_the_bfgs_inverse_hessian() -> None:
    """The derivation on the page: the two loops give -H g, with H built by the BFGS update matrix by matrix."""
    generator = torch.Generator().manual_seed(1)
    n, pairs = 6, 4
    steps = [torch.randn(n, generator=generator, dtype=torch.float64) for _ in range(pairs)]
    curvature = torch.randn(n, n, generator=generator, dtype=torch.float64)
    curvature = curvature @ curvature.T + torch.eye(n, dtype=torch.float64)
    grad_changes = [curvature @ s for s in steps]
    inverse_curvatures = [1.0 / y.dot(s) for s, y in zip(steps, grad_changes)]
    scale = steps[-1].dot(grad_changes[-1]) / grad_changes[-1].dot(grad_changes[-1])
    grad = torch.randn(n, generator=generator, dtype=torch.float64)
    direction = two_loop_direction(grad, grad_changes, steps, inverse_curvatures, scale, [None] * pairs)
    inverse = scale * torch.eye(n, dtype=torch.float64)
    for s, y, rho in zip(steps, grad_changes, inverse_curvatures):
        v = torch.eye(n, dtype=torch.float64) - rho * torch.outer(y, s)
        inverse = v.T @ inverse @ v + rho * torch.outer(s, s)
    torch.testing.assert_close(direction, -inverse @ grad, rtol=1e-12, atol=1e-12)
    # The secant condition holds for the newest pair.
    torch.testing.assert_close(inverse @ grad_changes[-1], steps[-1], rtol=1e-12, atol=1e-12)


def test_cubic_minimiser_is_exact_on_a_cubic() -> None:
    """On a cubic with a local minimum, the interpolating cubic is the function: its minimiser is found exactly."""
    def phi(t):
        return t**3 - 3 * t**2 + 0.5 * t

    def slope(t):
        return 3 * t**2 - 6 * t + 0.5

    minimum = 1 + (1 - 0.5 / 3) ** 0.5
    a = Trial(0.5, phi(0.5), None, torch.tensor(slope(0.5), dtype=torch.float64))
    b = Trial(3.0, phi(3.0), None, torch.tensor(slope(3.0), dtype=torch.float64))
    assert abs(float(cubic_minimiser(a, b)) - minimum) < 1e-12
    assert abs(float(cubic_minimiser(b, a)) - minimum) < 1e-12
    assert float(cubic_minimiser(a, b, bounds=(2.5, 4.0))) == 2.5


def test_curvature_check_skips_pairs_with_negative_curvature() -> None:
    """On a concave direction y's = s'Hs < 0: the pair is not stored and the history stays empty."""
    point = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = LBFGS([point], lr=0.1, max_iter=3)

    def closure():
        optimizer.zero_grad()
        value = -(point**2).sum()
        value.backward()
        return value

    optimizer.step(closure)
    assert optimizer.state[point]["old_dirs"] == []


def test_frozen_parameter_untouched_without_state_and_a_no_grad_step_only_counts() -> None:
    """What the battery's exemptions leave to this file."""
    generator = torch.Generator().manual_seed(2)
    trained = torch.randn(3, 4, generator=generator, dtype=torch.float64).requires_grad_()
    frozen = torch.randn(5, generator=generator, dtype=torch.float64).requires_grad_()
    frozen_before = frozen.detach().clone()
    optimizer = LBFGS([trained, frozen], max_iter=4)

    def closure(with_frozen):
        def evaluate():
            trained.grad = 0.5 * trained.detach() + 1.0
            frozen.grad = 0.5 * frozen.detach() - 1.0 if with_frozen else None
            return (0.25 * trained.detach() ** 2 + trained.detach()).sum()
        return evaluate

    for _ in range(3):
        optimizer.step(closure(False))
    assert torch.equal(frozen.detach(), frozen_before) and not optimizer.state.get(frozen)
    before = [trained.detach().clone(), {k: v for k, v in optimizer.state[trained].items() if k != "func_evals"}]
    evaluations = optimizer.state[trained]["func_evals"]

    def no_gradient():
        trained.grad = frozen.grad = None
        return torch.zeros(())

    optimizer.step(no_gradient)
    assert torch.equal(trained.detach(), before[0])
    assert optimizer.state[trained]["func_evals"] == evaluations + 1
    assert all(optimizer.state[trained][k] is v for k, v in before[1].items())
    optimizer.step(closure(True))
    assert not torch.equal(frozen.detach(), frozen_before)


def test_groups_must_agree() -> None:
    a, b = (torch.zeros(2, requires_grad=True) for _ in range(2))
    LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="per-parameter options"):
        LBFGS([{"params": [a]}, {"params": [b], "lr": 0.5}])
    with pytest.raises(RuntimeError, match="line_search_fn"):
        LBFGS([a], line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="closure"):
        LBFGS([a]).step(None)


def test_torch_cannot_flatten_a_non_contiguous_gradient() -> None:
    """The page's note: torch's view(-1) raises for a transposed weight's gradient; ours flattens it."""
    weights = [torch.randn(4, 3, dtype=torch.float64).t().requires_grad_() for _ in range(2)]
    weights[1] = weights[0].detach().clone().t().contiguous().t().requires_grad_()

    def closure_of(weight):
        def closure():
            weight.grad = 2 * weight.detach()
            return (weight.detach() ** 2).sum()
        return closure

    with pytest.raises(RuntimeError, match="view"):
        torch.optim.LBFGS([weights[0]]).step(closure_of(weights[0]))
    LBFGS([weights[1]]).step(closure_of(weights[1]))
    assert weights[1].abs().max() < 1e-6
