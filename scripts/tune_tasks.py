"""Tune every registered optimizer on the small tasks, robustly, and evaluate it on new seeds.

The pipeline is annotated_opt/toys/experiments.py: a learning-rate sweep and a seeded optuna search on
two tuning seeds, the worst seed deciding, then three full runs on evaluation seeds. Writes the chosen
settings with their scores into annotated_opt/core/tuned_hparams.json and every run's numbers into
results/benchmark.json (what the benchmark page reads). Optimizers and tasks not searched this time
keep their entries, so adding an optimizer costs only its own runs:

    python scripts/tune_tasks.py                          # every optimizer of the registry, every task
    python scripts/tune_tasks.py --optimizer lion         # one optimizer (repeatable), merged in
    python scripts/tune_tasks.py --missing                # only what has no results yet (new optimizers)
    python scripts/tune_tasks.py --task digits-mlp        # one task (repeatable)
    python scripts/tune_tasks.py --missing --shard 0/2 &  python scripts/tune_tasks.py --missing --shard 1/2
                                                          # the same work shared by two processes
"""

import argparse
import fcntl
import json
import sys
import time
from pathlib import Path

import torch

# Import the package of this checkout, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotated_opt.core.registry import REGISTRY, get  # noqa: E402
from annotated_opt.core.tuned import load_tuned  # noqa: E402
from annotated_opt.toys import experiments  # noqa: E402
from annotated_opt.toys.tasks import TASKS  # noqa: E402
from annotated_opt.toys.tuning import write  # noqa: E402

RESULTS_PATH = experiments.RESULTS_PATH


def budget() -> dict[str, object]:
    """How the results were made, stored beside them."""
    return {
        "written_by": "scripts/tune_tasks.py", "rules": "annotated_opt/toys/experiments.py",
        "sweep_lrs": list(experiments.SWEEP_LRS), "refine_trials": experiments.REFINE_TRIALS,
        "tuning_seeds": list(experiments.TUNING_SEEDS), "evaluation_seeds": list(experiments.EVALUATION_SEEDS),
        "tie_tolerance": {name: task.tie_tolerance for name, task in TASKS.items()},
        "lengths": {name: task.length for name, task in TASKS.items()},
        "torch": torch.__version__.split("+")[0],
    }


def load(path: Path = RESULTS_PATH) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def merge_and_write(results: dict, path: Path = RESULTS_PATH) -> None:
    """Merge `results` into the file, under a lock (two runs over different optimizers may finish together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another run may have written both files since this one last read them.
        load_tuned.cache_clear()
        document = load(path)
        document["_budget"] = budget()
        for key, tasks in results.items():
            document.setdefault(key, {}).update(tasks)
        # One line per optimizer and task: a retune shows in a diff as the lines of what was rerun.
        blocks = [f"{json.dumps(key)}: {{\n" + ",\n".join(f" {json.dumps(name)}: {json.dumps(value)}"
                                                        for name, value in sorted(document[key].items())) + "\n}"
                  for key in sorted(document)]
        path.write_text("{\n" + ",\n".join(blocks) + "\n}\n")
        write({key: {name: experiments.tuned_entry(record) for name, record in tasks.items()}
               for key, tasks in results.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", action="append", default=[], help="only this optimizer (repeatable)")
    parser.add_argument("--missing", action="store_true",
                        help="only the optimizers and tasks that have no results yet (resumes an interrupted run)")
    parser.add_argument("--task", action="append", default=[], help=f"only this task (repeatable): {', '.join(TASKS)}")
    parser.add_argument("--shard", default="0/1", help="K/N: only every N-th (optimizer, task) pair from the K-th, "
                                                       "to share the work among N processes")
    args = parser.parse_args(argv)
    shard, shards = map(int, args.shard.split("/"))
    infos = [get(name) for name in args.optimizer] or list(REGISTRY.values())
    tasks = args.task or list(TASKS)
    done = load() if args.missing else {}
    start = time.perf_counter()

    def report(key: str, task: str, record: dict) -> None:
        chosen = record["chosen"]
        setting = (f"not run: {record['skipped']}" if record.get("skipped") else "every candidate diverged"
                   if chosen is None else experiments.describe_config(chosen["config"]))
        print(f"{key:>12} {task:>16}  {setting}  cpu {record['cpu_seconds']:.0f} s "
              f"(wall {time.perf_counter() - start:.0f} s)", flush=True)
        # Written after every optimizer and task, so an interrupted run keeps what it finished.
        merge_and_write({key: {task: record}})

    pairs = [(info, task) for info in infos for task in tasks if task not in done.get(info.key, {})]
    for info, task in pairs[shard::shards]:
        experiments.run_experiments([info], [task], report)
    print(f"{len(pairs[shard::shards])} optimizer-task pairs in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
