r"""
# The search for tuned hyper-parameters

The code behind `scripts/tune_toys.py`; the rules it follows are explained in
`annotated_opt/tuned.py`. For every optimizer of the registry and every target (a toy objective or a
small task) it tries each learning rate of a fixed logarithmic grid, scores the run, and keeps the
best. Nothing is random except the seeded batch order of the tasks, so the same machine always
writes the same file.

The grids are rounded to four significant digits, so the value stored is exactly the value that was
scored. A learning rate the optimizer rejects, or a run that cannot start (a skipped optimizer),
scores $+\infty$; an optimizer for which every candidate scores $+\infty$ gets no entry and stays
flagged as untuned.
"""

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from ..tuned import TUNED_HPARAMS_PATH, load_tuned
from .objectives import OBJECTIVES
from .runner import run_trajectory, toy_score
from .tasks import TASKS, run_task, task_score


def log_grid(low_exponent: int, high_exponent: int, per_decade: int) -> tuple[float, ...]:
    r"""$10^{k/n}$ for $k$ from `low_exponent` to `high_exponent`, rounded to four significant digits."""
    return tuple(float(f"{10 ** (k / per_decade):.4g}") for k in range(low_exponent, high_exponent + 1))


# Toy learning rates: $10^{-5}$ to $10$, three per decade.
TOY_LRS = log_grid(-15, 3, 3)
# Task learning rates: $10^{-4}$ to $3.16$, two per decade (a task run costs a hundred toy runs).
TASK_LRS = log_grid(-8, 1, 2)


def search(lrs: Iterable[float], score: Callable[[float], float]) -> tuple[float | None, float, list[float]]:
    """The learning rate with the lowest score (the first on a tie), its score, and every score."""
    best_lr, best_score, scores = None, math.inf, []
    for lr in lrs:
        value = score(lr)
        scores.append(value)
        if value < best_score:
            best_lr, best_score = lr, value
    return best_lr, best_score, scores


def toy_candidate(info: Any, name: str) -> Callable[[float], float]:
    objective = OBJECTIVES[name]

    def score(lr: float) -> float:
        try:
            return toy_score(objective, run_trajectory(info, objective, {"lr": lr}))
        except TypeError:
            return math.inf

    return score


def task_candidate(info: Any, name: str) -> Callable[[float], float]:
    task = TASKS[name]

    def score(lr: float) -> float:
        try:
            return task_score(task, run_task(info, task, {"lr": lr}, length=task.tuning_length))
        except TypeError:
            return math.inf

    return score


def tune(infos: Iterable[Any], targets: Iterable[str],
         report: Callable[[str, str, float | None, float], None] | None = None) -> dict[str, dict[str, Any]]:
    r"""
    Search every optimizer in `infos` on every target in `targets` (names from `OBJECTIVES` or
    `TASKS`). Returns `{optimizer key: {target: {"config": {"lr": ...}, "score": ...}}}`.
    `report(optimizer, target, lr, score)` is called after each search.
    """
    targets = list(targets)
    results: dict[str, dict[str, Any]] = {}
    for info in infos:
        for target in targets:
            candidate = toy_candidate(info, target) if target in OBJECTIVES else task_candidate(info, target)
            lrs = TOY_LRS if target in OBJECTIVES else TASK_LRS
            lr, score, _ = search(lrs, candidate)
            if report is not None:
                report(info.key, target, lr, score)
            if lr is not None:
                results.setdefault(info.key, {})[target] = {"config": {"lr": lr}, "score": round(score, 6)}
    return results


def write(results: dict[str, dict[str, Any]], path: Path = TUNED_HPARAMS_PATH, replace: bool = False) -> None:
    r"""
    Write the search results to the data file, merged into what is there unless `replace`: entries
    of optimizers and targets that were not searched this time are kept.
    """
    merged: dict[str, dict[str, Any]] = {} if replace else {k: dict(v) for k, v in load_tuned(path).items()}
    for key, entries in results.items():
        merged.setdefault(key, {}).update(entries)
    document = {
        "_search": {
            "written_by": "scripts/tune_toys.py",
            "rules": "annotated_opt/tuned.py",
            "toy_lrs": list(TOY_LRS),
            "task_lrs": list(TASK_LRS),
            "torch": torch.__version__.split("+")[0],
        },
        **{key: dict(sorted(merged[key].items())) for key in sorted(merged)},
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    load_tuned.cache_clear()
