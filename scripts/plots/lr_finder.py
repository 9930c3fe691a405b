"""The LR finder guide's picture: the sweep on the digits task with two composable optimizers, the
suggested learning rates marked, and a check of the suggestion by short training runs."""

import itertools

import torch
from torch import nn

from annotated_opt.composable import adam, lr_find, momentum
from annotated_opt.toys.digits import load_digits, mlp, train

from .style import plt, save

OPTIMIZERS = {
    "SGD with momentum 0.9": lambda params, lr=0.1: momentum(params, lr=lr, momentum=0.9),
    "Adam": lambda params, lr=1e-3: adam(params, lr=lr),
}


def digits_sweep(make_optimizer, data, seed: int = 0):
    r"""One sweep from $10^{-5}$ to $10$ over 100 mini-batches of 64 images."""
    model = mlp(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train_y), generator=generator)
    batches = itertools.cycle([(data.train_x[b], data.train_y[b]) for b in order.split(64)])
    return lr_find(model, make_optimizer(model.parameters()), batches,
                   lambda batch: nn.functional.cross_entropy(model(batch[0]), batch[1]),
                   start_lr=1e-5, end_lr=10.0, num_steps=100)


def check_suggestion(make_optimizer, lr: float, data, epochs: int = 3) -> dict[float, float]:
    r"""Test accuracy after a short run at the suggestion, ten times less and ten times more."""
    accuracies = {}
    for factor in (0.1, 1.0, 10.0):
        result = train(mlp(seed=0), lambda model, f=factor: make_optimizer(model.parameters(), lr=f * lr), data,
                       epochs=epochs)
        accuracies[factor] = result.test_accuracy
    return accuracies


def make() -> dict[str, float]:
    # The model is tiny: one thread is fastest, and several fight over a busy machine's cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return draw(load_digits())
    finally:
        torch.set_num_threads(threads)


def draw(data) -> dict[str, float]:
    figure, axes = plt.subplots(1, len(OPTIMIZERS), figsize=(11, 3.6), sharey=True)
    notes, suggestions = [], {}
    for ax, (name, make_optimizer) in zip(axes, OPTIMIZERS.items()):
        result = digits_sweep(make_optimizer, data)
        suggestions[name] = result.suggestion
        accuracies = check_suggestion(make_optimizer, result.suggestion, data)
        ax.plot(result.lrs, result.losses, color="0.7", linewidth=1, label="loss per step")
        ax.plot(result.lrs, result.smoothed_losses, color="tab:blue", label="centred average")
        ax.axvline(result.lr_at_minimum, color="0.4", linestyle=":", label="minimum")
        ax.axvline(result.suggestion, color="tab:red", linestyle="--", label=f"suggestion {result.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_ylim(0, 4)
        ax.set_xlabel("learning rate")
        ax.set_title(name)
        ax.legend(fontsize=8, loc="upper left")
        notes.append(f"{name}: {result.suggestion:.2g} (test accuracy after 3 epochs: "
                     + ", ".join(f"{accuracies[f]:.1%} at {f:g}x" for f in (0.1, 1.0, 10.0)) + ")")
        print(f"lr_finder: {notes[-1]}; sweep stopped early: {result.stopped_early} after {len(result.lrs)} steps")
    axes[0].set_ylabel("training loss")
    figure.tight_layout()
    save(figure, "lr-finder", "digits",
         "The LR finder on the digits task (two-layer perceptron, batches of 64), learning rate from $10^{-5}$ to $10$ "
         "over 100 steps; the sweep stops once the running loss exceeds ten times its best. Suggestions, a "
         "tenth of the minimum of the centred average: " + "; ".join(notes) + ".")
    return suggestions


if __name__ == "__main__":
    make()
