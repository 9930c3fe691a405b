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
all-reduce, as soon as another `DTensor` operation uses it. Not when it is read as a number:
`.item()`, `float()` and `bool()` of a partial result return this process's part (a test shows it), so
a decision taken on it differs from process to process. What this module adds:

* **The non-finite verdict.** The check reads each process's own shard (a pass over the local
  gradients, with no communication per tensor). An `inf` in one shard would then make one process
  raise, or skip, while the others step. `agree` combines the verdicts: one all-reduce of one flag per
  parameter group, taking the maximum, so a bad gradient anywhere is a bad gradient everywhere, and
  every process raises, or skips, together.
* **Partial results made whole.** `full` turns a partial result into the replicated full value: before
  it is read as a number ([Adafactor](../adafactor.md)'s RMS, [Prodigy](../prodigy.md)'s "is this
  parameter zero"), changed in place (DTensor refuses in-place work on a partial result:
  [MARS](../mars.md)'s clipping norm), or kept in the state, which `torch.distributed.checkpoint` cannot
  save with a partial placement ([LAMB](../lamb.md)'s norms).
* **Sums over every parameter.** `total` adds the per-parameter terms of a global estimate
  ([D-Adaptation](../dadapt_adam.md), [Prodigy](../prodigy.md)) and completes them with one all-reduce.
* **Statistics of rows and columns.** `reduced_zeros` lays out [Adafactor](../adafactor.md)'s factored
  statistics as they are computed: the row statistics sharded with the rows, the column statistics whole
  on every process.
* **Whole matrices.** `WholeTensors` gathers a parameter for an optimizer that must see it whole
  (Shampoo, SOAP, Kron, GaLore, Muon) and writes its shard back; `local_part` is a process's part of a
  whole tensor ([L-BFGS](../lbfgs.md)'s moves).
* **A closure's loss.** `mean_over_processes` averages a loss each process computed on its own slice of
  the batch, for [L-BFGS](../lbfgs.md), which decides on it.
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
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard
from torch.distributed.tensor import zeros as distributed_zeros

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


def total(terms: list[torch.Tensor]) -> torch.Tensor:
    r"""
    ### A sum over every parameter, the same on every process

    The sum of 0-d tensors, each a reduction of one parameter (an inner product, an $\ell_1$ norm), as
    a plain tensor holding the full value on every process. Under FSDP2 the reduction of a shard is a
    partial `DTensor`; the partial terms of one mesh are added locally first (a sum of partial sums is
    a partial sum), then completed together: one all-reduce per mesh, whatever the number of terms,
    where completing each term would cost one per parameter. Terms that are plain tensors (DDP, one
    process) are added as they are. A global estimate built from such sums ([D-Adaptation](../dadapt_adam.md),
    [Prodigy](../prodigy.md)) is then the one a single process computes.
    """
    # In the order given, as `+=` would add them: on one process the total is unchanged to the bit.
    sums: list[torch.Tensor] = []
    by_mesh: dict[Any, int] = {}
    for term in terms:
        key = term.device_mesh if isinstance(term, DTensor) else None
        if key not in by_mesh:
            by_mesh[key] = len(sums)
            sums.append(term)
        else:
            sums[by_mesh[key]] = sums[by_mesh[key]] + term
    result = torch.zeros((), dtype=torch.float64)
    for partial_sum in sums:
        result = result + (full(partial_sum).to_local() if isinstance(partial_sum, DTensor) else partial_sum)
    return result


def reduced_zeros(param: torch.Tensor, dim: int) -> torch.Tensor:
    r"""
    Zeros for a statistic of `param` reduced along dimension `dim` (its shape, with `dim` of size 1):
    the row or column statistics of [Adafactor](../adafactor.md). For a sharded parameter, a `DTensor`
    laid out as the statistic will be computed: sharded as `param` along every dimension it keeps,
    replicated where `param` is sharded along `dim` itself, since a reduction along a sharded
    dimension is completed over the processes (`full`), and then every process holds all of it.
    """
    shape = list(param.shape)
    shape[dim] = 1
    if not isinstance(param, DTensor):
        return param.new_zeros(shape)
    dim %= param.ndim
    placements = [Replicate() if isinstance(p, Shard) and p.dim == dim else p for p in param.placements]
    return distributed_zeros(shape, dtype=param.dtype, device_mesh=param.device_mesh, placements=placements)


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
    if not (dist.is_available() and dist.is_initialized()):
        return []  # one process: no mesh, no registered group (and no walk over the parameters)
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


def local_part(whole: torch.Tensor, sharded: DTensor) -> torch.Tensor:
    r"""
    This process's part of `whole`, a plain tensor of `sharded`'s full shape that every process holds
    alike: the slice `sharded` holds here. Taken locally, with no communication (a replicated tensor
    becomes a sharded one by each process keeping its slice).
    """
    mesh = sharded.device_mesh
    replicated = DTensor.from_local(whole, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return replicated.redistribute(mesh, sharded.placements).to_local()


def mean_over_processes(optimizer: torch.optim.Optimizer, value: float) -> float:
    r"""
    A number each process computed from its own data, a closure's loss, as its mean over the processes
    that step this optimizer's parameters together (`process_groups`): one all-reduce of one number per
    process group. Where there are none (one process, or DDP, whose parameters say nothing of the
    processes) it is `value` itself. The mean of equal values is that value, so a loss that is already
    the whole batch's stays what it is.
    """
    groups = process_groups(optimizer)
    if not groups:
        return value
    device = next(p.device for group in optimizer.param_groups for p in group["params"])
    number = torch.tensor(value, dtype=torch.float64, device=device)
    for process_group in groups:
        dist.all_reduce(number, group=process_group)
        number /= dist.get_world_size(process_group)
    return float(number)


class WholeTensors:
    r"""
    ### Whole matrices for the optimizers that need them

    An optimizer whose update of a parameter reads the whole matrix at once (Shampoo's and SOAP's
    statistics $GG^\top$ and $G^\top G$, Muon's orthogonalisation, GaLore's SVD, Kron's triangular
    factors) cannot work on a shard of rows: $GG^\top$ of a shard is one block of the statistic, and
    the orthogonalisation of a shard is not a shard of the orthogonalisation. Such an optimizer sets
    `whole_tensors` (see [the base class](base.md)), and under FSDP2 each process then:

    1. gathers the parameter and its gradient (`full_tensor`: one all-gather each);
    2. steps the whole parameter, with its state kept whole: every process holds the same inputs and
       runs the same arithmetic, so every process computes the same update, which is the update of
       one process on the whole batch;
    3. keeps its own shard of the result (`write_back`, a local copy: no communication).

    The cost is that of DDP for these parameters: the whole parameter, gradient and state on every
    process, and the step computed on every process. The element-wise parts of the model keep
    FSDP2's savings. `handed_out` maps each parameter gathered in the current step to its whole copy
    and that copy's version at the last write, as for [master weights](precision.md), so that an
    optimizer that collects a group before updating it (the compiled fast path) still gets its
    updates written back, by `flush`.
    """

    def __init__(self) -> None:
        self.handed_out: dict[torch.Tensor, tuple[torch.Tensor, int]] = {}

    def gather(self, param: DTensor) -> torch.Tensor:
        r"""The whole parameter, a plain tensor, the same on every process."""
        whole = param.full_tensor()
        self.handed_out[param] = (whole, -1)
        return whole

    @torch.no_grad()
    def write_back(self, param: DTensor) -> None:
        r"""This process's shard of the whole parameter, copied into the parameter's local tensor."""
        whole, _ = self.handed_out[param]
        param.to_local().copy_(local_part(whole, param))
        self.handed_out[param] = (whole, whole._version)

    def flush(self) -> None:
        r"""Write back every whole parameter that changed since its last write."""
        for param, (whole, written_version) in self.handed_out.items():
            if whole._version != written_version:
                self.write_back(param)

    def end_step(self) -> None:
        r"""At the end of a step: flush, and forget what was handed out."""
        self.flush()
        self.handed_out.clear()


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
