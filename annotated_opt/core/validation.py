r"""
# Checking hyper-parameters

A wrong hyper-parameter should fail loudly when the optimizer is built, not as a NaN a thousand steps
later. These checks raise an exception that names the argument and the value it was given, in the
style of `torch.optim`: `Invalid beta parameter at index 0: 1.0`.

For an optimizer with a `torch.optim` twin the exception has the *type* torch raises for the same
value, so that code catching torch's errors catches ours:

* a value out of range, NaN included: `ValueError`;
* a value that cannot be compared with a number at all (a string, `None`, a complex number):
  `TypeError`, as torch's own comparison `lr < 0.0` raises;
* a tensor of several values where one number is expected: `RuntimeError`, what the truth value of
  such a comparison raises;
* a sequence with too few entries (`betas=(0.9,)`): `IndexError`, what reading the missing entry
  raises in torch; one with too many: `ValueError`. A sequence torch only unpacks when it steps
  (Rprop's `step_sizes`) is a `ValueError` either way, as the unpacking raises.

Some arguments torch does not check at all: it hands them to its step (ASGD's `lambd`, Muon's `eps`,
a bound of a `clamp`), which takes any value its arithmetic takes, a negative one included, and
raises when that arithmetic fails. Those values are taken here too, with torch's numbers, and a bad
one fails in the step as in torch's.

Where this library is stricter than torch (NaN is refused everywhere, while torch's SGD compares
with `<`, which NaN passes, and then steps to NaN parameters), it refuses with the same types.
"""

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch


def check(name: str, value: Any, holds: Callable[[Any], Any], requirement: str) -> None:
    r"""
    Refuse `value` unless `holds(value)`: a `ValueError` when it does not hold, and, when the value
    cannot even be compared, the exception the comparison raised, reworded to name the argument.
    """
    try:
        valid = bool(holds(value))
    except (TypeError, RuntimeError) as error:
        raise type(error)(f"Invalid {name}: {value!r} ({requirement}; {error})") from None
    if not valid:
        raise ValueError(f"Invalid {name}: {value} ({requirement})")


def check_non_negative(name: str, value: Any) -> None:
    r"""A quantity that must be $\ge 0$: a learning rate, $\epsilon$, a weight decay, a momentum."""
    check(name, value, lambda v: v >= 0, "must be >= 0")  # written this way so that NaN fails too


def check_positive(name: str, value: Any) -> None:
    r"""A quantity that must be $> 0$: SparseAdam's learning rate and $\epsilon$, as torch requires."""
    check(name, value, lambda v: v > 0, "must be > 0")


def check_real(name: str, value: Any) -> None:
    r"""A real number of any sign (SGD's dampening, L-BFGS's tolerances), but not NaN."""
    check(name, value, lambda v: v >= -float("inf"), "must be a real number, not NaN")


def check_scalar(name: str, value: Any) -> None:
    r"""
    A number or a one-element tensor, for an argument torch passes on as a scalar (`alpha=`) without
    checking it: anything else is the `TypeError` torch's step then raises.
    """
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise TypeError(f"Invalid {name}: {value} (must be a number or a one-element tensor)")


def is_nan(value: Any) -> bool:
    r"""A NaN, as a number or as a tensor of one element."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and bool(value.isnan())
    return isinstance(value, numbers.Real) and math.isnan(value)


def check_passed_on(name: str, value: Any) -> None:
    r"""
    An argument torch does not check but passes on to the arithmetic of its step (ASGD's `lambd`,
    `alpha` and `t0`, Muon's `eps`, Rprop's bounds on the step sizes): any value that arithmetic
    takes is taken, of any sign, and a value it cannot take fails in the step, with torch's
    exception. Refused at once are only the two values this library refuses everywhere: NaN
    (`ValueError`), which torch would carry into the parameters or, compared, silently ignore; and a
    complex number, with the `RuntimeError` a tensor operation of torch's raises when it meets one
    where a real number goes ("value cannot be converted to type double without overflow").
    """
    if is_nan(value):
        raise ValueError(f"Invalid {name}: {value} (must not be NaN)")
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise RuntimeError(f"Invalid {name}: {value} (must be a real number, not complex)")


def check_count(name: str, value: Any, limit: int) -> None:
    r"""
    A number of iterations below `limit`, which torch compares with the limit (a `ValueError` at or
    above it) and then uses as the bound of a `range`: so an integer, where a `bool` or an integer
    tensor of one element counts as one (a float is the `TypeError` of `range`), and a negative count
    runs no iteration at all, as in torch.
    """
    check(name, value, lambda v: v < limit, f"must be less than {limit}")
    try:
        operator.index(value)
    except TypeError as error:
        raise TypeError(f"Invalid {name}: {value!r} (must be an integer; {error})") from None


def check_in_unit_interval(name: str, value: Any) -> None:
    r"""A decay rate that must lie in $[0, 1)$: at $1$ an average never forgets its first value."""
    check(name, value, lambda v: 0.0 <= v < 1.0, "must be in [0, 1)")


def check_length(name: str, values: Sequence[Any], count: int, expected: str) -> None:
    r"""
    A sequence of `count` values: too few is an `IndexError` (torch reads the missing entry by its
    index), too many a `ValueError` (torch unpacks it when it steps).
    """
    if len(values) < count:
        raise IndexError(f"Invalid {name}: {values} (expected {expected})")
    if len(values) > count:
        raise ValueError(f"Invalid {name}: {values} (expected {expected})")


def check_unpacks(name: str, values: Sequence[Any], count: int) -> None:
    r"""
    A sequence torch does not check but unpacks into `count` names when it steps: any other length is
    the `ValueError` of that unpacking (`not enough values to unpack`), raised here at once.
    """
    if len(values) != count:
        raise ValueError(f"Invalid {name}: {values} (expected {count} values)")


def check_betas(betas: Sequence[Any], count: int = 2, name: str = "betas") -> None:
    r"""
    Adam-style `betas` $(\beta_1, \beta_2)$: `count` decay rates, each in $[0, 1)$ (three for
    [Adan](../adan.md) and [AdEMAMix](../ademamix.md)); `name` is the argument's, for the message
    ([MARS](../mars.md) has a second pair, `betas_1d`).
    """
    check_length(name, betas, count, f"{count} values")
    singular = "beta" if name == "betas" else name
    for index, beta in enumerate(betas):
        check(f"{singular} parameter at index {index}", beta, lambda b: 0.0 <= b < 1.0, "must be in [0, 1)")


def torch_adam_betas(betas: Sequence[Any], foreach: bool | None, capturable: bool) -> tuple[Any, ...]:
    r"""
    `torch.optim.Adam` and `AdamW` take $\beta_1, \beta_2$ as two floats or as two one-element
    tensors (which a schedule may update in place), and refuse a mix of the two, or an `int`, with a
    `ValueError`. A tensor is refused with `foreach=True` unless `capturable`, as by torch. Returns
    the betas as torch stores them: a one-element tensor as a 0-d tensor, a float as it is.
    """
    floats = all(isinstance(beta, float) for beta in betas)
    if not floats and not all(isinstance(beta, torch.Tensor) for beta in betas):
        raise ValueError(f"Invalid betas: {betas} (betas must be either both floats or both Tensors)")
    if floats:
        return tuple(betas)
    for index, beta in enumerate(betas):
        if foreach and not capturable:
            raise ValueError(f"betas[{index}] as a Tensor is not supported for capturable=False and foreach=True")
        if beta.numel() != 1:
            raise ValueError(f"Invalid betas: Tensor betas[{index}] must be 1-element, got shape {tuple(beta.shape)}")
    return tuple(beta.squeeze() for beta in betas)


class UnsupportedParameterError(ValueError, RuntimeError):
    r"""
    A parameter the optimizer cannot take (a complex one, for an algorithm defined on real numbers
    only), refused when it is added. It is a `ValueError`, a bad input found at construction, and also
    torch's `RuntimeError`, which torch raises for the same parameter (when it steps), so code written
    for either catches it.
    """
