r"""
# Small real tasks: the same loop for every optimizer

Toy surfaces show *how* an optimizer moves; these show whether it *trains*. Four tasks, each a few
seconds on a CPU, with data that needs no download:

| task | model | parameters | data |
|---|---|---|---|
| `digits-mlp` | two-layer perceptron, 64-64-10 | 4,810 | scikit-learn's 8x8 digits ([digits](digits.md)) |
| `digits-cnn` | two small convolutions and a linear layer | 6,090 | the same images, seen as images |
| `charlm` | character embeddings, one hidden layer | 92,000 | Python's own source ([charlm](charlm.md)) |
| `chartransformer` | a 2-layer causal transformer, width 32 | 24,000 | the same text |

The four differ in the way that matters to an optimizer: the perceptron's gradients are dense and
its loss surface benign; the convolutions share weights across positions, so each of their
gradients sums many contributions and can differ in scale from the last layer's; the character model's
embedding receives a gradient only in the rows of the characters in the batch; the transformer adds
layer norms and attention, the setting in which most of today's optimizers are compared.

`run_task(info, task)` builds the optimizer with `info.build(model.parameters(), **config)` at its
tuned learning rate (see [tuned](tuned.md)), trains with a seeded order of batches, and returns a
`TaskResult` with what the results table reports.

## What is measured, and why

Write $L_t$ for the training loss (mean cross-entropy of the batch, in nats) at step $t$, and
$\bar L_t$ for its moving mean over the last $n$ steps (the task's `window`):

$$\bar L_t = \frac{1}{\min(t, n)} \sum_{s = \max(1,\, t - n + 1)}^{t} L_s.$$

* the **final loss**, $\bar L_T$: the mean training loss over the last `window` steps (one epoch of
  the digits), which is smoother than the last step's. It answers "how far did the optimizer get in
  this budget?", and it is what the optimizer was asked to minimise.
* the **held-out** loss and **accuracy** (test images; the held-out end of the text), measured once
  after training. Training loss measures optimisation alone; an optimizer that drives it down by
  memorising the batches can still do worse on data it has not seen, and the difference between
  adaptive methods and SGD in how well they generalise is one of the long-running questions about
  them. Nothing is tuned on these numbers (the search reads the training data only, see
  `task_score`), so they are an honest comparison.
* the **validation loss**, for the tuning search only: a run with `validation=True` holds back part
  of the *training* data (`VALIDATION_FRACTION` of the training images; for the text, six stretches
  spread over its training part), trains on the rest, and measures the cross-entropy there.
* the **steps to target** $t^\star$: the first step at which the moving mean falls to the task's
  target loss, $\bar L_t \le L_{\text{target}}$, or `None` if it never does. Final losses compare
  where optimizers *end*; this compares how *fast* they get somewhere useful, which is what decides
  the cost of training. The moving mean, not the raw $L_t$, is compared, because one lucky batch of
  64 images can dip below the target long before the model is there.
* the **wall time** of the training loop. Optimizers that need no closure are stepped with
  `evaluate_before_step=False`, one forward and backward pass per step; those that do
  ([SAM](sam.md)) get the gradients before `step` as well, so their time includes every pass they
  ask for. Steps to target times the time per step is the honest cost of a method that does more
  work per step.

The targets are set where a good optimizer arrives within the run and a poor one does not: $0.1$
nats for the digits (the geometric mean of the probability the model gives the right digit is then
$e^{-0.1} \approx 90\%$), $2.2$ nats for the characters, against $\ln 96 \approx 4.56$ for a model that
knows nothing (a perplexity of $e^{2.2} \approx 9$ candidates per character instead of 96).

## Reading the numbers together

No single column ranks optimizers. A few patterns to look for:

* **low final loss, high held-out loss**: the optimizer fits the training data well and the model
  overfits.
* **few steps to target, slow wall time**: more work per step (SAM's two passes); compare steps to
  target times seconds per step.
* **no steps to target, low held-out loss**: the optimizer is slow but careful; a longer run, or a
  larger learning rate than the tuning chose, may be all it needs.
* **untuned** (see [tuned](tuned.md)): the optimizer ran at its defaults; its numbers say little
  about what it can do.

## Runs that fail

A run whose loss becomes non-finite, or grows past ten times its first value, is stopped and marked
`diverged`; so is a run in which the optimizer itself refuses a non-finite gradient
(`NonFiniteGradientError`, LAMB at a learning rate far too large): one failed run is a result, and a
comparison of many optimizers goes on to the next. An optimizer that refuses the model when it is
built (with `ValueError`, `RuntimeError` or `NotImplementedError`, the convention of the toy
[runner](runner.md)) is marked `skipped`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.nonfinite import NonFiniteGradientError
from . import charlm, digits
from .runner import SKIPPABLE


@dataclass(frozen=True)
class Task:
    r"""
    One small task: `target_loss` for the steps-to-target column, `window` steps for the moving mean,
    and the length of a run (`length`: epochs for the digits, steps for the text), the same for the
    tuning search and for the evaluation. `accuracy_label` names the accuracy column in tables.
    `tie_tolerance` is the selection rule's $\tau$ (see [experiments](experiments.md)): how close to the
    best validation score a candidate must be to count as a tie, which the smaller rate then wins.
    """

    name: str
    title: str
    target_loss: float
    window: int
    length: int
    accuracy_label: str
    tie_tolerance: float

    def steps(self, length: int | None = None) -> int:
        r"""
        The number of optimizer steps in a run of `length` (the task's own by default): `length`
        itself for the text, `length` epochs of $\lceil 1348 / 64 \rceil = 22$ batches for the digits.
        A tuning run of the digits trains on fewer images, so it takes more epochs (cut short) to
        make the same number of steps.
        """
        length = self.length if length is None else length
        if self.name in TEXT_MODELS:
            return length
        return length * math.ceil(len(_digits_data().train_y) / DIGITS_BATCH)


DIGITS_BATCH = 64
# One epoch of the digits: 1,348 training images in 22 batches of at most 64.
DIGITS_WINDOW = 22

# ## The four tasks
#
# The tuning search runs every candidate at full length: the digits models for 220 steps (10 epochs
# of the evaluation's 1,348 images; 13 epochs, the last cut short, of the 1,078 a tuning run trains
# on), the character model for 500 steps, the transformer for 200 (each of its steps has 16 targets per
# window, 512 in all). Shorter tuning runs would be cheaper, but the learning rate best for a short
# run is not always best for a long one ([Wu et al., 2018](https://arxiv.org/abs/1803.02021) study
# this short-horizon bias), and both kinds of task showed it here. Tuned on 4 of the CNN's 10 epochs,
# LAMB got a rate that reaches a loss of 0.14 and climbs back to 0.46 by epoch 10. Tuned on 200 of
# the character model's 500 steps and 100 of the transformer's 200, 13 of 68 optimizer-and-task pairs
# ended more than 0.03 nats above the best median of their own learning-rate sweep on the evaluation
# seeds (AdEMAMix by 0.10); tuned on full runs, 5; tuned on full runs and scored on the validation
# stretches (`task_score`), 2 (`scripts/check_acceptance.py`).
# The character model's window, 40 batches of 128 windows, averages over about 5,000 predictions, as
# the digits' window of one epoch averages over 1,348 images.
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("digits-mlp", "Digits, MLP", target_loss=0.1, window=DIGITS_WINDOW, length=10,
             accuracy_label="test accuracy", tie_tolerance=0.02),
        Task("digits-cnn", "Digits, CNN", target_loss=0.1, window=DIGITS_WINDOW, length=10,
             accuracy_label="test accuracy", tie_tolerance=0.02),
        Task("charlm", "Character LM", target_loss=2.2, window=40, length=500,
             accuracy_label="held-out next-character accuracy", tie_tolerance=0.0),
        Task("chartransformer", "Character transformer", target_loss=2.5, window=20, length=200,
             accuracy_label="held-out next-character accuracy", tie_tolerance=0.0),
    )
}


# The character models, by task: the model (seeded) and its batch size.
TEXT_MODELS: dict[str, tuple[Callable[[int], torch.nn.Module], int]] = {
    "charlm": (lambda seed: charlm.charlm(seed=seed), 128),
    "chartransformer": (charlm.char_transformer, 32),
}


@dataclass
class TaskResult:
    r"""
    Everything one run reports. `losses` are the per-step training losses $L_t$; `final_loss` is
    $\bar L_T$; `heldout_loss` and `accuracy` are measured after training, on the test data;
    `validation_loss` on the validation split, only by a run with `validation` (else `None`); `steps_to_target` is
    $t^\star$ (or `None`); `seconds` the wall time of the loop. `length` is the run's length in the
    task's unit (epochs or steps). The loss-derived numbers keep their defaults ($+\infty$, $0$,
    `None`) when the run was `skipped` or `diverged`, so a failed run can never look good in a table.
    """

    task: str
    optimizer: str
    config: dict[str, Any]
    source: str
    length: int
    losses: list[float] = field(default_factory=list)
    final_loss: float = math.inf
    heldout_loss: float = math.inf
    accuracy: float = 0.0
    validation_loss: float | None = None
    steps_to_target: int | None = None
    seconds: float = 0.0
    skipped: str | None = None
    diverged: bool = False

    @property
    def tuned(self) -> bool:
        r"""Whether the configuration was chosen for this task (searched, set by hand, or given)."""
        return self.source != "default"


def moving_mean(values: list[float], window: int) -> torch.Tensor:
    r"""
    The mean of each run of `window` consecutive values (the first `window - 1` use what there is):
    $$\bar L_t = \frac{1}{\min(t, n)} \sum_{s = \max(1,\, t - n + 1)}^{t} L_s,$$
    computed for every $t$ at once from the running sums $S_t = \sum_{s \le t} L_s$ as
    $(S_t - S_{t-n}) / \min(t, n)$, with $S_t = 0$ for $t \le 0$.
    """
    series = torch.tensor(values, dtype=torch.float64)
    # $$S_t = \sum_{s \le t} L_s$$
    sums = series.cumsum(0)
    # $$\min(t, n)$$
    counts = torch.arange(1, len(series) + 1, dtype=torch.float64).clamp(max=window)
    # $S_{t-n}$: the running sums moved $n$ places to the right, with zeros shifted in.
    shifted = torch.cat((torch.zeros(window, dtype=torch.float64), sums))[: len(series)]
    # $$\bar L_t = \frac{S_t - S_{t-n}}{\min(t, n)}$$
    return (sums - shifted) / counts


def steps_to_target(losses: list[float], window: int, target: float) -> int | None:
    r"""
    The first step (counted from 1) at which the moving mean of the loss is at most `target`,
    $$t^\star = \min\{\,t : \bar L_t \le L_{\text{target}}\,\},$$
    or `None` when no step gets there.
    """
    if not losses:
        return None
    below = (moving_mean(losses, window) <= target).nonzero()
    # The tensor index $t - 1$ of the first step below the target, counted from 1.
    return int(below[0]) + 1 if len(below) else None


def run_task(
    info: Any,
    task: Task,
    config: dict[str, Any] | None = None,
    length: int | None = None,
    after_step: Callable[[int, float], None] | None = None,
    seed: int = 0,
    validation: bool = False,
) -> TaskResult:
    r"""
    Train the task's model with the optimizer of the registry entry `info` (constructor arguments
    `config`, the tuned ones by default) for `length` epochs or steps (the task's own by default).

    * `config` replaces the tuned configuration entirely, as in `run_trajectory`.
    * `after_step(step, loss)` is called after every step, for progress bars.
    * `seed` fixes the model's initialisation and the order of the batches. Two runs with the same
      seed see the same data in the same order, so a difference between two optimizers is theirs,
      not the data's; running a few seeds shows how much of a difference is noise.
    * `validation` holds the validation split back from training and measures `validation_loss` on
      it: the run of the tuning search.
    """
    # The configuration: the tuned one for this task, or the one given.
    if config is None:
        tuned = info.tuned(task.name)
        config, source = dict(tuned.config), tuned.source
    else:
        config, source = dict(config), "given"
    length = task.length if length is None else length
    result = TaskResult(task.name, info.key, config, source, length)
    first_loss: list[float] = []
    # Every loss so far, for a run the optimizer stops by raising.
    seen: list[float] = []

    # ### Watching for divergence
    #
    # Called after every step by the training loop, which stops when it returns `False`. The run has
    # diverged when
    # $$L_t \notin \mathbb{R} \quad\text{or}\quad L_t > 10\, L_1:$$
    # an untrained classifier starts near $\ln 10 \approx 2.3$ (digits) or $\ln 96 \approx 4.6$
    # (characters), and a loss ten times that is not coming back. Stopping saves the rest of the
    # run, which matters when the tuning search tries learning rates that are far too large.
    def watch(step: int, loss: float) -> bool:
        first_loss.append(loss) if not first_loss else None
        seen.append(loss)
        if after_step is not None:
            after_step(step, loss)
        if not math.isfinite(loss) or loss > 10 * first_loss[0]:
            result.diverged = True
            return False
        return True

    # The optimizer is built inside the training function (which creates the model first); a
    # refusal is carried out of it as `_Refused`, so that a `ValueError` raised anywhere else in
    # training is not mistaken for one.
    def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
        try:
            return info.build(model.parameters(), **config)
        except SKIPPABLE as error:
            raise _Refused(f"{type(error).__name__}: {error}") from error

    # An optimizer of sparse gradients only (SparseAdam, for `nn.Embedding(sparse=True)`) has nothing to
    # do with these models' dense gradients: the run is reported as skipped, with the reason.
    if getattr(info.cls, "sparse_gradients", False):
        result.skipped = "takes only sparse gradients (an embedding with sparse=True); these models' are dense"
        return result

    # Gradients before `step` only for optimizers that need a closure (see the notes on wall time).
    options = dict(after_step=watch, seed=seed, evaluate_before_step=bool(info.requires_closure))
    data, measure_validation = _task_data(task, validation)
    try:
        if task.name in TEXT_MODELS:
            model_of_seed, batch_size = TEXT_MODELS[task.name]
            model = model_of_seed(seed)
            run = charlm.train(model, make_optimizer, data=data, steps=length, batch_size=batch_size, **options)
            heldout_loss, accuracy = run.heldout_loss, run.heldout_accuracy
        else:
            model = digits.mlp(seed=seed) if task.name == "digits-mlp" else digits.cnn(seed=seed)
            # As many steps as the full run's, on however many images this run trains on.
            steps = task.steps(length)
            epochs = math.ceil(steps / math.ceil(len(data.train_y) / DIGITS_BATCH))
            run = digits.train(model, make_optimizer, data=data, epochs=epochs, steps=steps, batch_size=DIGITS_BATCH,
                               **options)
            heldout_loss, accuracy = run.test_loss, run.test_accuracy
    except _Refused as refusal:
        result.skipped = str(refusal)
        return result
    except NonFiniteGradientError:
        # The optimizer's own guard fired: the same verdict as a non-finite loss, with the losses so far.
        result.diverged, result.losses = True, seen
        return result

    # The losses and the time are kept for every run that started; the summary numbers only for a
    # run that finished, so a diverged run keeps $\bar L_T = +\infty$ and no steps to target.
    result.losses = run.losses
    result.seconds = run.seconds
    if not result.diverged:
        # $$\bar L_T$$
        result.final_loss = float(moving_mean(run.losses, task.window)[-1])
        result.heldout_loss, result.accuracy = heldout_loss, accuracy
        # $$t^\star = \min\{\,t : \bar L_t \le L_{\text{target}}\,\}$$
        result.steps_to_target = steps_to_target(run.losses, task.window, task.target_loss)
        if measure_validation is not None:
            result.validation_loss = measure_validation(model)
    return result


def task_score(task: Task, result: TaskResult) -> float:
    r"""
    ### The tuning score of a task run

    $+\infty$ if the run diverged or was skipped. Otherwise the mean cross-entropy, on the validation
    split, of the model where the run left it: the run trained on the training data less that split
    (`run_task(..., validation=True)`), so the score is a loss on data the model has not seen, measured
    like the held-out loss, and the test numbers stay untouched:
    $$\text{score} = \frac{1}{|V|} \sum_{(x, y) \in V} -\log p_\theta(y \mid x).$$

    The training loss would be the cheaper score, and it misleads on both kinds of task. Ten epochs
    over 1,078 images can memorise them, and two learning rates can then reach the same training loss
    and not the same model: [Nero](../nero.md) on the digits MLP, its weights held at a fixed norm, had
    the rates $0.03$ and $0.1$ tied near $0.44$, while the runs at $0.1$ ended 4 and 17 points of test
    accuracy lower on the two seeds. On the character model 500 steps draw 64,000 windows from about
    60,900, so by the last fifth of the run more than half of each batch has been trained on before:
    scored on its training loss, [NAdam](../nadam.md)'s search chose a rate $2.4\times$ the one the
    held-out loss prefers, and [Adafactor](../adafactor.md)'s $3\times$.

    Where the validation text lies matters as much. Held back as one stretch (the end of the training
    part: the end of `fnmatch` and the start of `string`), it was a sample of two kinds of code, and
    Adam's search chose a rate of $0.001$ where the held-out loss prefers $0.003$ ($0.14$ nats worse on
    new seeds). Six stretches spread evenly over the text do better (`text_validation_blocks`
    compares the cuts tried).
    """
    if result.skipped is not None or result.diverged:
        return math.inf
    if result.validation_loss is None:
        raise ValueError(f"a tuning run of {task.name} must be made with validation=True")
    return result.validation_loss if math.isfinite(result.validation_loss) else math.inf


class _Refused(Exception):
    r"""An optimizer refused the model when it was built."""


# ## The validation split
#
# A fifth of the digits' 1,348 training images (270, already in random order: the split's permutation
# shuffled them). For the text, a ninth of its training part, as much as its held-out end, in
# `VALIDATION_BLOCKS` stretches of about 1,130 characters, one in the middle of each sixth of the
# training part (`text_validation_blocks`). No training window reads a character of them
# (`charlm.window_starts`), so, like the held-out end, each is text the model has never trained on.
VALIDATION_FRACTION = {"digits": 0.2, "text": 1 / 9}
VALIDATION_BLOCKS = 6


def text_validation_blocks(length: int) -> list[tuple[int, int]]:
    r"""
    The `(start, end)` of each validation stretch of a training text of `length` characters: the
    text is cut into $n$ = `VALIDATION_BLOCKS` equal parts, and each part gives the stretch of
    $\operatorname{round}(\ell f / n)$ characters in its middle, for $\ell$ = `length` and $f$ the
    text's `VALIDATION_FRACTION`.

    How the validation text is cut decides which learning rate looks best, because the model
    remembers the text around what it trained on. The cuts tried, with how much worse the held-out
    loss of the choice was than that of the best candidate:

    * one stretch at the end of the training part (the end of `fnmatch`, the start of `string`), used
      for a whole tuning: a sample of two kinds of code, which preferred too small a rate (Adam on the
      character model chose $0.001$ where the held-out loss prefers $0.003$: $0.14$ nats worse on
      new seeds);
    * 24 stretches of 280 characters, each close to text the model trained on, used for part of a
      tuning: it preferred rates too large (AMSGrad on the character model chose $0.01$ where the
      held-out loss prefers $0.003$: $0.11$ worse on new seeds);
    * one stretch in the middle of each module, scoring the stored candidates of 14 optimizer-and-task
      pairs on the tuning seeds: 5 of the 14 choices more than $0.03$ worse;
    * six stretches of 1,130 characters, spread evenly, on the same 14: 11 within $0.01$ of the best
      candidate, the worst $0.032$ (GaLore on the character model). Scored on the training loss of the
      run's last fifth, the same 14 had 7 within $0.01$ and 5 more than $0.03$ worse.
    """
    part = length // VALIDATION_BLOCKS
    size = round(length * VALIDATION_FRACTION["text"] / VALIDATION_BLOCKS)
    return [(i * part + (part - size) // 2, i * part + (part - size) // 2 + size) for i in range(VALIDATION_BLOCKS)]


def _task_data(task: Task, validation: bool) -> tuple[Any, Callable[[torch.nn.Module], float] | None]:
    r"""
    The data a run of `task` trains on (its held-out part is always the test data) and, with
    `validation`, the function that measures a trained model's loss on the validation split, which
    the training data then leaves out; without it, all the training data and `None`.
    """
    if task.name in TEXT_MODELS:
        text = _char_data()
        if not validation:
            return text, None
        blocks = text_validation_blocks(len(text.train))
        held_back = torch.zeros(len(text.train), dtype=torch.bool)
        for start, end in blocks:
            held_back[start:end] = True

        # Each block is scored on its own (no window spans two), and weighted by its length.
        def validation_loss(model: torch.nn.Module) -> float:
            losses = [charlm.evaluate(model, text.train[start:end])[0] * (end - start) for start, end in blocks]
            return sum(losses) / sum(end - start for start, end in blocks)

        return charlm.CharData(text.train, text.heldout, held_back), validation_loss
    images = _digits_data()
    if not validation:
        return images, None
    cut = len(images.train_y) - round(len(images.train_y) * VALIDATION_FRACTION["digits"])
    x, y = images.train_x[cut:], images.train_y[cut:]
    return (digits.DigitsData(images.train_x[:cut], images.train_y[:cut], images.test_x, images.test_y),
            lambda model: digits.evaluate(model, x, y)[0])


# ## Loading the data once
#
# Every run of a task reads the same data, and the tuning search makes dozens of runs; the data is
# loaded on first use and kept for the life of the process.
_CACHE: dict[str, Any] = {}


def _digits_data() -> digits.DigitsData:
    r"""The digits, loaded once (float32, the default split)."""
    if "digits" not in _CACHE:
        _CACHE["digits"] = digits.load_digits()
    return _CACHE["digits"]


def _char_data() -> charlm.CharData:
    r"""The encoded text, loaded once."""
    if "chars" not in _CACHE:
        _CACHE["chars"] = charlm.load_chars()
    return _CACHE["chars"]
