"""ADOPT on the AMSGrad counter-example, for two values of beta2, with and without its clipping."""

import matplotlib.pyplot as plt
import torch

from annotated_opt.toys import counterexample

from .style import save

# As many steps as the AMSGrad page's figure: the site builds every figure each time.
STEPS = 20_000
COLOURS = {"Adam": "tab:red", "AMSGrad": "tab:blue", "ADOPT": "tab:orange", "ADOPT, no clipping": "tab:green"}


def make() -> None:
    torch.set_num_threads(1)
    figure, panels = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    steps = range(1, STEPS + 1)
    for axes, beta2 in zip(panels, (0.99, 0.5)):
        for name, optimizer_class in counterexample.CONTENDERS.items():
            trajectory = counterexample.run(optimizer_class, STEPS, betas=(0.9, beta2))
            axes.plot(steps, trajectory, color=COLOURS[name], linewidth=1.2, label=name)
        axes.axhline(-1.0, color="black", linestyle="--", linewidth=0.8)
        axes.set_xscale("log")
        axes.set_ylim(-1.08, 1.08)
        axes.set_xlabel("step $t$")
        axes.set_title(rf"$\beta_2 = {beta2}$")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("$x_t$ (optimum $-1$)")
    panels[0].legend(loc="center left")
    save(figure, "adopt", "counterexample",
         r"The AMSGrad counter-example (gradient $1010$ once every $101$ steps, $-10$ otherwise; learning rate "
         r"$0.5/\sqrt{t}$, $\beta_1 = 0.9$). ADOPT without clipping divides the rare gradient by a second moment "
         r"that does not contain it and heads to the optimum $x = -1$ for $\beta_2 = 0.99$ and $0.5$ alike; Adam "
         r"drifts to the worst point. ADOPT's default clipping, $t^{1/4}$, cuts the rare gradient: it drifts up "
         r"until the bound passes the rare gradient's normalised size (about $13$ for $\beta_2 = 0.99$, reached "
         r"after some 29,000 steps, beyond this figure; about $101$ for $\beta_2 = 0.5$, after $10^8$).")
