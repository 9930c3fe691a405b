r"""
# Drawing trajectories and loss curves

The matplotlib code shared by the command line (`python -m annotated_opt.toys`) and the site's plot
scripts (`scripts/plots/toys.py`, `scripts/plots/results.py`), so a figure made by hand and the one on
the site are drawn the same way. Nothing here runs an optimizer: it draws `Trajectory` and
`TaskResult` objects (from the [runner](runner.md) and the [tasks](tasks.md)).

* Contours are filled bands at evenly spaced levels of $\log(1 + f - f^\star)$ (or of $f$ itself for
  surfaces without a large range), so the floor of a valley and the steep walls both show.
* Each optimizer has one colour everywhere, taken from its position in the registry.
* Figures are made with `matplotlib.figure.Figure`, not `pyplot`: nothing here changes the backend
  of a program that imports it, and no figure stays open after it is saved.
* The progress panels plot the remaining gap $f_t - f^\star$ on a log scale, the quantity the
  tuning search scores.

## Reading the figures

| figure | one panel is | where it appears |
|---|---|---|
| `trajectories_figure` | one optimizer on one objective, plus a panel of the gaps | an optimizer's page |
| `gallery_figure` | one optimizer on the given objective, plus a panel of the gaps | the gallery |
| `overlay_figure` | every chosen optimizer on one set of contours | the command line |
| `losses_figure` | one task, every optimizer's loss curve | the results page, the command line |
| `tasks_figure` | one task, one optimizer in colour over the others in grey | an optimizer's page |

On the contour panels, a black star is a global minimum, a black circle the start, and a cross the
last point of a path (where a run that was cut short stopped). Light is low, grey is high. A path
that is drawn up to the edge of the panel and stops there has left the region: the tuning score
penalised it, and the title says `untuned` when no search has chosen its learning rate.

## Deterministic output

The figures are written by scripts that the site build calls, and they should not change from one
build to the next unless the numbers do. Nothing here draws at random; the calling scripts save SVGs
without a date and with a fixed hash salt.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from ..core.registry import REGISTRY
from .objectives import OBJECTIVES, Objective
from .runner import Trajectory
from .tasks import TASKS, TaskResult, moving_mean

# ## Colours
#
# `tab20` has ten hues, each in a saturated and a light shade. An optimizer's colour comes from the
# registry, so it is the same in every figure; each objective has its own colour for the figures that
# show one optimizer on all of them.
PALETTE = matplotlib.colormaps["tab20"].colors
# The optimizer a page is about, drawn over the others in grey: one strong colour on every page, where
# its own palette colour may be pale (or grey itself).
HIGHLIGHT = "#d84315"
OBJECTIVE_COLORS = dict(zip(OBJECTIVES, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))


def color_of(key: str) -> Any:
    r"""
    The colour of an optimizer: its place in the registry picks one of 20 distinct colours.

    With $i$ the optimizer's index in the registry, the colour is entry
    $$(2i \bmod 20) + (\lfloor i/10 \rfloor \bmod 2)$$
    of `tab20`: the first ten optimizers get the ten saturated hues, the next ten the ten light ones,
    so neighbours in the registry (often parent and child) never share a hue. An unregistered key gets
    the colour of the next free index.
    """
    keys = list(REGISTRY)
    index = keys.index(key) if key in keys else len(keys)
    # Even indices first (the saturated half of tab20), then the lighter odd ones.
    return PALETTE[(2 * index) % 20 + (index // 10) % 2]


def label_of(key: str) -> str:
    r"""The optimizer's display name from the registry (`"AdaBelief"` for `"adabelief"`)."""
    return REGISTRY[key].name if key in REGISTRY else key


# ## Contours


@cache
def contour_grid(name: str, resolution: int = 160) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""
    The objective on a `resolution` x `resolution` grid over its region, as contour levels see it.

    The objective's own formula is evaluated on tensors, in float64. What is returned as $z$ is the
    gap $f - f^\star$ or, for surfaces with `log_levels`, $\log(1 + f - f^\star)$: on Beale the gap runs
    from $0$ to about $2 \times 10^5$, and evenly spaced levels of the gap itself would put every
    contour on the walls and none near the minimum. Cached, since every panel of a gallery draws the
    same surface.
    """
    objective = OBJECTIVES[name]
    (x0, x1), (y0, y1) = objective.region
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    # `indexing="xy"`: rows follow $y$ and columns follow $x$, the layout `contourf` expects.
    x, y = torch.meshgrid(xs, ys, indexing="xy")
    # $$z = f(x, y) - f^\star$$
    z = objective.value(x, y) - objective.minimum_value
    if objective.log_levels:
        # $$z = \log(1 + f - f^\star)$$ (clamped at 0: rounding can put $f$ a hair below $f^\star$)
        z = torch.log1p(z.clamp(min=0))
    return x.numpy(), y.numpy(), z.numpy()


def draw_surface(ax: Any, objective: Objective, levels: int = 14) -> None:
    r"""
    Contour lines of the objective, its minima (stars) and the start (a circle).

    `levels` is the number of bands; fewer for the small panels of a gallery, where fine bands turn
    into noise.
    """
    x, y, z = contour_grid(objective.name)
    # Filled bands from white (low) to mid grey (high). They are the background: stored as an image
    # they keep a panel small in an SVG, while the paths drawn over them stay vector lines.
    # The colour scale runs to $z_{\min} + 1.8\,(z_{\max} - z_{\min})$, beyond the data, so the
    # highest band is only mid grey and a coloured path stays visible everywhere.
    bands = ax.contourf(x, y, z, levels=levels, cmap="Greys", vmin=float(z.min()),
                        vmax=float(z.min() + 1.8 * (z.max() - z.min())), antialiased=False)
    bands.set_rasterized(True)
    # Markers above the paths (`zorder` 3): the start and the minima stay visible under any path.
    minima = np.array(objective.minima)
    ax.plot(minima[:, 0], minima[:, 1], "*", color="black", markersize=9, zorder=3)
    ax.plot(*objective.start, "o", color="black", markersize=4, zorder=3)
    (x0, x1), (y0, y1) = objective.region
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xticks([])
    ax.set_yticks([])


# ## Paths and gaps


def draw_path(ax: Any, trajectory: Trajectory, color: Any, label: str | None = None) -> None:
    r"""
    The path of one trajectory; a cross marks where it ended.

    Every point is joined by a straight line, so the length of each segment is the size of that step:
    a zigzag across a valley, or a few long jumps, show as they happened. A path that leaves the
    region is clipped at the panel's edge by matplotlib.
    """
    if trajectory.skipped is not None or len(trajectory.points) == 0:
        return
    points = trajectory.points.numpy()
    ax.plot(points[:, 0], points[:, 1], "-", color=color, linewidth=1.2, label=label, zorder=2)
    ax.plot(points[-1, 0], points[-1, 1], "x", color=color, markersize=6, zorder=4)


def draw_note(ax: Any, text: str) -> None:
    r"""A short note in the middle of a panel (a skipped optimizer), wrapped to at most six lines."""
    ax.text(0.5, 0.5, _wrap(text, 34), transform=ax.transAxes, ha="center", va="center", fontsize=7,
            bbox=dict(facecolor="white", edgecolor="0.5", boxstyle="round"))


def draw_gaps(ax: Any, trajectories: Sequence[Trajectory], colors: Sequence[Any], labels: Sequence[str]) -> None:
    r"""
    The gap $f_t - f^\star$ against the step, on a log scale, for each trajectory.

    The gap is floored at $10^{-16}$, so that a run that reaches the minimum to machine precision
    (a gap of exactly $0$, which a log scale cannot show) is drawn at the bottom rather than
    disappearing. A straight descending line on this plot is linear convergence: the gap shrinks by
    the same factor every step, and the slope is that factor's logarithm.
    """
    for trajectory, color, label in zip(trajectories, colors, labels):
        if trajectory.skipped is not None or len(trajectory.values) == 0:
            continue
        objective = OBJECTIVES[trajectory.objective]
        # $$\max(f_t - f^\star,\ 10^{-16})$$
        gap = (trajectory.values - objective.minimum_value).clamp(min=1e-16).numpy()
        ax.semilogy(np.arange(len(gap)), gap, color=color, linewidth=1.0, label=label)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel(r"$f - f^\star$")
    ax.grid(True, which="major", linewidth=0.3)


def panel_title(trajectory: Trajectory, name: str) -> str:
    r"""`name` over the setting used: `lr=0.0464`, or `defaults`, and `untuned` when nothing chose it."""
    lr = trajectory.config.get("lr")
    setting = f"lr={lr:.3g}" if lr is not None else "defaults"
    if not trajectory.tuned:
        setting += ", untuned"
    return f"{name}\n{setting}"


# ## The figures
#
# Each figure is a grid of panels of fixed size, so a figure with more panels is larger rather than
# more crowded. The number of rows is $\lceil (n + 1) / c \rceil$ for $n$ trajectories in $c$
# columns (the $+1$ is the panel of gaps), written `-(-(n + 1) // c)`; unused panels are hidden.


def trajectories_figure(trajectories: Sequence[Trajectory], title: str) -> Any:
    r"""
    One optimizer on every objective: a panel per objective with its path over the contours, and a
    last panel with the gap to the minimum against the step.

    Here the colour is the objective's, since the optimizer is the same in every panel; the gaps
    panel uses the same colours, so each curve matches its panel.
    """
    columns = 3
    rows = -(-(len(trajectories) + 1) // columns)
    figure = Figure(figsize=(3.2 * columns, 3.0 * rows))
    # `squeeze=False` always gives a 2-d array of axes, even for one row; flattened, the panels are
    # filled in reading order.
    axes = figure.subplots(rows, columns, squeeze=False)
    axes = axes.ravel()
    for ax, trajectory in zip(axes, trajectories):
        objective = OBJECTIVES[trajectory.objective]
        draw_surface(ax, objective)
        draw_path(ax, trajectory, OBJECTIVE_COLORS.get(objective.name, "tab:blue"))
        if trajectory.skipped is not None:
            draw_note(ax, f"skipped: {trajectory.skipped}")
        ax.set_title(panel_title(trajectory, objective.title), fontsize=9)
    # The panel after the last trajectory: every gap curve, one per objective.
    gap_ax = axes[len(trajectories)]
    draw_gaps(gap_ax, trajectories, [OBJECTIVE_COLORS.get(t.objective, "tab:blue") for t in trajectories],
              [OBJECTIVES[t.objective].title for t in trajectories])
    gap_ax.legend(fontsize=8)
    gap_ax.set_title("gap to the minimum", fontsize=9)
    # The grid may have more panels than there is to draw; the rest stay blank.
    for ax in axes[len(trajectories) + 1:]:
        ax.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def gallery_figure(objective: Objective, trajectories: Sequence[Trajectory], columns: int = 4) -> Any:
    r"""
    Every optimizer on one objective: small multiples, one panel per optimizer, grouped by family, each
    family closed by a panel comparing its members' gaps to the minimum (with a legend).

    Small multiples rather than one crowded overlay: with a dozen paths on one surface, none can be
    followed; and a gap panel per family keeps each comparison to a few curves that a legend can name,
    where one panel for thirty optimizers would be a tangle.
    """
    families: dict[str, list[Trajectory]] = {}
    for trajectory in trajectories:
        families.setdefault(REGISTRY[trajectory.optimizer].family, []).append(trajectory)
    # Each family starts a new row: its panels, then its gap panel.
    cells: list[tuple[str, Any]] = []
    for family, members in families.items():
        cells += [("path", t) for t in members] + [("gaps", family)]
        cells += [("empty", None)] * (-len(cells) % columns)
    rows = len(cells) // columns
    figure = Figure(figsize=(2.7 * columns, 2.7 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (kind, item) in zip(axes, cells):
        if kind == "path":
            draw_surface(ax, objective, levels=10)
            draw_path(ax, item, color_of(item.optimizer))
            if item.skipped is not None:
                draw_note(ax, f"skipped: {item.skipped}")
            ax.set_title(panel_title(item, label_of(item.optimizer)), fontsize=9)
        elif kind == "gaps":
            members = families[item]
            draw_gaps(ax, members, [color_of(t.optimizer) for t in members], [label_of(t.optimizer) for t in members])
            ax.set_title(f"{item}: gap to the minimum", fontsize=9)
            ax.legend(fontsize=8, loc="best")
        else:
            ax.set_visible(False)
    figure.suptitle(objective.title)
    figure.tight_layout()
    return figure


def overlay_figure(objective: Objective, trajectories: Sequence[Trajectory]) -> Any:
    r"""
    Several optimizers on one objective, on one set of contours (the command line's picture).

    Meant for a handful of optimizers compared head to head, where seeing the paths cross is the
    point; the legend gives each one's learning rate. The right panel has the gaps.
    """
    figure = Figure(figsize=(10, 4.4))
    path_ax, gap_ax = figure.subplots(1, 2)
    draw_surface(path_ax, objective)
    # Each label carries the optimizer's setting: `Adam (lr=0.464)`.
    labels = [f"{label_of(t.optimizer)} ({panel_title(t, '').strip()})" for t in trajectories]
    for trajectory, label in zip(trajectories, labels):
        draw_path(path_ax, trajectory, color_of(trajectory.optimizer), label)
    path_ax.set_title(objective.title)
    # A legend only when something was drawn (matplotlib warns about an empty one).
    if any(t.skipped is None for t in trajectories):
        path_ax.legend(fontsize=8, loc="best")
    draw_gaps(gap_ax, trajectories, [color_of(t.optimizer) for t in trajectories], labels)
    gap_ax.set_title("gap to the minimum")
    figure.tight_layout()
    return figure


# ## Loss curves


def draw_losses(ax: Any, result: TaskResult, color: Any, label: str | None = None, **style: Any) -> None:
    r"""
    The moving mean of the training loss of one task run, $\bar L_t$ over the task's window (see
    [tasks](tasks.md)): the same curve from which the final loss and the steps to target are read,
    so a curve crossing the dashed target line is exactly where the table's steps to target come from.
    """
    if result.skipped is not None or not result.losses:
        return
    task = TASKS[result.task]
    curve = moving_mean(result.losses, task.window).numpy()
    ax.plot(np.arange(1, len(curve) + 1), curve, color=color, label=label, **style)


def loss_axis(ax: Any) -> None:
    r"""A log scale for losses, labelled at 1, 2 and 5 times each power of ten (a loss spans few decades)."""
    ax.set_yscale("log")
    # Ticks at $1, 2, 5 \times 10^k$, labelled as plain numbers (`0.2`, `0.5`, `1`), not as $10^k$.
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def losses_figure(task_name: str, results: Sequence[TaskResult], highlight: str | None = None) -> Any:
    r"""
    The training-loss curves of several optimizers on one task (log scale), with the target loss as a
    dashed line. With `highlight`, that optimizer is drawn in colour and the others in grey.

    A log scale, because the interesting differences are late: between a loss of $0.05$ and one of
    $0.02$, which a linear axis from $2.3$ down would squeeze into one pixel row.
    """
    task = TASKS[task_name]
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.subplots()
    for result in results:
        if highlight is None:
            draw_losses(ax, result, color_of(result.optimizer), label_of(result.optimizer), linewidth=1.1)
        elif result.optimizer != highlight:
            draw_losses(ax, result, "0.8", linewidth=0.8)
    # The highlighted curve last, so it is drawn over the grey ones.
    if highlight is not None:
        for result in results:
            if result.optimizer == highlight:
                draw_losses(ax, result, HIGHLIGHT, label_of(highlight), linewidth=2.0)
    # The task's target loss: where a curve crosses it is the run's steps to target.
    ax.axhline(task.target_loss, color="black", linestyle="--", linewidth=0.8, label="target")
    loss_axis(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (mean of {task.window} steps)")
    ax.set_title(task.title)
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    return figure


def tasks_figure(results_by_task: dict[str, Sequence[TaskResult]], highlight: str) -> Any:
    r"""
    One optimizer on every task, in colour, over every other optimizer in grey.

    The grey curves are the context: they show at a glance whether the highlighted optimizer is among
    the fast ones, the slow ones, or alone. A skipped run gets a note in its panel instead of a curve.
    """
    figure = Figure(figsize=(4.0 * len(results_by_task), 3.4))
    axes = figure.subplots(1, len(results_by_task), squeeze=False)
    for ax, (task_name, results) in zip(axes[0], results_by_task.items()):
        task = TASKS[task_name]
        # Everyone else first, thin and grey, then the highlighted optimizer over them.
        for result in results:
            if result.optimizer != highlight:
                draw_losses(ax, result, "0.8", linewidth=0.8)
        mine = [r for r in results if r.optimizer == highlight]
        for result in mine:
            draw_losses(ax, result, HIGHLIGHT, label_of(highlight), linewidth=2.0)
            if result.skipped is not None:
                draw_note(ax, f"skipped: {result.skipped}")
        ax.axhline(task.target_loss, color="black", linestyle="--", linewidth=0.8)
        loss_axis(ax)
        ax.set_xlabel("step")
        ax.set_title(task.title, fontsize=10)
        ax.grid(True, which="major", linewidth=0.3)
    axes[0][0].legend(fontsize=9, loc="upper right")
    # The panels share a meaning but not a scale: only the first is labelled.
    axes[0][0].set_ylabel("training loss (moving mean)")
    figure.tight_layout()
    return figure


def _wrap(text: str, width: int) -> str:
    r"""`text` wrapped to `width` characters, at most six lines (a long error message is cut)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:6])
