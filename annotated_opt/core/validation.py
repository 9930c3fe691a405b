r"""
# Checking hyper-parameters

A wrong hyper-parameter should fail loudly when the optimizer is built, not as a NaN a thousand steps
later. These checks raise a `ValueError` that names the argument and the value it was given, in the
style of `torch.optim`: `Invalid beta parameter at index 0: 1.0`.
"""

from collections.abc import Sequence
from typing import Any


def check_non_negative(name: str, value: Any) -> None:
    r"""A quantity that must be $\ge 0$: a learning rate, $\epsilon$, a weight decay, a momentum."""
    if not value >= 0:  # written this way so that NaN fails too
        raise ValueError(f"Invalid {name}: {value} (must be >= 0)")


def check_in_unit_interval(name: str, value: Any) -> None:
    r"""A decay rate that must lie in $[0, 1)$: at $1$ an average never forgets its first value."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value} (must be in [0, 1))")


def check_betas(betas: Sequence[Any], count: int = 2, name: str = "betas") -> None:
    r"""
    Adam-style `betas` $(\beta_1, \beta_2)$: `count` decay rates, each in $[0, 1)$ (three for
    [Adan](../adan.md) and [AdEMAMix](../ademamix.md)); `name` is the argument's, for the message
    ([MARS](../mars.md) has a second pair, `betas_1d`).
    """
    if len(betas) != count:
        raise ValueError(f"Invalid {name}: {betas} (expected {count} values)")
    singular = "beta" if name == "betas" else name
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid {singular} parameter at index {index}: {beta} (must be in [0, 1))")
