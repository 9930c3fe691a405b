r"""
# Experiments that teach: robust tuning, seeds and spread

A comparison of optimizers says something only if each one got a fair chance and if the differences
it reports are larger than the noise. This module is the pipeline behind `scripts/tune_tasks.py` and
the [benchmark](../../benchmark.md) page. For every optimizer of the [registry](registry.md) and every
small [task](tasks.md) it

1. **sweeps** the learning rate over a fixed logarithmic grid, on the *tuning seeds*, with every
   other hyper-parameter at its default: the sensitivity curve of the benchmark page;
2. **refines** with a seeded [optuna](https://optuna.org) search over the learning rate (a decade
   either side of the sweep's best) and the one or two other hyper-parameters that matter for that
   optimizer (`search_space`);
3. **selects** the candidate with the robust rule below;
4. **evaluates** it at the task's full length on *evaluation seeds* the tuning never used, and keeps
   every seed's numbers and loss curve.

Every optimizer gets the same budget: `len(SWEEP_LRS) + REFINE_TRIALS` candidates, each run on every
tuning seed, then one full run per evaluation seed. Only training data is used to choose (each tuning
run holds back a validation split of it and is scored by its loss there). The test numbers are
measured once, after the choice, on other seeds.

## The selection rule

A candidate $c$ run on the tuning seeds $s = 1, \dots, n$ has the scores $S_s(c)$ of [tasks](tasks.md)
(`task_score`: the loss on the validation split, $+\infty$ if the run diverged).
Its robust score is the worst of them,
$$R(c) = \max_{s} S_s(c),$$
so a learning rate that diverges on *one* seed scores $+\infty$, and one that is good on one seed and
poor on the other is judged by the poor one. This is what keeps the choice off the edge of stability:
a rate at which one seed in two blows up would blow up on some evaluation seed too. Then, among the
candidates within a relative tolerance $\tau$ of the best,
$$\mathcal{C} = \{c : R(c) \le (1 + \tau)\, \min_{c'} R(c')\}, \qquad
  c^\star = \mathop{\mathrm{arg\,min}}_{c \in \mathcal{C}} \eta_c,$$
the one with the *smallest* learning rate wins: two candidates that the tuning seeds cannot tell
apart are a tie, and the smaller rate is the one further from divergence when the run is longer or
the seed another. $\tau$ is the task's `tie_tolerance`. On the digits it is $2\%$: their validation
split is 270 images, the two tuning seeds of a candidate near the best differ by a median of 10% on
the MLP and 25% on the CNN, and a tolerance of that size, replayed on the stored candidates, changed
31 choices, nearly all to smaller rates with lower accuracy. On the text it is $0$, the best score
wins: the validation sample is about 6,800 characters, and $2\%$ of a loss near $2.3$ nats is
$0.046$, more than the differences in held-out loss that matter there. Replayed on the stored
candidates of the 67 optimizer-and-task pairs of the text, the choice with $\tau = 0$ has a held-out
loss (median of the tuning seeds) within $0.01$ of the best candidate's in 58 pairs and more than
$0.03$ worse in 3; with $\tau = 1\%$, 47 and 5; with $\tau = 2\%$, 35 and 14.

## What it does not do

It tunes on a validation split, so the tuning runs train on four fifths of the training images (eight
ninths of the training text) where the full runs train on all of it. Its runs are as long as the evaluation's,
but the ranking it finds holds for these lengths only: the learning rate best for a short run can
differ from the best for a long one ([Wu et al., 2018](https://arxiv.org/abs/1803.02021)), and a
longer training run would need its own search. The evaluation on new seeds is what shows how well the
choice carries over; the benchmark page reports it, it does not hide it.
"""

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .tasks import TASKS, Task, TaskResult, moving_mean, run_task, task_score
from .tuning import log_grid

# ## The budget
#
# The sweep: two points per decade from $3.16 \times 10^{-4}$ to $3.16$ (9 learning rates). The refinement:
# 4 more candidates. Each candidate runs on the 2 tuning seeds; the choice runs on 3 evaluation seeds.
SWEEP_LRS = log_grid(-7, 1, 2)
REFINE_TRIALS = 4
TUNING_SEEDS = (0, 1)
EVALUATION_SEEDS = (100, 101, 102)
# The stored loss curves keep at most this many points (the moving mean, evenly subsampled).
CURVE_POINTS = 100
# Where `scripts/tune_tasks.py` writes every run's numbers, in the repository (not in the package).
RESULTS_PATH = Path(__file__).resolve().parents[2] / "results" / "benchmark.json"


@dataclass(frozen=True)
class Knob:
    r"""
    One hyper-parameter the refinement searches besides the learning rate, between `low` and `high`
    (on a log scale if `log`). `name` is a constructor argument, or `beta1` or `beta2`, one of
    `betas` (the others keep their defaults).
    """

    name: str
    low: float
    high: float
    log: bool = False


MOMENTUM = Knob("momentum", 0.0, 0.95)
BETA1 = Knob("beta1", 0.8, 0.95)
# The knobs that stand for one of `betas`, and its position there.
BETAS = {"beta1": 0, "beta2": 1}
# ## What is searched besides the learning rate
#
# The hyper-parameter whose good value most depends on the problem, for each optimizer: momentum or
# $\beta_1$ (how long the gradient is remembered), LARS's trust coefficient (the scale of every layer's
# step relative to its weights), Nero's $\beta$ (the memory of its per-neuron second moment),
# NeroPlus's weight norm, SAM's radius $\rho$ and Lookahead's interpolation $\alpha$. For
# [Lion](../lion.md) it is $\beta_2$, the decay of its one moment, which its authors advise lowering
# from $0.99$ to $0.98$ or $0.95$ where training is unstable (with $\beta_1$ raised to $0.95$); its
# $\beta_1$ only mixes the current gradient into the sign. Adagrad has none worth searching. An
# optimizer missing from this table gets `beta1` if it takes `betas`, `momentum` if it takes
# `momentum`, and the learning rate alone otherwise.
SEARCH_SPACES: dict[str, tuple[Knob, ...]] = {
    "sgd": (MOMENTUM,),
    "adagrad": (),
    "rmsprop": (Knob("momentum", 0.0, 0.9),),
    "lars": (Knob("trust_coefficient", 1e-3, 0.1, log=True),),
    "lion": (Knob("beta2", 0.95, 0.999),),
    "nero": (Knob("beta", 0.9, 0.999),),
    "neroplus": (Knob("max_norm", 0.5, 4.0, log=True),),
    "sam": (Knob("rho", 0.01, 0.5, log=True),),
    "lookahead": (Knob("alpha", 0.3, 0.9),),
}


def search_space(info: Any) -> tuple[Knob, ...]:
    r"""The knobs searched for the registry entry `info`, by the table above and its fallback."""
    if info.key in SEARCH_SPACES:
        return SEARCH_SPACES[info.key]
    defaults = info.defaults
    return (BETA1,) if "betas" in defaults else (MOMENTUM,) if "momentum" in defaults else ()


def make_config(info: Any, lr: float, values: Mapping[str, float]) -> dict[str, Any]:
    r"""
    Constructor arguments from a learning rate and knob values (`beta1` and `beta2` replace the first
    and the second of `betas`, of which [Adan](../adan.md) and [AdEMAMix](../ademamix.md) have three).
    """
    config: dict[str, Any] = {"lr": lr}
    for name, value in values.items():
        if name in BETAS:
            betas = list(config.get("betas", info.defaults["betas"]))
            betas[BETAS[name]] = value
            config["betas"] = tuple(betas)
        else:
            config[name] = value
    return config


def robust_score(scores: Sequence[float]) -> float:
    r"""$R(c) = \max_s S_s(c)$: the worst seed; $+\infty$ if any seed diverged (or none ran)."""
    return max(scores, default=math.inf)


def select(candidates: Sequence[Mapping[str, Any]], tolerance: float) -> Mapping[str, Any] | None:
    r"""
    The rule above: among the candidates (each with `"config"` and `"scores"`, one per tuning seed)
    whose robust score is within `tolerance` of the best, the one with the smallest learning rate,
    the earlier on a tie. `None` when every candidate diverged.
    """
    best = min((robust_score(c["scores"]) for c in candidates), default=math.inf)
    if not math.isfinite(best):
        return None
    close = [c for c in candidates if robust_score(c["scores"]) <= best * (1 + tolerance)]
    return min(close, key=lambda c: c["config"]["lr"])


def rounded(value: float, digits: int = 4) -> float:
    r"""`value` to `digits` significant digits, so the stored value is exactly the one that ran."""
    return float(f"{value:.{digits}g}")


# ## Running a candidate
def tuning_run(info: Any, task: Task, config: dict[str, Any], seed: int) -> dict[str, Any]:
    r"""One tuning run: its score (`task_score`), and the test numbers the tables show (never used to choose)."""
    try:
        result = run_task(info, task, config, seed=seed, validation=True)
    except TypeError:
        # An argument this optimizer does not take: the candidate cannot run.
        return {"score": math.inf, "diverged": False, "heldout_loss": math.inf, "accuracy": 0.0}
    return {"score": task_score(task, result), "diverged": result.diverged,
            "heldout_loss": result.heldout_loss, "accuracy": result.accuracy}


def candidate(info: Any, task: Task, config: dict[str, Any], stage: str) -> dict[str, Any]:
    r"""A candidate run on every tuning seed, as stored: its configuration, each seed's score and numbers."""
    runs = [tuning_run(info, task, config, seed) for seed in TUNING_SEEDS]
    return {"stage": stage, "config": config, "scores": [run["score"] for run in runs],
            "heldout_loss": [run["heldout_loss"] for run in runs], "accuracy": [run["accuracy"] for run in runs],
            "diverged": sum(run["diverged"] for run in runs)}


def refine(info: Any, task: Task, center_lr: float, trials: int = REFINE_TRIALS) -> list[dict[str, Any]]:
    r"""
    The seeded optuna search (TPE, seed 0): $\log_{10}\eta$ within one decade of `center_lr`, and the
    optimizer's knobs in their ranges; each trial's value is the candidate's robust score.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    knobs = search_space(info)
    found: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        lr = rounded(10 ** trial.suggest_float("log10_lr", math.log10(center_lr) - 1, math.log10(center_lr) + 1))
        values = {k.name: rounded(trial.suggest_float(k.name, k.low, k.high, log=k.log), 3) for k in knobs}
        found.append(candidate(info, task, make_config(info, lr, values), "refine"))
        score = robust_score(found[-1]["scores"])
        # optuna needs a finite value; a diverged candidate is worse than any that ran.
        return score if math.isfinite(score) else 1e9

    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    optuna.create_study(direction="minimize", sampler=sampler).optimize(objective, n_trials=trials)
    return found


def curve(losses: list[float], window: int) -> list[float]:
    r"""The moving mean of the losses, subsampled to at most `CURVE_POINTS` points, the last one kept."""
    smooth = moving_mean(losses, window).tolist() if losses else []
    stride = max(1, math.ceil(len(smooth) / CURVE_POINTS))
    kept = smooth[stride - 1::stride]
    if smooth and (not kept or kept[-1] != smooth[-1]):
        kept.append(smooth[-1])
    return [rounded(value) for value in kept]


def evaluation_record(task: Task, result: TaskResult) -> dict[str, Any]:
    r"""One evaluation run, as stored: the summary numbers, the seconds per step and the loss curve."""
    steps = len(result.losses)
    return {"final_loss": result.final_loss, "heldout_loss": result.heldout_loss, "accuracy": result.accuracy,
            "steps_to_target": result.steps_to_target, "diverged": result.diverged, "steps": steps,
            "seconds_per_step": result.seconds / steps if steps else 0.0, "curve": curve(result.losses, task.window)}


def experiment(info: Any, task_name: str) -> dict[str, Any]:
    r"""
    ### The whole pipeline for one optimizer on one task

    Sweep, refine, select, evaluate. Returns everything the benchmark page needs, with the CPU time
    it took; `"chosen"` is `None` (and there is no evaluation) when every candidate diverged.
    """
    task = TASKS[task_name]
    start = time.process_time()
    # An optimizer that cannot train this model at all (SparseAdam on dense gradients, Muon on a model
    # with biases) is recorded as such, with the reason, not as a run of candidates that all failed.
    refused = run_task(info, task, {"lr": SWEEP_LRS[0]}, length=1, seed=TUNING_SEEDS[0]).skipped
    if refused is not None:
        return {"length": task.length, "candidates": [], "chosen": None, "evaluation": [],
                "skipped": refused, "cpu_seconds": round(time.process_time() - start, 1)}
    sweep = [candidate(info, task, {"lr": lr}, "sweep") for lr in SWEEP_LRS]
    best_of_sweep = select(sweep, tolerance=0.0)
    refined = refine(info, task, best_of_sweep["config"]["lr"]) if best_of_sweep is not None else []
    chosen = select(sweep + refined, task.tie_tolerance)
    evaluation = [] if chosen is None else [
        evaluation_record(task, run_task(info, task, chosen["config"], seed=seed)) for seed in EVALUATION_SEEDS]
    return {"length": task.length, "candidates": sweep + refined, "chosen": chosen,
            "evaluation": evaluation, "cpu_seconds": round(time.process_time() - start, 1)}


def tuned_entry(record: Mapping[str, Any]) -> dict[str, Any] | None:
    r"""The entry for `tuned_hparams.json`: the chosen configuration and its robust score."""
    chosen = record["chosen"]
    if chosen is None:
        return None
    return {"config": dict(chosen["config"]), "score": round(robust_score(chosen["scores"]), 6)}


def run_experiments(infos: Iterable[Any], task_names: Iterable[str],
                    report: Callable[[str, str, Mapping[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    r"""`{optimizer key: {task: experiment}}` for every optimizer and task, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results: dict[str, dict[str, Any]] = {}
    try:
        for info in infos:
            for name in task_names:
                results.setdefault(info.key, {})[name] = record = experiment(info, name)
                if report is not None:
                    report(info.key, name, record)
    finally:
        torch.set_num_threads(threads)
    return results


# ## Reading the results: the numbers of the tables and their notes
def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    r"""The mean and the sample standard deviation ($0$ for one value) of the finite `values`."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.inf, 0.0
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def heldout_metric(task_name: str) -> tuple[str, bool]:
    r"""The held-out number a task is judged by (digits: accuracy, text: loss) and whether higher is better."""
    return ("accuracy", True) if task_name.startswith("digits") else ("heldout_loss", False)


def sweep_best(record: Mapping[str, Any], task_name: str) -> float:
    r"""
    The best median held-out number over the learning-rate sweep (the median over the tuning seeds
    of each grid point): what the optimizer's own sweep reaches, the yardstick of the acceptance test.
    """
    key, higher = heldout_metric(task_name)
    medians = [median(c[key]) for c in record["candidates"] if c["stage"] == "sweep" and not c["diverged"]]
    return (max if higher else min)(medians, default=math.nan)


def forgiving_range(record: Mapping[str, Any], tolerance: float = 1.0) -> float:
    r"""
    How forgiving the optimizer is: the ratio of the largest to the smallest grid learning rate
    whose robust score is at most $1 +$ `tolerance` times the sweep's best (twice the best loss by
    default). $1$ means a single grid point.
    """
    sweep = [c for c in record["candidates"] if c["stage"] == "sweep"]
    best = min((robust_score(c["scores"]) for c in sweep), default=math.inf)
    good = [c["config"]["lr"] for c in sweep if robust_score(c["scores"]) <= best * (1 + tolerance)]
    return max(good) / min(good) if good else 0.0


def notes(task_name: str, records: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    r"""
    ### The note column, from the data

    For each optimizer (`records` maps keys to their experiment on this task):

    * **diverged on k of n seeds** when an evaluation run diverged;
    * **unstable** when on some seed the loss ended more than 50% above the lowest value its moving
      mean reached (the run got somewhere and came back);
    * **plateau** when no seed reached the task's target loss;
    * **within noise of the best** when the difference of its mean held-out number from the best
      optimizer's is smaller than the sum of their standard deviations;
    * **forgiving** (a tuning score at most twice the best over a factor of at least 10 in learning
      rate) or **narrow** (one grid point), from the sweep.
    """
    key, higher = heldout_metric(task_name)
    summary = {name: mean_and_spread([e[key] for e in r["evaluation"] if not e["diverged"]])
               for name, r in records.items() if r["evaluation"]}
    if summary:
        best_name = (max if higher else min)(summary, key=lambda name: summary[name][0])
        best_mean, best_spread = summary[best_name]
    found: dict[str, str] = {}
    for name, record in records.items():
        parts = []
        evaluation = record["evaluation"]
        if record.get("skipped"):
            parts.append(f"not run: {record['skipped']}")
        elif not evaluation:
            parts.append("every candidate diverged")
        diverged = sum(e["diverged"] for e in evaluation)
        if diverged:
            parts.append(f"diverged on {diverged} of {len(evaluation)} seeds")
        if any(not e["diverged"] and e["curve"] and e["curve"][-1] > 1.5 * min(e["curve"]) for e in evaluation):
            parts.append("unstable: the loss went back up")
        if evaluation and all(e["steps_to_target"] is None for e in evaluation):
            parts.append(f"plateau: target {TASKS[task_name].target_loss} not reached")
        if name in summary and name != best_name:
            mean, spread = summary[name]
            if abs(mean - best_mean) <= spread + best_spread:
                parts.append("within noise of the best")
        elif name in summary:
            parts.append("best")
        width = forgiving_range(record)
        if width >= 10:
            parts.append(f"forgiving: lr good over x{width:.0f}")
        elif width == 1:
            parts.append("narrow: one good grid lr")
        found[name] = "; ".join(parts)
    return found


def describe_config(config: Mapping[str, Any]) -> str:
    r"""A configuration as `betas=(0.85, 0.999), lr=0.01`, sorted by name."""
    def text(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "(" + ", ".join(text(v) for v in value) + ")"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{name}={text(value)}" for name, value in sorted(config.items()))
