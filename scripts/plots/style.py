"""Shared, deterministic matplotlib output for every plot of the site.

A figure is saved as `docs/generated/plots/<page>/<slug>.svg` with its caption beside it in
`<slug>.txt`; the site shows every figure of a page's folder on that page (`page` is an optimizer's
registry key such as `adam`, or a guide's file name such as `momentum`).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLOTS_DIR = ROOT / "docs" / "generated" / "plots"

# Same input, same bytes: fixed ids inside the SVG and no creation date.
matplotlib.rcParams["svg.hashsalt"] = "annotated_opt"
matplotlib.rcParams["svg.fonttype"] = "path"
# Type that stays legible when a figure is shown at the width of a page's column, or of a phone:
# ticks and legends no smaller than 8 points, lines a little heavier than matplotlib's defaults.
matplotlib.rcParams.update({
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8,
    "lines.linewidth": 1.6,
})


def save(figure: "plt.Figure", page: str, slug: str, caption: str) -> Path:
    """Write `figure` for `page` under the name `slug`, with a one-sentence `caption`."""
    folder = PLOTS_DIR / page
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.svg"
    figure.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    (folder / f"{slug}.txt").write_text(caption.strip() + "\n")
    return path
