"""SAM's picture: a sharp and a flat minimum of a one-dimensional loss, and SAM's two passes.

The loss has a deep, narrow well (the sharp minimum) and a slightly higher, wide one (the flat
minimum). SAM minimises the worst loss within a radius rho, L_SAM(w) = max_{|e| <= rho} L(w + e),
computed here exactly on a fine grid: the sharp well is a poor minimum of it, the flat one a good one.
Everything is closed-form arithmetic on a fixed grid, so the figures are deterministic.
"""

import numpy as np

from .style import plt, save

RHO = 0.3
SHARP, FLAT = -1.0, 1.5


def loss(w: np.ndarray) -> np.ndarray:
    """A gentle bowl with a deep narrow well at -1 and a shallower wide well at 1.5."""
    return (1 + 0.03 * w**2 - 1.0 * np.exp(-((w - SHARP) ** 2) / (2 * 0.12**2))
            - 0.85 * np.exp(-((w - FLAT) ** 2) / (2 * 0.6**2)))


def gradient(w: float, h: float = 1e-6) -> float:
    return float((loss(np.array(w + h)) - loss(np.array(w - h))) / (2 * h))


def sam_objective(grid: np.ndarray, rho: float) -> np.ndarray:
    """max of the loss over [w - rho, w + rho], for every w of the evenly spaced `grid`."""
    values = loss(grid)
    reach = int(round(rho / (grid[1] - grid[0])))
    padded = np.pad(values, reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    return windows.max(axis=1)


def sharp_versus_flat() -> None:
    grid = np.linspace(-2.5, 3.5, 6001)
    values, worst = loss(grid), sam_objective(grid, RHO)
    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    axis.plot(grid, values, color="tab:blue", label="loss $L(w)$")
    axis.plot(grid, worst, color="tab:orange",
              label=rf"SAM objective $\max_{{|\epsilon| \leq {RHO}}} L(w+\epsilon)$")
    for centre, name in ((SHARP, "sharp"), (FLAT, "flat")):
        inside = np.abs(grid - centre) <= RHO
        low, high = float(loss(np.array(centre))), float(values[inside].max())
        axis.fill_between(grid[inside], low, values[inside], color="tab:orange", alpha=0.15, linewidth=0)
        axis.plot([centre], [low], "o", color="tab:blue")
        axis.annotate(f"{name} minimum\n$L$ = {low:.2f}, worst within $\\rho$ = {high:.2f}",
                      (centre, low), xytext=(0, -34), textcoords="offset points", ha="center", fontsize=8)
    best = grid[np.argmin(worst)]
    axis.axvline(best, color="tab:orange", linestyle=":", linewidth=1)
    axis.set_xlabel("weight $w$")
    axis.set_ylabel("loss")
    axis.set_ylim(-0.35, 1.35)
    axis.legend(loc="upper center", fontsize=8, frameon=False)
    axis.set_title(r"Plain descent prefers the deeper, sharp well; SAM's objective prefers the flat one",
                   fontsize=9)
    save(figure, "sam", "sharp-vs-flat",
         f"A sharp minimum (deeper, at $w = {SHARP}$) and a flat one (at $w = {FLAT}$). The orange curve is the "
         f"worst loss within radius $\\rho = {RHO}$; the shaded areas show how far the loss climbs inside that "
         "radius. The sharp well is the lower minimum of the loss, the flat well the lower minimum of SAM's "
         "objective.")


def two_passes() -> None:
    """One SAM step from a point on the wall of the sharp well, beside the plain gradient step."""
    grid = np.linspace(-1.6, 0.2, 1801)
    w = -0.78
    g = gradient(w)
    perturbed = w + RHO * np.sign(g)
    g_sam = gradient(perturbed)
    y_w, y_perturbed = float(loss(np.array(w))), float(loss(np.array(perturbed)))

    figure, axis = plt.subplots(figsize=(7.5, 3.6))
    axis.plot(grid, loss(grid), color="tab:blue")
    axis.plot([w], [y_w], "o", color="black", markersize=4)
    axis.annotate("$w$", (w, y_w), xytext=(-6, -2), textcoords="offset points", ha="right", va="top")
    axis.plot([perturbed], [y_perturbed], "o", color="tab:orange", markersize=4)
    axis.annotate(r"$w+\hat\epsilon$", (perturbed, y_perturbed), xytext=(0, 8), textcoords="offset points",
                  ha="center")
    arrow = {"arrowstyle": "->", "linewidth": 1.4}
    axis.annotate("", (perturbed, y_perturbed), (w, y_w),
                  arrowprops={**arrow, "color": "tab:orange", "linestyle": "--"})
    axis.text(0.17, 1.18, r"1. climb $\rho$ along the gradient: $\hat\epsilon = \rho\, g/|g|$",
              color="tab:orange", ha="right", fontsize=8)
    # The slope at the perturbed point, the gradient of the second pass.
    span = np.array([-0.12, 0.12])
    axis.plot(perturbed + span, y_perturbed + g_sam * span, color="tab:red", linewidth=2)
    axis.text(0.17, 0.84, r"2. second pass: the slope $g(w+\hat\epsilon)$ there", color="tab:red",
              ha="right", fontsize=8)
    # Directions of the two candidate steps from $w$ (fixed length: only the direction is drawn).
    length = 0.25
    axis.annotate("", (w - length * np.sign(g), -0.12), (w, -0.12), arrowprops={**arrow, "color": "tab:blue"})
    axis.text(w + 0.03, -0.12, r"plain step $-\eta\, g(w)$: into the sharp well", color="tab:blue",
              va="center", fontsize=8)
    axis.annotate("", (w - length * np.sign(g_sam), 0.12), (w, 0.12), arrowprops={**arrow, "color": "tab:red"})
    axis.text(w - length * np.sign(g_sam) + 0.03, 0.12,
              r"3. SAM step from $w$, $-\eta\, g(w+\hat\epsilon)$: away from it", color="tab:red",
              va="center", fontsize=8)
    axis.set_xlim(grid[0], grid[-1])
    axis.set_ylim(-0.3, 1.3)
    axis.set_xlabel("weight $w$")
    axis.set_ylabel("loss")
    axis.set_title("The two passes: the gradient is taken at the perturbed point and applied at $w$",
                   fontsize=9)
    save(figure, "sam", "two-passes",
         "One SAM step on the wall of the sharp well (arrows show directions only). The plain gradient "
         f"step goes down into the well. SAM first climbs $\\rho = {RHO}$ along the gradient, past the well's "
         "rim, to the highest loss nearby; the slope there, applied back at $w$, leads away from the sharp "
         "well, towards the flat one.")


def make() -> None:
    sharp_versus_flat()
    two_passes()
