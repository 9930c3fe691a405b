r"""
# A small real task: handwritten digits

Toy surfaces show how an optimizer moves; a real task shows whether it trains. This one is small
enough to run in seconds on a laptop CPU and needs no download: the 1,797 8x8 images of handwritten
digits that ship inside scikit-learn (`sklearn.datasets.load_digits`), split once, with a fixed seed,
into 1,348 training and 449 test images.

The images are the UCI "optical recognition of handwritten digits" set: 32x32 bitmaps reduced to 8x8
by counting the ink in each 4x4 block, so each pixel is an integer from 0 to 16. About 180 images
per digit: small enough that a model can overfit, large enough that the test accuracy (about 97%
for either model after ten epochs of a well-tuned Adam) separates a good optimizer from a poor one.

Two models: `mlp`, a two-layer perceptron on the 64 pixels, and `cnn`, a small convolutional network
that sees the image as an image. `train` runs a plain mini-batch loop with any optimizer and returns
the loss curve and the test accuracy. It hands `step` a closure, so optimizers that evaluate the
loss more than once per step ([SAM](sam.md)) train with the same loop.

Both models minimise the cross-entropy of the ten-way softmax over a batch $B$,
$$L(\theta) = -\frac{1}{|B|}\sum_{(x, y) \in B} \log \frac{e^{z_y(x;\theta)}}{\sum_{c=0}^{9} e^{z_c(x;\theta)}},$$
which starts near $\ln 10 \approx 2.3$ for an untrained model and is what the loss curves plot. The
comparisons across optimizers are in the toy [tasks](tasks.md), which run this loop for every entry
of the registry.

## Using it

```python
from annotated_opt import AdaBelief
from annotated_opt.toys import digits

result = digits.train(digits.cnn(), lambda model: AdaBelief(model.parameters(), lr=1e-2), epochs=5)
print(result.test_accuracy, result.losses[-1])
```

Five epochs of the CNN take a second or two on a CPU. To compare two optimizers fairly, give both the
same `seed` (the same initialisation and batch order) and tune each one's learning rate: at a shared
learning rate, the comparison mostly says which one that rate suits.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class DigitsData:
    r"""The split: `train_x` and `test_x` are `(n, 64)` rows of pixels in $[0, 1]$, `*_y` the labels 0-9."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_digits(seed: int = 0, dtype: torch.dtype = torch.float32) -> DigitsData:
    r"""
    The digits as tensors: pixels scaled to $[0, 1]$ (the raw values are 0–16), 25% held out.

    * `seed` fixes the split. Keep the default to compare with the results pages; another seed gives
      another split of the same images.
    * `dtype` of the pixels: `float32` (the default) for speed, `float64` where two runs must be
      compared to the last bit. `train` loads the data in the model's dtype when none is given.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    # $$x = \text{pixel} / 16 \in [0, 1]$$
    x = torch.as_tensor(images, dtype=dtype) / 16.0
    y = torch.as_tensor(labels, dtype=torch.long)
    # One seeded permutation decides the split: its first quarter is the test set.
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    return DigitsData(x[train], y[train], x[test], y[test])


def mlp(hidden: int = 64, seed: int = 0) -> nn.Module:
    r"""
    A two-layer perceptron, $64 \to$ `hidden` $\to 10$, with a seeded initialisation:
    $$z = W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2.$$
    With the default 64 hidden units it has 4,810 parameters, in four tensors of two shapes (two
    matrices, two bias vectors): the smallest model on which layer-wise methods ([LARS](lars.md),
    [LAMB](lamb.md)) have more than one layer to tell apart.
    """
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def cnn(channels: int = 16, seed: int = 0) -> nn.Module:
    r"""
    A small convolutional network for the 8x8 images: two $3\times3$ convolutions (`channels`, then
    twice as many), each followed by a ReLU and a $2\times2$ max-pool ($8 \to 4 \to 2$ pixels), then
    one linear layer to the 10 classes. It takes the same flat 64-pixel rows as `mlp`.

    With the default 16 channels it has 6,090 parameters, and 4-d weight tensors, the shape that
    per-layer and per-filter rules must handle.
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        # `(batch, 64)` rows back to `(batch, 1, 8, 8)` images.
        nn.Unflatten(1, (1, 8, 8)),
        # `padding=1` keeps the size, so only the pools shrink it: $8 \to 4$, then $4 \to 2$.
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        # $2c$ channels of $2 \times 2$ pixels, flattened, to the ten logits.
        nn.Flatten(), nn.Linear(2 * channels * 2 * 2, 10),
    )


@dataclass
class TrainingResult:
    r"""
    What `train` reports: `losses[t - 1]` is the training loss of step $t$ (on its batch, before the
    step), then the test loss and accuracy after training, and the wall time of the loop.
    """

    losses: list[float] = field(default_factory=list)
    test_accuracy: float = 0.0
    test_loss: float = 0.0
    seconds: float = 0.0


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    r"""The fraction of rows of `x` whose most likely class is the label in `y`."""
    return evaluate(model, x, y)[1]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    r"""
    The mean cross-entropy and the accuracy of `model` on `(x, y)`, in evaluation mode.

    The model is put back in the mode it was in, so this can be called in the middle of training
    (for a learning curve of the test loss) without switching dropout or batch-norm off for the rest
    of the run.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        # The predicted class is the largest logit: $\hat y = \arg\max_c z_c$.
        correct = (logits.argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return loss, correct


def closure_step(optimizer: torch.optim.Optimizer, closure: Callable[[], torch.Tensor],
                 evaluate_before_step: bool = True) -> torch.Tensor:
    r"""
    ### One step, with a closure

    One optimizer step with a closure; returns the loss at the parameters before the step.

    With `evaluate_before_step` the closure runs first (so the gradients are there when `step` starts)
    and is handed to `step` as well. Without it, `step` alone runs the closure, and the loss is the
    one its *first* evaluation returned, whatever `step` itself returns (a wrapper may return `None`).
    An optimizer that ignores the closure would then step on stale gradients; that is an error.

    The two modes cost differently: with evaluation first, an optimizer such as SGD or Adam, whose
    `step` also calls the closure, computes the same loss and gradients twice. Both modes update the
    parameters identically for such an optimizer (the tests check it), so the tasks pass `False`
    to every optimizer that does not need the gradients in advance, and time only the work it asks
    for.
    """
    if evaluate_before_step:
        loss = closure()
        optimizer.step(closure)
        return loss
    # Record every evaluation `step` makes; the first is at the parameters before the step.
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
          evaluate_before_step: bool = True, steps: int | None = None) -> TrainingResult:
    r"""
    ### The training loop

    Train `model` with the optimizer `make_optimizer(model)` for `epochs` passes over the training
    images in seeded random order (or `steps` steps, if that comes first), and report the per-step
    training loss and the test accuracy.
    `after_step(step, loss)` is called after every step (for a progress bar or a scheduler); it may
    return `False` to stop training early (a diverged run, say).

    With `evaluate_before_step` (the default) the gradients are computed before `step` is called and
    the closure is handed to it as well, the convention of the verification harness: it suits every
    optimizer, including SAM, whose first pass reads the gradients already there. An optimizer that
    does not need a closure (`info.requires_closure` is false) computes the same gradients again
    inside `step`; passing `evaluate_before_step=False` saves that second forward and backward pass.

    Advice on the arguments:

    * `make_optimizer` receives the model, so it can build parameter groups from its layers (no
      decay on biases, say); `lambda m: torch.optim.SGD(m.parameters(), lr=0.1)` is the simplest.
    * `batch_size`: the largest batch. Each epoch is cut into $\lceil n / \text{batch\_size} \rceil$
      batches of nearly equal size: 64 gives 22 steps per epoch, batches of 61 and 62 of the 1,348
      images. Smaller batches mean noisier gradients, which some optimizers tolerate much better than
      others; that is worth a run of its own.
    * `steps`: stop after this many steps, within an epoch if need be. A run on fewer images (the
      tuning search's, which holds some back) takes more epochs to make as many steps as a full run.
    * `seed` fixes the batch order only; the model's initialisation has its own seed (`mlp`, `cnn`).
    """
    if batch_size < 1 or (steps is not None and steps < 1):
        raise ValueError(f"batch_size and steps must be positive, got batch_size={batch_size}, steps={steps}")
    data = data or load_digits(dtype=next(model.parameters()).dtype)
    optimizer = make_optimizer(model)
    # The batches' own generator: the order depends on `seed` alone.
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainingResult()
    start = time.perf_counter()
    step = 0
    stopped = False
    model.train()
    images = len(data.train_y)
    for _ in range(epochs):
        # A fresh permutation each epoch, cut into batches of nearly equal size. Cut into batches of
        # exactly 64, the 1,348 images would end each epoch with a batch of 4, whose gradient is four
        # images' and kicks a run near the edge of stability: SAM at its tuned learning rate on the CNN
        # ended below 0.90 test accuracy on 5 of 16 seeds that way, on none with equal batches.
        order = torch.randperm(images, generator=generator)
        for batch in order.tensor_split(math.ceil(images / batch_size)):
            x, y = data.train_x[batch], data.train_y[batch]

            # $L(\theta)$ on this batch and its gradients; the defaults bind this batch to the
            # closure, however many times the optimizer calls it.
            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss

            loss = closure_step(optimizer, closure, evaluate_before_step)
            step += 1
            result.losses.append(loss.item())
            if (after_step is not None and after_step(step, loss.item()) is False) or step == steps:
                stopped = True
                break
        if stopped:
            break
    result.seconds = time.perf_counter() - start
    evaluation_point(optimizer)
    result.test_loss, result.test_accuracy = evaluate(model, data.test_x, data.test_y)
    return result


def evaluation_point(optimizer: torch.optim.Optimizer) -> None:
    r"""
    An optimizer whose parameters sit at a training point other than the one to evaluate
    ([Schedule-Free](../schedule_free_sgd.md): $y$ while training, the average $x$ to evaluate) has an
    `eval()` method that moves them; the tasks call it before measuring the test loss.
    """
    switch = getattr(optimizer, "eval", None)
    if callable(switch):
        switch()
