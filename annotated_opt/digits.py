r"""
# A small real task: handwritten digits

Toy surfaces show how an optimizer moves; a real task shows whether it trains. This one is small
enough to run in seconds on a laptop CPU and needs no download: the 1,797 8x8 images of handwritten
digits that ship inside scikit-learn (`sklearn.datasets.load_digits`), split once, with a fixed seed,
into 1,348 training and 449 test images.

Two models: `mlp`, a two-layer perceptron on the 64 pixels, and `cnn`, a small convolutional network
that sees the image as an image. `train` runs a plain mini-batch loop with any optimizer and returns
the loss curve and the test accuracy. It hands `step` a closure, so optimizers that evaluate the
loss more than once per step (SAM) train with the same loop.
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


def cnn(channels: int = 16, seed: int = 0) -> nn.Module:
    r"""
    A small convolutional network for the 8x8 images: two $3\times3$ convolutions (`channels`, then
    twice as many), each followed by a ReLU and a $2\times2$ max-pool ($8 \to 4 \to 2$ pixels), then
    one linear layer to the 10 classes. It takes the same flat 64-pixel rows as `mlp`.
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 2 * 2, 10),
    )


@dataclass
class TrainingResult:
    losses: list[float] = field(default_factory=list)
    test_accuracy: float = 0.0
    test_loss: float = 0.0
    seconds: float = 0.0


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return evaluate(model, x, y)[1]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The mean cross-entropy and the accuracy of `model` on `(x, y)`, in evaluation mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        correct = (logits.argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return loss, correct


def closure_step(optimizer: torch.optim.Optimizer, closure: Callable[[], torch.Tensor],
                 evaluate_before_step: bool = True) -> torch.Tensor:
    r"""
    One optimizer step with a closure; returns the loss at the parameters before the step.

    With `evaluate_before_step` the closure runs first (so the gradients are there when `step` starts)
    and is handed to `step` as well. Without it, `step` alone runs the closure, and the loss is the
    one its *first* evaluation returned, whatever `step` itself returns (a wrapper may return `None`).
    An optimizer that ignores the closure would then step on stale gradients; that is an error.
    """
    if evaluate_before_step:
        loss = closure()
        optimizer.step(closure)
        return loss
    evaluations: list[torch.Tensor] = []

    def recording_closure() -> torch.Tensor:
        evaluations.append(closure())
        return evaluations[-1]

    optimizer.step(recording_closure)
    if not evaluations:
        raise RuntimeError(f"{type(optimizer).__name__}.step(closure) never called the closure; "
                           "train it with evaluate_before_step=True")
    return evaluations[0]


def train(model: nn.Module, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
          data: DigitsData | None = None, epochs: int = 10, batch_size: int = 64, seed: int = 0,
          after_step: Callable[[int, float], bool | None] | None = None,
          evaluate_before_step: bool = True) -> TrainingResult:
    r"""
    Train `model` with the optimizer `make_optimizer(model)` for `epochs` passes over the training
    images in seeded random order, and report the per-step training loss and the test accuracy.
    `after_step(step, loss)` is called after every step (for a progress bar or a scheduler); it may
    return `False` to stop training early (a diverged run, say).

    With `evaluate_before_step` (the default) the gradients are computed before `step` is called and
    the closure is handed to it as well, the convention of the verification harness: it suits every
    optimizer, including SAM, whose first pass reads the gradients already there. An optimizer that
    does not need a closure (`info.requires_closure` is false) computes the same gradients again
    inside `step`; passing `evaluate_before_step=False` saves that second forward and backward pass.
    """
    data = data or load_digits(dtype=next(model.parameters()).dtype)
    optimizer = make_optimizer(model)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainingResult()
    start = time.perf_counter()
    step = 0
    stopped = False
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

            loss = closure_step(optimizer, closure, evaluate_before_step)
            step += 1
            result.losses.append(loss.item())
            if after_step is not None and after_step(step, loss.item()) is False:
                stopped = True
                break
        if stopped:
            break
    result.seconds = time.perf_counter() - start
    result.test_loss, result.test_accuracy = evaluate(model, data.test_x, data.test_y)
    return result
