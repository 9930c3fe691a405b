"""Muon: five Newton-Schulz steps on the singular values; Muon + AdamW against AdamW on the character model."""

import matplotlib.pyplot as plt
import numpy as np
import torch

from annotated_opt import AdamW, Muon, split_for_muon
from annotated_opt.muon import MUON_COEFFICIENTS, NEWTON_SCHULZ_COEFFICIENTS
from annotated_opt.toys import charlm

from .style import save

STEPS = 400


def singular_value_map(coefficients: tuple[float, float, float], s: np.ndarray, steps: int = 5) -> np.ndarray:
    """p applied `steps` times to each singular value, p(s) = a s + b s^3 + c s^5."""
    a, b, c = coefficients
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return s


class MuonWithAdamW:
    """The recipe of the Muon page: Muon for the hidden matrices, AdamW for the rest, stepped together."""

    def __init__(self, model: torch.nn.Module) -> None:
        hidden, rest = split_for_muon(model)
        self.optimizers = [Muon(hidden, lr=0.02, weight_decay=0.01), AdamW(rest, lr=3e-3, weight_decay=0.01)]

    def zero_grad(self) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad()

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for optimizer in self.optimizers:
            optimizer.step()
        return loss


def make() -> None:
    torch.set_num_threads(1)
    figure, axes = plt.subplots(figsize=(7, 3.6))
    s = np.logspace(-3, 0, 400)
    for label, coefficients in (("Muon (3.4445, -4.7750, 2.0315)", MUON_COEFFICIENTS),
                                ("torch's test set (3.4, -4.7, 2.0)", (3.4, -4.7, 2.0)),
                                ("classical (15/8, -10/8, 3/8)", NEWTON_SCHULZ_COEFFICIENTS)):
        axes.plot(s, singular_value_map(coefficients, s), linewidth=1.5, label=label)
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("singular value $s$ after normalisation")
    axes.set_ylabel("after five steps")
    axes.set_title("What five Newton-Schulz steps do to each singular value")
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    save(figure, "muon", "singular-values",
         "p applied five times to a singular value s in (0, 1], for three coefficient sets. The classical "
         "iteration reaches 1 only for s above about 0.1; Muon's coefficients lift every s above 0.003 into "
         "a band around 1 (0.7 to 1.2) at the price of never settling exactly at 1.")

    data = charlm.load_chars()
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for label, make_optimizer in (("AdamW (lr 3e-3)", lambda model: AdamW(model.parameters(), lr=3e-3,
                                                                            weight_decay=0.01)),
                                  ("Muon (lr 0.02) + AdamW (lr 3e-3)", MuonWithAdamW)):
        result = charlm.train(charlm.charlm(seed=0), make_optimizer, data=data, steps=STEPS, seed=0,
                              evaluate_before_step=False)
        window = 20
        smoothed = np.convolve(result.losses, np.ones(window) / window, mode="valid")
        axes.plot(np.arange(window, len(result.losses) + 1), smoothed, linewidth=1.5,
                  label=f"{label}: held-out {result.heldout_loss:.3f}")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss (nats, mean of 20 steps)")
    axes.set_title("The character model: Muon on the hidden layer")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    save(figure, "muon", "charlm",
         "Training loss of the character model with AdamW alone and with Muon on its one hidden matrix "
         "(embedding, output head and biases on AdamW), same seed and batches; the held-out loss after "
         f"{STEPS} steps is in the legend. One seed and untuned learning rates: a demonstration, not a benchmark.")
