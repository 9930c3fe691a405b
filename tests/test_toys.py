"""The toy objectives, the trajectory runner, the tuned hyper-parameters and the search behind them."""

import json
import math

import pytest
import torch

from annotated_opt.core.registry import REGISTRY, OptimizerInfo
from annotated_opt.core.tuned import TUNED_HPARAMS_PATH, load_tuned, tuned_hparams
from annotated_opt.toys import tuning
from annotated_opt.toys.objectives import OBJECTIVES
from annotated_opt.toys.runner import Trajectory, run_trajectory, toy_score
from annotated_opt.toys.tasks import TASKS


def autograd_gradient(objective, x: float, y: float) -> tuple[float, float]:
    point = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    objective.value(point[0], point[1]).backward()
    return tuple(point.grad.tolist())


@pytest.mark.parametrize("name", OBJECTIVES)
def test_hand_written_gradient_matches_autograd(name: str) -> None:
    objective = OBJECTIVES[name]
    (x0, x1), (y0, y1) = objective.region
    generator = torch.Generator().manual_seed(0)
    for u, v in torch.rand(20, 2, generator=generator, dtype=torch.float64).tolist():
        x, y = x0 + u * (x1 - x0), y0 + v * (y1 - y0)
        expected = autograd_gradient(objective, x, y)
        by_hand = objective.gradient(x, y)
        scale = max(1.0, *map(abs, expected))
        assert abs(by_hand[0] - expected[0]) <= 1e-12 * scale and abs(by_hand[1] - expected[1]) <= 1e-12 * scale


@pytest.mark.parametrize("name", OBJECTIVES)
def test_minima_are_stationary_with_the_stated_value(name: str) -> None:
    objective = OBJECTIVES[name]
    for x, y in objective.minima:
        assert objective.value(x, y) == pytest.approx(objective.minimum_value, abs=1e-12)
        assert objective.gradient(x, y) == pytest.approx((0.0, 0.0), abs=1e-12)
        # A small step in any direction goes up: a minimum, not a saddle.
        for dx, dy in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3), (7e-4, 7e-4)):
            assert objective.value(x + dx, y + dy) > objective.minimum_value
    assert objective.contains(torch.tensor(objective.start)).item()


def test_objective_values_by_hand() -> None:
    rosenbrock, beale = OBJECTIVES["rosenbrock"], OBJECTIVES["beale"]
    # (1 - 0)^2 + 100 (0 - 0)^2 = 1; gradient (-2(1 - 0) - 0, 0).
    assert rosenbrock.value(0.0, 0.0) == 1.0 and rosenbrock.gradient(0.0, 0.0) == (-2.0, 0.0)
    # At (0, 0) every residual is its constant: 1.5^2 + 2.25^2 + 2.625^2.
    assert beale.value(0.0, 0.0) == pytest.approx(2.25 + 5.0625 + 6.890625, rel=1e-15)
    # Rastrigin at (1, 0): 20 + 1 - 10 cos(2 pi) + 0 - 10 cos(0) = 1.
    assert OBJECTIVES["rastrigin"].value(1.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    # The quadratic along its valley (x = y = 1: u = sqrt 2, w = 0) is u^2 / 2 = 1, across it (1, -1) is 50.
    assert OBJECTIVES["quadratic"].value(1.0, 1.0) == pytest.approx(1.0, rel=1e-14)
    assert OBJECTIVES["quadratic"].value(1.0, -1.0) == pytest.approx(50.0, rel=1e-14)
    # The saddle point itself: zero gradient, value 0, and f decreases along y.
    saddle = OBJECTIVES["saddle"]
    assert saddle.gradient(0.0, 0.0) == (0.0, 0.0) and saddle.value(0.0, 0.1) < 0.0 < saddle.value(0.1, 0.0)


def test_tensor_and_float_evaluations_agree() -> None:
    xs = torch.tensor([-1.3, 0.2, 2.1], dtype=torch.float64)
    ys = torch.tensor([0.7, -2.4, 1.1], dtype=torch.float64)
    for objective in OBJECTIVES.values():
        on_grid = objective.value(xs, ys)
        for i in range(3):
            assert on_grid[i].item() == pytest.approx(objective.value(xs[i].item(), ys[i].item()), rel=1e-14)


def test_trajectory_equals_a_hand_rolled_torch_sgd_loop() -> None:
    objective = OBJECTIVES["quadratic"]
    config = {"lr": 0.02, "momentum": 0.9}
    trajectory = run_trajectory(REGISTRY["sgd"], objective, config, steps=60)

    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([point], **config)
    expected = [point.detach().clone()]
    for _ in range(60):
        optimizer.zero_grad()
        x, y = point[0], point[1]
        # The quadratic written out independently: 1/2 ((x+y)^2/2 + 50 (x-y)^2/2).
        loss = 0.25 * (x + y) ** 2 + 12.5 * (x - y) ** 2
        loss.backward()
        optimizer.step()
        expected.append(point.detach().clone())
    expected = torch.stack(expected)

    assert trajectory.skipped is None and not trajectory.diverged and trajectory.source == "given"
    assert trajectory.points.shape == (61, 2)
    torch.testing.assert_close(trajectory.points, expected, rtol=1e-12, atol=1e-12)
    values = 0.25 * expected.sum(1) ** 2 + 12.5 * (expected[:, 0] - expected[:, 1]) ** 2
    torch.testing.assert_close(trajectory.values, values, rtol=1e-12, atol=1e-12)


class Refuses(torch.optim.Optimizer):
    """Refuses a two-parameter toy, at construction or on a given step."""

    def __init__(self, params, lr: float = 0.1, refuse_on: int = 0) -> None:
        if refuse_on == 0:
            raise ValueError("needs a weight matrix")
        super().__init__(params, dict(lr=lr))
        self.refuse_on, self.steps = refuse_on, 0

    def step(self, closure=None):
        assert closure is not None, "the runner always hands step a closure"
        self.steps += 1
        if self.steps == self.refuse_on:
            raise RuntimeError(f"refused on step {self.steps}")
        loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


def fake_info(name: str = "Refuses", **kwargs) -> OptimizerInfo:
    return OptimizerInfo(name=name, cls=Refuses, paper="", url="", year=2000, family="test", parent=None,
                         state_tensors=0, **kwargs)


def test_optimizers_that_refuse_the_toy_are_skipped_with_their_message() -> None:
    objective = OBJECTIVES["saddle"]
    at_build = run_trajectory(fake_info(), objective, {"refuse_on": 0})
    assert at_build.skipped == "ValueError: needs a weight matrix" and toy_score(objective, at_build) == math.inf
    first_step = run_trajectory(fake_info(), objective, {"refuse_on": 1})
    assert first_step.skipped == "RuntimeError: refused on step 1"
    # A failure later than the first step is a bug, not a refusal.
    with pytest.raises(RuntimeError, match="step 3"):
        run_trajectory(fake_info(), objective, {"refuse_on": 3})


def test_divergence_stops_the_run_and_is_penalised() -> None:
    objective = OBJECTIVES["quadratic"]
    exploding = run_trajectory(REGISTRY["sgd"], objective, {"lr": 1.0})
    assert exploding.diverged and len(exploding.points) < objective.steps + 1
    assert toy_score(objective, exploding) > 2.0


def test_score_by_hand() -> None:
    objective = OBJECTIVES["quadratic"]
    start = torch.tensor([objective.start], dtype=torch.float64)
    f0 = objective.value(*objective.start)

    def trajectory(points: list[tuple[float, float]]) -> Trajectory:
        values = [objective.value(x, y) for x, y in points]
        return Trajectory("sgd", "quadratic", {}, "given", len(points) - 1, torch.tensor(points, dtype=torch.float64),
                          torch.tensor(values, dtype=torch.float64))

    # Never moving: every gap is the starting gap, l_t = 1, so the mean is 1 and the last is 1.
    still = Trajectory("sgd", "quadratic", {}, "given", 3, start.repeat(4, 1), torch.full((4,), f0))
    assert toy_score(objective, still) == pytest.approx(2.0, rel=1e-14)
    # Start, then the minimum for two steps: l = (1, 0, 0), mean 1/3, last 0.
    assert toy_score(objective, trajectory([objective.start, (0.0, 0.0), (0.0, 0.0)])) == pytest.approx(1 / 3)
    # Half way along a path that passes outside the region (x = 6 > 5): the same plus the penalty of 2.
    outside = trajectory([objective.start, (6.0, 6.0), (0.0, 0.0)])
    l1 = math.log1p(objective.value(6.0, 6.0)) / math.log1p(f0)
    assert toy_score(objective, outside) == pytest.approx((1 + l1) / 3 + 2.0)


def test_untuned_optimizers_fall_back_to_their_defaults() -> None:
    untuned = tuned_hparams(fake_info("NotInTheFile"), "rosenbrock")
    assert untuned.config == {} and not untuned.tuned and untuned.source == "default"
    assert "untuned" in untuned.describe()
    by_hand = fake_info("NotInTheFile", toy_hparams={"rosenbrock": {"lr": 0.5}}).tuned("rosenbrock")
    assert by_hand.config == {"lr": 0.5} and by_hand.tuned and by_hand.source == "registry"


def test_the_shipped_file_names_registered_optimizers_and_known_targets() -> None:
    data = json.loads(TUNED_HPARAMS_PATH.read_text())
    assert data["_search"]["toy_lrs"] == list(tuning.TOY_LRS)
    for key, entries in load_tuned().items():
        assert key in REGISTRY, f"{key} has tuned entries but is not registered"
        for target, entry in entries.items():
            assert target in OBJECTIVES or target in TASKS
            # The toys' entries are grid learning rates; the tasks' are checked in test_experiments.py.
            if target in OBJECTIVES:
                assert set(entry["config"]) == {"lr"} and entry["config"]["lr"] in tuning.TOY_LRS
                assert REGISTRY[key].tuned(target).config == entry["config"]


def test_the_search_reproduces_the_shipped_entry() -> None:
    # The cheapest target: 19 runs of 200 steps. The whole search is deterministic, so the file's
    # entry is exactly what the script finds again.
    results = tuning.tune([REGISTRY["sgd"]], ["quadratic"])
    shipped = load_tuned()["sgd"]["quadratic"]
    assert results["sgd"]["quadratic"] == shipped


def test_search_takes_the_lowest_score_and_the_first_on_a_tie() -> None:
    assert tuning.search([1, 2, 3, 4], lambda lr: {1: 5.0, 2: 1.0, 3: 1.0, 4: math.inf}[lr])[:2] == (2, 1.0)
    assert tuning.search([1, 2], lambda lr: math.inf)[0] is None
    assert tuning.log_grid(-2, 1, 2) == (0.1, 0.3162, 1.0, 3.162)


def test_write_merges_unless_replacing(tmp_path) -> None:
    path = tmp_path / "tuned.json"
    tuning.write({"sgd": {"rosenbrock": {"config": {"lr": 0.1}, "score": 1.0}}}, path, replace=True)
    tuning.write({"sgd": {"beale": {"config": {"lr": 0.2}, "score": 2.0}},
                  "adam": {"beale": {"config": {"lr": 0.3}, "score": 3.0}}}, path)
    merged = load_tuned(path)
    assert merged == {"adam": {"beale": {"config": {"lr": 0.3}, "score": 3.0}},
                      "sgd": {"beale": {"config": {"lr": 0.2}, "score": 2.0},
                              "rosenbrock": {"config": {"lr": 0.1}, "score": 1.0}}}
