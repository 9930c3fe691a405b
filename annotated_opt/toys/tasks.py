r"""
# Small real tasks: the same loop for every optimizer

Toy surfaces show *how* an optimizer moves; these show whether it *trains*. Three tasks, each a few
seconds on a CPU, with data that needs no download:

| task | model | data |
|---|---|---|
| `digits-mlp` | two-layer perceptron, 64-64-10 | scikit-learn's 8x8 digits (`annotated_opt.digits`) |
| `digits-cnn` | two small convolutions and a linear layer | the same images, seen as images |
| `charlm` | character embeddings and a one-hidden-layer perceptron | Python standard-library source (`charlm`) |

`run_task(info, task)` builds the optimizer with `info.build(model.parameters(), **config)` at its
tuned learning rate (see `annotated_opt/tuned.py`), trains with a seeded order of batches, and
returns a `TaskResult` with what the results table reports:

* the **final loss**: the mean training loss over the last `window` steps (one epoch of the digits),
  which is smoother than the last step's;
* the **held-out** loss and **accuracy** (test images; the held-out end of the text);
* the **steps to target**: the first step at which that moving mean falls to the task's target loss
  (`None` if it never does);
* the **wall time** of the training loop. Optimizers that need no closure are stepped with
  `evaluate_before_step=False`, one forward and backward pass per step; those that do (SAM) get the
  gradients before `step` as well, so their time includes every pass they ask for.

A run whose loss becomes non-finite, or grows past ten times its first value, is stopped and marked
`diverged`. An optimizer that refuses the model when it is built (with `ValueError`,
`RuntimeError` or `NotImplementedError`, the convention of the toy runner) is marked `skipped`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import digits
from . import charlm
from .runner import SKIPPABLE


@dataclass(frozen=True)
class Task:
    r"""
    One small task: `target_loss` for the steps-to-target column, `window` steps for the moving mean,
    and the length of a full run (`length`: epochs for the digits, steps for the text) and of the
    short runs the tuning search uses (`tuning_length`).
    """

    name: str
    title: str
    target_loss: float
    window: int
    length: int
    tuning_length: int
    accuracy_label: str

    def steps(self, length: int | None = None) -> int:
        """The number of optimizer steps in a run of `length` (the task's own by default)."""
        length = self.length if length is None else length
        if self.name == "charlm":
            return length
        return length * math.ceil(len(_digits_data().train_y) / DIGITS_BATCH)


DIGITS_BATCH = 64
# One epoch of the digits: 1,348 training images in batches of 64.
DIGITS_WINDOW = 22

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("digits-mlp", "Digits, MLP", target_loss=0.1, window=DIGITS_WINDOW, length=10, tuning_length=10,
             accuracy_label="test accuracy"),
        Task("digits-cnn", "Digits, CNN", target_loss=0.1, window=DIGITS_WINDOW, length=10, tuning_length=4,
             accuracy_label="test accuracy"),
        Task("charlm", "Character LM", target_loss=2.2, window=40, length=500, tuning_length=200,
             accuracy_label="held-out next-character accuracy"),
    )
}


@dataclass
class TaskResult:
    task: str
    optimizer: str
    config: dict[str, Any]
    source: str
    length: int
    losses: list[float] = field(default_factory=list)
    final_loss: float = math.inf
    heldout_loss: float = math.inf
    accuracy: float = 0.0
    steps_to_target: int | None = None
    seconds: float = 0.0
    skipped: str | None = None
    diverged: bool = False

    @property
    def tuned(self) -> bool:
        return self.source != "default"


def moving_mean(values: list[float], window: int) -> torch.Tensor:
    r"""The mean of each run of `window` consecutive values (the first `window - 1` use what there is)."""
    series = torch.tensor(values, dtype=torch.float64)
    sums = series.cumsum(0)
    counts = torch.arange(1, len(series) + 1, dtype=torch.float64).clamp(max=window)
    shifted = torch.cat((torch.zeros(window, dtype=torch.float64), sums))[: len(series)]
    return (sums - shifted) / counts


def steps_to_target(losses: list[float], window: int, target: float) -> int | None:
    """The first step (counted from 1) at which the moving mean of the loss is at most `target`."""
    if not losses:
        return None
    below = (moving_mean(losses, window) <= target).nonzero()
    return int(below[0]) + 1 if len(below) else None


def run_task(
    info: Any,
    task: Task,
    config: dict[str, Any] | None = None,
    length: int | None = None,
    after_step: Callable[[int, float], None] | None = None,
    seed: int = 0,
) -> TaskResult:
    r"""
    Train the task's model with the optimizer of the registry entry `info` (constructor arguments
    `config`, the tuned ones by default) for `length` epochs or steps (the task's own by default).
    """
    if config is None:
        tuned = info.tuned(task.name)
        config, source = dict(tuned.config), tuned.source
    else:
        config, source = dict(config), "given"
    length = task.length if length is None else length
    result = TaskResult(task.name, info.key, config, source, length)
    first_loss: list[float] = []

    def watch(step: int, loss: float) -> bool:
        first_loss.append(loss) if not first_loss else None
        if after_step is not None:
            after_step(step, loss)
        if not math.isfinite(loss) or loss > 10 * first_loss[0]:
            result.diverged = True
            return False
        return True

    def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
        try:
            return info.build(model.parameters(), **config)
        except SKIPPABLE as error:
            raise _Refused(f"{type(error).__name__}: {error}") from error

    options = dict(after_step=watch, seed=seed, evaluate_before_step=bool(info.requires_closure))
    try:
        if task.name == "charlm":
            run = charlm.train(charlm.charlm(seed=seed), make_optimizer, data=_char_data(), steps=length,
                               **options)
            heldout_loss, accuracy = run.heldout_loss, run.heldout_accuracy
        else:
            model = digits.mlp(seed=seed) if task.name == "digits-mlp" else digits.cnn(seed=seed)
            run = digits.train(model, make_optimizer, data=_digits_data(), epochs=length, batch_size=DIGITS_BATCH,
                               **options)
            heldout_loss, accuracy = run.test_loss, run.test_accuracy
    except _Refused as refusal:
        result.skipped = str(refusal)
        return result

    result.losses = run.losses
    result.seconds = run.seconds
    if not result.diverged:
        result.final_loss = float(moving_mean(run.losses, task.window)[-1])
        result.heldout_loss, result.accuracy = heldout_loss, accuracy
        result.steps_to_target = steps_to_target(run.losses, task.window, task.target_loss)
    return result


def task_score(task: Task, result: TaskResult) -> float:
    r"""The tuning score: the mean training loss over the last fifth of the run ($+\infty$ if it diverged)."""
    if result.skipped is not None or result.diverged or not result.losses:
        return math.inf
    tail = result.losses[-max(1, len(result.losses) // 5):]
    score = sum(tail) / len(tail)
    return score if math.isfinite(score) else math.inf


class _Refused(Exception):
    """An optimizer refused the model when it was built."""


_CACHE: dict[str, Any] = {}


def _digits_data() -> digits.DigitsData:
    if "digits" not in _CACHE:
        _CACHE["digits"] = digits.load_digits()
    return _CACHE["digits"]


def _char_data() -> charlm.CharData:
    if "chars" not in _CACHE:
        _CACHE["chars"] = charlm.load_chars()
    return _CACHE["chars"]
