r"""
# Per-parameter options and parameter groups

`torch.optim` lets hyper-parameters differ between *groups* of parameters: the optimizer is given
a list of dictionaries, each with its `params` and any settings that differ from the defaults, and
every update reads its hyper-parameters from the group of the parameter it is updating. Two finer
needs come up in practice, and both are served here, once, for every optimizer:

* **One parameter with its own settings.** A parameter may carry a dictionary `opt_args`, for
  example `layer.weight.opt_args = {"lr_scale": 0.1, "weight_decay": 0.0}`. A key set there (and not
  `None`) wins over the group's value. `lr_scale` multiplies the group's learning rate, so a schedule
  still moves it; an `lr` set on the parameter replaces the group's and is not scheduled.
* **Groups built from a model.** Biases and the weights of normalisation layers are usually excluded
  from weight decay: decaying them pulls the model towards a degenerate scale or offset without
  fighting over-fitting. `param_groups_without_decay` splits a model's parameters that way, by
  name, by the kind of module, and by the number of dimensions.

The per-parameter dictionary is the idea of the ALF library's `opt_args`: it lets the code that
builds a layer decide how that layer is trained (a smaller learning rate for a pretrained
embedding, no decay for a gain) without the training script having to know the layer's internals
and rebuild the groups by hand.

## Why a schedule still works

A scheduler from `torch.optim.lr_scheduler` writes a new `lr` into each *group* at each epoch or
step. So the functions below read the options at every step, never at construction:

$$\eta_{\text{param}} = \eta_{\text{group}}(t) \cdot \text{lr\_scale}_{\text{param}},$$

and a parameter with `lr_scale = 0.1` follows its group's warmup and decay at a tenth of the size.
A parameter with its own `lr` opts out of the schedule, which is occasionally what one wants (a
frozen-but-not-quite layer) and usually not.
"""

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

# The attribute a parameter carries its own options in: `param.opt_args = {...}`.
OPTION_ATTRIBUTE = "opt_args"


def param_option(group: dict[str, Any], param: torch.Tensor, name: str, default: Any = None) -> Any:
    r"""
    The value of the option `name` for `param`: the parameter's own `opt_args[name]` when it is set,
    else the group's value, else `default`.

    `None` in `opt_args` means "not set", not "set to `None`": a dictionary shared by many parameters
    can then switch a key off for one of them by assigning `None`, without deleting it for all.
    """
    # A plain tensor has no `opt_args`; `getattr` with a default keeps that case free.
    overrides = getattr(param, OPTION_ATTRIBUTE, None)
    if overrides is not None and overrides.get(name) is not None:
        return overrides[name]
    # The group's value, which holds the optimizer's default unless the group overrode it.
    return group.get(name, default)


def learning_rate(group: dict[str, Any], param: torch.Tensor) -> Any:
    r"""
    The learning rate in force for `param` at this step, $\eta \cdot \text{lr\_scale}$.
    Read at every step, so it always reflects what a scheduler has set on the group. A learning rate
    given as a one-element tensor (which schedulers update in place) is read as a Python number, so
    every optimizer computes with it exactly as with the same `float`; except in a differentiable
    step (`differentiable=True`), where a learning rate that requires grad stays the tensor, so that
    the gradient of a loss after the step reaches it (a learned learning rate), as in torch's step.

    Every optimizer in the library calls this, rather than `group["lr"]`, so per-parameter options
    and tensor learning rates work the same everywhere.
    """
    lr = param_option(group, param, "lr")
    # `.item()` copies the number out of the tensor. The fused operations take their scale
    # (`alpha=`, `value=`) as a Python number, not a tensor, and arithmetic with the tensor would
    # round in its dtype (`float32` for `torch.tensor(1e-3)`); a Python float is a `float64`.
    if isinstance(lr, torch.Tensor) and not (lr.requires_grad and group.get("differentiable")):
        lr = lr.item()
    # $$\eta_{\text{param}} = \eta \cdot \text{lr\_scale}$$
    return lr * param_option(group, param, "lr_scale", 1.0)


# The normalisation layers whose weights (the gain $\gamma$) and biases (the offset $\beta$) are kept
# out of weight decay. `_NormBase` covers every batch norm and instance norm, `SyncBatchNorm`
# included; `LocalResponseNorm` has no parameters and is listed for completeness.
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

    Why these are excluded: weight decay is a prior that prefers small weights, which makes sense for
    the matrices that mix features. A bias of $0$ or a gain of $0$ is not "simpler"; a normalisation
    gain of $1$ means "leave the scale alone", and decaying it pulls the layer's output towards
    zero. The weights *before* a normalisation layer are a different case: the output does not
    depend on their scale, so decay only shrinks them and thereby raises their effective learning
    rate; they stay in the decayed group, as in common practice. This split is the convention of
    BERT's original code (no decay for biases and LayerNorm weights). Embeddings are matrices and are decayed;
    move them with `opt_args = {"weight_decay": 0.0}` if that is not wanted.

    The usual call is `AdamW(param_groups_without_decay(model, 0.1), lr=3e-4)`.
    """
    # The `id`s of every parameter owned directly by a normalisation layer (`recurse=False`: a
    # normalisation layer's children, if any, are judged on their own).
    normalisation_params = {
        id(p) for m in model.modules() if isinstance(m, NORMALISATION_LAYERS) for p in m.parameters(recurse=False)
    }
    suffixes = tuple(no_decay_suffixes)
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    # `named_parameters` yields a parameter shared by two modules (tied embeddings) once, under its
    # first name, so no parameter lands in both groups.
    for name, param in model.named_parameters():
        # A frozen parameter is left out of both groups: the optimizer never sees it. To train it
        # later, add it with `add_param_group`.
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
    # An empty group is dropped, so a model whose parameters all fall on one side gets one group.
    return [g for g in groups if g["params"]]
