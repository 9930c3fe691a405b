"""The AMSGrad counter-example: Adam drifts to the worst point, AMSGrad towards the best."""

import matplotlib.pyplot as plt

from annotated_opt.adam import Adam
from annotated_opt.amsgrad import AMSGrad
from annotated_opt.toys import counterexample as adam_counterexample

from .style import save

STEPS = 20_000


def make() -> None:
    figure, axes = plt.subplots(figsize=(7, 3.6))
    steps = range(1, STEPS + 1)
    for optimizer_class, colour in ((Adam, "tab:red"), (AMSGrad, "tab:blue")):
        trajectory = adam_counterexample.run(optimizer_class, STEPS)
        axes.plot(steps, trajectory, color=colour, linewidth=1.2, label=optimizer_class.__name__)
    axes.axhline(-1.0, color="black", linestyle="--", linewidth=0.8, label="optimum $x = -1$")
    axes.set_xscale("log")
    axes.set_ylim(-1.08, 1.08)
    axes.set_xlabel("step $t$")
    axes.set_ylabel("$x_t$")
    axes.set_title(r"$f_t(x) = 1010x$ once every 101 steps, $-10x$ otherwise, on $[-1, 1]$")
    axes.legend(loc="center left")
    axes.grid(alpha=0.3)
    save(figure, "amsgrad", "counterexample",
         "The counter-example of Reddi et al. ($(\\beta_1, \\beta_2) = (0.9, 0.99)$, learning rate "
         "$0.5/\\sqrt{t}$): the gradients "
         "sum to a positive number every period, so the best point is $x = -1$. Adam forgets the rare large "
         "gradient and drifts to $x = +1$; AMSGrad keeps its largest second moment and heads to $x = -1$.")
