"""The annealing primitives and the digits task that experiments share."""

import math

import pytest
import torch

from annotated_opt import SGD, annealing
from annotated_opt.toys.digits import load_digits, mlp, train


@pytest.mark.parametrize("shape", [annealing.linear, annealing.cosine, annealing.exponential])
def test_annealing_is_exact_at_both_ends(shape) -> None:
    assert shape(0.5, 0.01, 0.0) == pytest.approx(0.5, rel=1e-15)
    assert shape(0.5, 0.01, 1.0) == pytest.approx(0.01, rel=1e-15)


def test_annealing_midpoints_by_hand() -> None:
    assert annealing.linear(1.0, 3.0, 0.25) == 1.5
    # cos(pi/2) = 0: the cosine is halfway at the midpoint.
    assert annealing.cosine(1.0, 3.0, 0.5) == pytest.approx(2.0, abs=1e-15)
    # cos(pi/3) = 1/2: 3 + 0.5 * (1 - 3) * 1.5 = 1.5
    assert annealing.cosine(1.0, 3.0, 1 / 3) == pytest.approx(1.5, abs=1e-15)
    assert annealing.exponential(1e-4, 1.0, 0.5) == pytest.approx(1e-2, rel=1e-12)
    assert annealing.constant(2.0, 5.0, 0.7) == 2.0
    with pytest.raises(ValueError, match="positive"):
        annealing.exponential(0.0, 1.0, 0.5)
    assert math.isclose(annealing.exponential(2.0, 8.0, 1 / 2), 4.0)


def test_digits_split_and_training() -> None:
    data = load_digits()
    assert data.train_x.shape == (1348, 64) and data.test_x.shape == (449, 64)
    assert float(data.train_x.max()) == 1.0 and float(data.train_x.min()) == 0.0
    result = train(mlp(), lambda m: SGD(m.parameters(), lr=0.1, momentum=0.9), data, epochs=5)
    assert len(result.losses) == 5 * math.ceil(1348 / 64)
    last_epoch = result.losses[-21:]
    assert sum(last_epoch) / len(last_epoch) < result.losses[0] / 5
    assert result.test_accuracy > 0.9
    assert torch.equal(load_digits().test_y, data.test_y)
