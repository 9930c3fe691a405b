r"""
# The search for tuned hyper-parameters

A comparison of optimizers is only as fair as the learning rates they were given. This module is the
code behind `scripts/tune_toys.py`; the rules it follows are explained in [tuned](tuned.md). For
every optimizer of the [registry](registry.md) and every [toy objective](objectives.md) it tries
each learning rate of a fixed logarithmic grid, scores the run, and keeps the best. Nothing is
random, so the same machine always writes the same file. The small [tasks](tasks.md) are tuned by
the robust, seeded search of [experiments](experiments.md) (`scripts/tune_tasks.py`), which writes
its choices into the same file.

## The rule, as an equation

For an optimizer $o$, a target $j$ and the grid $\Gamma_j$ of learning rates,

$$\eta^\star_{o,j} = \mathop{\mathrm{arg\,min}}_{\eta \in \Gamma_j} \; S_j\big(\text{run}(o, j, \eta)\big),$$

where $S_j$ is the target's score, lower is better:

* on a toy objective, with $\ell_t = \log(1 + f_t - f^\star) / \log(1 + f_0 - f^\star)$ over the
  $T$ steps of the trajectory ([runner](runner.md)'s `toy_score`),
  $$S = \frac{1}{T+1}\sum_{t=0}^{T} \ell_t + \ell_T + 2\cdot[\text{the path left the region}];$$
The $\arg\min$ is taken in the order of the grid, smallest learning rate first, and only a strictly
lower score replaces the best so far: on a tie the *smaller* learning rate wins, the cautious choice.

## The grids

$$\Gamma_{\text{toy}} = \{10^{k/3} : k = -15, \dots, 3\} = \{10^{-5}, 2.154 \times 10^{-5}, \dots, 10\}.$$

Only the learning rate is searched, on a logarithmic grid, because it is the one hyper-parameter
whose good value differs by orders of magnitude between optimizers (Adam's rate on Rosenbrock is over
200 times SGD's), and because a grid over one variable is exhaustive, cheap to explain and cannot be
unlucky. Its spacing bounds how far the chosen value can be from the best: any learning rate in the
grid's range is within a factor $10^{1/6} \approx 1.47$ of a candidate.

## Reproducing and extending it

`python scripts/tune_toys.py` runs the whole search and rewrites `annotated_opt/core/tuned_hparams.json`;
the tests re-run one entry and check that it reproduces the shipped value. After adding an optimizer,
tune just that one (`--optimizer NAME`, which passes only its registry entry as `infos`) and let
`write` merge the result: the other entries stay as they were. The search runs on one thread, so the
numbers do not depend on the machine's number of cores. A score is stored with every entry, so a
change of score after a retune shows that the optimizer, or the toy, changed.

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

from ..core.tuned import TUNED_HPARAMS_PATH, load_tuned
from .objectives import OBJECTIVES
from .runner import run_trajectory, toy_score


def log_grid(low_exponent: int, high_exponent: int, per_decade: int) -> tuple[float, ...]:
    r"""
    $10^{k/n}$ for $k$ from `low_exponent` to `high_exponent`, rounded to four significant digits.

    `per_decade` is $n$. Rounding through the decimal text (`f"{...:.4g}"`) makes the values short,
    readable and identical on every machine: the JSON file then stores `0.0001` and `0.2154`, not the
    last bits of a `pow`.
    """
    return tuple(float(f"{10 ** (k / per_decade):.4g}") for k in range(low_exponent, high_exponent + 1))


# Toy learning rates: $10^{-5}$ to $10$, three per decade (19 candidates). The toys are cheap, so the
# grid is fine and wide: the rates chosen on the toys range from about $2 \times 10^{-4}$ to $2$.
TOY_LRS = log_grid(-15, 3, 3)


def search(lrs: Iterable[float], score: Callable[[float], float]) -> tuple[float | None, float, list[float]]:
    r"""
    The learning rate with the lowest score (the first on a tie), its score, and every score:
    $$\eta^\star = \mathop{\mathrm{arg\,min}}_{\eta \in \Gamma} S(\eta).$$
    `None` and $+\infty$ when every candidate scored $+\infty$ (nothing ran).
    """
    best_lr, best_score, scores = None, math.inf, []
    for lr in lrs:
        value = score(lr)
        scores.append(value)
        # Strictly lower only: on a tie the earlier, smaller learning rate stays.
        if value < best_score:
            best_lr, best_score = lr, value
    return best_lr, best_score, scores


def toy_candidate(info: Any, name: str) -> Callable[[float], float]:
    r"""
    $\eta \mapsto S(\text{the trajectory of } \eta)$ on the toy objective `name`, with every other
    hyper-parameter at the constructor's default. A `TypeError` (an optimizer without an `lr`
    argument, for instance) scores $+\infty$ rather than stopping the whole search.
    """
    objective = OBJECTIVES[name]

    def score(lr: float) -> float:
        try:
            return toy_score(objective, run_trajectory(info, objective, {"lr": lr}))
        except TypeError:
            return math.inf

    return score


def tune(infos: Iterable[Any], targets: Iterable[str],
         report: Callable[[str, str, float | None, float], None] | None = None) -> dict[str, dict[str, Any]]:
    r"""
    ### The whole search

    Search every optimizer in `infos` on every toy objective in `targets` (names from `OBJECTIVES`).
    Returns `{optimizer key: {target: {"config": {"lr": ...}, "score": ...}}}`.
    `report(optimizer, target, lr, score)` is called after each search.

    The cost is one run per candidate: 19 per toy objective, for every optimizer.
    To retune one optimizer after changing it, pass only its entry and merge the result with `write`.
    """
    targets = list(targets)
    results: dict[str, dict[str, Any]] = {}
    for info in infos:
        for target in targets:
            lr, score, _ = search(TOY_LRS, toy_candidate(info, target))
            if report is not None:
                report(info.key, target, lr, score)
            # No entry when nothing ran: the optimizer stays flagged as untuned for this target.
            if lr is not None:
                results.setdefault(info.key, {})[target] = {"config": {"lr": lr}, "score": round(score, 6)}
    return results


def write(results: dict[str, dict[str, Any]], path: Path = TUNED_HPARAMS_PATH, replace: bool = False) -> None:
    r"""
    Write the search results to the data file, merged into what is there unless `replace`: entries
    of optimizers and targets that were not searched this time are kept, and an entry given as `None`
    (searched again, and nothing could be chosen) is removed.

    The file starts with a `_search` entry that records how it was made (the scripts, the rules, the
    toys' grid and the torch version), so a reader of the numbers can reproduce them. Keys are sorted and
    the JSON indented, so a retune shows in a diff as exactly the entries that changed.
    """
    merged: dict[str, dict[str, Any]] = {} if replace else {k: dict(v) for k, v in load_tuned(path).items()}
    for key, entries in results.items():
        for target, entry in entries.items():
            if entry is None:
                merged.get(key, {}).pop(target, None)
            else:
                merged.setdefault(key, {})[target] = entry
    document = {
        "_search": {
            "written_by": "scripts/tune_toys.py (toys), scripts/tune_tasks.py (tasks)",
            "rules": "annotated_opt/core/tuned.py, annotated_opt/toys/experiments.py",
            "toy_lrs": list(TOY_LRS),
            "torch": torch.__version__.split("+")[0],
        },
        **{key: dict(sorted(merged[key].items())) for key in sorted(merged)},
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    # The lookup caches the file; a new file must be read again.
    load_tuned.cache_clear()
