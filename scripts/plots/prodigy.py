"""The learning-rate-free estimate d over training: D-Adaptation Adam and Prodigy on the digits task.

Both start from d0 = 1e-6 on the same two-layer perceptron (seeded initialisation and batch order) and
train with lr = 1, their default; the figure shows the estimate d (the step size they use) after every
step, and the training loss.
"""

import torch

from annotated_opt import DAdaptAdam, Prodigy
from annotated_opt.toys.digits import load_digits, mlp

from .style import plt, save

STEPS, BATCH = 300, 64
OPTIMIZERS = {"DAdaptAdam": DAdaptAdam, "Prodigy": Prodigy}


def run(cls: type) -> tuple[list[float], list[float]]:
    """d and the training loss after every step of `cls` with its defaults."""
    torch.manual_seed(0)
    data = load_digits()
    model = mlp(seed=0)
    optimizer = cls(model.parameters())
    generator = torch.Generator().manual_seed(0)
    estimates, losses = [], []
    for _ in range(STEPS):
        rows = torch.randint(len(data.train_x), (BATCH,), generator=generator)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(data.train_x[rows]), data.train_y[rows])
        loss.backward()
        optimizer.step()
        estimates.append(optimizer.param_groups[0]["d"])
        losses.append(loss.item())
    return estimates, losses


def figure(page: str) -> None:
    torch.set_num_threads(1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, cls in OPTIMIZERS.items():
        estimates, losses = run(cls)
        left.plot(range(1, STEPS + 1), estimates, linewidth=1.5, label=name)
        right.plot(range(1, STEPS + 1), losses, linewidth=1.0, label=name)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("$d$")
    left.set_title("The estimate $d$ (from $d_0 = 10^{-6}$)")
    right.set_xlabel("step")
    right.set_ylabel("training loss")
    right.set_title("Digits, lr = 1")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend()
    save(fig, page, "d_over_training",
         r"The estimate $d$ of D-Adaptation Adam and Prodigy over 300 steps on the digits task (batch 64, "
         r"$\eta = 1$, their defaults), on a log scale, and the training loss. Both start at $d_0 = 10^{-6}$ and "
         r"grow by four orders of magnitude: here D-Adaptation settles at $d = 0.034$ within 10 steps, while "
         r"Prodigy reaches $10^{-3}$ at step 10 and keeps climbing slowly ($0.012$ at step 50, $0.022$ at step "
         r"300). $d$ never decreases.")


def make() -> None:
    figure("prodigy")
