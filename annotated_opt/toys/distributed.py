r"""
# Running the toys on many processes

`launch(worker, processes, *args)` starts `processes` processes on this machine, each a member of one
`gloo` process group on `127.0.0.1` (the backend that runs on CPUs; no network beyond the loopback),
and calls `worker(rank, processes, *args)` in each. An error in any process is raised in the caller,
with that process's traceback. The tests of the library's behaviour under DDP and FSDP2 use it, and
so does the command line:

```bash
python -m annotated_opt.toys.distributed --optimizer lamb --processes 2 --wrap fsdp --steps 50
```

trains the [digits](digits.md) MLP in `float64` with an optimizer at its tuned hyper-parameters,
each process on its slice of every batch, wrapped in `DistributedDataParallel` (`--wrap ddp`) or
sharded by FSDP2's `fully_shard` (`--wrap fsdp`), and prints the loss and the largest relative
difference between the weights and those of one process trained on the whole batches.
"""

import argparse
import datetime
import os
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def free_port() -> int:
    r"""A TCP port on the loopback that nothing listens on now, for the group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _member(rank: int, processes: int, port: int, timeout: float, worker: Callable[..., Any], args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=processes, timeout=datetime.timedelta(seconds=timeout))
    try:
        worker(rank, processes, *args)
    finally:
        dist.destroy_process_group()


def launch(worker: Callable[..., Any], processes: int, *args: Any, timeout: float = 1800.0) -> None:
    r"""
    Run `worker(rank, processes, *args)` in `processes` new processes of one gloo group.

    Processes that disagree (one takes a decision the others do not, and calls a collective they never
    call) wait for each other for ever. So nothing waits longer than `timeout` seconds: a collective
    that waits that long raises in its process (with its traceback), and processes still running that
    long after the start are stopped, and `TimeoutError` is raised here.
    """
    context = mp.spawn(_member, args=(processes, free_port(), timeout, worker, args), nprocs=processes, join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(deadline - time.monotonic(), 0.0)):
        if time.monotonic() >= deadline:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
                process.join()
            raise TimeoutError(f"{worker.__name__} on {processes} processes did not finish in {timeout:g} seconds")


def wrap(model: nn.Module, how: str) -> nn.Module:
    r"""
    The model as the optimizer will see it on this process: `"ddp"` keeps full parameters and averages
    the gradients; `"fsdp"` shards every parameter (each linear layer, then the root) into `DTensor`s.
    """
    if how == "ddp":
        return nn.parallel.DistributedDataParallel(model)
    if how == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for module in model.modules():
            if isinstance(module, nn.Linear):
                fully_shard(module)
        return fully_shard(model)
    raise ValueError(f"Invalid wrap: {how!r} (expected 'ddp' or 'fsdp')")


def full_parameters(model: nn.Module) -> list[torch.Tensor]:
    r"""Every parameter as the whole tensor, gathered from the shards when they are `DTensor`s."""
    return [p.full_tensor() if hasattr(p, "full_tensor") else p.detach().clone() for p in model.parameters()]


@torch.no_grad()
def max_relative_difference(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    r"""$\max_k \lVert a_k - b_k\rVert_\infty / \max(\lVert b_k\rVert_\infty, 10^{-300})$ over the tensors."""
    return max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-300)) for a, b in zip(ours, theirs, strict=True))


def _train_digits(rank: int, processes: int, name: str, how: str, steps: int, out: str) -> None:
    from ..core.registry import get
    from . import digits

    info = get(name)
    data = digits.load_digits(dtype=torch.float64)
    config = dict(info.tuned("digits-mlp").config)
    batch = 64

    def train(model: nn.Module, share: int, part: int) -> list[float]:
        optimizer = info.build(list(model.parameters()), **config)
        losses = []
        for step in range(steps):
            start = step * batch % (len(data.train_x) - batch)
            x, y = data.train_x[start:start + batch], data.train_y[start:start + batch]
            x, y = x.chunk(share)[part], y.chunk(share)[part]

            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                return loss.detach()

            losses.append(float(optimizer.step(closure)))
        return losses

    sharded = wrap(digits.mlp().double(), how)
    losses = train(sharded, processes, rank)
    ours = full_parameters(sharded)
    single = digits.mlp().double()
    train(single, 1, 0)
    if rank == 0:
        difference = max_relative_difference(ours, list(single.parameters()))
        with open(out, "w") as file:
            file.write(f"{name} {how} x{processes}: loss {losses[-1]:.6f}, max relative difference to one "
                       f"process {difference:.2e}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--wrap", choices=("ddp", "fsdp"), default="ddp")
    parser.add_argument("--steps", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "result.txt")
        launch(_train_digits, options.processes, options.optimizer, options.wrap, options.steps, out)
        with open(out) as file:
            print(file.read(), end="")


if __name__ == "__main__":
    main()
