"""Verify every registered optimizer against its reference and print one line each."""

import sys
import time
from pathlib import Path

# The repository root: some references are plain implementations kept in `tests/references`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotated_opt.core.registry import REGISTRY  # noqa: E402
from annotated_opt.core.verification import verify  # noqa: E402


def main() -> int:
    failures = 0
    for info in REGISTRY.values():
        if info.reference is None:
            print(f"{info.name:>10}  no implementation the shared harness can run; checked by its own tests")
            continue
        start = time.perf_counter()
        summary = verify(info)
        failures += not summary.passed
        print(f"{info.name:>10}  {summary.sentence()}  ({time.perf_counter() - start:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
