r"""
# Learning-rate schedules of the Adam family

Adam-type optimizers are rarely run at a constant learning rate. Three schedules come with them so
often that they are part of how the optimizers are used:

**Linear warmup.** The first updates use a fraction of $\eta$, growing linearly to $\eta$ over
$w$ updates. Early on, Adam's second moment rests on a handful of gradients and its steps are
erratic ([RAdam](radam.md) explains why, and fixes it differently); a small $\eta$ keeps them small.

$$f(t) = \min\left(1,\ \frac{t}{w}\right)$$

**Noam** ([Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), the Transformer's schedule).
A linear warmup to step $w$, then decay as $1/\sqrt t$, scaled by the model width $d$:

$$f(t) = d^{-1/2}\,\min\left(t^{-1/2},\ t\,w^{-3/2}\right)$$

The two pieces meet at $t = w$, where $f$ peaks at $(d\,w)^{-1/2}$. Here $\eta$ is a multiplier
(the paper's is $1$; $2$ is common). With $w = 0$ there is no warmup: $f(t) = (d\,t)^{-1/2}$.

**Warmup, then cosine decay to a floor.** A linear warmup over $w$ updates, then a
[cosine](annealing.md) from $1$ down to the floor $f_{\min}$ at update $T$, and the floor from
then on:

$$f(t) = \begin{cases} t / w & t < w \\
f_{\min} + \tfrac12(1 - f_{\min})\left(1 + \cos\left(\pi\,\frac{t - w}{T - w}\right)\right) & w \le t < T \\
f_{\min} & t \ge T \end{cases}$$

Training often runs past $T$ (one more epoch, a fine-tuning phase); the rate must stay at the floor
then. labml.ai's version evaluates the cosine beyond $T$, so its rate climbs back up.

In all three, $t = 1, 2, \dots$ counts *updates*: $f(t)$ multiplies $\eta$ for the $t$-th call of
`step`. So the first update of a warmup uses $\eta/w$, not $0$, and a warmup of $0$ is simply no
warmup (it must not divide by zero). The learning rate in force is $\eta\,f(t)$ for the step *and*
for decoupled weight decay, which reads the group's `lr` like the update does.

## Two ways to use a schedule

**As a torch scheduler**, `ScheduledLR(optimizer, schedule)` is an ordinary
`torch.optim.lr_scheduler.LRScheduler`: call `scheduler.step()` after each `optimizer.step()`, as
with any torch scheduler. It works with every optimizer, torch's included, and its `state_dict`
holds only numbers (the schedule is saved as its description).

**Inside the optimizer**, `attach(optimizer, schedule)` makes the optimizer set its own learning rate
before each update; there is no second object to step, save and restore, and nothing can get out
of sync (the classic bugs: stepping the scheduler per epoch instead of per batch, or before the
optimizer). The design question is where the schedule lives, because an optimizer's `state_dict`
must stay loadable with `torch.load(weights_only=True)`, which refuses arbitrary Python objects.
A schedule *object* in a parameter group would break that. So each group holds only plain data:

* `lr_schedule`: the schedule's description, a dictionary of its name and numbers
  (`{"name": "warmup_cosine", "warmup": 100, "total_steps": 1000, "floor": 0.1}`);
* `base_lr`: $\eta$, the rate the schedule multiplies (the group's `lr` when attached);
* `lr_schedule_step`: how many updates the group has made under the schedule.

A step pre-hook, registered on the optimizer by `attach`, advances the count and sets
`group["lr"] = base_lr * f(t)` before every update. Checkpoints therefore carry the schedule and its
progress; as with torch's schedulers, after loading a checkpoint into a fresh optimizer (or after
`copy.deepcopy`, which drops hooks) call `attach` again: it keeps the restored progress when the
schedule is the same. Use one of the two forms per optimizer, not both.

The shapes themselves are the primitives of [annealing](annealing.md); this module only decides
where each phase starts and ends.

## Choosing one

* **Linear warmup** alone, when the rate should then stay constant, or in front of a schedule of
  your own. A warmup of a few hundred to a few thousand updates is typical; for Adam, the untuned
  rule of thumb of [Ma & Yarats, 2021](https://arxiv.org/abs/1910.04209) is $2/(1 - \beta_2)$
  updates (2,000 for $\beta_2 = 0.999$).
* **Noam** for reproducing the Transformer paper and its descendants. Note that it has no separate
  peak rate: the peak is $\eta\,(d\,w)^{-1/2}$, about $7 \times 10^{-4}\,\eta$ for the paper's
  $d = 512$, $w = 4000$, and a wider model trains with a smaller rate. It never reaches zero; it
  only decays as $1/\sqrt t$.
* **Warmup and cosine** for a run of known length: the usual choice for pre-training, where the
  rate should be small at the end. A floor of $0.1$ (a tenth of the peak) is common; a floor of $0$
  ends the run with the smallest steps, but leaves nothing for training past $T$.

The [composable](optimizer.md) optimizers have a more general scheduler for any hyper-parameter, the
[parameter scheduler](param_scheduler.md), driven by training progress $p \in [0, 1]$ instead of a
count of updates.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ..core.validation import check_non_negative
from . import annealing


@dataclasses.dataclass(frozen=True)
class LRSchedule:
    r"""
    A learning-rate schedule: a multiplier $f(t)$ of the base rate for each update $t \ge 1$,
    described by a few plain numbers (its fields) and a `name`.

    To add a schedule: subclass this as a frozen dataclass whose fields are numbers, give it a
    unique `name`, check the fields in `__post_init__` (so a bad schedule fails when it is built,
    not at update 4,000), write $f(t)$ in `__call__`, and add the class to `SCHEDULES`. Being frozen,
    a schedule can be shared between optimizers and compared by value, which `attach` relies on.
    """

    name: ClassVar[str] = ""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        r"""
        The schedule as plain data, safe to store in a `state_dict`: `{"name": ..., field: value}`.
        Two schedules with the same description compute the same $f$.
        """
        return {"name": self.name, **dataclasses.asdict(self)}

    @staticmethod
    def from_description(description: Mapping[str, Any]) -> "LRSchedule":
        r"""
        The schedule that `describe` described: the class is looked up by name in `SCHEDULES` and
        built from the remaining fields, which runs its checks again (a checkpoint edited by hand
        cannot smuggle in a bad schedule).
        """
        fields = dict(description)
        name = fields.pop("name")
        if name not in SCHEDULES:
            raise ValueError(f"Invalid lr_schedule name: {name!r} (known: {', '.join(SCHEDULES)})")
        return SCHEDULES[name](**fields)


def check_steps(name: str, value: Any) -> None:
    r"""
    A count of updates: a whole number $\ge 0$. `bool` is refused although Python counts it as an
    `int`: `warmup=True` is a mistake, not a warmup of one update.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be an int >= 0)")


@dataclasses.dataclass(frozen=True)
class LinearWarmup(LRSchedule):
    r"""
    ### Linear warmup
    $$f(t) = \min\left(1,\ \frac{t}{w}\right)$$
    `warmup` is $w$; $0$ means no warmup.

    The first update runs at $\eta/w$, update $w$ at the full rate $\eta$, and every one after it
    too. It is the alternative to [RAdam](radam.md)'s rectification: Ma & Yarats found Adam with a
    linear warmup of $2/(1-\beta_2)$ updates to perform about as well as RAdam in typical settings.
    """

    name: ClassVar[str] = "linear_warmup"
    warmup: int = 0

    def __post_init__(self) -> None:
        check_steps("warmup", self.warmup)

    def __call__(self, step: int) -> float:
        # Testing $t \ge w$ first also covers $w = 0$ without dividing by it.
        if step >= self.warmup:
            return 1.0
        # $$f(t) = t/w$$
        return annealing.linear(0.0, 1.0, step / self.warmup)


@dataclasses.dataclass(frozen=True)
class Noam(LRSchedule):
    r"""
    ### The Transformer's schedule
    $$f(t) = d^{-1/2}\,\min\left(t^{-1/2},\ t\,w^{-3/2}\right)$$
    `d_model` is $d$, `warmup` is $w$ (the paper's $4000$ by default; $0$ means no warmup).

    For $t \le w$ the second term is the smaller, $f(t) = t\,(d\,w^3)^{-1/2}$, a line through the
    origin; for $t \ge w$ the first, $f(t) = (d\,t)^{-1/2}$. The peak, at $t = w$, is
    $(d\,w)^{-1/2}$: $1/1431 \approx 6.99 \times 10^{-4}$ with the defaults. With the paper's Adam
    settings ($\beta_2 = 0.98$, $\epsilon = 10^{-9}$) the base rate $\eta$ is $1$, so these numbers
    are the learning rate itself.
    """

    name: ClassVar[str] = "noam"
    d_model: int = 512
    warmup: int = 4000

    def __post_init__(self) -> None:
        if not self.d_model > 0:
            raise ValueError(f"Invalid d_model: {self.d_model} (must be > 0)")
        check_steps("warmup", self.warmup)

    def __call__(self, step: int) -> float:
        # $$t^{-1/2}$$ the decay, which is all there is without a warmup
        decay = step**-0.5
        if self.warmup == 0:
            return self.d_model**-0.5 * decay
        # $$d^{-1/2}\,\min\left(t^{-1/2},\ t\,w^{-3/2}\right)$$
        return self.d_model**-0.5 * min(decay, step * self.warmup**-1.5)


@dataclasses.dataclass(frozen=True)
class WarmupCosine(LRSchedule):
    r"""
    ### Linear warmup, cosine decay, then the floor

    `warmup` is $w$, `total_steps` is $T$ (the update at which the floor is reached, $T \ge w$),
    `floor` is $f_{\min}$, a fraction of the base rate in $[0, 1]$.

    $$f(t) = \begin{cases} t / w & t < w \\
      f_{\min} + \tfrac12(1 - f_{\min})\left(1 + \cos\left(\pi\,\frac{t - w}{T - w}\right)\right)
      & w \le t < T \\
      f_{\min} & t \ge T \end{cases}$$

    The pieces join without a jump: at $t = w$ the cosine starts at $1$, where the warmup ends, and at
    $t = T$ it arrives at $f_{\min}$, where the floor begins. Set `total_steps` to the number of
    updates of the whole run (epochs times batches per epoch), not the number of epochs.
    """

    name: ClassVar[str] = "warmup_cosine"
    warmup: int = 0
    total_steps: int = 1
    floor: float = 0.0

    def __post_init__(self) -> None:
        check_steps("warmup", self.warmup)
        check_steps("total_steps", self.total_steps)
        if self.total_steps < self.warmup:
            raise ValueError(f"Invalid total_steps: {self.total_steps} (must be >= warmup = {self.warmup})")
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError(f"Invalid floor: {self.floor} (must be in [0, 1])")

    def __call__(self, step: int) -> float:
        # Three phases, tested in order of $t$; each test also guards the division of the next.
        if step < self.warmup:
            # $$f(t) = t / w$$
            return annealing.linear(0.0, 1.0, step / self.warmup)
        if step >= self.total_steps:
            # Past $T$ the rate stays at the floor: $f(t) = f_{\min}$
            return self.floor
        # $$f(t) = \mathrm{cosine}\left(1,\ f_{\min},\ \frac{t - w}{T - w}\right)$$
        # ($T > t \ge w$ here, so $T - w > 0$.)
        return annealing.cosine(1.0, self.floor, (step - self.warmup) / (self.total_steps - self.warmup))


# Every schedule by its `name`: how a description in a checkpoint finds its class again.
SCHEDULES: dict[str, type[LRSchedule]] = {cls.name: cls for cls in (LinearWarmup, Noam, WarmupCosine)}


class ScheduledLR(torch.optim.lr_scheduler.LRScheduler):
    r"""
    ## A schedule as a torch scheduler

    `lr = base_lr * schedule(last_epoch + 1)` for each group: torch's schedulers count from
    `last_epoch = 0` before the first update, and our schedules from $t = 1$ at it.
    The `state_dict` stores the schedule's description; loading one restores that schedule.

    The count in detail: torch's constructor takes one `step()` itself, moving `last_epoch` from
    $-1$ to $0$ and setting the rate for the first update, $\eta f(1)$. Each `scheduler.step()` after
    an `optimizer.step()` then sets the rate of the next update: after update $t$, $\eta f(t + 1)$.
    `base_lrs` are the groups' rates when the scheduler was built (torch keeps them as
    `initial_lr` in each group).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: LRSchedule, last_epoch: int = -1) -> None:
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""$\eta_g\, f(t)$ for each group $g$, with $t$ = `last_epoch + 1`, the update about to be made."""
        factor = self.schedule(self.last_epoch + 1)
        return [base_lr * factor for base_lr in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        r"""
        torch asks for this when `step` is given an explicit epoch; our schedules are closed forms of
        $t$ already, so it is the same as `get_lr`.
        """
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        r"""torch's state (counts and rates), with the schedule as its plain description."""
        state = super().state_dict()
        state["schedule"] = self.schedule.describe()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""Restore the schedule from its description, then torch's state; the argument is not modified."""
        state = dict(state_dict)
        self.schedule = LRSchedule.from_description(state.pop("schedule"))
        super().load_state_dict(state)


def apply_schedules(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    r"""
    ## The step pre-hook

    For every group with a schedule: one more update, $t \leftarrow t + 1$, at the rate
    $$\eta_t = \eta\, f(t).$$
    A module-level function that reads everything from the `optimizer` it is given, so it never
    refers to another optimizer's groups.

    torch calls a step pre-hook as `hook(optimizer, args, kwargs)` before every `step`; returning
    `None` leaves the step's arguments as they are. The schedule is rebuilt from the group's
    description at every update (a few attribute reads): the group is the only place it lives, so a
    loaded checkpoint, or an edit of the group, takes effect on the next update.
    """
    for group in optimizer.param_groups:
        description = group.get("lr_schedule")
        if description is None:
            continue
        # $$t \leftarrow t + 1$$
        group["lr_schedule_step"] += 1
        schedule = LRSchedule.from_description(description)
        # $$\eta_t = \eta\, f(t)$$ the rate this update, and decoupled weight decay, will read
        group["lr"] = group["base_lr"] * schedule(group["lr_schedule_step"])


# The hook's handle is kept on the optimizer under this name: it tells `attach` that the hook is
# already there, and lets `detach` remove it.
HOOK_ATTRIBUTE = "_lr_schedule_hook"


def attach(optimizer: torch.optim.Optimizer, schedule: LRSchedule) -> torch.optim.Optimizer:
    r"""
    ## A schedule inside the optimizer

    Store `schedule` in every group of `optimizer` as plain data, and register the pre-hook that
    applies it (once per optimizer). Each group's current `lr` becomes its base rate. A group that
    already runs this same schedule (restored from a checkpoint) keeps its base rate and progress.
    Returns the optimizer.

    ```python
    optimizer = attach(AdamW(model.parameters(), lr=3e-4),
                       WarmupCosine(warmup=500, total_steps=20_000, floor=0.1))
    ```

    A group added later with `add_param_group` is not scheduled until `attach` is called again.
    """
    description = schedule.describe()
    for group in optimizer.param_groups:
        # Same description: this group is already on this schedule; keep its $\eta$ and its $t$.
        if group.get("lr_schedule") == description:
            continue
        # Otherwise start it: $\eta$ = the current rate, $t = 0$.
        check_non_negative("lr", group["lr"])
        group["lr_schedule"] = description
        group["base_lr"] = group["lr"]
        group["lr_schedule_step"] = 0
    # One hook per optimizer, however many times `attach` is called.
    if getattr(optimizer, HOOK_ATTRIBUTE, None) is None:
        setattr(optimizer, HOOK_ATTRIBUTE, optimizer.register_step_pre_hook(apply_schedules))
    return optimizer


def detach(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    r"""Stop scheduling: remove the hook and the groups' schedule entries; `lr` keeps its last value."""
    handle = getattr(optimizer, HOOK_ATTRIBUTE, None)
    if handle is not None:
        handle.remove()
        setattr(optimizer, HOOK_ATTRIBUTE, None)
    for group in optimizer.param_groups:
        for key in ("lr_schedule", "base_lr", "lr_schedule_step"):
            group.pop(key, None)
    return optimizer
