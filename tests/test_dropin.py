"""Swapping `torch.optim.X` for `annotated_opt.X` in existing training code, as a user would."""

import copy

import pytest
import torch

import annotated_opt

from .helpers import toy_problem, train_steps


@pytest.mark.parametrize(("name", "kwargs"), [
    ("AdamW", {"fused": True}), ("SGD", {"lr": 0.1, "foreach": False}), ("Adam", {"foreach": True}),
    ("Adagrad", {"fused": True}), ("RMSprop", {"foreach": True}), ("NAdam", {"foreach": True}),
    ("RAdam", {"foreach": False}),
])
def test_implementation_flags_run_and_give_torchs_numbers(name, kwargs) -> None:
    model, inputs, targets = toy_problem(0, torch.float32)
    twin = copy.deepcopy(model)
    ours = getattr(annotated_opt, name)(model.parameters(), **kwargs)
    reference = getattr(torch.optim, name)(twin.parameters(), **{**kwargs, "fused": False} if "fused" in kwargs
                                           else kwargs)
    assert train_steps(model, ours, inputs, targets, 5) == train_steps(twin, reference, inputs, targets, 5)


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adam"])
def test_decoupled_weight_decay_is_honoured_per_group_and_saved(name) -> None:
    model, inputs, targets = toy_problem(0)
    twin = copy.deepcopy(model)
    groups = lambda m: [{"params": m[0].parameters(), "decoupled_weight_decay": True},  # noqa: E731
                        {"params": m[2].parameters()}]
    ours = getattr(annotated_opt, name)(groups(model), weight_decay=0.5)
    reference = getattr(torch.optim, name)(groups(twin), weight_decay=0.5)
    assert train_steps(model, ours, inputs, targets, 10) == train_steps(twin, reference, inputs, targets, 10)
    assert [g["decoupled_weight_decay"] for g in ours.state_dict()["param_groups"]] == [True, False]
    # And the option matters: without it the first group is decayed differently.
    plain_model = toy_problem(0)[0]
    plain = getattr(annotated_opt, name)(plain_model.parameters(), weight_decay=0.5)
    train_steps(plain_model, plain, inputs, targets, 10)
    assert not torch.equal(plain_model[0].weight, model[0].weight)


def test_adam_with_amsgrad_is_torchs() -> None:
    model, inputs, targets = toy_problem(0)
    twin = copy.deepcopy(model)
    ours = annotated_opt.Adam(model.parameters(), lr=0.01, amsgrad=True)
    reference = torch.optim.Adam(twin.parameters(), lr=0.01, amsgrad=True)
    assert isinstance(ours, annotated_opt.Adam)
    assert train_steps(model, ours, inputs, targets, 10) == train_steps(twin, reference, inputs, targets, 10)


@pytest.mark.parametrize(("name", "kwargs"), [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}),
                                              ("Adagrad", {"lr": 0.1}), ("Adagrad", {"lr": 0.1, "maximize": True})])
def test_sparse_embedding_gradients_as_torch(name, kwargs) -> None:
    results = []
    for library in (torch.optim, annotated_opt):
        torch.manual_seed(0)
        embedding = torch.nn.Embedding(10, 3, sparse=True)
        optimizer = getattr(library, name)(embedding.parameters(), **kwargs)
        for step in range(4):
            optimizer.zero_grad()
            embedding(torch.tensor([1, 2, 2, 5 + step])).square().sum().backward()
            optimizer.step()
        results.append(embedding.weight.detach())
    assert torch.equal(*results)


def test_adagrad_refuses_weight_decay_with_sparse_gradients_as_torch() -> None:
    embedding = torch.nn.Embedding(4, 2, sparse=True)
    optimizer = annotated_opt.Adagrad(embedding.parameters(), weight_decay=0.1)
    embedding(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="weight_decay"):
        optimizer.step()


def test_sgd_without_momentum_keeps_no_state() -> None:
    model, inputs, targets = toy_problem(0)
    optimizer = annotated_opt.SGD(model.parameters(), lr=0.1)
    train_steps(model, optimizer, inputs, targets, 2)
    assert optimizer.state_dict()["state"] == {} == torch.optim.SGD(model.parameters()).state_dict()["state"]


def test_nadam_loads_a_state_holding_something_else() -> None:
    model, inputs, targets = toy_problem(0)
    optimizer = annotated_opt.NAdam(model.parameters())
    train_steps(model, optimizer, inputs, targets, 2)
    optimizer.register_load_state_dict_post_hook(lambda opt: None)
    state_dict = optimizer.state_dict()
    state_dict["state"]["note"] = True  # state not keyed by a parameter, as torch keeps it
    optimizer.load_state_dict(state_dict)
    train_steps(model, optimizer, inputs, targets, 1)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "RAdam", "RMSprop"])
def test_capturable_on_the_cpu_fails_as_torchs(name) -> None:
    for library in (torch.optim, annotated_opt):
        p = torch.nn.Parameter(torch.ones(3))
        p.grad = torch.ones(3)
        optimizer = getattr(library, name)([p], capturable=True)
        with pytest.raises(AssertionError, match="capturable=True"):
            optimizer.step()


@pytest.mark.parametrize(("name", "kwargs", "error"), [
    ("Adam", {"fused": True, "foreach": True}, RuntimeError),
    ("AdamW", {"fused": True, "differentiable": True}, RuntimeError),
    ("SGD", {"fused": True, "foreach": True}, RuntimeError),
    ("NAdam", {"fused": True}, TypeError),
    ("RAdam", {"fused": True}, TypeError),
    ("Adam", {"lr": torch.tensor(0.01), "foreach": True}, ValueError),
])
def test_refused_combinations_raise_torchs_exception(name, kwargs, error) -> None:
    for library in (torch.optim, annotated_opt):
        with pytest.raises(error):
            getattr(library, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSprop", "Adagrad"])
def test_differentiable_step_gives_torchs_gradient(name) -> None:
    """A loss after one step, differentiated back to the weights before it, as in learned optimisers."""
    gradients = []
    for library in (torch.optim, annotated_opt):
        leaf = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64, requires_grad=True)
        param = leaf.clone()
        param.grad = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64)
        optimizer = getattr(library, name)([param], lr=0.1, differentiable=True)
        optimizer.step()
        (param.square().sum()).backward()
        gradients.append(leaf.grad)
    torch.testing.assert_close(*gradients, rtol=1e-15, atol=0)
