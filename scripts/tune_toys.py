"""Search the learning rate of every registered optimizer on every toy objective.

Writes annotated_opt/core/tuned_hparams.json (the rules are in annotated_opt/core/tuned.py). Deterministic:
the same machine writes the same file. The small tasks are tuned by scripts/tune_tasks.py. Examples:

    python scripts/tune_toys.py                      # every optimizer (a minute or two on one core)
    python scripts/tune_toys.py --optimizer radam    # one optimizer, merged into the existing file
"""

import argparse
import sys
import time
from pathlib import Path

import torch

# Import the package of this checkout, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotated_opt.core.registry import REGISTRY, get  # noqa: E402
from annotated_opt.toys.objectives import OBJECTIVES  # noqa: E402
from annotated_opt.toys.tuning import tune, write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", action="append", default=[],
                        help="search only this optimizer (repeatable); the file keeps the others' entries")
    parser.add_argument("--target", action="append", default=[],
                        help=f"search only this objective (repeatable): {', '.join(OBJECTIVES)}")
    args = parser.parse_args(argv)

    # One thread: the numbers must not depend on how many cores the machine has or how busy it is.
    torch.set_num_threads(1)
    infos = [get(name) for name in args.optimizer] or list(REGISTRY.values())
    targets = args.target or list(OBJECTIVES)
    start = time.perf_counter()

    def report(key: str, target: str, lr: float | None, score: float) -> None:
        best = "no candidate ran" if lr is None else f"lr={lr:<8g} score={score:.4f}"
        print(f"{key:>12} {target:>11}  {best}  ({time.perf_counter() - start:.0f} s)", flush=True)

    results = tune(infos, targets, report)
    # Merged, never replaced: the file also holds the tasks' entries, which this script does not search.
    write(results)
    print(f"searched {len(infos)} optimizers x {len(targets)} targets in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
