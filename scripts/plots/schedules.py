"""The schedules guide's pictures: the four shapes, a one-cycle schedule of the learning rate and the
momentum as recorded while driving an optimizer, and cosine restarts of growing and shrinking period."""

import torch

from annotated_opt.composable import (
    ParamScheduler,
    Recorder,
    combine_scheds,
    momentum,
    sched_const,
    sched_cos,
    sched_exp,
    sched_lin,
)
from annotated_opt.schedules.functional import sample

from .style import plt, save

POINTS = 201


def shapes() -> "plt.Figure":
    positions = [i / (POINTS - 1) for i in range(POINTS)]
    figure, ax = plt.subplots(figsize=(6, 3.4))
    for label, schedule in (("sched_lin(1, 0.01)", sched_lin(1.0, 0.01)),
                            ("sched_cos(1, 0.01)", sched_cos(1.0, 0.01)),
                            ("sched_exp(1, 0.01)", sched_exp(1.0, 0.01)),
                            ("sched_const(0.5)", sched_const(0.5))):
        ax.plot(positions, sample(schedule, POINTS), label=label)
    ax.set_xlabel("position p in training")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def one_cycle(steps: int = 200) -> "plt.Figure":
    r"""Drive a real optimizer with two parameter schedulers and plot what the recorder saw."""
    param = torch.zeros(3, requires_grad=True)
    optimizer = momentum([param], lr=0.01)
    lr = combine_scheds([0.3, 0.7], [sched_cos(0.004, 0.04), sched_cos(0.04, 4e-7)])
    mom = combine_scheds([0.3, 0.7], [sched_cos(0.95, 0.85), sched_cos(0.85, 0.95)])
    schedulers = [ParamScheduler(optimizer, "lr", lr, steps), ParamScheduler(optimizer, "momentum", mom, steps)]
    recorder = Recorder(optimizer, names=("lr", "momentum"))
    for _ in range(steps):
        param.grad = torch.ones(3)
        optimizer.step()
        recorder.record(0.0)
        for scheduler in schedulers:
            scheduler.step()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(recorder.lrs)
    left.set_title("learning rate")
    right.plot(recorder.hyper("momentum"), color="tab:orange")
    right.set_title("momentum")
    for ax in (left, right):
        ax.set_xlabel("step")
    figure.tight_layout()
    return figure


def restarts() -> "plt.Figure":
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    for ax, pcts, title in ((axes[0], [1 / 7, 2 / 7, 4 / 7], "increasing period: [1/7, 2/7, 4/7]"),
                            (axes[1], [4 / 7, 2 / 7, 1 / 7], "decreasing period: [4/7, 2/7, 1/7]")):
        schedule = combine_scheds(pcts, [sched_cos(0.1, 0.001)] * 3)
        positions = [i / (700 - 1) for i in range(700)]
        ax.plot(positions, sample(schedule, 700))
        ax.set_title(title)
        ax.set_xlabel("position p in training")
    axes[0].set_ylabel("learning rate")
    figure.tight_layout()
    return figure


def make() -> None:
    save(shapes(), "schedules", "shapes",
         "The four shapes from 1 to 0.01 (constant at 0.5): cosine is flat at both ends, exponential is a "
         "straight line on a log scale and so spends most of the run at small values.")
    save(one_cycle(), "schedules", "one-cycle",
         "A one-cycle schedule as the recorder saw it while two parameter schedulers drove a composable "
         "optimizer: the learning rate warms up for 30% of the steps and anneals for 70%, the momentum does "
         "the opposite.")
    save(restarts(), "schedules", "cosine-restarts",
         "Cosine annealing with restarts, three phases built with combine_scheds. Growing periods spend the "
         "last, longest phase annealing slowly; shrinking periods restart ever more often near the end.")


if __name__ == "__main__":
    make()
