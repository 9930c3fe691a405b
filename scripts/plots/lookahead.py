"""Lookahead's picture: fast and slow weights on an ill-conditioned quadratic.

SGD with heavy momentum and a large step overshoots across the narrow direction of the valley. Lookahead
runs the same SGD as its fast weights; every k steps the slow weights move halfway to where the fast
ones got, and the fast ones restart there. The run uses the library's own `Lookahead` over its `SGD`,
from a fixed start, so the figure is deterministic.
"""

import numpy as np
import torch

from annotated_opt import SGD, Lookahead

from .style import plt, save

CURVATURES = (1.0, 30.0)
START = (-4.0, 1.2)
STEPS, K, ALPHA = 40, 5, 0.5


def quadratic(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (CURVATURES[0] * w[0] ** 2 + CURVATURES[1] * w[1] ** 2)


def run(lookahead: bool) -> tuple[np.ndarray, np.ndarray]:
    """The fast weights after every step, and the slow weights after every synchronisation."""
    w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    base = SGD([w], lr=0.03, momentum=0.9)
    optimizer = Lookahead(base, k=K, alpha=ALPHA) if lookahead else base
    fast, slow = [w.detach().clone()], [w.detach().clone()]
    for step in range(1, STEPS + 1):
        optimizer.zero_grad()
        quadratic(w).backward()
        optimizer.step()
        fast.append(w.detach().clone())
        if lookahead and step % K == 0:
            slow.append(optimizer.state[w]["slow_param"].clone())
    return torch.stack(fast).numpy(), torch.stack(slow).numpy()


def make() -> None:
    x, y = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-1.6, 1.6, 200))
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for axis, lookahead in zip(axes, (False, True)):
        axis.contour(x, y, 0.5 * (CURVATURES[0] * x**2 + CURVATURES[1] * y**2), levels=np.geomspace(0.05, 60, 12),
                     colors="0.8", linewidths=0.7)
        fast, slow = run(lookahead)
        axis.plot(fast[:, 0], fast[:, 1], "-", color="tab:blue", linewidth=0.8, marker=".", markersize=3,
                  label="fast weights (SGD, momentum 0.9)")
        if lookahead:
            axis.plot(slow[:, 0], slow[:, 1], "-o", color="tab:orange", markersize=4,
                      label=f"slow weights, every k = {K} steps")
        axis.plot([0], [0], "*", color="black", markersize=8)
        distance = float(np.hypot(*fast[-1]))
        axis.set_title(f"{'Lookahead over SGD' if lookahead else 'SGD alone'}\ndistance to the minimum "
                       f"after {STEPS} steps: {distance:.2f}", fontsize=9)
        axis.set_xlabel("$w_1$ (curvature 1)")
        axis.legend(loc="lower right", fontsize=7, frameon=False)
    axes[0].set_ylabel("$w_2$ (curvature 30)")
    save(figure, "lookahead", "fast-and-slow-weights",
         f"SGD with momentum on a quadratic whose curvatures differ 30-fold, alone (left) and as the fast "
         f"weights of Lookahead with $k = {K}$, $\\alpha = {ALPHA}$ (right). Every {K} steps the slow weights "
         "move halfway to the fast ones and the fast ones restart there, which damps the oscillation across "
         "the valley. (With a momentum that does not overshoot, the same pull-back slows the descent on a "
         "noiseless quadratic: Lookahead pays off against oscillation and noise.)")
