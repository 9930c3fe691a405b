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

from ..registry import REGISTRY, OptimizerInfo
from .objectives import OBJECTIVES
from .runner import SKIPPABLE, Trajectory, run_trajectory
from .tasks import TASKS, TaskResult, run_task

PROGRAM = "python -m annotated_opt.toys"


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line, `<program>: error: <message>`, with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def positive_integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def assignment(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`, the value read as a Python literal (`0.9`, `(0.9, 0.99)`, `True`)."""
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not a Python literal") from None


def build_parser() -> OneLineParser:
    optimizers = ", ".join(REGISTRY)
    objectives = ", ".join(OBJECTIVES)
    parser = OneLineParser(
        prog=PROGRAM,
        description="Run registered optimizers on toy objectives or small real tasks, and plot them.",
        epilog=f"optimizers: {optimizers}\nobjectives: {objectives}\ntasks: digits (--model mlp|cnn), charlm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--optimizer", default="all", metavar="NAMES",
                        help=f"comma-separated optimizers, or 'all' (default); one of: {optimizers}")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--objective", metavar="NAMES",
                        help=f"comma-separated toy objectives, or 'all'; one of: {objectives} (default: rosenbrock)")
    target.add_argument("--task", choices=("digits", "charlm"), help="a small real task instead of a toy")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="the digits model (default: mlp)")
    parser.add_argument("--lr", type=positive_number, help="learning rate (default: the tuned one)")
    parser.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                        help="another constructor argument, e.g. --set 'betas=(0.9, 0.99)' (repeatable)")
    parser.add_argument("--steps", type=positive_integer,
                        help="steps of a toy or of charlm, epochs of digits (default: the objective's or task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task's initialisation and batches")
    parser.add_argument("--out", type=Path, default=Path("toy-runs"), help="output folder (default: toy-runs)")
    parser.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default: png)")
    parser.add_argument("--no-plot", action="store_true", help="write the numbers only")
    return parser


def select(parser: OneLineParser, text: str, known: dict[str, Any], kind: str) -> list[str]:
    """The names in the comma-separated `text` (case-insensitive; `all` for every one)."""
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
    r"""A callback for the runners: moves labml's progress bar, and saves the loss every `every` steps."""
    from labml import monit, tracker

    def after_step(step: int, loss: float) -> None:
        if step % every == 0 or step == total:
            tracker.save(step, {"loss": loss})
        monit.progress(step)

    return after_step


def run_objectives(args: argparse.Namespace, infos: list[OptimizerInfo], names: list[str],
                   overrides: dict[str, Any]) -> dict[str, list[Trajectory]]:
    from labml import monit

    runs: dict[str, list[Trajectory]] = {}
    for name in names:
        objective = OBJECTIVES[name]
        steps = args.steps or objective.steps
        for info in infos:
            config = {**info.tuned(name).config, **overrides} if overrides else None
            with monit.section(f"{info.name} on {objective.title}", total_steps=steps):
                trajectory = run_trajectory(info, objective, config, steps,
                                            after_step=progress(info.key, steps, max(1, steps // 10)))
            runs.setdefault(name, []).append(trajectory)
            print(summary_of_trajectory(trajectory), flush=True)
    return runs


def summary_of_trajectory(trajectory: Trajectory) -> str:
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


def run_tasks(args: argparse.Namespace, infos: list[OptimizerInfo], task_name: str,
              overrides: dict[str, Any]) -> list[TaskResult]:
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
    text = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items()))
    return (text or "defaults") + ("" if source != "default" else " (untuned)")


def trajectory_record(trajectory: Trajectory) -> dict[str, Any]:
    return {"optimizer": trajectory.optimizer, "objective": trajectory.objective, "config": trajectory.config,
            "source": trajectory.source, "skipped": trajectory.skipped, "diverged": trajectory.diverged,
            "points": trajectory.points.tolist(), "values": trajectory.values.tolist()}


def task_record(result: TaskResult) -> dict[str, Any]:
    return {key: getattr(result, key) for key in (
        "task", "optimizer", "config", "source", "length", "skipped", "diverged", "final_loss", "heldout_loss",
        "accuracy", "steps_to_target", "seconds", "losses")}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every check first, so that bad input leaves nothing behind.
    keys = select(parser, args.optimizer, REGISTRY, "optimizer")
    infos = [REGISTRY[key] for key in keys]
    names = select(parser, args.objective or "rosenbrock", OBJECTIVES, "objective") if args.task is None else []
    overrides = dict(args.set)
    if args.lr is not None:
        overrides["lr"] = args.lr
    for info in infos:
        check_arguments(parser, info, overrides)

    quiet_labml()
    # The models are tiny: a second thread only adds synchronisation.
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = keys[0] if len(keys) == 1 else ("all" if len(keys) == len(REGISTRY) else "-".join(keys))
    written = []
    if args.task is None:
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
    figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None, dpi=120)
    return path


if __name__ == "__main__":
    sys.exit(main())
