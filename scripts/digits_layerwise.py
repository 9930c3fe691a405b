"""Train the digits MLP with the layer-wise optimizers (and SGD/Adam for comparison) and print the test
accuracies: a small-batch run for each, and a large-batch run where each gets a small learning-rate grid.

    python scripts/digits_layerwise.py
"""

import math
import sys
from collections.abc import Callable

import torch

from annotated_opt import LAMB, LARS, SGD, Adam, Nero, NeroPlus
from annotated_opt.toys.digits import load_digits, mlp, train

FREE_HEAD = {"constraints": False, "fixed_norm": False, "max_norm": math.inf, "zero_mean": False}


def nero_family(cls: type, lr: float) -> Callable[[torch.nn.Module], torch.optim.Optimizer]:
    def make(model: torch.nn.Module) -> torch.optim.Optimizer:
        # The output layer is left free: its rows set the scale of the logits.
        model[2].weight.opt_args = dict(FREE_HEAD)
        return cls(cls.initialize(model.parameters()), lr=lr)

    return make


OPTIMIZERS: dict[str, Callable[[float], Callable[[torch.nn.Module], torch.optim.Optimizer]]] = {
    "SGD": lambda lr: lambda m: SGD(m.parameters(), lr=lr, momentum=0.9),
    "Adam": lambda lr: lambda m: Adam(m.parameters(), lr=lr),
    "LARS": lambda lr: lambda m: LARS(m.parameters(), lr=lr, momentum=0.9),
    "LAMB": lambda lr: lambda m: LAMB(m.parameters(), lr=lr),
    "Nero": lambda lr: nero_family(Nero, lr),
    "NeroPlus": lambda lr: nero_family(NeroPlus, lr),
}

SMALL_BATCH = {"SGD": 0.1, "Adam": 1e-3, "LARS": 3.0, "LAMB": 0.01, "Nero": 0.03, "NeroPlus": 0.01}
LARGE_BATCH_GRID = {
    "SGD": (0.3, 1.0, 3.0), "Adam": (0.003, 0.01, 0.03), "LARS": (3.0, 10.0, 30.0),
    "LAMB": (0.01, 0.03, 0.1), "Nero": (0.03, 0.1, 0.3), "NeroPlus": (0.01, 0.03, 0.1),
}


def main() -> int:
    torch.set_num_threads(1)
    data = load_digits()
    print("batch 64, 10 epochs")
    for name, lr in SMALL_BATCH.items():
        result = train(mlp(), OPTIMIZERS[name](lr), data, epochs=10, batch_size=64)
        print(f"  {name:>9}  lr={lr:<7g} test accuracy {result.test_accuracy:.4f}  ({result.seconds:.1f} s)",
              flush=True)
    print("batch 674 (half the training set), 40 epochs = 80 steps, best of a 3-point lr grid")
    for name, grid in LARGE_BATCH_GRID.items():
        scores = {lr: train(mlp(), OPTIMIZERS[name](lr), data, epochs=40, batch_size=674).test_accuracy for lr in grid}
        best = max(scores, key=scores.get)
        listing = ", ".join(f"{lr:g}: {acc:.3f}" for lr, acc in scores.items())
        print(f"  {name:>9}  best lr={best:<7g} test accuracy {scores[best]:.4f}  ({listing})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
