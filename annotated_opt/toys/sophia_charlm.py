r"""
# Sophia on the character model: calling the Hessian hook

A worked example of the training loop [Sophia](../sophia.md) needs. Every $k$ steps, after the usual
step, the loop samples labels from the model's own predictions on the batch, backpropagates the
cross-entropy against those labels, and hands the gradient to `optimizer.update_hessian()`: the
Gauss-Newton-Bartlett estimate of the diagonal Hessian. Everything else is an ordinary loop.

`train_sophia` measures what the estimate costs: the wall time of the steps with a refresh and of those
without, on the [character model](charlm.md). Run it as

    python -m annotated_opt.toys.sophia_charlm

which prints the losses and the time per step.
"""

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..sophia import Sophia
from .charlm import charlm, evaluate, load_chars, windows


@dataclass
class SophiaRun:
    r"""
    Training losses, held-out loss, the mean seconds of a step (forward, backward, `step`), of one refresh
    (sampling, forward, backward, `update_hessian`), the refreshes' cost spread over all steps, and the
    fraction of coordinates whose last step was not clipped.
    """

    losses: list[float] = field(default_factory=list)
    heldout_loss: float = 0.0
    plain_step_seconds: float = 0.0
    refresh_step_seconds: float = 0.0
    refresh_overhead: float = 0.0
    unclipped_fraction: float = 0.0

    @property
    def mean_step_seconds(self) -> float:
        r"""What a run pays per step on average: a step plus its share of the refreshes."""
        return self.plain_step_seconds + self.refresh_overhead


def train_sophia(steps: int = 300, k: int = 10, batch_size: int = 128, lr: float = 3e-3, rho: float = 0.05,
                 seed: int = 0) -> SophiaRun:
    r"""
    ### The loop

    `bs` is the number of labels per batch: one next character per window, so `batch_size`.
    """
    torch.manual_seed(seed)
    data = load_chars()
    model = charlm(seed=seed)
    optimizer = Sophia(model.parameters(), lr=lr, rho=rho, weight_decay=0.1, bs=batch_size)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    run = SophiaRun()
    plain, refresh = [], []
    for step in range(steps):
        starts = torch.randint(len(data.train) - model.context, (batch_size,), generator=generator)
        x, y = windows(data.train, starts, model.context)
        start = time.perf_counter()
        # The ordinary step: loss on the true labels, backward, step.
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stepped = time.perf_counter()
        if step % k == k - 1:
            # The refresh: labels drawn from the model's own softmax, $\hat y \sim p_\theta(\cdot \mid x)$,
            # so that the gradient's square estimates the Gauss-Newton diagonal (Bartlett's identity).
            optimizer.zero_grad()
            logits = model(x)
            sampled = torch.distributions.Categorical(logits=logits.detach()).sample()
            loss_fn(logits, sampled).backward()
            optimizer.update_hessian()
            optimizer.zero_grad()
            refresh.append(time.perf_counter() - stepped)
        plain.append(stepped - start)
        run.losses.append(loss.item())
    run.plain_step_seconds = sum(plain) / len(plain)
    run.refresh_overhead = sum(refresh) / steps
    run.refresh_step_seconds = sum(refresh) / max(len(refresh), 1)
    # The paper's health check: the share of coordinates whose step was not clipped at the end.
    ratios = [(s["exp_avg"].abs() / (rho * batch_size * s["hessian"] + 1e-15)) for s in optimizer.state.values()]
    run.unclipped_fraction = float(sum((r < 1).sum() for r in ratios) / sum(r.numel() for r in ratios))
    model.eval()
    run.heldout_loss, _ = evaluate(model, data.heldout)
    return run


if __name__ == "__main__":
    torch.set_num_threads(1)
    result = train_sophia()
    print(f"held-out loss {result.heldout_loss:.3f} nats/char, last training loss {result.losses[-1]:.3f}")
    print(f"plain step {1e3 * result.plain_step_seconds:.2f} ms, a refresh {1e3 * result.refresh_step_seconds:.2f} ms, "
          f"per step on average {1e3 * result.mean_step_seconds:.2f} ms "
          f"(+{100 * result.refresh_overhead / result.plain_step_seconds:.0f}%)")
    print(f"unclipped coordinates at the end: {100 * result.unclipped_fraction:.0f}%")
