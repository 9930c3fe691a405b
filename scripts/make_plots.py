"""Regenerate every plot of the site: runs `make()` of each module in `scripts/plots/`."""

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

# The plot modules, and the package of this checkout (whatever is installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import plots  # noqa: E402


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the site's figures and generated tables.")
    parser.add_argument("modules", nargs="*", help="the modules of scripts/plots/ to run (default: all)")
    parser.add_argument(
        "--task-length-scale", type=float, default=1.0, metavar="FRACTION",
        help="train the results page's tasks for this fraction of their length; the page says how long "
             "they ran (the site's tests use 0.1: they check the pages, not the numbers)")
    options = parser.parse_args(arguments)
    if not 0 < options.task_length_scale <= 1:
        parser.error(f"--task-length-scale must be in (0, 1], not {options.task_length_scale}")
    names = [m.name for m in pkgutil.iter_modules(plots.__path__) if m.name != "style"]
    for name in sorted(names):
        if options.modules and name not in options.modules:
            continue
        start = time.perf_counter()
        module = importlib.import_module(f"plots.{name}")
        if name == "results":
            module.make(options.task_length_scale)
        else:
            module.make()
        print(f"plots.{name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
