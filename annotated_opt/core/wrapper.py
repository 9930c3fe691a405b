r"""
# Optimizers that wrap another optimizer

Some methods are not a new update rule but a new way of *calling* an existing one.
[SAM](sam.md) evaluates the gradient at a perturbed copy of the weights and then hands it to any
optimizer; [Lookahead](lookahead.md) lets any optimizer take $k$ steps and then pulls the weights back
towards a slow average. Both wrap a **base optimizer** and must stay out of its way: the base keeps its
own update, its own state and its own parameter groups.

The one design decision that matters is where the hyper-parameters live. A wrapper here **shares the
base's parameter groups**, the very same list of the very same dictionaries:

$$\texttt{wrapper.param\_groups} \;\texttt{is}\; \texttt{base.param\_groups}$$

Everything that acts on `param_groups` then acts on both at once. A scheduler from
`torch.optim.lr_scheduler` attached to the wrapper changes the `lr` the base reads; a group added with
`add_param_group` is optimised by the base; the wrapper's own hyper-parameters ($\rho$ for SAM, $k$ and
$\alpha$ for Lookahead) sit in the same dictionaries beside the base's, so they can differ per group and
be scheduled too. Their keys carry the wrapper's name (`sam_rho`, `lookahead_alpha`), because the base
may already use the plain name: `torch.optim.Adadelta` has its own `rho`, and `torch.optim.RMSprop` its
own `alpha`.

Sharing has one cost: whatever replaces the list (loading a checkpoint does) must **re-link** the two,
or the wrapper and the base silently drift apart, one reading the loaded learning rates and the other
the old ones. `link_to_base` does that after every load, and fills in any of the wrapper's keys that a
checkpoint lacks (one saved by the base alone, or before a key existed).

A checkpoint is the wrapper's business as a whole: `state_dict` and `load_state_dict` run the hooks
registered on the wrapper, as torch runs them, around the subclass's `wrapped_state_dict` and
`load_wrapped_state_dict`.

The count of steps skipped for [non-finite gradients](nonfinite.md) is shared the same way. A wrapper
step is one step, whichever of the two noticed the bad gradient: SAM checks both of its passes itself,
Lookahead learns it from its base, which skipped. So there is one count, the base's,

$$\texttt{wrapper.skipped\_steps} \;=\; \texttt{base.skipped\_steps},$$

saved in the wrapper's checkpoint under `skipped_steps` like every optimizer's. (A `torch.optim` base
never skips and keeps no count; the wrapper then keeps its own.)

Wrappers extend [`GenericAdaptiveOptimizer`](base.md) so they are checked like every other optimizer
and treat gradients the same way (`params_with_grads`), but they override `step`: their work happens
around the base's step, for all parameters at once, not inside a per-parameter update. Two consequences
for users:

* `step` of the wrapper calls `step` of the base, so a global step hook
  (`torch.optim.optimizer.register_optimizer_step_pre_hook`) fires for both; hooks registered on the
  wrapper itself fire once per wrapper step.
* `copy.deepcopy` and pickling keep the base: `torch.optim.Optimizer.__getstate__` saves only
  `defaults`, `state` and `param_groups`, so the base is added to it here.
"""

import copy
import warnings
from collections.abc import Iterable
from typing import Any

import torch

from . import distributed
from .base import GenericAdaptiveOptimizer


def flatten_parameters(params: Iterable[Any]) -> list[torch.Tensor]:
    r"""The tensors of a `params` argument: tensors, `(name, tensor)` pairs, or group dictionaries."""
    tensors = []
    for item in params:
        if isinstance(item, dict):
            group = item["params"]
            tensors.extend(flatten_parameters([group] if isinstance(group, torch.Tensor) else group))
        elif isinstance(item, tuple):
            tensors.append(item[1])
        else:
            tensors.append(item)
    return tensors


def make_base_optimizer(params: Any, base_optimizer: Any, kwargs: dict[str, Any]) -> torch.optim.Optimizer:
    r"""
    ### The base optimizer, from a class or an instance

    `base_optimizer` is either a class (`SGD`, `torch.optim.AdamW`), built here over `params` with
    `kwargs`, or an optimizer already built. An instance carries its own parameters and
    hyper-parameters, so then `params` must be `None` or those same parameters, and `kwargs` empty:
    anything else would be silently ignored.
    """
    if isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer):
        return base_optimizer(params, **kwargs)
    if isinstance(base_optimizer, torch.optim.Optimizer):
        if kwargs:
            raise ValueError(
                f"Invalid arguments {sorted(kwargs)} with an optimizer instance as base_optimizer: "
                "give them to the base optimizer when it is built"
            )
        if params is not None:
            theirs = {id(p) for group in base_optimizer.param_groups for p in group["params"]}
            ours = {id(p) for p in flatten_parameters(params)}
            if ours != theirs:
                raise ValueError(
                    "Invalid params: they differ from the parameters of the base_optimizer instance "
                    "(pass None to use the base's own)"
                )
        return base_optimizer
    raise ValueError(
        f"Invalid base_optimizer: {base_optimizer!r} (expected a torch.optim.Optimizer subclass such as "
        "annotated_opt.SGD, or an instance of one)"
    )


class OptimizerWrapper(GenericAdaptiveOptimizer):
    r"""
    ## The shared plumbing

    `base_optimizer` is a built optimizer; `defaults` are the wrapper's own hyper-parameters, which are
    added to every group of the base (a key the base's groups already have is left alone).
    """

    # The groups are the base's: `nonfinite` and `master_weights` given to a wrapper that builds its
    # base go to that base, with the other keywords.
    takes_base_options = False

    def __init__(self, base_optimizer: torch.optim.Optimizer, defaults: dict[str, Any]) -> None:
        # `torch.optim.Optimizer.__init__` registers the base's group dictionaries, the same objects,
        # filling in our defaults with `setdefault`. It appends them to a list of its own, which is
        # then replaced by the base's list itself. (The base has already warned about a parameter
        # given twice in a group; the warning is not repeated.)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="optimizer contains a parameter group with duplicate")
            super().__init__(base_optimizer.param_groups, {**base_optimizer.defaults, **defaults})
        self.base_optimizer = base_optimizer
        self.link_to_base()

    @property
    def skipped_steps(self) -> int:
        r"""
        ### One count of skipped steps

        The base's, when the base is one of ours (a wrapper among them); otherwise the wrapper's own.
        (The base class sets the count before the base exists; that value is the wrapper's own.)
        """
        base = self.__dict__.get("base_optimizer")
        if isinstance(base, GenericAdaptiveOptimizer):
            return base.skipped_steps
        return self.__dict__.get("own_skipped_steps", 0)

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        base = self.__dict__.get("base_optimizer")
        if isinstance(base, GenericAdaptiveOptimizer):
            base.skipped_steps = value
        else:
            self.__dict__["own_skipped_steps"] = value

    def link_to_base(self) -> None:
        r"""Point the wrapper at the base's current list of groups, each with the wrapper's keys."""
        self.param_groups = self.base_optimizer.param_groups
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def check_master_weights_supported(self) -> None:
        r"""
        `master_weights` asks the base to keep a `float32` master and update through it, which only this
        library's optimizers do. A `torch.optim` base updates the parameter itself, so a wrapper over one
        refuses the option (at its step: groups may be changed at any time) instead of ignoring it.
        """
        if isinstance(self.base_optimizer, GenericAdaptiveOptimizer):
            return
        for index, group in enumerate(self.param_groups):
            if group.get("master_weights", False):
                raise ValueError(
                    f"Invalid master_weights: True in group {index}, but the base optimizer "
                    f"{type(self.base_optimizer).__name__} does not keep master weights (use one of "
                    "annotated_opt's optimizers as the base)"
                )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        ### Adding a group

        The base adds it (with its defaults and its checks); then the wrapper's defaults are filled in.
        During construction there is no base yet to forward to, and torch's own method registers the
        base's existing groups.
        """
        base = self.__dict__.get("base_optimizer")
        if base is None:
            super().add_param_group(param_group)
            return
        base.add_param_group(param_group)
        for key, value in self.defaults.items():
            base.param_groups[-1].setdefault(key, value)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "base_optimizer": self.base_optimizer}

    def state_dict(self) -> dict[str, Any]:
        r"""
        ### Checkpoints

        The wrapper's own hooks fire around the subclass's `wrapped_state_dict`, in torch's order
        (the base's hooks fire inside, when the base's part is taken). The count of skipped steps is
        added, also over a `torch.optim` base, whose checkpoint has none.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state_dict = distributed.with_count(self.wrapped_state_dict(), self.skipped_steps)
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        Loading: a pre-hook may replace the dictionary; then the subclass loads it, the groups are
        re-linked, the count of skipped steps is set (0 for a checkpoint without one), and the
        post-hooks fire.
        """
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        state_dict, skipped_steps = distributed.read_count(state_dict)
        self.load_wrapped_state_dict(state_dict)
        self.link_to_base()
        self.skipped_steps = skipped_steps
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def wrapped_state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_wrapped_state_dict(self, state_dict: dict[str, Any]) -> None:
        raise NotImplementedError

    def load_base_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        Load the base's part of a checkpoint. A deep copy first, so that, like every optimizer of this
        library, the loaded one never shares tensors with the dictionary it came from (a `torch.optim`
        base would otherwise keep them).
        """
        self.base_optimizer.load_state_dict(copy.deepcopy(state_dict))
        self.link_to_base()
