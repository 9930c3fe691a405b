r"""
# A small real task: handwritten digits

Toy surfaces show how an optimizer moves; a real task shows whether it trains. This one is small
enough to run in seconds on a laptop CPU and needs no download: the 1,797 8x8 images of handwritten
digits that ship inside scikit-learn (`sklearn.datasets.load_digits`), split once, with a fixed seed,
into 1,347 training and 450 test images.

`train` runs a plain mini-batch loop with any optimizer and returns the loss curve and the test
accuracy. It hands `step` a closure, so optimizers that evaluate the loss more than once per step
(SAM) train with the same loop.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class DigitsData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_digits(seed: int = 0, dtype: torch.dtype = torch.float32) -> DigitsData:
    r"""The digits as tensors: pixels scaled to $[0, 1]$ (the raw values are 0–16), 25% held out."""
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    x = torch.as_tensor(images, dtype=dtype) / 16.0
    y = torch.as_tensor(labels, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    return DigitsData(x[train], y[train], x[test], y[test])


def mlp(hidden: int = 64, seed: int = 0) -> nn.Module:
    r"""A two-layer perceptron, $64 \to$ `hidden` $\to 10$, with a seeded initialisation."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@dataclass
class TrainingResult:
    losses: list[float] = field(default_factory=list)
    test_accuracy: float = 0.0
    seconds: float = 0.0


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return correct


def train(model: nn.Module, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
          data: DigitsData | None = None, epochs: int = 10, batch_size: int = 64, seed: int = 0,
          after_step: Callable[[int, float], None] | None = None) -> TrainingResult:
    r"""
    Train `model` with the optimizer `make_optimizer(model)` for `epochs` passes over the training
    images in seeded random order, and report the per-step training loss and the test accuracy.
    `after_step(step, loss)` is called after every step (for a progress bar or a scheduler).
    """
    data = data or load_digits(dtype=next(model.parameters()).dtype)
    optimizer = make_optimizer(model)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainingResult()
    start = time.perf_counter()
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data.train_y), generator=generator)
        for batch in order.split(batch_size):
            x, y = data.train_x[batch], data.train_y[batch]

            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss

            loss = closure()
            optimizer.step(closure)
            step += 1
            result.losses.append(loss.item())
            if after_step is not None:
                after_step(step, loss.item())
    result.seconds = time.perf_counter() - start
    result.test_accuracy = accuracy(model, data.test_x, data.test_y)
    return result
