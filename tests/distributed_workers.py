"""What each process runs in the distributed tests (`tests/test_distributed.py`), started by
`annotated_opt.toys.distributed.launch`. Each worker writes its findings to a file that the test reads."""

import json
import time
import warnings
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

from annotated_opt.core.distributed import full
from annotated_opt.core.nonfinite import NonFiniteGradientError
from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.distributed import full_parameters, max_relative_difference, wrap

STEPS = 4
BATCH = 8


class EmbeddingModel(nn.Module):
    r"""For SparseAdam, whose gradients must be sparse: a bag of embeddings chosen by the inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(12, 4, mode="mean", sparse=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bag(x.abs().mul(4).long().clamp(max=11))


def make_model(name: str = "") -> nn.Module:
    r"""
    The model an optimizer is checked on: a two-layer network (without biases for Muon, which takes
    matrices only), or an embedding bag for SparseAdam. The first half of the first bias is zero: on two
    processes one holds a shard of zeros, the other not (Prodigy keeps an all-zero parameter's start as
    one number, and every process must decide alike whether the parameter is zero).
    """
    torch.manual_seed(0)
    if name == "sparseadam":
        return EmbeddingModel().double()
    bias = name != "muon"
    model = nn.Sequential(nn.Linear(6, 8, bias=bias), nn.Tanh(), nn.Linear(8, 4, bias=bias)).double()
    if bias:
        with torch.no_grad():
            model[0].bias[:4] = 0
    return model


def make_data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return (torch.randn(BATCH, 6, generator=generator, dtype=torch.float64),
            torch.randn(BATCH, 4, generator=generator, dtype=torch.float64))


def train(model: nn.Module, optimizer: Any, steps: range, processes: int, rank: int, whole_loss: bool = False,
          after_step: Any = None) -> None:
    """
    Full-batch mean-squared error; each process takes its slice (DDP and FSDP average the gradients).
    The closure returns this process's loss, or with `whole_loss` the whole batch's (its mean over the
    processes). `after_step(optimizer, step)` is the registry's hook (Sophia's Hessian refresh).
    """
    for step in steps:
        x, y = (t.chunk(processes)[rank] for t in make_data(step))

        def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            loss = loss.detach()
            if whole_loss and processes > 1:
                dist.all_reduce(loss)
                loss /= processes
            return loss

        optimizer.step(closure)
        if after_step is not None:
            after_step(optimizer, step)


# Every registered optimizer is checked. FSDP2 cannot shard SparseAdam's parameters (it reduces dense
# gradients only; SparseAdam refuses a sharded parameter when built, which a test checks): it is checked
# under DDP, which all-reduces sparse gradients, and its checkpoint is saved from DDP.
CHECKED = dict(REGISTRY)
DDP_ONLY = ("sparseadam",)
# L-BFGS keeps its history in lists that grow with the steps, which a fresh optimizer's state does not
# have: its checkpoint is read whole, not into the state dict of a fresh optimizer.
GROWING_STATE = ("lbfgs",)

# The optimizers of the first distributed checks run every configuration; the others one each, to keep
# the spawn short: the first, except where named here.
ALL_CONFIGS = ("sgd", "adagrad", "rmsprop", "adam", "amsgrad", "adamw", "radam", "adabelief", "nadam", "lars",
               "lamb", "nero", "neroplus", "sam", "lookahead")
CONFIG = {
    # What a comparison with one process can resolve is how far one process's own result moves when it
    # adds the gradients of the batch's two halves instead of the whole batch's, a rounding-sized change:
    # 1e-16 after 4 steps for most configurations, but 5e-2 for SOAP's first two (the eigenbases of
    # rank-deficient statistics turn by finite angles) and 3e-8 and 3e-6 for L-BFGS's first two. SOAP is
    # checked with small preconditioners (4e-16), L-BFGS with its strong-Wolfe search and a short history
    # (2e-11, which the test's bound for it allows).
    "soap": 2,
    "lbfgs": 3,
    # D-Adaptation and Prodigy from d0 = 1e-6 move the weights by 1e-4 at most in 4 steps; from d0 = 1e-3
    # by 5e-2 and 4e-1, and Prodigy's configuration estimates from every third coordinate (slice_p = 3),
    # a stride that crosses the shards.
    "dadaptadam": 3,
    "prodigy": 3,
}


def cases() -> list[tuple[str, int, dict]]:
    r"""(name, index of the configuration, configuration) for every check of equality."""
    found = []
    for name, info in CHECKED.items():
        indices = range(len(info.configs)) if name in ALL_CONFIGS else [CONFIG.get(name, 0)]
        found.extend((name, index, dict(info.configs[index])) for index in indices)
    return found


def wrappings_of(name: str) -> tuple[str, ...]:
    r"""How an optimizer is checked: under DDP and FSDP2, or under DDP only."""
    return ("ddp",) if name in DDP_ONLY else ("ddp", "fsdp")


def first_case(name: str) -> tuple[int, dict]:
    r"""The index and the configuration that `cases` checks first for `name`."""
    return next((index, config) for case, index, config in cases() if case == name)


def first_config(name: str) -> dict:
    r"""The configuration of the non-finite and checkpoint checks: the one `cases` checks first."""
    return first_case(name)[1]


def equality(rank: int, processes: int, out: str, names: list[str] | None = None,
             wrappings: tuple[str, ...] = ("ddp", "fsdp")) -> None:
    """Each configuration of `cases` (of `names`: their first only) under DDP and FSDP2 against one process
    on the full batch."""
    results = {}
    for name, index, config in cases():
        if names is not None and (name not in names or config != first_config(name)):
            continue
        info = REGISTRY[name]
        single = make_model(name)
        train(single, info.build(list(single.parameters()), **config), range(STEPS), 1, 0, after_step=info.after_step)
        expected = [p.detach() for p in single.parameters()]
        for how in [how for how in wrappings if how in wrappings_of(name)]:
            model = wrap(make_model(name), how)
            # Under DDP the optimizer cannot know of the other processes: the closure must return the
            # whole batch's loss (L-BFGS decides on it). Under FSDP2 it returns its own, and the optimizer
            # completes what it reads.
            try:
                train(model, info.build(list(model.parameters()), **config), range(STEPS), processes, rank,
                      whole_loss=how == "ddp", after_step=info.after_step)
                results[f"{name}[{index}] {how}"] = max_relative_difference(full_parameters(model), expected)
            except Exception as error:  # reported by the test, with the configuration
                results[f"{name}[{index}] {how}"] = f"{type(error).__name__}: {error}"
    if rank == 0:
        with open(out, "w") as file:
            json.dump(results, file)


def poisoned_step(name: str, policy: str, rank: int, processes: int, shards: int) -> str:
    """
    One step with an inf in the first layer's weight gradient, in the first row of the last of `shards`
    shards of rows; what this process did. Under FSDP2 (`processes == shards`) that row is in the last
    process's shard, and only that process sees the inf; on one process (`processes == 1`) it is the
    same element of the whole gradient.
    """
    info = REGISTRY[name]
    model = make_model(name) if processes == 1 else wrap(make_model(name), "fsdp")
    optimizer = info.build(list(model.parameters()), **first_config(name))
    for group in optimizer.param_groups:
        group["nonfinite"] = policy
    x, y = (t.chunk(processes)[rank] for t in make_data(0))
    before = full_parameters(model)
    poisoned = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        if not poisoned:
            grad = model[0].weight.grad
            if processes == 1:
                grad[torch.arange(grad.shape[0]).chunk(shards)[-1][0], 0] = float("inf")
            elif rank == processes - 1:
                grad.to_local()[0, 0] = float("inf")
            poisoned.append(True)
        return loss.detach()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            optimizer.step(closure)
        except NonFiniteGradientError:
            return f"raised, skipped_steps={optimizer.skipped_steps}"
        except Exception as error:  # what the arithmetic makes of an inf that is not checked (`ignore`)
            return f"failed with {type(error).__name__}, skipped_steps={optimizer.skipped_steps}"
    changed = not all(torch.equal(a, b) for a, b in zip(full_parameters(model), before))
    return f"{'stepped' if changed else 'unchanged'}, skipped_steps={optimizer.skipped_steps}"


def nonfinite_agreement(rank: int, processes: int, out: str) -> None:
    """Every optimizer under every policy: the decisions of all processes, gathered, and of one process
    given the whole gradient with the same inf."""
    decisions = {}
    for name in sharded():
        for policy in ("raise", "skip", "ignore"):
            gathered: list[Any] = [None] * processes
            dist.all_gather_object(gathered, poisoned_step(name, policy, rank, processes, processes))
            decisions[f"{name} {policy}"] = {"processes": gathered, "one": poisoned_step(name, policy, 0, 1, processes)}
    if rank == 0:
        with open(out, "w") as file:
            json.dump(decisions, file)


def sharded() -> list[str]:
    r"""The optimizers checked under FSDP2."""
    return [name for name in CHECKED if name not in DDP_ONLY]


def checkpoints(rank: int, processes: int, folder: str) -> None:
    """For every optimizer: train under FSDP2 (SparseAdam under DDP), save with DCP (model and optimizer),
    train on. The test loads each checkpoint on one process, trains on, and compares with the weights
    saved here."""
    for name, info in CHECKED.items():
        how = wrappings_of(name)[-1]
        model = wrap(make_model(name), how)
        optimizer = info.build(list(model.parameters()), **first_config(name))
        train(model, optimizer, range(STEPS), processes, rank, whole_loss=how == "ddp", after_step=info.after_step)
        optimizer.skipped_steps = 3  # as if three steps had been skipped: the count must survive the trip
        state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
        dcp.save(state, checkpoint_id=f"{folder}/{name}")
        train(model, optimizer, range(STEPS, 2 * STEPS), processes, rank, whole_loss=how == "ddp",
              after_step=info.after_step)
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


def refusals(rank: int, processes: int, out: str) -> None:
    """The error of each optimizer that refuses parameters sharded by FSDP2, when it is built."""
    errors = {}
    for name in DDP_ONLY:
        info = REGISTRY[name]
        model = wrap(make_model(name), "fsdp")
        try:
            info.build(list(model.parameters()), **first_config(name))
            errors[name] = "built"
        except ValueError as error:
            errors[name] = str(error)
    if rank == 0:
        with open(out, "w") as file:
            json.dump(errors, file)


def unprojected_neuron(rank: int, processes: int, out: str) -> None:
    """Nero built on a model whose neurons are projected except one, in the first process's shard only:
    what each process does (every one must refuse it, or they part ways at the first step)."""
    model = wrap(make_model("nero"), "fsdp")
    nero = REGISTRY["nero"].cls
    nero.initialize(model)
    if rank == 0:
        with torch.no_grad():
            model[0].weight.to_local()[0].mul_(3)
    try:
        nero(model.parameters(), lr=0.01)
        outcome = "built"
    except ValueError as error:
        outcome = f"refused: {str(error).split(':')[1].strip()}"
    gathered: list[Any] = [None] * processes
    dist.all_gather_object(gathered, outcome)
    if rank == 0:
        with open(out, "w") as file:
            json.dump(gathered, file)


def partial_reads(rank: int, processes: int, out: str) -> None:
    """What each process reads as a Python bool from a partial result (`any` of a sharded bias whose first
    process's shard is all zero), and from the same made whole by `full`."""
    bias = wrap(make_model(), "fsdp")[0].bias
    gathered: list[Any] = [None] * processes
    dist.all_gather_object(gathered, [bool(bias.any()), bool(full(bias.any()))])
    if rank == 0:
        with open(out, "w") as file:
            json.dump(gathered, file)


def stall(rank: int, processes: int) -> None:
    """A process that never finishes, as one waiting for a collective the others never call."""
    time.sleep(3600)


# The fast path under DDP and FSDP2: Adam (torch's twin), SGD with momentum (its buffer is created
# inside the compiled step), Adan (four state tensors), and LARS, LAMB and Nero, whose per-layer norms
# must be the whole layer's on every shard. Traced with `aot_eager`, as in the fast path's own tests.
FAST_PATH_CHECKED = ("adam", "sgd", "adan", "lars", "lamb", "nero")


def fast_path_equality(rank: int, processes: int, out: str) -> None:
    """The fast path (`foreach=True`) under DDP and FSDP2 against the readable path on one process."""
    from annotated_opt.core import fastpath

    results = {}
    backend, fastpath.BACKEND = fastpath.BACKEND, "aot_eager"
    try:
        for name in FAST_PATH_CHECKED:
            info = REGISTRY[name]
            config = dict(info.configs[-1] if name == "sgd" else info.configs[0])
            single = make_model(name)
            train(single, info.build(list(single.parameters()), **config), range(STEPS), 1, 0)
            expected = [p.detach() for p in single.parameters()]
            for how in ("ddp", "fsdp"):
                model = wrap(make_model(name), how)
                torch._dynamo.reset()
                try:
                    optimizer = info.build(list(model.parameters()), **config, foreach=True)
                    train(model, optimizer, range(STEPS), processes, rank, whole_loss=how == "ddp")
                    compiled = torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
                    results[f"{name} {how}"] = (max_relative_difference(full_parameters(model), expected)
                                                if compiled else "the fast path did not run")
                except Exception as error:  # reported by the test
                    results[f"{name} {how}"] = f"{type(error).__name__}: {error}"
    finally:
        fastpath.BACKEND = backend
    if rank == 0:
        with open(out, "w") as file:
            json.dump(results, file)


def everything(rank: int, processes: int, folder: str) -> None:
    """The checks of one spawn: equality (readable and fast path), agreement on bad gradients, checkpoints,
    ZeroRedundancyOptimizer, refusals, partial results read as numbers, Nero's check of its constraints."""
    for check, args in ((equality, (f"{folder}/equality.json",)), (fast_path_equality, (f"{folder}/fast.json",)),
                        (nonfinite_agreement, (f"{folder}/nonfinite.json",)),
                        (checkpoints, (folder,)), (zero_redundancy, (f"{folder}/zero.json",)),
                        (refusals, (f"{folder}/refusals.json",)), (partial_reads, (f"{folder}/partial.json",)),
                        (unprojected_neuron, (f"{folder}/nero.json",))):
        check(rank, processes, *args)
