r"""
# Low-precision parameters and float32 master weights

A `bfloat16` number keeps 8 significant bits. Next to $1.0$ the closest representable values are
$1 - 2^{-8}$ and $1 + 2^{-7}$, so an update smaller than half that gap rounds away to nothing:

$$\mathrm{round}_{\text{bf16}}\big(\theta + \Delta\theta\big) = \theta
  \qquad\text{whenever}\qquad |\Delta\theta| < 2^{-9}\,|\theta| \text{ (roughly)}.$$

With a learning rate of $10^{-3}$, Adam moves each coordinate by about $10^{-3}$ per step: a weight
larger than $0.5$ in magnitude never changes at all, although every gradient was right, and one between
$0.25$ and $0.5$ moves by a whole spacing, $2^{-9} \approx 2\times10^{-3}$, twice the step. `float16`
keeps 11 bits, which only moves the threshold, and adds a second trap: its smallest positive number is
about $6\times10^{-8}$, so Adam's default $\epsilon = 10^{-8}$ *is* zero in `float16`, and a coordinate
whose gradient is zero computes $0/0$. `torch.optim` behaves exactly like this; so do our optimizers by
default (the `"native"` behaviour), because it is what the arithmetic in the parameter's own dtype does.

## Master weights

The remedy of mixed-precision training
([Micikevicius et al., 2018](https://arxiv.org/abs/1710.03740)) keeps a `float32` copy of every
low-precision weight, the *master* weight $\theta^{32}$, and applies the updates to it:

$$\theta^{32}_t = \theta^{32}_{t-1} + \Delta\theta_t \qquad
  \theta_t = \mathrm{round}_{\text{bf16}}\big(\theta^{32}_t\big).$$

The model computes with the rounded copy; the small updates accumulate in the master until they are
large enough to show. With `master_weights=True` in a parameter group (a `float16` or `bfloat16`
parameter; for other dtypes the option does nothing):

* `state["master_param"]` holds $\theta^{32}$, created from the parameter at its first step;
* `step_param` receives the master instead of the parameter, and a `float32` gradient, so its state
  (moments, buffers) is created in `float32` too;
* after the update the parameter receives the rounded master.

Given the same gradients, the master follows *exactly* the trajectory `float32` training would take:
the arithmetic is the same, only the copy the model sees is rounded. The cost is 4 bytes per parameter
for the master and `float32` state instead of half-precision state.

The other well-known remedy, Kahan-compensated updates, keeps a half-precision buffer of the rounding
error instead of a `float32` master. It pays off when the moments are also kept in half precision; here,
where `step_param` builds its state from the tensor it is given and so works in `float32`, it would save
2 bytes of about 14 per parameter and give only about 16 significant bits instead of 24. We keep the
exact option.

## Keeping the master and the parameter in agreement

The master is the truth, but the parameter can be changed from outside: a checkpoint loaded into the
model, weights re-initialised, a `torch.optim` optimizer stepping the same parameters. Before the master is
used, the parameter's version counter (`param._version`, which every in-place operation increments) is
compared with the one recorded after our last write. When it differs and the parameter is no longer the
rounding of the master, the parameter wins and the master is re-seeded from it. (A change made through
`param.data` does not increment the counter and is not seen: change weights in place under
`torch.no_grad()` instead.)

The write-back happens as soon as the optimizer moves on to the next parameter, and once more at the
end of `step` for any master changed after its write-back (an optimizer that collects a whole group
before updating it). Each master remembers its own version at the time of the write, so nothing is
written twice.

Inside `torch.compile(opt.step)` a version counter is not a number a graph can branch on. There the
agreement is tested on the values, element by element and without a branch,

$$\theta^{32} \leftarrow \begin{cases} \theta^{32} & \text{where } \mathrm{round}(\theta^{32}) = \theta \\
  \theta & \text{elsewhere,} \end{cases}$$

which re-seeds the values changed from outside and only those (the eager test re-seeds the whole
tensor when any value changed; the compiled one keeps the extra bits of the values left alone), and
every master is written back again at the end of the step.

## Wrappers write through the master

A wrapper optimizer moves the weights outside its base's update: [SAM](sam.md) puts back the weights it
perturbed, [Lookahead](lookahead.md) pulls the fast weights to the slow ones. Written to the parameter
alone, such a move would be rounded, and the master, seeing a parameter changed from outside, would be
re-seeded from the rounded value: the precision the master is for would be lost at every step (SAM) or
every synchronisation (Lookahead). So a wrapper reads the master (`current_master`) and sets a value
through it (`assign`): the master takes the value exactly, the parameter its rounding,

$$\theta^{32} \leftarrow v \qquad \theta \leftarrow \mathrm{round}\big(\theta^{32}\big),$$

which is what the base's next step expects to find: a parameter that is the rounding of its master.
With the same gradients, a wrapped half-precision run then follows the `float32` run bit for bit, as
an unwrapped one does.

## Checkpoints

`torch.optim.Optimizer.load_state_dict` casts every floating-point state tensor to the dtype of its
parameter, which would round the master to `bfloat16` and lose what it is for. The optimizer's
`load_state_dict` keeps the `float32` state of groups that use master weights as it was saved
(`float32_state` below finds it before torch's cast, and the base class puts it back).
"""

from collections.abc import Iterable
from typing import Any

import torch

MASTER_KEY = "master_param"
LOW_PRECISION_DTYPES = (torch.float16, torch.bfloat16)


def check_master_weights(value: Any) -> None:
    r"""The option is a switch; anything but `True` or `False` is a mistake worth naming."""
    if value is not True and value is not False:
        raise ValueError(f"Invalid master_weights: {value!r} (must be True or False)")


def uses_master(group: dict[str, Any], tensor: torch.Tensor) -> bool:
    r"""Master weights apply to `float16` and `bfloat16` tensors of a group that asks for them."""
    return bool(group.get("master_weights", False)) and tensor.dtype in LOW_PRECISION_DTYPES


def cast_floating_state(state: dict[str, Any], dtype: torch.dtype, skip: Iterable[str] = ()) -> None:
    r"""
    Cast every floating-point tensor of one parameter's state to `dtype`, used when master weights are
    switched on or off for a parameter that already has state.
    """
    for key, value in list(state.items()):
        if key not in skip and isinstance(value, torch.Tensor) and value.is_floating_point():
            state[key] = value.to(dtype)


class MasterWeights:
    r"""
    ### The bookkeeping of one optimizer

    `handed_out` maps each parameter whose master was given to `step_param` in the current step to the
    tensor that receives the write (the parameter, or its real view), the master, and the master's
    version at the last write. `synced_versions` maps a parameter to its own version right after that
    write. Neither is saved in a checkpoint: after loading, one comparison of values re-establishes them.
    """

    def __init__(self) -> None:
        self.handed_out: dict[torch.Tensor, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self.synced_versions: dict[torch.Tensor, int] = {}

    @torch.no_grad()
    def master(self, param: torch.Tensor, target: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        r"""
        The `float32` master of `param` (whose floating view `target` is what the update writes to),
        created or re-seeded as needed.
        """
        master = state.get(MASTER_KEY)
        if master is None:
            # Switched on now: the master starts as the exact value of the parameter, and any state the
            # parameter already has moves to `float32` with it.
            cast_floating_state(state, torch.float32)
            master = state[MASTER_KEY] = target.detach().to(torch.float32, copy=True)
        elif torch.compiler.is_compiling():
            # Inside a compiled step a version counter is no number to branch on: the same test on the
            # values, element by element, with no branch (where the parameter is no longer its master's
            # rounding, the parameter wins).
            master.copy_(torch.where(master.to(target.dtype) == target, master, target))
        elif self.synced_versions.get(param) != param._version and not torch.equal(master.to(target.dtype), target):
            # Changed from outside since our last write: the parameter wins.
            master.copy_(target)
        self.handed_out[param] = (target, master, -1)
        return master

    @torch.no_grad()
    def write_back(self, param: torch.Tensor) -> None:
        r"""
        $$\theta_t = \mathrm{round}\big(\theta^{32}_t\big)$$
        `copy_` rounds to nearest (ties to even), the rounding the master's own arithmetic would see.
        It may run after `step`'s own `no_grad` has ended (the final flush), so it switches gradients
        off itself.
        """
        target, master, _ = self.handed_out[param]
        target.copy_(master)
        if torch.compiler.is_compiling():
            # No version counters inside a compiled step: `flush` writes every master back again (the
            # same rounding), and `master` compares values.
            return
        self.synced_versions[param] = param._version
        self.handed_out[param] = (target, master, master._version)

    def flush(self) -> None:
        r"""Write back every master that changed since its last write."""
        for param, (_, master, written_version) in self.handed_out.items():
            if torch.compiler.is_compiling() or master._version != written_version:
                self.write_back(param)

    def end_step(self) -> None:
        r"""At the end of a step: flush, and forget what was handed out."""
        self.flush()
        self.handed_out.clear()

    def hand_back(self, param: torch.Tensor) -> None:
        r"""
        Forget the master of `param` handed out in this step: a wrapper has set it since (SAM's restore,
        through `assign`), and the base optimizer that steps next writes it back itself. Writing it back
        again at the end of the step would at best repeat that write, and, over a base that does not
        keep masters (a `torch.optim` one), undo the base's update.
        """
        self.handed_out.pop(param, None)

    @staticmethod
    def release(state: dict[str, Any], dtype: torch.dtype) -> None:
        r"""Master weights switched off for a parameter: drop its master and return its state to `dtype`."""
        del state[MASTER_KEY]
        cast_floating_state(state, dtype)


@torch.no_grad()
def current_master(
    group: dict[str, Any], state: dict[str, Any], weights: torch.Tensor, reseed: bool = True
) -> torch.Tensor | None:
    r"""
    ### For wrappers: the master of a parameter, if it has one

    `weights` is the parameter's floating view and `state` holds its master, if any. Returns `None`
    when the parameter has no master in use. If the parameter was changed from outside (it is no longer
    the master's rounding), the parameter wins, as above: the master is re-seeded from it, or, with
    `reseed=False` (only looking), left alone and `None` returned, the parameter being the truth.
    """
    master = state.get(MASTER_KEY)
    if master is None or not uses_master(group, weights):
        return None
    if not torch.equal(master.to(weights.dtype), weights):
        if not reseed:
            return None
        master.copy_(weights)
    return master


@torch.no_grad()
def assign(weights: torch.Tensor, master: torch.Tensor | None, value: torch.Tensor) -> None:
    r"""
    Set a parameter to `value`, through its master when it has one:
    $$\theta^{32} \leftarrow v \qquad \theta \leftarrow \mathrm{round}\big(\theta^{32}\big)$$
    """
    if master is None:
        weights.copy_(value)
        return
    master.copy_(value)
    weights.copy_(master)


def float32_state(state_dict: dict[str, Any]) -> dict[Any, dict[str, torch.Tensor]]:
    r"""
    The floating-point state tensors of a saved state dict that must keep their saved dtype when loaded:
    all those of parameters in groups with `master_weights=True`, keyed by the saved parameter index.
    """
    kept: dict[Any, dict[str, torch.Tensor]] = {}
    for group in state_dict["param_groups"]:
        if not group.get("master_weights", False):
            continue
        for index in group["params"]:
            entries = state_dict["state"].get(index, {})
            floating = {
                key: value for key, value in entries.items()
                if isinstance(value, torch.Tensor) and value.is_floating_point() and key != "step"
            }
            if floating:
                kept[index] = floating
    return kept
