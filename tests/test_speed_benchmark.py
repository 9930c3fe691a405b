"""The speed benchmark's measurements, each made in a process of its own, on a tiny parameter set."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import benchmark  # noqa: E402


@pytest.mark.slow
def test_each_path_is_measured_in_its_own_process_and_the_two_are_compared(tmp_path: Path) -> None:
    args = argparse.Namespace(scale=0.002, repeats=2, device="cpu")
    readable = benchmark.in_own_process(args, "adam", "readable", save=tmp_path / "readable.pt")
    fast = benchmark.in_own_process(args, "adam", "fast", save=tmp_path / "fast.pt")
    for result in (readable, fast):
        assert not benchmark.failed(result), result
        assert result["median"] > 0 and result["reference"] > 0 and result["first"] > 0
        assert result["state"] > 0  # Adam's two moments
    assert readable["unchecked"] is None
    assert len(fast["unchecked"]) == 2
    # The same steps on the same gradients: float32 rounding apart, the same parameters.
    assert 0 <= benchmark.distance(readable, fast) < 1e-5
    twin = benchmark.in_own_process(args, "adam", "twin")
    assert twin["twin"] > 0


def test_a_measurement_that_fails_is_reported_as_an_error_in_its_row() -> None:
    args = argparse.Namespace(scale=0.002, repeats=1, device="no-such-device")
    result = benchmark.in_own_process(args, "sgd", "readable")
    assert benchmark.failed(result)
    assert result["error"].startswith("exit status")
