"""The weight-decay guide's picture: how fast Adam with L2 and AdamW shrink weights whose gradients
have different scales, computed with the composable pieces."""

import torch

from annotated_opt.composable import ComposableOptimizer, adam_step, decoupled_weight_decay, l2_reg
from annotated_opt.composable.assembled import adam_stats

from .style import plt, save

SCALES = (0.01, 0.1, 1.0, 10.0)
STEPS = 1000
HYPERS = {"lr": 0.01, "weight_decay": 0.1}


def decay_curves(decay_piece) -> torch.Tensor:
    r"""
    One weight per gradient scale $\sigma$, all starting at 1. The gradient is pure noise of that
    scale with no signal, $g_t = \sigma(-1)^t$, so any trend in the weights is the decay's doing.
    Returns the weights after every step, one row per step.
    """
    weights = torch.ones(len(SCALES), dtype=torch.float64, requires_grad=True)
    scales = torch.tensor(SCALES, dtype=torch.float64)
    optimizer = ComposableOptimizer([weights], [decay_piece, *adam_stats(), adam_step], **HYPERS)
    history = [weights.detach().clone()]
    for step in range(1, STEPS + 1):
        weights.grad = scales * (-1) ** step
        optimizer.step()
        history.append(weights.detach().clone())
    return torch.stack(history)


def make() -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    steps = range(STEPS + 1)
    for ax, (title, piece) in zip(axes, (("Adam with L2 (l2_reg first)", l2_reg),
                                         ("AdamW (decoupled_weight_decay first)", decoupled_weight_decay))):
        curves = decay_curves(piece)
        for index, scale in enumerate(SCALES):
            ax.plot(steps, curves[:, index].abs(), label=rf"$\sigma = {scale:g}$")
        reference = [(1 - HYPERS["lr"] * HYPERS["weight_decay"]) ** t for t in steps]
        ax.plot(steps, reference, color="black", linestyle=":", label=r"$(1-\eta\lambda)^t$")
        ax.set_title(title)
        ax.set_xlabel("step")
    axes[0].set_ylabel(r"$|\theta_t|$")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    save(figure, "weight-decay", "l2-vs-decoupled",
         r"Weights whose gradients are pure noise of scale $\sigma$, $\eta = 0.01$, $\lambda = 0.1$. With L2, "
         r"Adam divides "
         "the decay by the gradient's scale: weights with small gradients collapse within a few hundred "
         r"steps, those with large gradients barely shrink, and only at $\sigma = 1$ do the two agree. Decoupled "
         r"decay shrinks every weight by $1 - \eta\lambda$ per step, whatever its gradients.")


if __name__ == "__main__":
    make()
