"""LARS's motivation measured on the digits MLP: the ratio ||w|| / ||g|| differs widely between tensors,
so one global learning rate moves them by very different relative amounts; LARS's trust ratio makes
every tensor's relative step about lr * trust coefficient."""

import matplotlib.pyplot as plt
import torch

from annotated_opt import LARS, SGD
from annotated_opt.toys.digits import load_digits, mlp

from .style import save

STEPS = 60


def record(make_optimizer) -> dict[str, dict[str, list[float]]]:
    """Train for STEPS mini-batches of 64 and record, per tensor, ||w||/||g|| and ||dw||/||w||."""
    torch.manual_seed(0)
    data = load_digits()
    model = mlp()
    optimizer = make_optimizer(model)
    names = [name for name, _ in model.named_parameters()]
    history = {name: {"ratio": [], "relative_step": []} for name in names}
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))
    batches = order.split(64)
    for step in range(STEPS):
        batch = batches[step % len(batches)]
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(data.train_x[batch]), data.train_y[batch]).backward()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        for name, p in model.named_parameters():
            history[name]["ratio"].append((p.norm() / p.grad.norm()).item())
        optimizer.step()
        for name, p in model.named_parameters():
            history[name]["relative_step"].append(((p.detach() - before[name]).norm() / before[name].norm()).item())
    return history


def make() -> None:
    # A tiny model: one thread is faster than several competing for the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        draw()
    finally:
        torch.set_num_threads(threads)


def draw() -> None:
    sgd = record(lambda m: SGD(m.parameters(), lr=0.1, momentum=0.9))
    # Every tensor adapted (no exclusions), to show the trust ratio on biases too.
    lars = record(lambda m: LARS(m.parameters(), lr=3.0, momentum=0.9, max_ndim_without_adaptation=-1))
    labels = {"0.weight": "layer 1 weight", "0.bias": "layer 1 bias", "2.weight": "layer 2 weight",
              "2.bias": "layer 2 bias"}
    colours = dict(zip(labels, ("C0", "C1", "C2", "C3")))

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, label in labels.items():
        left.plot(sgd[name]["ratio"], color=colours[name], label=label)
        right.plot(sgd[name]["relative_step"], color=colours[name], linestyle=":")
        right.plot(lars[name]["relative_step"], color=colours[name])
    left.set(yscale="log", xlabel="step", ylabel=r"$\|w\| \,/\, \|g\|$", title="Weight-to-gradient ratio (SGD)")
    left.legend(fontsize=8)
    right.set(yscale="log", xlabel="step", ylabel=r"$\|\Delta w\| \,/\, \|w\|$",
              title="Relative step: SGD (dotted) vs LARS (solid)")
    figure.tight_layout()
    save(figure, "lars", "layer_ratios",
         "Digits MLP, batch 64. Left: the ratio of weight norm to gradient norm differs by a factor of ten and "
         "more between tensors, and changes during training. Right: with one global learning rate (SGD, "
         "$\\eta = 0.1$, dotted) the relative steps differ accordingly; LARS ($\\eta = 3$, $\\kappa = 0.001$, "
         "every tensor adapted, solid) starts every tensor at exactly $\\eta\\kappa = 0.003$, and momentum then "
         "multiplies that by up to $1 / (1 - 0.9)$ where successive directions agree (less for the biases, whose "
         "gradients flip more).")
