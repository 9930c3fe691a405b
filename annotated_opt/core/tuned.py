r"""
# Tuned hyper-parameters

A plot that compares optimizers is only fair if each one runs with a learning rate chosen for it:
[SGD](sgd.md) at Adam's learning rate crawls, and Adam at SGD's explodes. So every optimizer gets its
own hyper-parameters for every toy objective and every small task, found by one seeded, deterministic
search that `scripts/tune_toys.py` runs and writes to `annotated_opt/core/tuned_hparams.json`, a data file
shipped inside the package.

## The search

On the toys only the learning rate is searched; every other hyper-parameter keeps the constructor's
default, so a trajectory shows the optimizer as its authors ship it. The grid is logarithmic and the
same for every optimizer, three points per decade from $10^{-5}$ to $10$. Each candidate is scored
and the lowest score wins (the smaller learning rate on a tie):

* **toy objectives**: with $f_t$ the value after $t$ of the $T$ steps and $f^\star$ the minimum,
  the remaining gap on a log scale, $\ell_t = \log(1 + f_t - f^\star) / \log(1 + f_0 - f^\star)$,
  goes from $1$ at the start to $0$ at a minimum, and
  $$\text{score} = \frac{1}{T+1}\sum_{t=0}^{T} \ell_t \;+\; \ell_T \;+\; 2\cdot[\text{the path left the region}].$$
  The mean rewards getting low early, the last term rewards ending at the minimum, and the penalty
  (larger than any path that stays inside can score) rules out paths that fly off the picture, so
  the plotted path is the one that was scored. The value, not the distance, is measured because on
  a surface full of local minima (Rastrigin) a point that never moves can be closer to the global
  minimum than a good local one.
* **tasks** (digits, the character models): not a grid but the robust search of
  [experiments](experiments.md): the learning rate and one or two other hyper-parameters, each
  candidate on two seeds and judged by its worst: the loss on a validation split held back from
  the training data (a fifth of the images; stretches spread over the text), $+\infty$ when a seed
  diverges. Only training data is used, so the held-out numbers reported on the results
  and benchmark pages are not tuned on.

## Looking them up

`tuned_hparams(info, target)` (also `info.tuned(target)` on a [registry](registry.md) entry) answers,
in this order:

1. the entry of the search, when the data file has one (`source="search"`);
2. the entry's own `toy_hparams[target]`, set by hand in the registry (`source="registry"`);
3. otherwise the constructor's defaults, flagged `tuned=False` (`source="default"`): an optimizer
   added after the last search still runs everywhere, and the pages say that it is untuned.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

TUNED_HPARAMS_PATH = Path(__file__).with_name("tuned_hparams.json")


@dataclass(frozen=True)
class TunedHparams:
    r"""
    The constructor arguments to use for one optimizer on one target (a toy objective's name such as
    `"rosenbrock"` or a task's such as `"digits-mlp"`), and where they came from.
    """

    config: Mapping[str, Any] = field(default_factory=dict)
    source: str = "default"

    @property
    def tuned(self) -> bool:
        return self.source != "default"

    def describe(self) -> str:
        """A short label for tables and captions: `lr=0.01`, or `defaults (untuned)`."""
        if not self.config:
            return "defaults (untuned)" if not self.tuned else "defaults"
        text = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                         for name, value in sorted(self.config.items()))
        return text if self.tuned else f"{text} (untuned)"


@cache
def load_tuned(path: Path = TUNED_HPARAMS_PATH) -> dict[str, dict[str, dict[str, Any]]]:
    r"""
    The search results, `{optimizer key: {target: {"config": {...}, "score": ...}}}`; empty when the
    file is missing. Keys starting with `_` describe the search itself and are skipped.
    """
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {key: value for key, value in data.items() if not key.startswith("_")}


def tuned_hparams(info: Any, target: str) -> TunedHparams:
    """The hyper-parameters of the registry entry `info` for `target`, by the rules above."""
    entry = load_tuned().get(info.key, {}).get(target)
    if entry is not None:
        # JSON has no tuples: `betas` comes back as a list and goes to the constructor as a tuple.
        return TunedHparams({k: tuple(v) if isinstance(v, list) else v for k, v in entry["config"].items()}, "search")
    if target in info.toy_hparams:
        return TunedHparams(dict(info.toy_hparams[target]), "registry")
    return TunedHparams({}, "default")
