"""RAdam's rectification term r_t against the step, for several beta2."""

import matplotlib.pyplot as plt
import numpy as np

from annotated_opt.radam import rectification

from .style import save

BETA2S = (0.9, 0.99, 0.999, 0.9999)


def make() -> None:
    figure, axes = plt.subplots(figsize=(7, 3.6))
    steps = np.unique(np.logspace(0, 5, 600).astype(int))
    for beta2 in BETA2S:
        r = [rectification(beta2, int(t)) for t in steps]
        axes.plot(steps, r, linewidth=1.5, label=rf"$\beta_2 = {beta2}$")
    axes.set_xscale("log")
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("step $t$")
    axes.set_ylabel("$r_t$")
    axes.set_title("RAdam's rectification term: a warmup set by $\\beta_2$")
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    save(figure, "radam", "rectification",
         r"The rectification term $r_t$ that multiplies RAdam's adaptive step, for several $\beta_2$ (undefined, and "
         r"not drawn, while $\rho_t \le 4$; torch's rule takes SGD steps until $\rho_t > 5$). The larger "
         r"$\beta_2$, the "
         r"longer the built-in warmup: $r_t$ passes $0.9$ after about $2.7/(1 - \beta_2)$ steps.")
