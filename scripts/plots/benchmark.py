"""The benchmark page: tables with spread over seeds, curves, and learning-rate sensitivity, per task.

Reads the committed results of `scripts/tune_tasks.py` (`results/benchmark.json`); runs nothing, so
the site build stays cheap. Writes `docs/generated/plots/benchmark/<task>-{sensitivity,curves}.svg`
and the tables to `docs/generated/benchmark.md`, which `docs/benchmark.md` includes. Optimizers are
drawn in small multiples by family, so the figures stay readable however many the registry holds.
"""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys import experiments
from annotated_opt.toys.drawing import color_of
from annotated_opt.toys.tasks import TASKS

from . import style

PAGE = "benchmark"
RESULTS_PATH = experiments.RESULTS_PATH
# What the tuning search reads (see `task_score`), for the axis and the caption alike.
SCORE_LABEL = "validation loss"


def load(path: Path = RESULTS_PATH) -> dict[str, Any]:
    """`{task: {optimizer key: experiment}}` for the registered optimizers with results, in registry order."""
    data = json.loads(path.read_text()) if path.exists() else {}
    return {task: {key: data[key][task] for key in REGISTRY if task in data.get(key, {})} for task in TASKS}


def families(keys: Sequence[str]) -> dict[str, list[str]]:
    """The optimizers grouped by the family of their registry entry, in registry order."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(REGISTRY[key].family, []).append(key)
    return groups


def panels(count: int, height: float) -> tuple[Any, list[Any]]:
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, height * rows), squeeze=False,
                                sharex=True, sharey=True)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return figure, flat


def sensitivity_figure(task_name: str, records: Mapping[str, Mapping[str, Any]]) -> Any:
    """
    The tuning score (the loss on the validation split, see `task_score`) of each sweep point against
    the learning rate, one panel per family: the line is the median over the tuning seeds, the band
    spans the seeds, a cross marks a learning rate at which some seed diverged (drawn at the top), a
    star the configuration the tuning chose.
    """
    # An optimizer that refused the task's model ran no sweep: it has no curve.
    groups = families([key for key, record in records.items() if record["candidates"]])
    figure, axes = panels(len(groups), 3.0)
    finite = [s for r in records.values() for c in r["candidates"] for s in c["scores"] if math.isfinite(s)]
    ceiling = max(finite, default=1.0) * 1.1
    for ax, (family, keys) in zip(axes, groups.items()):
        for key in keys:
            sweep = [c for c in records[key]["candidates"] if c["stage"] == "sweep"]
            lrs = np.array([c["config"]["lr"] for c in sweep])
            scores = np.array([c["scores"] for c in sweep], dtype=float)
            ok = np.isfinite(scores).all(axis=1)
            color = color_of(key)
            ax.plot(lrs[ok], np.median(scores[ok], axis=1), "-o", color=color, markersize=3, label=REGISTRY[key].name)
            ax.fill_between(lrs[ok], scores[ok].min(axis=1), scores[ok].max(axis=1), color=color, alpha=0.2)
            ax.plot(lrs[~ok], np.full((~ok).sum(), ceiling), "x", color=color)
            chosen = records[key]["chosen"]
            if chosen is not None:
                ax.plot(chosen["config"]["lr"], experiments.robust_score(chosen["scores"]), "*", color=color,
                        markersize=9, markeredgecolor="black", markeredgewidth=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(family, fontsize=10)
        ax.set_xlabel("learning rate")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"{SCORE_LABEL} (tuning run)")
    axes[0].set_ylim(top=ceiling * 1.05)
    figure.tight_layout()
    return figure


def curves_figure(task_name: str, records: Mapping[str, Mapping[str, Any]]) -> Any:
    """
    The evaluation runs' training loss (moving mean) against steps (top row) and seconds (bottom row),
    one column per family; each line is the median over the evaluation seeds of the curve.
    """
    groups = {family: [k for k in keys if records[k]["evaluation"]] for family, keys in families(list(records)).items()}
    figure, axes = plt.subplots(2, len(groups), figsize=(3.4 * len(groups), 5.6), squeeze=False, sharey=True)
    for column, (family, keys) in enumerate(groups.items()):
        for key in keys:
            runs = [e for e in records[key]["evaluation"] if not e["diverged"]]
            if not runs:
                continue
            length = min(len(e["curve"]) for e in runs)
            median = np.median([e["curve"][:length] for e in runs], axis=0)
            steps = runs[0]["steps"]
            x_steps = np.linspace(steps / length, steps, length)
            seconds = x_steps * float(np.median([e["seconds_per_step"] for e in runs]))
            for row, x in enumerate((x_steps, seconds)):
                axes[row, column].plot(x, median, color=color_of(key), linewidth=1.1, label=REGISTRY[key].name)
        axes[0, column].set_title(family, fontsize=10)
        axes[0, column].legend(fontsize=7)
        axes[0, column].set_xlabel("step")
        axes[1, column].set_xlabel("seconds (this machine)")
        for row in range(2):
            axes[row, column].set_yscale("log")
            axes[row, column].axhline(TASKS[task_name].target_loss, color="0.5", linestyle="--", linewidth=0.8)
    axes[0, 0].set_ylabel("training loss")
    axes[1, 0].set_ylabel("training loss")
    figure.tight_layout()
    return figure


def cell(values: Sequence[float], digits: int) -> str:
    """`mean ± sd` of the finite values, or `-` when none is."""
    mean, spread = experiments.mean_and_spread(values)
    return "-" if not math.isfinite(mean) else f"{mean:.{digits}f} ± {spread:.{digits}f}"


def sweep_gap(record: Mapping[str, Any], task_name: str, metric: str) -> str:
    """The median held-out number over the evaluation seeds minus the best of the optimizer's own sweep."""
    shipped = experiments.median(e[metric] for e in record["evaluation"])
    gap = shipped - experiments.sweep_best(record, task_name)
    return "-" if not math.isfinite(gap) else f"{gap:+.3f}"


def table(task_name: str, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The task's table: one row per optimizer, mean ± sd over the evaluation seeds, and the note."""
    task = TASKS[task_name]
    notes = experiments.notes(task_name, records)
    lines = [
        f"| optimizer | tuned setting | final training loss | held-out loss | {task.accuracy_label} "
        f"| steps to {task.target_loss} (median) | ms per step | vs own sweep | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    metric, _ = experiments.heldout_metric(task_name)
    for key, record in records.items():
        runs = [e for e in record["evaluation"] if not e["diverged"]]
        setting = "-" if record["chosen"] is None else experiments.describe_config(record["chosen"]["config"])
        reached = [e["steps_to_target"] for e in runs if e["steps_to_target"] is not None]
        steps = "-" if len(reached) <= len(runs) // 2 or not runs else f"{experiments.median(reached):.0f}"
        per_step = experiments.median(e["seconds_per_step"] for e in runs) * 1000
        cells = [REGISTRY[key].name, setting, cell([e["final_loss"] for e in runs], 3),
                 cell([e["heldout_loss"] for e in runs], 3), cell([e["accuracy"] for e in runs], 3), steps,
                 "-" if math.isnan(per_step) else f"{per_step:.1f}", sweep_gap(record, task_name, metric), notes[key]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def markdown(data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    lines = ["<!-- Generated by scripts/plots/benchmark.py from results/benchmark.json; edits are overwritten. -->", ""]
    seconds = [r["cpu_seconds"] for records in data.values() for r in records.values()]
    optimizers = {key for records in data.values() for key in records}
    if optimizers:
        lines += [f"The tuning and evaluation behind these tables took {sum(seconds) / 60:.1f} minutes of one CPU "
                  f"core for {len(optimizers)} optimizers and {len(data)} tasks, "
                  f"{sum(seconds) / len(optimizers):.0f} seconds per optimizer.", ""]
    for task_name, records in data.items():
        if not records:
            continue
        task = TASKS[task_name]
        # An optimizer with results on other tasks only (an interrupted run) is named below its table.
        absent = [REGISTRY[key].name for key in REGISTRY if key in optimizers and key not in records]
        pending = [f"Not yet run on this task: {', '.join(absent)}.", ""] if absent else []
        lines += [f"## {task.title}", "", *table(task_name, records), "", *pending,
                  f"<!-- plot: {PAGE}/{task_name}-curves -->", "", f"<!-- plot: {PAGE}/{task_name}-sensitivity -->", ""]
    missing = [info.name for info in REGISTRY.values() if not any(info.key in r for r in data.values())]
    if missing:
        lines += [f"Not yet benchmarked (run `python scripts/tune_tasks.py --missing`): {', '.join(missing)}.", ""]
    return "\n".join(lines)


def make() -> None:
    data = load()
    for task_name, records in data.items():
        if not records:
            continue
        title = TASKS[task_name].title
        style.save(curves_figure(task_name, records), PAGE, f"{task_name}-curves",
                   f"{title}: training loss of the evaluation runs at the tuned settings (median over the "
                   f"evaluation seeds) against steps and against wall-clock seconds, by family; dashed: the target.")
        style.save(sensitivity_figure(task_name, records), PAGE, f"{task_name}-sensitivity",
                   f"{title}: learning-rate sensitivity. The tuning score of the sweep "
                   f"({SCORE_LABEL}; other hyper-parameters at their defaults) against the learning "
                   f"rate: median over the tuning seeds, band from best to worst seed, x where a seed diverged, "
                   f"star at the tuned setting.")
    path = style.PLOTS_DIR.parent / "benchmark.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(data))
