r"""
# Many processes: DDP, FSDP2 and distributed checkpoints

An optimizer step is local arithmetic, so most optimizers need nothing to run on many processes. What
does need care is every quantity that summarises a *whole* tensor, or the whole model, and every
decision taken from one: each must be the same on every process, or the copies of the model drift
apart for good.

**DDP** (`DistributedDataParallel`) all-reduces the gradients before the step: every process holds the
full parameters and the same full gradient, so every optimizer computes the same step on every
process, with no help. **FSDP2** (`fully_shard`) is different: each process holds a *shard* of each
parameter, a `DTensor` whose local part is a slice of rows, and the optimizer sees only that slice.
Element-wise work (Adam's moments, SGD's momentum) is still exact. A norm is not: the norm of a slice is
not the norm of the layer. Torch's `DTensor` takes care of it when every operand of an operation is a
`DTensor`: `torch.linalg.vector_norm(w)` returns a *partial* result that becomes the full norm, by an
all-reduce, as soon as it is used. Three things still need this module:

* **The non-finite verdict.** The check reads each process's own shard (a pass over the local
  gradients, with no communication per tensor). An `inf` in one shard would then make one process
  raise, or skip, while the others step. `agree` combines the verdicts: one all-reduce of one flag per
  parameter group, taking the maximum, so a bad gradient anywhere is a bad gradient everywhere, and
  every process raises, or skips, together.
* **Norms kept in the state.** A partial norm cannot be saved by `torch.distributed.checkpoint`
  ("not supported for DTensor with partial placements"): `full` turns it into the replicated full
  norm first.
* **Multi-tensor code.** `torch._foreach_*` and `torch.stack` mix `DTensor`s with plain tensors badly;
  `like` turns a plain tensor of per-layer numbers into a replicated `DTensor` on the parameter's mesh.

`ZeroRedundancyOptimizer` shards the *optimizer* instead: each process's copy of our optimizer owns a
different subset of the parameters. Its verdicts are combined over its process group too, and its
consolidated checkpoint keeps the count of skipped steps: use
`annotated_opt.core.zero_redundancy.ZeroRedundancyOptimizer` in place of torch's.

## Checkpoints: the count of skipped steps

`torch.distributed.checkpoint` (`get_optimizer_state_dict`) and `ZeroRedundancyOptimizer` rebuild an
optimizer's checkpoint from its `state` and `param_groups` only, so a key beside them (our
`skipped_steps`) is lost on the way. `with_count` writes the count into each group of the checkpoint as
well, and `read_count` finds it in either place; the live groups never hold it.
"""

import weakref
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Partial, Replicate

from .nonfinite import BadGradient

COUNT_KEY = "skipped_steps"

# Process groups that an optimizer must agree over besides its parameters' meshes (a
# `ZeroRedundancyOptimizer`'s). Weak keys: the optimizer's copies and pickles do not carry a process
# group, which cannot be pickled.
EXTRA_GROUPS: "weakref.WeakKeyDictionary[torch.optim.Optimizer, Any]" = weakref.WeakKeyDictionary()


def full(tensor: torch.Tensor) -> torch.Tensor:
    r"""
    A reduction of a sharded tensor (a norm, a sum) as the full value on every process: a `DTensor`
    with a partial placement is all-reduced into a replicated one. Anything else is returned as it is.
    """
    if isinstance(tensor, DTensor) and any(isinstance(p, Partial) for p in tensor.placements):
        return tensor.redistribute(placements=[Replicate()] * tensor.device_mesh.ndim)
    return tensor


def like(tensor: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    r"""A plain tensor, the same on every process, as a replicated `DTensor` when `reference` is one."""
    if isinstance(reference, DTensor) and not isinstance(tensor, DTensor):
        mesh = reference.device_mesh
        return DTensor.from_local(tensor, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return tensor


def process_groups(optimizer: torch.optim.Optimizer) -> list[Any]:
    r"""
    The process groups whose members step this optimizer's parameters together: every dimension of the
    mesh of each `DTensor` parameter, and the group registered by `ZeroRedundancyOptimizer`. Empty for
    plain tensors on one process or under DDP, where every process already holds the same gradients.
    """
    found: list[Any] = []
    for group in optimizer.param_groups:
        for param in group["params"]:
            if isinstance(param, DTensor):
                mesh = param.device_mesh
                found.extend(mesh.get_group(dim) for dim in range(mesh.ndim))
    extra = EXTRA_GROUPS.get(optimizer)
    if extra is not None:
        found.append(extra)
    unique: list[Any] = []
    for process_group in found:
        if not any(process_group is seen for seen in unique):
            unique.append(process_group)
    return unique


class BadGradientElsewhere(BadGradient):
    r"""A group whose gradients are finite here, but not on another process."""

    def describe(self) -> str:
        return f"a parameter of group {self.group}, on another process"


def agree(optimizer: torch.optim.Optimizer, bad: list[BadGradient]) -> list[BadGradient]:
    r"""
    ### One verdict on every process

    `bad` are the non-finite gradients this process found in its own shards. Each process marks the
    groups it found one in,
    $$f_g = \max_{\text{processes } r} \big[\text{process } r \text{ found a non-finite gradient in group } g\big],$$
    one all-reduce (maximum) of one small vector per process group, on the gradients' device. A group
    marked elsewhere only is added as `BadGradientElsewhere`, so the policy (raise or skip, which
    depends on the group) is applied to the same groups on every process. The cost: one collective per
    step, of one number per group.
    """
    groups = process_groups(optimizer)
    if not groups:
        return bad
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    device = grads[0].device if grads else torch.device("cpu")
    flags = torch.zeros(len(optimizer.param_groups), device=device)
    for found in bad:
        flags[found.group] = 1
    for process_group in groups:
        dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=process_group)
    here = {found.group for found in bad}
    elsewhere = [g for g in flags.nonzero().flatten().tolist() if g not in here]
    return bad + [BadGradientElsewhere(g, -1, None, 0, 0, 0) for g in elsewhere]


def with_count(state_dict: dict[str, Any], count: int) -> dict[str, Any]:
    r"""The checkpoint with the count of skipped steps at the top and in each of its groups."""
    groups = [{**group, COUNT_KEY: count} for group in state_dict["param_groups"]]
    return {**state_dict, "param_groups": groups, COUNT_KEY: count}


def read_count(state_dict: dict[str, Any]) -> tuple[dict[str, Any], int]:
    r"""The checkpoint without the count, and the count (0 for a checkpoint without one)."""
    counts = [group[COUNT_KEY] for group in state_dict["param_groups"] if COUNT_KEY in group]
    groups = [{k: v for k, v in group.items() if k != COUNT_KEY} for group in state_dict["param_groups"]]
    count = state_dict.get(COUNT_KEY, max(counts, default=0))
    rest = {k: v for k, v in state_dict.items() if k != COUNT_KEY}
    return {**rest, "param_groups": groups}, int(count)
