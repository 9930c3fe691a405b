"""
The matrix preconditioners against AdamW (and Muon, once registered) on two problems, three seeds each:

* a rotated ill-conditioned quadratic in a 24 x 24 weight matrix, f(W) = 1/2 tr((W - W*)^T A (W - W*) B) with
  A = U diag(a) U^T and B = V diag(b) V^T, a and b spread over two decades, U and V random rotations. Its Hessian
  is A (x) B, exactly the Kronecker structure Shampoo and SOAP model, and in no way diagonal: a per-coordinate
  method sees only the rotated mixture;
* the character model of `annotated_opt.toys.charlm`, made small enough (128 hidden units, 120 steps) to run
  in the site build.

Each optimizer gets the learning rate, from a grid of five, with the lowest final loss on seed 0 (the grid for
the character model uses 40 steps). Loss is drawn against steps and against wall-clock seconds (one thread).
The whole figure takes well under a minute on one core.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys import charlm

from .style import save

SEEDS = (0, 1, 2)
# The optimizers compared, by registry key; those not registered (yet) are left out.
NAMES = ("adamw", "muon", "shampoo", "soap", "kron", "galore")
# Settings other than the learning rate: every 10 steps for the expensive parts, as in practice.
SETTINGS = {
    "adamw": {"weight_decay": 0.0},
    "shampoo": {"precondition_frequency": 10},
    "soap": {"weight_decay": 0.0},
}
GRID = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
QUADRATIC_STEPS = 150
CHAR_STEPS = 120


class Split(torch.optim.Optimizer):
    """
    Muon for the matrices and AdamW for the rest (embeddings, biases), as Muon is meant to be used: one
    object that steps both.
    """

    def __init__(self, *parts: torch.optim.Optimizer) -> None:
        self.parts = parts
        super().__init__([p for part in self.parts for g in part.param_groups for p in g["params"]], {})

    def step(self, closure=None):  # noqa: D102
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss


def build(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The optimizer `name` over `params`; Muon gets the 2-d ones and AdamW the others."""
    info = REGISTRY[name]
    config = {"lr": lr, **SETTINGS.get(name, {})}
    if name == "muon":
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        parts = [info.build(matrices, **config)]
        if others:
            parts.append(REGISTRY["adamw"].build(others, lr=lr / 10, weight_decay=0.0))
        return Split(*parts)
    return info.build(params, **config)


def quadratic(seed: int, size: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rotated ill-conditioned quadratic of `seed`: A, B, the minimiser W* and the start."""
    generator = torch.Generator().manual_seed(seed)

    def rotated(spread: float) -> torch.Tensor:
        rotation, _ = torch.linalg.qr(torch.randn(size, size, generator=generator))
        return rotation @ torch.diag(torch.logspace(0, spread, size)) @ rotation.T

    return rotated(-2), rotated(-2), torch.randn(size, size, generator=generator), torch.zeros(size, size)


def run_quadratic(name: str, lr: float, seed: int, steps: int = QUADRATIC_STEPS) -> tuple[list, list]:
    """Losses and cumulative seconds; the gradient (A (W - W*) B) carries 10% noise, as a minibatch would."""
    a, b, target, start = quadratic(seed)
    weight = start.clone().requires_grad_()
    optimizer = build(name, [weight], lr)
    generator = torch.Generator().manual_seed(100 + seed)
    losses, seconds, elapsed = [], [], 0.0
    for _ in range(steps):
        error = weight.detach() - target
        losses.append(0.5 * torch.trace(error.T @ a @ error @ b).item())
        gradient = a @ error @ b
        weight.grad = gradient + 0.1 * gradient.norm() / error.numel() ** 0.5 * torch.randn(
            gradient.shape, generator=generator)
        began = time.perf_counter()
        optimizer.step()
        elapsed += time.perf_counter() - began
        seconds.append(elapsed)
    return losses, seconds


def run_charlm(name: str, lr: float, seed: int, steps: int = CHAR_STEPS) -> tuple[list, list]:
    """Training losses and cumulative seconds (forward, backward and step) of the small character model."""
    model = charlm.charlm(hidden=128, seed=seed)
    seconds: list[float] = []
    began = time.perf_counter()

    def clock(step: int, loss: float) -> None:
        seconds.append(time.perf_counter() - began)

    result = charlm.train(model, lambda m: build(name, list(m.parameters()), lr), data=DATA, steps=steps,
                          batch_size=64, seed=seed, after_step=clock)
    return result.losses, seconds


def tuned(run, name: str, steps: int) -> float:
    """The learning rate of `GRID` with the lowest mean loss over the last tenth of a run on seed 0."""
    def score(lr: float) -> float:
        losses = np.asarray(run(name, lr, 0, steps)[0])
        tail = losses[-max(1, steps // 10):]
        return float(np.mean(tail)) if np.all(np.isfinite(tail)) else float("inf")
    return min(GRID, key=score)


def panel(axes_steps, axes_time, runs: dict, title: str, log: bool) -> None:
    for name, (lr, seeds) in runs.items():
        losses = np.asarray([s[0] for s in seeds])
        seconds = np.asarray([s[1] for s in seeds]).mean(axis=0)
        mean = losses.mean(axis=0)
        line, = axes_steps.plot(np.arange(1, len(mean) + 1), mean, label=f"{REGISTRY[name].name} (lr {lr:g})")
        axes_steps.fill_between(np.arange(1, len(mean) + 1), losses.min(axis=0), losses.max(axis=0),
                                color=line.get_color(), alpha=0.15, linewidth=0)
        axes_time.plot(seconds, mean, color=line.get_color())
    for axes, label in ((axes_steps, "step"), (axes_time, "seconds (one thread)")):
        axes.set_xlabel(label)
        axes.grid(alpha=0.3)
        if log:
            axes.set_yscale("log")
    axes_steps.set_ylabel("loss")
    axes_steps.set_title(title)
    axes_steps.legend(fontsize=8)


DATA = None


def make() -> None:
    global DATA
    torch.set_num_threads(1)
    DATA = charlm.load_chars()
    names = [name for name in NAMES if name in REGISTRY]
    for key, run, steps, title, log in (
        ("quadratic", run_quadratic, QUADRATIC_STEPS, "Rotated ill-conditioned quadratic (24 x 24)", True),
        ("charlm", run_charlm, CHAR_STEPS, "Character model", False),
    ):
        grid_steps = steps if key == "quadratic" else 40
        runs = {}
        for name in names:
            lr = tuned(run, name, grid_steps)
            runs[name] = (lr, [run(name, lr, seed, steps) for seed in SEEDS])
        caption = (f"{title}: mean loss of three seeds (band: lowest to highest) against steps and against "
                   "wall-clock seconds, each optimizer at the best learning rate of a grid of five.")
        # The same figure on the page of each matrix preconditioner that is registered.
        for page in ("shampoo", "soap", "kron", "galore"):
            if page in REGISTRY:
                figure, (axes_steps, axes_time) = plt.subplots(1, 2, figsize=(11, 3.8))
                panel(axes_steps, axes_time, runs, title, log)
                save(figure, page, f"matrix-{key}", caption)
