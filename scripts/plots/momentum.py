"""The momentum guide's pictures: averages of a noisy series for several beta, with and without
dampening and debiasing, computed with the composable `AverageGrad` stat itself."""

import torch

from annotated_opt.composable.stats import AverageGrad
from annotated_opt.composable.steppers import debias

from .style import plt, save

BETAS = (0.5, 0.7, 0.9, 0.99)


def noisy_series(points: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""A slowly varying signal plus Gaussian noise, and a first value far off (an outlier)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.linspace(-4, 4, points, dtype=torch.float64)
    signal = 0.8 * torch.cos(x / 2) + 0.1 * x
    y = signal + 0.3 * torch.randn(points, generator=generator, dtype=torch.float64)
    y[0] = 1.6
    return x, signal, y


def averages(y: torch.Tensor, beta: float, dampening: bool, debiased: bool) -> list[float]:
    r"""Feed the series, one value per step, through the stat, as an optimizer feeds gradients."""
    stat = AverageGrad(dampening=dampening)
    state = stat.init_state(y[0])
    values = []
    for step, value in enumerate(y, start=1):
        stat.update(state, value, momentum=beta)
        average = state["grad_avg"].item()
        if debiased:
            average /= debias(beta, state["mom_damp"], step)
        values.append(average)
    return values


def panel_figure(dampening: bool, debiased: bool) -> "plt.Figure":
    x, signal, y = noisy_series()
    figure, axes = plt.subplots(1, len(BETAS), figsize=(13, 3.0), sharey=True)
    for ax, beta in zip(axes, BETAS):
        ax.scatter(x, y, s=6, color="0.6", label="data")
        ax.plot(x, signal, color="0.3", linewidth=1, linestyle="--", label="signal")
        ax.plot(x, averages(y, beta, dampening, debiased), color="tab:red", linewidth=1.8, label="average")
        ax.set_title(rf"$\beta = {beta}$")
        ax.set_xticks([])
    if not dampening:
        axes[0].set_ylim(-2.0, 4.0)
        for ax, beta in zip(axes, BETAS):
            ax.text(0.02, 0.95, rf"scale $\times{1 / (1 - beta):.3g}$", transform=ax.transAxes, va="top")
    axes[0].legend(loc="lower center", fontsize=8)
    figure.tight_layout()
    return figure


def make() -> None:
    save(panel_figure(dampening=False, debiased=False), "momentum", "without-dampening",
         r"Without dampening, the buffer is a discounted sum of the values: on a steady signal it settles "
         r"near $1/(1-\beta)$ times the signal (off the chart for $\beta = 0.99$), which is why SGD's momentum "
         r"multiplies the effective learning rate.")
    save(panel_figure(dampening=True, debiased=False), "momentum", "with-dampening",
         "With dampening, the average stays at the scale of the data, but it starts from zero: for a large "
         r"$\beta$ it is dragged towards zero for the first $1/(1-\beta)$ steps, and it lags behind the signal.")
    save(panel_figure(dampening=True, debiased=True), "momentum", "debiased",
         r"Dividing by $1 - \beta^t$ removes the pull towards zero: the first debiased value is the first data "
         r"point itself (here an outlier, which a large $\beta$ then remembers for a long time). The lag remains.")


if __name__ == "__main__":
    make()
