"""L-BFGS on the toy surfaces against SGD and Adam, all full-batch (the exact gradient at every step).

Each L-BFGS `step` is one iteration here (`max_iter=1`) with the strong-Wolfe line search, so a point of
its path is one iteration; SGD and Adam use their tuned toy settings. The fair clock for a
quasi-Newton method is the number of gradient evaluations (a line search may make several per
iteration), so the right-hand panels plot $f - f^\\star$ against evaluations, counted in the closure.
"""

import numpy as np
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.objectives import OBJECTIVES

from .style import plt, save

SURFACES = ("rosenbrock", "beale", "quadratic")
EVALUATIONS = 200
# `max_eval` must be given with `max_iter=1`: its default, 1.25 * max_iter rounded down, would be 1 and leave
# the line search no evaluation at all.
LBFGS_CONFIG = {"max_iter": 1, "max_eval": 25, "line_search_fn": "strong_wolfe", "history_size": 10}
COLOURS = {"sgd": "tab:blue", "adam": "tab:orange", "lbfgs": "tab:green"}


def run(key: str, objective, config: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points after each step, and the value after each step against the evaluations made so far."""
    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    optimizer = REGISTRY[key].build([point], **config)
    evaluations = [0]

    def closure() -> torch.Tensor:
        evaluations[0] += 1
        value, gradient = objective.value_and_gradient(point.detach())
        point.grad = gradient
        return value

    points, values, counts = [objective.start], [objective.value(*objective.start)], [0]
    while evaluations[0] < EVALUATIONS:
        optimizer.step(closure)
        x, y = point.tolist()
        if not (np.isfinite(x) and np.isfinite(y)):
            break
        points.append((x, y))
        values.append(objective.value(x, y))
        counts.append(evaluations[0])
    return np.array(points), np.array(values) - objective.minimum_value, np.array(counts)


def make() -> None:
    torch.set_num_threads(1)
    figure, axes = plt.subplots(len(SURFACES), 2, figsize=(9, 3.2 * len(SURFACES)))
    for row, name in zip(axes, SURFACES):
        objective = OBJECTIVES[name]
        (x0, x1), (y0, y1) = objective.region
        x, y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        z = np.asarray(objective.value(x, y)) - objective.minimum_value
        row[0].contour(x, y, np.log1p(z) if objective.log_levels else z, levels=20, colors="0.8", linewidths=0.6)
        for key in ("sgd", "adam", "lbfgs"):
            config = LBFGS_CONFIG if key == "lbfgs" else dict(REGISTRY[key].tuned(name).config)
            points, gaps, counts = run(key, objective, config)
            label = f"{REGISTRY[key].name} ({len(points) - 1} steps)"
            row[0].plot(points[:, 0], points[:, 1], "-", color=COLOURS[key], linewidth=1, marker=".",
                        markersize=2, label=label)
            row[1].semilogy(counts, np.maximum(gaps, 1e-16), "-", color=COLOURS[key], label=REGISTRY[key].name)
        for minimum in objective.minima:
            row[0].plot(*minimum, "*", color="black", markersize=8)
        row[0].set_xlim(x0, x1)
        row[0].set_ylim(y0, y1)
        row[0].set_title(objective.title, fontsize=9)
        row[0].legend(loc="lower right", fontsize=7, frameon=False)
        row[1].set_xlabel("gradient evaluations")
        row[1].set_ylabel(r"$f - f^\star$")
        row[1].legend(fontsize=7, frameon=False)
    save(figure, "lbfgs", "toy-surfaces",
         f"L-BFGS (strong-Wolfe line search, history 10, one iteration per step) against SGD and Adam with their "
         f"tuned toy settings, full-batch, for {EVALUATIONS} gradient evaluations each. Left: the paths; right: "
         "the gap to the minimum against evaluations, the fair clock, since a line search may evaluate "
         "several times per iteration.")
