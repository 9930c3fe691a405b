r"""
# The learning-rate finder

[Smith, 2017](https://arxiv.org/abs/1506.01186) noticed that one short run tells a lot about the
learning rate: train for a hundred steps while the learning rate grows exponentially from tiny to
huge, and watch the loss. At first nothing happens (the steps are too small to matter); then the
loss falls, faster and faster; then the steps become too large, the loss turns around and explodes.
A good learning rate sits on the falling part, well before the bottom.

## The sweep

Step $k$ of $K$ uses the learning rate of an [exponential schedule](../schedules/functional.md),

$$\eta_k = \eta_{\min}\left(\frac{\eta_{\max}}{\eta_{\min}}\right)^{k/(K-1)},$$

so every step multiplies it by the same factor and the sweep spends equal time in every decade (on
a log axis the points are evenly spaced).

The mini-batch loss is noisy, and the loss is smoothed twice, for two different jobs.

* **To decide when to stop**, during the sweep, only the past is known. The finder keeps a
  *debiased* running average, exactly the correction that makes Adam's moments unbiased (the
  [momentum guide](../../guides/momentum.md) derives it),
  $$a_k = \beta\,a_{k-1} + (1-\beta)\,\ell_k \qquad \bar\ell_k = \frac{a_k}{1-\beta^k},$$
  and stops once $\bar\ell_k > 10\,\min_{j \le k} \bar\ell_j$ (`stop_factor`) or the loss is not
  finite: past that point the training has diverged and the rest of the curve says nothing. Without
  the division by $1-\beta^k$ the first averages would start near zero and set a "best" that no
  loss ever had: with $\beta = 0.9$ the first average is a tenth of the first loss, so the sweep would
  stop as soon as the loss rose back above its starting value, long before it had grown tenfold.
* **To read the curve**, after the sweep, the whole of it is known, so the finder uses a *centred*
  average over the $2h+1$ neighbouring steps. A running average lags $\beta/(1-\beta)$ steps behind
  the loss, which on this sweep is a shift of the whole curve to larger learning rates (for
  $\beta = 0.8$ and 8 decades in 100 steps, a factor of about 2); a centred one does not lag.

## The suggestion

The learning rate at the minimum of the smoothed curve is already too large: there the loss has
stopped falling because the steps overshoot. The suggestion is a tenth of it,
$\eta^\star = \eta_{\arg\min \tilde\ell}/10$, a rule of thumb that lands on the steep, falling part
of the curve. It is a starting point for a schedule's peak, not an optimum: the curve mixes the
effect of the learning rate with the progress of training during the sweep.

## Leaving no trace

The sweep trains the model, and with absurd learning rates at the end. So the finder saves a copy of
the model's `state_dict` and of the optimizer's `state_dict` first, and loads both back at the end,
whatever happened (also after an exception): weights, buffers such as batch-norm statistics, the
optimizer's moments and step counts, and every group's hyper-parameters, the learning rate
included. The gradients are put back as they were. It works with any `torch.optim.Optimizer`,
including those that need a closure, since every step is given one over the same batch.
"""

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..schedules.functional import sched_exp
from .param_scheduler import ParamScheduler
from .recorder import Recorder


@dataclass
class LRFinderResult:
    r"""
    The sweep: the learning rate and raw loss of every step, the smoothed loss, and whether it was
    stopped by divergence before the last step.
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    stopped_early: bool

    @property
    def lr_at_minimum(self) -> float:
        r"""The learning rate where the smoothed loss was lowest (non-finite values never count)."""
        finite = [k for k, loss in enumerate(self.smoothed_losses) if math.isfinite(loss)]
        best = min(finite, key=self.smoothed_losses.__getitem__)
        return self.lrs[best]

    @property
    def suggestion(self) -> float:
        r"""$\eta^\star = \eta_{\arg\min\bar\ell} / 10$"""
        return self.lr_at_minimum / 10


def lr_find(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Any],
            compute_loss: Callable[[Any], torch.Tensor], start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int = 100, stop_factor: float = 10.0, smoothing: float = 0.8,
            half_width: int = 2) -> LRFinderResult:
    r"""
    ## Running the sweep

    * `model`: the model whose parameters `optimizer` updates (saved and restored).
    * `batches`: an iterable of batches; the sweep takes one per step and ends early if it runs out
      (`itertools.cycle` over a data loader gives as many as needed).
    * `compute_loss(batch)`: the loss of the model on one batch, as a scalar tensor.
    * `start_lr`, `end_lr`, `num_steps`: the exponential sweep $\eta_{\min}, \eta_{\max}, K$.
    * `stop_factor`: stop when the smoothed loss exceeds this multiple of the best so far.
    * `smoothing`: the $\beta$ of the running average the stopping rule watches (0: the raw loss).
    * `half_width`: the centred average of the returned curve spans `2 * half_width + 1` steps.

    Every parameter group gets the same learning rate during the sweep.
    """
    if num_steps < 2:
        raise ValueError(f"Invalid num_steps: {num_steps} (a sweep needs at least 2)")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"Invalid smoothing: {smoothing} (must be in [0, 1))")
    schedule = sched_exp(start_lr, end_lr)

    # Deep copies: `state_dict()` hands out the live tensors, which the sweep is about to change.
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]

    recorder = Recorder(optimizer)
    stopped_early = False
    try:
        # $\eta_k$ for $k = 0 \dots K-1$: the scheduler's position $k/(K-1)$ reaches $1$ at the last step.
        scheduler = ParamScheduler(optimizer, "lr", schedule, total_steps=num_steps - 1)
        average, best = 0.0, math.inf
        for step, batch in enumerate(itertools.islice(batches, num_steps), start=1):

            def closure(batch: Any = batch) -> torch.Tensor:
                optimizer.zero_grad()
                loss = compute_loss(batch)
                loss.backward()
                return loss

            loss = float(optimizer.step(closure).detach())
            recorder.record(loss)
            # $$a_k = \beta\,a_{k-1} + (1-\beta)\,\ell_k \qquad \bar\ell_k = a_k / (1-\beta^k)$$
            average = smoothing * average + (1 - smoothing) * loss
            running = average / (1 - smoothing**step)
            # $$\bar\ell_k > 10 \min_{j \le k} \bar\ell_j \;\Rightarrow\; \text{stop}$$
            if not math.isfinite(running) or running > stop_factor * best:
                stopped_early = step < num_steps
                break
            best = min(best, running)
            scheduler.step()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        for param, grad in zip(model.parameters(), saved_grads):
            param.grad = grad
    smoothed = centered_average(recorder.losses, half_width)
    return LRFinderResult(recorder.lrs, recorder.losses, smoothed, stopped_early)


def centered_average(values: list[float], half_width: int) -> list[float]:
    r"""
    The mean of each value and its `half_width` neighbours on either side (fewer at the ends),
    $$\tilde\ell_k = \frac{1}{|W_k|}\sum_{j \in W_k} \ell_j \qquad W_k = \{j : |j - k| \le h\}.$$
    Symmetric, so unlike a running average it does not lag behind the curve.
    """
    averaged = []
    for k in range(len(values)):
        window = values[max(0, k - half_width): k + half_width + 1]
        averaged.append(math.fsum(window) / len(window))
    return averaged
