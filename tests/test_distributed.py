"""Every registered optimizer on several processes (gloo on 127.0.0.1): DDP and FSDP2 against one process
on the full batch, one non-finite verdict on every process, DCP checkpoints saved on two processes and
loaded on one, ZeroRedundancyOptimizer; and SAM without a closure. The processes run many optimizers
each, so the whole file costs two spawns, and a third of a few seconds that checks the time limit."""

import json
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from annotated_opt import SAM, SGD, second_pass_frozen
from annotated_opt.core.distributed import read_count, with_count
from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.distributed import launch, max_relative_difference

from . import distributed_workers as workers

# float64 on 8 samples: the processes sum the gradients' halves in another order than one process, so
# the results agree to a few units of rounding, not bit for bit.
TOLERANCE = 1e-12
# L-BFGS's line search turns rounding into different trial steps: one process adding the halves' gradients
# instead of the whole batch's moves its own result by 2e-11 in 4 steps (the processes reproduce exactly
# that). A wrong step would differ by 1e-3 or more.
TOLERANCES = {"lbfgs": 1e-9}


# The spawn runs for a minute or two on two busy cores. A process that waits longer (in a collective
# another process never reaches: they took different decisions) fails the run instead of blocking it.
TIMEOUT = 600

# One worker runs this file: the module's processes are spawned once, not once per worker.
pytestmark = pytest.mark.xdist_group("distributed")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two")
    launch(workers.everything, 2, str(folder), timeout=TIMEOUT)
    return folder


def test_every_optimizer_is_checked() -> None:
    assert set(workers.CHECKED) == set(REGISTRY)
    assert {name for name, _, _ in workers.cases()} == set(REGISTRY)


def test_ddp_and_fsdp2_equal_one_process(two_processes: Path) -> None:
    results = json.loads((two_processes / "equality.json").read_text())
    expected = {f"{name}[{index}] {how}" for name, index, _ in workers.cases() for how in workers.wrappings_of(name)}
    assert set(results) == expected
    failures = {case: value for case, value in results.items()
                if isinstance(value, str) or value > TOLERANCES.get(case.split("[")[0], TOLERANCE)}
    assert not failures


def test_the_fast_path_under_ddp_and_fsdp2_equals_one_process(two_processes: Path) -> None:
    results = json.loads((two_processes / "fast.json").read_text())
    assert set(results) == {f"{name} {how}" for name in workers.FAST_PATH_CHECKED for how in ("ddp", "fsdp")}
    failures = {case: value for case, value in results.items() if isinstance(value, str) or value > TOLERANCE}
    assert not failures


def test_sparse_adam_refuses_sharded_parameters(two_processes: Path) -> None:
    """FSDP2 reduces dense gradients only: SparseAdam says so when it is built, and what to do instead."""
    errors = json.loads((two_processes / "refusals.json").read_text())
    assert set(errors) == set(workers.DDP_ONLY)
    assert "FSDP2" in errors["sparseadam"] and "DistributedDataParallel" in errors["sparseadam"]


def test_a_partial_result_read_as_a_number_is_this_process_part(two_processes: Path) -> None:
    """The trap `full` avoids: `bool` of a partial `DTensor` answers for this process's shard only."""
    assert json.loads((two_processes / "partial.json").read_text()) == [[False, True], [True, True]]


def test_every_process_refuses_a_neuron_off_its_constraint_that_one_process_holds(two_processes: Path) -> None:
    outcomes = json.loads((two_processes / "nero.json").read_text())
    assert outcomes[0] == outcomes[1] and outcomes[0].startswith("refused"), outcomes


def test_every_process_takes_the_same_nonfinite_decision(two_processes: Path) -> None:
    decisions = json.loads((two_processes / "nonfinite.json").read_text())
    policies = ("raise", "skip", "ignore")
    assert set(decisions) == {f"{name} {policy}" for name in workers.sharded() for policy in policies}
    expected = {"raise": "raised, skipped_steps=0", "skip": "unchanged, skipped_steps=1"}
    for case, decision in decisions.items():
        # Every process does what one process does with the whole gradient: raise, skip, or, ignoring
        # the inf, step (ADOPT's and SOAP's first step only collects statistics, and Shampoo's
        # eigendecomposition fails on the inf, on every process as on one).
        assert decision["processes"] == [decision["one"]] * 2, case
        assert decision["one"] == expected.get(case.split()[-1], decision["one"]), case


@pytest.mark.parametrize("name", list(workers.CHECKED))
def test_dcp_checkpoint_from_two_processes_continues_on_one(two_processes: Path, name: str, tmp_path: Path) -> None:
    info = REGISTRY[name]
    model = workers.make_model(name)
    optimizer = info.build(list(model.parameters()), **workers.first_config(name))
    # A fresh optimizer: the checkpoint code creates its state with a bare step on zero gradients.
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    options = None
    if name in workers.GROWING_STATE:
        # DCP loads the entries of the state dict it is given, and a fresh L-BFGS has no history yet:
        # the checkpoint is read whole instead (L-BFGS's state is whole on every process anyway). It is
        # all kept on the first parameter, as torch keeps it: the other parameters have none (strict=False).
        dcp_to_torch_save(two_processes / name, tmp_path / "whole.pt")
        state = torch.load(tmp_path / "whole.pt", weights_only=True)
        options = StateDictOptions(strict=False)
    else:
        dcp.load(state, checkpoint_id=str(two_processes / name))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=options)
    assert optimizer.skipped_steps == 3
    workers.train(model, optimizer, range(workers.STEPS, 2 * workers.STEPS), 1, 0, after_step=info.after_step)
    expected = torch.load(two_processes / f"{name}.pt")
    assert max_relative_difference(list(model.parameters()), expected) < TOLERANCES.get(name, TOLERANCE)


def test_zero_redundancy_agrees_and_keeps_the_count(two_processes: Path) -> None:
    assert json.loads((two_processes / "zero.json").read_text()) == [1, 1, 1]


@pytest.mark.slow
def test_four_processes_fsdp2(tmp_path: Path) -> None:
    """Smaller shards (8 rows over 4 processes, 4 rows: one each), for the methods with norms, global sums
    (Prodigy, with its stride), factored statistics (Adafactor), one vector of all parameters (L-BFGS) and
    whole matrices (Muon)."""
    names = ["lars", "lamb", "sam", "nero", "prodigy", "adafactor", "lbfgs", "muon"]
    launch(workers.equality, 4, str(tmp_path / "equality.json"), names, ("fsdp",), timeout=TIMEOUT)
    results = json.loads((tmp_path / "equality.json").read_text())
    assert set(results) == {f"{name}[{workers.first_case(name)[0]}] fsdp" for name in names}
    assert not {case: value for case, value in results.items()
                if isinstance(value, str) or value > TOLERANCES.get(case.split("[")[0], TOLERANCE)}


def test_processes_that_do_not_finish_fail_the_launch() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish in 3 seconds"):
        launch(workers.stall, 2, timeout=3)
    assert time.monotonic() - start < 60


def test_skipped_steps_ride_in_the_groups_of_a_checkpoint() -> None:
    state_dict = with_count({"state": {}, "param_groups": [{"lr": 1, "params": [0]}]}, 4)
    assert state_dict["param_groups"][0]["skipped_steps"] == 4
    # What DCP and ZeroRedundancyOptimizer keep: the groups without the top-level key.
    kept = {"state": {}, "param_groups": state_dict["param_groups"]}
    assert read_count(kept) == read_count(state_dict) == ({"state": {}, "param_groups": [{"lr": 1, "params": [0]}]}, 4)


def sam_model() -> tuple[nn.Module, SAM]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    return model, SAM(model.parameters(), SGD, lr=0.1, momentum=0.9, rho=0.1)


def loss_of(model: nn.Module) -> torch.Tensor:
    x = torch.linspace(-1, 1, 24, dtype=torch.float64).reshape(8, 3)
    return (model(x) - x.sum(1, keepdim=True)).pow(2).mean()


def test_sam_two_calls_and_a_bare_step_equal_the_closure_step() -> None:
    """The Trainer's calling pattern: backward, first_step, backward again, bare step(), zero_grad()."""
    model, optimizer = sam_model()
    reference_model, reference = sam_model()
    for _ in range(3):
        loss_of(model).backward()
        optimizer.first_step(zero_grad=True)
        loss_of(model).backward()
        optimizer.step()
        optimizer.zero_grad()

        def closure() -> torch.Tensor:
            reference.zero_grad()
            loss = loss_of(reference_model)
            loss.backward()
            return loss

        reference.step(closure)
    for ours, theirs in zip(model.parameters(), reference_model.parameters()):
        assert torch.equal(ours, theirs)


def test_sam_bare_step_on_zero_gradients_is_the_base_step_and_otherwise_raises() -> None:
    model, optimizer = sam_model()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    assert all("momentum_buffer" in optimizer.state[p] for p in model.parameters())
    loss_of(model).backward()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="must follow first_step"):
        optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_second_pass_frozen_counts_the_batch_once() -> None:
    """Lightning's loop: the closure is theirs; only the pass at w may move BatchNorm's statistics."""
    model, optimizer = sam_model()
    reference_model, _ = sam_model()
    loss_of(reference_model)  # one forward pass in training mode: the statistics of one batch

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_of(model)
        loss.backward()
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizer.step(second_pass_frozen(optimizer, model, closure))
    for ours, theirs in zip(model[1].buffers(), reference_model[1].buffers()):
        assert torch.equal(ours, theirs)
