"""What each process runs in the distributed tests (`tests/test_distributed.py`), started by
`annotated_opt.toys.distributed.launch`. Each worker writes its findings to a file that the test reads."""

import json
import warnings
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

from annotated_opt.core.nonfinite import NonFiniteGradientError
from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.distributed import full_parameters, max_relative_difference, wrap

STEPS = 4
BATCH = 8


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()


def make_data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return (torch.randn(BATCH, 6, generator=generator, dtype=torch.float64),
            torch.randn(BATCH, 4, generator=generator, dtype=torch.float64))


def train(model: nn.Module, optimizer: Any, steps: range, processes: int, rank: int) -> None:
    """Full-batch mean-squared error; each process takes its slice (DDP and FSDP average the gradients)."""
    for step in steps:
        x, y = (t.chunk(processes)[rank] for t in make_data(step))

        def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss.detach()

        optimizer.step(closure)


# The optimizers checked under DDP and FSDP2 here: those the distributed guide measures. The others run
# on one process only for now (see the guide's list); each needs its own check before it joins.
SHARDED = ("sgd", "adagrad", "rmsprop", "adam", "amsgrad", "adamw", "radam", "adabelief", "nadam", "lars", "lamb",
           "nero", "neroplus", "sam", "lookahead")
CHECKED = {name: REGISTRY[name] for name in SHARDED}


def cases() -> list[tuple[str, int, dict]]:
    return [(name, index, dict(config)) for name, info in CHECKED.items() for index, config in enumerate(info.configs)]


def equality(rank: int, processes: int, out: str, names: list[str] | None = None,
             wrappings: tuple[str, ...] = ("ddp", "fsdp")) -> None:
    """Each registered configuration (of `names`: their first only) under DDP and FSDP2 against one process
    on the full batch."""
    results = {}
    for name, index, config in cases():
        if names is not None and (name not in names or index > 0):
            continue
        info = REGISTRY[name]
        single = make_model()
        train(single, info.build(list(single.parameters()), **config), range(STEPS), 1, 0)
        expected = [p.detach() for p in single.parameters()]
        for how in wrappings:
            model = wrap(make_model(), how)
            try:
                train(model, info.build(list(model.parameters()), **config), range(STEPS), processes, rank)
                results[f"{name}[{index}] {how}"] = max_relative_difference(full_parameters(model), expected)
            except Exception as error:  # reported by the test, with the configuration
                results[f"{name}[{index}] {how}"] = f"{type(error).__name__}: {error}"
    if rank == 0:
        with open(out, "w") as file:
            json.dump(results, file)


def poisoned_step(info: Any, policy: str, rank: int, processes: int) -> str:
    """One FSDP2 step with an inf in the last process's shard of one gradient; what this process did."""
    model = wrap(make_model(), "fsdp")
    optimizer = info.build(list(model.parameters()), **dict(info.configs[0]))
    for group in optimizer.param_groups:
        group["nonfinite"] = policy
    x, y = (t.chunk(processes)[rank] for t in make_data(0))
    before = full_parameters(model)
    poisoned = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        if rank == processes - 1 and not poisoned:
            model[0].weight.grad.to_local()[0, 0] = float("inf")
            poisoned.append(True)
        return loss.detach()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            optimizer.step(closure)
        except NonFiniteGradientError:
            return f"raised, skipped_steps={optimizer.skipped_steps}"
    changed = not all(torch.equal(a, b) for a, b in zip(full_parameters(model), before))
    return f"{'stepped' if changed else 'unchanged'}, skipped_steps={optimizer.skipped_steps}"


def nonfinite_agreement(rank: int, processes: int, out: str) -> None:
    """Every optimizer under every policy: the decisions of all processes, gathered."""
    decisions = {}
    for name, info in CHECKED.items():
        for policy in ("raise", "skip", "ignore"):
            gathered: list[Any] = [None] * processes
            dist.all_gather_object(gathered, poisoned_step(info, policy, rank, processes))
            decisions[f"{name} {policy}"] = gathered
    if rank == 0:
        with open(out, "w") as file:
            json.dump(decisions, file)


def checkpoints(rank: int, processes: int, folder: str) -> None:
    """For every optimizer: train under FSDP2, save with DCP (model and optimizer), train on. The test
    loads each checkpoint on one process, trains on, and compares with the weights saved here."""
    for name, info in CHECKED.items():
        model = wrap(make_model(), "fsdp")
        optimizer = info.build(list(model.parameters()), **dict(info.configs[0]))
        train(model, optimizer, range(STEPS), processes, rank)
        optimizer.skipped_steps = 3  # as if three steps had been skipped: the count must survive the trip
        state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
        dcp.save(state, checkpoint_id=f"{folder}/{name}")
        train(model, optimizer, range(STEPS, 2 * STEPS), processes, rank)
        final = full_parameters(model)
        if rank == 0:
            torch.save(final, f"{folder}/{name}.pt")


def zero_redundancy(rank: int, processes: int, out: str) -> None:
    """`ZeroRedundancyOptimizer` over AdamW with an inf in a parameter that another process owns: every
    process skips, and the consolidated checkpoint carries the count."""
    from annotated_opt import AdamW
    from annotated_opt.core.zero_redundancy import ZeroRedundancyOptimizer

    model = nn.parallel.DistributedDataParallel(make_model())
    optimizer = ZeroRedundancyOptimizer(model.parameters(), AdamW, lr=0.1, nonfinite="skip")
    x, y = (t.chunk(processes)[rank] for t in make_data(0))
    nn.functional.mse_loss(model(x), y).backward()
    owned_elsewhere = next(p for p in model.parameters() if optimizer._param_to_rank[p] != 0)
    owned_elsewhere.grad[0] = float("inf")  # on every process (DDP's gradients are the same everywhere)
    if rank == 0:
        assert not any(p is owned_elsewhere for g in optimizer.optim.param_groups for p in g["params"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        optimizer.step()
    optimizer.consolidate_state_dict(to=0)
    if rank == 0:
        state_dict = optimizer.state_dict()
        fresh = ZeroRedundancyOptimizer(make_model().parameters(), AdamW, lr=0.1)
        fresh.load_state_dict(state_dict)
        counts = [optimizer.optim.skipped_steps, state_dict["param_groups"][0]["skipped_steps"],
                  fresh.optim.skipped_steps]
        with open(out, "w") as file:
            json.dump(counts, file)


def everything(rank: int, processes: int, folder: str) -> None:
    """The three checks of one spawn: equality, agreement on bad gradients, checkpoints."""
    for check, args in ((equality, (f"{folder}/equality.json",)), (nonfinite_agreement, (f"{folder}/nonfinite.json",)),
                        (checkpoints, (folder,)), (zero_redundancy, (f"{folder}/zero.json",))):
        check(rank, processes, *args)
