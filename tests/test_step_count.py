"""
Step counts are kept as torch keeps them (a 0-d tensor of torch's scalar dtype, advanced in place), so a
checkpoint moves between `torch.optim` and ours in either direction and the next steps are the same bits.
"""

import copy

import pytest
import torch
from torch.optim.optimizer import _get_scalar_dtype

import annotated_opt

from .helpers import save_and_load, toy_problem, train_steps

# Every class with a `torch.optim` twin, with a configuration that exercises its bias corrections.
TWINS = {
    "Adam": {"lr": 0.01, "weight_decay": 0.1},
    "AdamW": {"lr": 0.01, "amsgrad": True},
    "NAdam": {"lr": 0.01, "momentum_decay": 6e-3},
    "RAdam": {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "Adagrad": {"lr": 0.1, "lr_decay": 0.5},
    "RMSprop": {"lr": 0.01, "centered": True, "momentum": 0.5},
}
STEPPING = ["Adam", "AdamW", "AMSGrad", "NAdam", "RAdam", "AdaBelief", "LAMB", "Adagrad", "RMSprop", "Nero", "NeroPlus"]


@pytest.mark.parametrize("name", STEPPING)
def test_the_step_count_is_torchs_tensor(name) -> None:
    model, inputs, targets = toy_problem(0)
    cls = getattr(annotated_opt, name)
    params = list(model.parameters())
    # The Nero family needs its parameters on its constraint set first.
    optimizer = cls(cls.initialize(params) if hasattr(cls, "initialize") else params, lr=1e-3)
    train_steps(model, optimizer, inputs, targets, 3)
    counts = [state["step"] for state in optimizer.state.values()]
    assert all(torch.is_tensor(c) and c.shape == () and c.device.type == "cpu" for c in counts)
    assert all(c.dtype == _get_scalar_dtype() and c.item() == 3 for c in counts)


def test_the_count_is_advanced_in_place() -> None:
    """A compiled or captured step relies on the same tensor being updated, not replaced."""
    model, inputs, targets = toy_problem(0)
    optimizer = annotated_opt.Adam(model.parameters())
    train_steps(model, optimizer, inputs, targets, 1)
    counts = {id(state["step"]) for state in optimizer.state.values()}
    train_steps(model, optimizer, inputs, targets, 2)
    assert {id(state["step"]) for state in optimizer.state.values()} == counts


def test_the_count_follows_a_float64_default_dtype() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model, inputs, targets = toy_problem(0)
        optimizer = annotated_opt.Adam(model.parameters())
        train_steps(model, optimizer, inputs, targets, 1)
        assert all(state["step"].dtype == torch.float64 for state in optimizer.state.values())
    finally:
        torch.set_default_dtype(previous)


def twins(name: str, dtype: torch.dtype):
    """torch's optimizer and ours, each on its own copy of the same model, trained five steps side by side."""
    model, inputs, targets = toy_problem(1, dtype)
    runs = []
    for library in (torch.optim, annotated_opt):
        copy_of_model = copy.deepcopy(model)
        optimizer = getattr(library, name)(copy_of_model.parameters(), **TWINS[name])
        train_steps(copy_of_model, optimizer, inputs, targets, 5)
        runs.append((copy_of_model, optimizer))
    return runs, (inputs, targets)


def resume(library, name: str, model: torch.nn.Module, checkpoint: dict):
    resumed_model = copy.deepcopy(model)
    resumed = getattr(library, name)(resumed_model.parameters(), **TWINS[name])
    resumed.load_state_dict(save_and_load(checkpoint))
    return resumed_model, resumed


def assert_same_runs(first, second, batch) -> None:
    (model, optimizer), (other_model, other) = first, second
    assert train_steps(model, optimizer, *batch, 6) == train_steps(other_model, other, *batch, 6)
    for p, q in zip(model.parameters(), other_model.parameters()):
        assert torch.equal(p, q)
        for key, value in optimizer.state[p].items():
            theirs = other.state[q][key]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(theirs)), key
            assert theirs.dtype == value.dtype and theirs.device == value.device, key


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", TWINS)
def test_a_torch_checkpoint_continues_in_ours_as_in_torch(name, dtype) -> None:
    """
    Ours, resumed from torch's checkpoint, takes the steps torch takes from the same checkpoint (which,
    but for NAdam in float64, are those of the uninterrupted run: see test_nadam.py).
    """
    ((torch_model, torch_optimizer), _), batch = twins(name, dtype)
    checkpoint = torch_optimizer.state_dict()
    resumed = resume(annotated_opt, name, torch_model, checkpoint)
    assert_same_runs(resume(torch.optim, name, torch_model, checkpoint), resumed, batch)
    if not (name == "NAdam" and dtype == torch.float64):
        assert_same_runs((torch_model, torch_optimizer), resume(annotated_opt, name, torch_model, checkpoint), batch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", TWINS)
def test_our_checkpoint_continues_in_torch_as_torchs_own(name, dtype) -> None:
    """
    torch, resumed from our checkpoint, takes the steps it takes from its own checkpoint of the same run.
    (For NAdam in float64 both differ from an uninterrupted run: torch's loading casts `mu_product`
    to the parameters' dtype; see test_nadam.py.)
    """
    ((torch_model, torch_optimizer), (our_model, our_optimizer)), batch = twins(name, dtype)
    from_torch = resume(torch.optim, name, torch_model, torch_optimizer.state_dict())
    from_ours = resume(torch.optim, name, our_model, our_optimizer.state_dict())
    assert_same_runs(from_torch, from_ours, batch)


def test_a_count_saved_as_a_number_loads_as_torchs_tensor() -> None:
    """A checkpoint written before counts were tensors (an int) still loads, as torch's own old ones do."""
    model, inputs, targets = toy_problem(0)
    optimizer = annotated_opt.Adam(model.parameters(), lr=0.01)
    train_steps(model, optimizer, inputs, targets, 4)
    state_dict = copy.deepcopy(optimizer.state_dict())
    for state in state_dict["state"].values():
        state["step"] = int(state["step"])
    resumed_model = copy.deepcopy(model)
    resumed = annotated_opt.Adam(resumed_model.parameters(), lr=0.01)
    resumed.load_state_dict(state_dict)
    assert all(s["step"].dtype == _get_scalar_dtype() and s["step"].item() == 4 for s in resumed.state.values())
    assert train_steps(model, optimizer, inputs, targets, 3) == train_steps(resumed_model, resumed, inputs, targets, 3)


@pytest.mark.parametrize("options", [{}, {"capturable": True}, {"foreach": True}])
def test_asgds_numbers_are_on_the_parameters_device_as_torchs(options) -> None:
    """
    torch's ASGD keeps its count, step size and averaging weight on the parameter's device whatever
    the options. A parameter on the `meta` device stands for a GPU's: its state is created on it.
    """
    param = torch.nn.Parameter(torch.zeros(3, device="meta"))
    param.grad = torch.zeros(3, device="meta")
    ours = annotated_opt.ASGD([param], **options)
    state = {}
    ours.init_state(state, ours.param_groups[0], param)
    theirs = torch.optim.ASGD([param], **options)
    theirs._init_group(theirs.param_groups[0], [], [], [], [], [], [])
    layout = {key: (value.device, value.dtype, value.shape) for key, value in theirs.state[param].items()}
    assert {key: (value.device, value.dtype, value.shape) for key, value in state.items()} == layout
    assert state["step"].device.type == "meta"
