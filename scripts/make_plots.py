"""Regenerate every plot of the site: runs `make()` of each module in `scripts/plots/`."""

import importlib
import pkgutil
import sys
import time
from pathlib import Path

# The plot modules, and the package of this checkout (whatever is installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import plots  # noqa: E402


def main(selected: list[str]) -> int:
    names = [m.name for m in pkgutil.iter_modules(plots.__path__) if m.name != "style"]
    for name in sorted(names):
        if selected and name not in selected:
            continue
        start = time.perf_counter()
        importlib.import_module(f"plots.{name}").make()
        print(f"plots.{name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
