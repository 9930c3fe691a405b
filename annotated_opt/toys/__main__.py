r"""
# The command line

```bash
python -m annotated_opt.toys --optimizer adabelief --objective rosenbrock
python -m annotated_opt.toys --optimizer adam,sgd --objective all --lr 0.05
python -m annotated_opt.toys --optimizer all --task digits --model cnn
python -m annotated_opt.toys --optimizer lamb --task charlm --steps 300
```

Runs each chosen optimizer at its tuned hyper-parameters (or at `--lr` and `--set NAME=VALUE`),
shows progress with labml's `monit`, reports the loss with labml's `tracker`, prints a summary line
per run, and writes into `--out` one figure per objective or task and a JSON file with every number
the figure shows.

labml is used only for its terminal output: no experiment is created, so it writes no run folders,
no `~/.labml` configuration and never contacts a server. Bad input (an unknown optimizer or
objective, a learning rate that is not a positive number, a hyper-parameter the optimizer rejects)
gets one line on standard error and exit status 2, like any `argparse` error.

## What to try

The command line is for the experiments the site's fixed figures do not show:

* **How sensitive is an optimizer to its learning rate?** Run it at the tuned value, then at three
  times and a third of it (`--lr`), on the same objective: a robust method draws three similar paths.
* **What does one hyper-parameter do?** `--set 'betas=(0.9, 0.99)'` against the default, on the
  saddle (how fast it escapes) or on Rosenbrock (how it follows the valley).
* **Does the toy ranking survive a real task?** `--task digits --optimizer all`, then `--task charlm`
  and `--task chartransformer`. A run that diverges (even one whose optimizer raises on a non-finite
  gradient) is reported as diverged and the others go on.
* **Is a difference real?** Run a task with a few `--seed` values; a gap smaller than the spread
  between seeds is noise.

With `--lr` or `--set`, the given values are merged over the tuned configuration of each optimizer,
so `--set` alone keeps the tuned learning rate. The numbers in the JSON file are the same ones the
figure draws, so a figure can be redrawn, or a table made, without running anything again.

## Output

Each run prints one line: for a toy, where the path ended, its gap $f - f^\star$ and its distance to
the nearest minimum; for a task, the final and held-out loss, the accuracy, the steps to the target
loss and the wall time (what each number means is explained in [tasks](tasks.md)). The files are
named after the objective or task and the optimizers: `rosenbrock-adam.json`,
`digits-cnn-all.png`, `quadratic-adam-sgd.svg`.
"""

import argparse
import ast
import contextlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

import torch

from ..core.registry import REGISTRY, OptimizerInfo
from .objectives import OBJECTIVES
from .runner import SKIPPABLE, Trajectory, run_trajectory
from .tasks import TASKS, TaskResult, run_task

PROGRAM = "python -m annotated_opt.toys"


# ## Reading the arguments
#
# Every argument is checked as it is read, by `argparse` and the small converters below, so that a
# mistake is reported before anything runs and before any file is written.
class OneLineParser(argparse.ArgumentParser):
    r"""
    An `ArgumentParser` whose errors are one line, `<program>: error: <message>`, with status 2.

    `argparse` prints the whole usage block before an error; with every optimizer and objective in
    the usage, that block would push the one useful line off the screen.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_number(text: str) -> float:
    r"""
    A learning rate: a finite number $> 0$. `argparse` reports the message of an
    `ArgumentTypeError` as the error, so `--lr -1` and `--lr nan` get a sentence, not a traceback.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def positive_integer(text: str) -> int:
    r"""A number of steps or epochs: a whole number $> 0$."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def assignment(text: str) -> tuple[str, Any]:
    r"""
    `NAME=VALUE`, the value read as a Python literal (`0.9`, `(0.9, 0.99)`, `True`).

    `ast.literal_eval` reads numbers, strings, tuples, lists, dictionaries, booleans and `None`, and
    nothing else: the value is data, never code that runs. A string needs its own quotes inside the
    shell's, `--set "base='Adam'"`.
    """
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not a Python literal") from None


def build_parser() -> OneLineParser:
    r"""
    The arguments. `--objective` and `--task` exclude each other: a run is either on toys or on a
    task. The help's epilog lists every optimizer and objective, read from the registry and the
    objectives table, so it is never out of date.
    """
    optimizers = ", ".join(REGISTRY)
    objectives = ", ".join(OBJECTIVES)
    parser = OneLineParser(
        prog=PROGRAM,
        description="Run registered optimizers on toy objectives or small real tasks, and plot them.",
        epilog=f"optimizers: {optimizers}\nobjectives: {objectives}\n"
               "tasks: digits (--model mlp|cnn), charlm, chartransformer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--optimizer", default="all", metavar="NAMES",
                        help=f"comma-separated optimizers, or 'all' (default); one of: {optimizers}")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--objective", metavar="NAMES",
                        help=f"comma-separated toy objectives, or 'all'; one of: {objectives} (default: rosenbrock)")
    target.add_argument("--task", choices=("digits", "charlm", "chartransformer"),
                        help="a small real task instead of a toy")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="the digits model (default: mlp)")
    # The settings of a run: every one optional, the tuned configuration filling in the rest.
    parser.add_argument("--lr", type=positive_number, help="learning rate (default: the tuned one)")
    parser.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                        help="another constructor argument, e.g. --set 'betas=(0.9, 0.99)' (repeatable)")
    parser.add_argument("--steps", type=positive_integer,
                        help="steps of a toy or of the character models, epochs of digits "
                             "(default: the objective's or task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task's initialisation and batches")
    # Where the results go, and in what form.
    parser.add_argument("--out", type=Path, default=Path("toy-runs"), help="output folder (default: toy-runs)")
    parser.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default: png)")
    parser.add_argument("--no-plot", action="store_true", help="write the numbers only")
    return parser


def select(parser: OneLineParser, text: str, known: dict[str, Any], kind: str) -> list[str]:
    r"""
    The names in the comma-separated `text` (case-insensitive; `all` for every one).

    Every unknown name is reported at once, with the list of known ones; a name given twice runs
    once, in the order first given.
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(known)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"unknown {kind} {', '.join(map(repr, unknown)) or repr(text)}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def check_arguments(parser: OneLineParser, info: OptimizerInfo, overrides: dict[str, Any]) -> None:
    r"""
    Refuse hyper-parameters the optimizer rejects, before anything runs. It is built once on a small
    matrix with the overrides and once without: only when the plain build works and the other does not
    is the user's input at fault (an optimizer that refuses the matrix itself is reported per run).

    A `TypeError` counts as a rejection too: it is what Python raises for a keyword argument the
    constructor does not have, such as a misspelt `--set beta1=0.9`.
    """
    if not overrides:
        return

    def attempt(config: dict[str, Any]) -> Exception | None:
        try:
            info.build([torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)], **config)
        except (*SKIPPABLE, TypeError) as error:
            return error
        return None

    error = attempt(overrides)
    if error is not None and attempt({}) is None:
        parser.error(f"{info.key} rejects {overrides}: {type(error).__name__}: {error}")


# ## Progress with labml
#
# labml is imported inside the functions that use it, so importing this module (as the tests do)
# does not import labml, and `--help` stays fast.
def quiet_labml() -> None:
    r"""
    Initialise labml's settings silently. Without a `.labml.yaml` it prints a warning the first time
    it looks for one; the settings it falls back to (no server, nothing written until an experiment
    is created, and none is) are the ones wanted here.
    """
    from labml import lab

    with contextlib.redirect_stdout(io.StringIO()):
        lab.get_path()


def progress(name: str, total: int, every: int) -> Any:
    r"""
    A callback for the runners: moves labml's progress bar, and saves the loss every `every` steps.

    `tracker.save` prints the loss on the progress line; saving every step of a toy would print
    hundreds of values a second, so the toys save ten times per run and the tasks every ten steps.
    The last step is always saved, so the final value is on screen.
    """
    from labml import monit, tracker

    def after_step(step: int, loss: float) -> None:
        if step % every == 0 or step == total:
            tracker.save(step, {"loss": loss})
        monit.progress(step)

    return after_step


# ## Running the toys


def run_objectives(args: argparse.Namespace, infos: list[OptimizerInfo], names: list[str],
                   overrides: dict[str, Any]) -> dict[str, list[Trajectory]]:
    r"""
    Every chosen optimizer on every chosen objective: `{objective: [trajectory per optimizer]}`.

    Without overrides the runner looks up the tuned configuration itself (and the trajectory records
    where it came from); with them, the overrides are merged over the tuned configuration here.
    """
    from labml import monit

    runs: dict[str, list[Trajectory]] = {}
    for name in names:
        objective = OBJECTIVES[name]
        steps = args.steps or objective.steps
        for info in infos:
            # $\text{config} = \text{tuned} \cup \text{overrides}$, the overrides winning.
            config = {**info.tuned(name).config, **overrides} if overrides else None
            with monit.section(f"{info.name} on {objective.title}", total_steps=steps):
                trajectory = run_trajectory(info, objective, config, steps,
                                            after_step=progress(info.key, steps, max(1, steps // 10)))
            runs.setdefault(name, []).append(trajectory)
            print(summary_of_trajectory(trajectory), flush=True)
    return runs


def summary_of_trajectory(trajectory: Trajectory) -> str:
    r"""
    One line per toy run: the setting, how many steps were taken, where the path ended, its gap
    $f_T - f^\star$ and its distance to the nearest minimum, and `(diverged)` if it was cut short.
    """
    head = f"{trajectory.optimizer:>10} on {trajectory.objective:<10}"
    if trajectory.skipped is not None:
        return f"{head} skipped: {trajectory.skipped}"
    objective = OBJECTIVES[trajectory.objective]
    x, y = trajectory.points[-1].tolist()
    distance = float(objective.distance_to_minimum(trajectory.points[-1:])[0])
    state = " (diverged)" if trajectory.diverged else ""
    return (f"{head} {describe(trajectory.config, trajectory.source)}: after {len(trajectory.points) - 1} steps "
            f"at ({x:.4g}, {y:.4g}), f - f* = {float(trajectory.values[-1]) - objective.minimum_value:.3g}, "
            f"distance to minimum {distance:.3g}{state}")


# ## Running a task


def run_tasks(args: argparse.Namespace, infos: list[OptimizerInfo], task_name: str,
              overrides: dict[str, Any]) -> list[TaskResult]:
    r"""
    Every chosen optimizer on one task. `--steps` is the run's length in the task's unit (epochs of
    the digits, steps of the character model); the progress bar counts optimizer steps either way.
    """
    from labml import monit

    task = TASKS[task_name]
    length = args.steps or task.length
    total = task.steps(length)
    results = []
    for info in infos:
        config = {**info.tuned(task_name).config, **overrides} if overrides else None
        with monit.section(f"{info.name} on {task.title}", total_steps=total):
            result = run_task(info, task, config, length, after_step=progress(info.key, total, 10), seed=args.seed)
        results.append(result)
        print(summary_of_task(result), flush=True)
    return results


def summary_of_task(result: TaskResult) -> str:
    r"""
    One line per task run: final and held-out loss, accuracy, steps to the target (`-` if never
    reached) and seconds; or why there are none (skipped, diverged).
    """
    head = f"{result.optimizer:>10} on {result.task:<10}"
    if result.skipped is not None:
        return f"{head} skipped: {result.skipped}"
    if result.diverged:
        return f"{head} {describe(result.config, result.source)}: diverged after {len(result.losses)} steps"
    target = "-" if result.steps_to_target is None else str(result.steps_to_target)
    return (f"{head} {describe(result.config, result.source)}: final loss {result.final_loss:.4f}, "
            f"held-out loss {result.heldout_loss:.4f}, accuracy {result.accuracy:.4f}, "
            f"steps to {TASKS[result.task].target_loss} {target}, {result.seconds:.2f} s")


def describe(config: dict[str, Any], source: str) -> str:
    r"""
    The configuration as `lr=0.01, momentum=0.9`, sorted by name; `(untuned)` when nothing chose it
    for this target.
    """
    text = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items()))
    return (text or "defaults") + ("" if source != "default" else " (untuned)")


# ## The JSON records
#
# Plain lists and numbers, one record per run, with everything a figure draws: a trajectory's points
# and values, a task's per-step losses and summary numbers. `json.dumps` writes `inf` for an infinite
# loss as `Infinity`, which Python's `json` reads back.
def trajectory_record(trajectory: Trajectory) -> dict[str, Any]:
    r"""A trajectory as plain data: its setting, its outcome, and every point and value."""
    return {"optimizer": trajectory.optimizer, "objective": trajectory.objective, "config": trajectory.config,
            "source": trajectory.source, "skipped": trajectory.skipped, "diverged": trajectory.diverged,
            "points": trajectory.points.tolist(), "values": trajectory.values.tolist()}


def task_record(result: TaskResult) -> dict[str, Any]:
    r"""A task run as plain data: every field of `TaskResult`, the per-step losses included."""
    return {key: getattr(result, key) for key in (
        "task", "optimizer", "config", "source", "length", "skipped", "diverged", "final_loss", "heldout_loss",
        "accuracy", "steps_to_target", "seconds", "losses")}


def main(argv: list[str] | None = None) -> int:
    r"""
    ## The program

    Read and check everything, then run, then write. `argv` defaults to the process's arguments;
    the tests call `main([...])` directly. Returns the exit status ($0$); bad input exits with $2$
    from inside the parser.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every check first, so that bad input leaves nothing behind.
    keys = select(parser, args.optimizer, REGISTRY, "optimizer")
    infos = [REGISTRY[key] for key in keys]
    names = select(parser, args.objective or "rosenbrock", OBJECTIVES, "objective") if args.task is None else []
    # `--lr` is a shorthand for `--set lr=...`, and wins over it.
    overrides = dict(args.set)
    if args.lr is not None:
        overrides["lr"] = args.lr
    for info in infos:
        check_arguments(parser, info, overrides)

    quiet_labml()
    # The models are tiny: a second thread only adds synchronisation.
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    # The file names' stem: the one optimizer, `all`, or the chosen keys joined by `-`.
    stem = keys[0] if len(keys) == 1 else ("all" if len(keys) == len(REGISTRY) else "-".join(keys))
    written = []
    if args.task is None:
        # Toys: one JSON file and one overlay figure per objective.
        runs = run_objectives(args, infos, names, overrides)
        for name, trajectories in runs.items():
            path = args.out / f"{name}-{stem}.json"
            path.write_text(json.dumps([trajectory_record(t) for t in trajectories]) + "\n")
            written.append(path)
            if not args.no_plot:
                from .drawing import overlay_figure

                figure = overlay_figure(OBJECTIVES[name], trajectories)
                written.append(save(figure, args.out / f"{name}-{stem}.{args.format}"))
    else:
        # A task: one JSON file and one figure of loss curves.
        task_name = f"digits-{args.model}" if args.task == "digits" else args.task
        results = run_tasks(args, infos, task_name, overrides)
        path = args.out / f"{task_name}-{stem}.json"
        path.write_text(json.dumps([task_record(r) for r in results]) + "\n")
        written.append(path)
        if not args.no_plot:
            from .drawing import losses_figure

            figure = losses_figure(task_name, results)
            written.append(save(figure, args.out / f"{task_name}-{stem}.{args.format}"))
    for path in written:
        print(f"wrote {path}")
    return 0


def save(figure: Any, path: Path) -> Path:
    r"""
    Save `figure` in the format of `path`'s suffix. An SVG is written without its date, so running
    the same command twice writes the same file.
    """
    figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None, dpi=120)
    return path


if __name__ == "__main__":
    sys.exit(main())
