r"""
# Per-parameter options and parameter groups

`torch.optim` lets hyper-parameters differ between *groups* of parameters. Two finer needs come up
in practice, and both are served here, once, for every optimizer:

* **One parameter with its own settings.** A parameter may carry a dictionary `opt_args`, for
  example `layer.weight.opt_args = {"lr_scale": 0.1, "weight_decay": 0.0}`. A key set there (and not
  `None`) wins over the group's value. `lr_scale` multiplies the group's learning rate, so a schedule
  still moves it; an `lr` set on the parameter replaces the group's and is not scheduled.
* **Groups built from a model.** Biases and the weights of normalisation layers are usually excluded
  from weight decay: decaying them pulls the model towards a degenerate scale or offset without
  fighting over-fitting. `param_groups_without_decay` splits a model's parameters that way, by
  name, by the kind of module, and by the number of dimensions.
"""

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

OPTION_ATTRIBUTE = "opt_args"


def param_option(group: dict[str, Any], param: torch.Tensor, name: str, default: Any = None) -> Any:
    r"""
    The value of the option `name` for `param`: the parameter's own `opt_args[name]` when it is set,
    else the group's value, else `default`.
    """
    overrides = getattr(param, OPTION_ATTRIBUTE, None)
    if overrides is not None and overrides.get(name) is not None:
        return overrides[name]
    return group.get(name, default)


def learning_rate(group: dict[str, Any], param: torch.Tensor) -> Any:
    r"""
    The learning rate in force for `param` at this step, $\eta \cdot \text{lr\_scale}$.
    Read at every step, so it always reflects what a scheduler has set on the group. A learning rate
    given as a one-element tensor (which schedulers update in place) is read as a Python number, so
    every optimizer computes with it exactly as with the same `float`.
    """
    lr = param_option(group, param, "lr")
    if isinstance(lr, torch.Tensor):
        lr = lr.item()
    return lr * param_option(group, param, "lr_scale", 1.0)


NORMALISATION_LAYERS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def param_groups_without_decay(
    model: nn.Module,
    weight_decay: float,
    no_decay_suffixes: Iterable[str] = ("bias",),
    max_ndim_without_decay: int = 1,
) -> list[dict[str, Any]]:
    r"""
    Split `model`'s trainable parameters into two groups: one decayed with `weight_decay`, one with
    `weight_decay = 0.0`. A parameter goes to the second group when any of these hold:

    * its name ends with one of `no_decay_suffixes` (`"bias"` by default);
    * it belongs to a normalisation layer (batch, layer, group, RMS norm ...);
    * it has at most `max_ndim_without_decay` dimensions (biases, gains and scales are vectors;
      pass `-1` to switch this rule off).

    Each group also keeps the parameters' names under `param_names`, as torch does for named
    parameters, so a state dict says which tensor is which.
    """
    normalisation_params = {
        id(p) for m in model.modules() if isinstance(m, NORMALISATION_LAYERS) for p in m.parameters(recurse=False)
    }
    suffixes = tuple(no_decay_suffixes)
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        excluded = (
            name.endswith(suffixes) or id(param) in normalisation_params or param.ndim <= max_ndim_without_decay
        )
        (no_decay if excluded else decay).append((name, param))
    groups = [
        {"params": [p for _, p in decay], "param_names": [n for n, _ in decay], "weight_decay": weight_decay},
        {"params": [p for _, p in no_decay], "param_names": [n for n, _ in no_decay], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
