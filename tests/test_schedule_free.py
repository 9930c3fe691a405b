"""Schedule-Free: train/eval switching, checkpoints in either mode, evaluation at x, BatchNorm statistics."""

import copy

import pytest
import schedulefree
import torch

from annotated_opt import ScheduleFreeAdamW, ScheduleFreeSGD, recompute_batchnorm_statistics

from .helpers import save_and_load, toy_problem

BUILDERS = {
    "sgd": lambda params: ScheduleFreeSGD(params, lr=0.05, momentum=0.9, warmup_steps=5, weight_decay=0.01),
    "adamw": lambda params: ScheduleFreeAdamW(params, lr=0.01, warmup_steps=5, weight_decay=0.01),
}


def train_side_by_side(*runs, inputs, targets, steps):
    """`steps` steps of each (model, optimizer) pair on the same batch, step for step."""
    for _ in range(steps):
        for model, optimizer in runs:
            model.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimizer.step()


def train(model, optimizer, inputs, targets, steps):
    optimizer.train()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_checkpoint_in_either_mode_resumes_exactly(kind, mode) -> None:
    """Model and optimizer saved together, in train or eval mode, continue bit for bit."""
    model, inputs, targets = toy_problem(0)
    optimizer = BUILDERS[kind](model.parameters())
    train(model, optimizer, inputs, targets, 12)
    getattr(optimizer, mode)()
    checkpoint = save_and_load({"model": model.state_dict(), "optimizer": optimizer.state_dict()})

    restored_model = copy.deepcopy(model)
    with torch.no_grad():
        for p in restored_model.parameters():
            p.add_(1.0)
    restored = BUILDERS[kind](restored_model.parameters())
    restored_model.load_state_dict(checkpoint["model"])
    restored.load_state_dict(checkpoint["optimizer"])
    assert all(g["train_mode"] == (mode == "train") for g in restored.param_groups)
    for opt, net in ((optimizer, model), (restored, restored_model)):
        train(net, opt, inputs, targets, 10)
        opt.eval()
    for p, q in zip(model.parameters(), restored_model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_eval_holds_the_average_x_of_the_authors_explicit_reference(kind) -> None:
    """
    After eval() the parameters are x, the weighted average of the z's, as the authors' reference
    implementation (which stores x, y and z explicitly) computes it; train() returns to y.
    """
    reference_cls = {"sgd": schedulefree.SGDScheduleFreeReference,
                     "adamw": schedulefree.AdamWScheduleFreeReference}[kind]
    settings = {"sgd": dict(lr=0.05, momentum=0.9, warmup_steps=5, weight_decay=0.01),
                "adamw": dict(lr=0.01, warmup_steps=5, weight_decay=0.01)}[kind]
    model, inputs, targets = toy_problem(1)
    twin = copy.deepcopy(model)
    ours = BUILDERS[kind](model.parameters())
    reference = reference_cls(twin.parameters(), **settings)
    reference.train = reference.eval = lambda: None  # it prints; its flags are set directly below
    for group in reference.param_groups:
        group["train_mode"] = True
    train_side_by_side((model, ours), (twin, reference), inputs=inputs, targets=targets, steps=30)
    y = [p.detach().clone() for p in model.parameters()]
    ours.eval()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.detach(), reference.state[q]["x"], rtol=1e-12, atol=1e-14)
    # Evaluating in eval mode is evaluating x: the same loss as the reference's x.
    with torch.no_grad():
        for q in twin.parameters():
            q.copy_(reference.state[q]["x"])
        torch.testing.assert_close(model(inputs), twin(inputs), rtol=1e-12, atol=1e-14)
    ours.train()
    for p, before in zip(model.parameters(), y):
        torch.testing.assert_close(p.detach(), before, rtol=1e-12, atol=1e-14)


def test_step_in_eval_mode_raises() -> None:
    model, inputs, targets = toy_problem(2)
    optimizer = BUILDERS["adamw"](model.parameters())
    train(model, optimizer, inputs, targets, 2)
    optimizer.eval()
    with pytest.raises(RuntimeError, match="optimizer.train"):
        optimizer.step()


def test_eval_and_train_are_idempotent_and_ignore_parameters_without_state() -> None:
    model, inputs, targets = toy_problem(3)
    frozen = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = ScheduleFreeSGD([*model.parameters(), frozen], lr=0.05)
    train(model, optimizer, inputs, targets, 5)
    optimizer.eval()
    x = [p.detach().clone() for p in model.parameters()]
    optimizer.eval()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), x))
    assert torch.equal(frozen.detach(), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("beta", [0.0, 1.5, float("nan")])
def test_interpolation_outside_zero_one_is_refused(beta) -> None:
    with pytest.raises(ValueError, match="momentum"):
        ScheduleFreeSGD([torch.zeros(2, requires_grad=True)], momentum=beta)
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        ScheduleFreeAdamW([torch.zeros(2, requires_grad=True)], betas=(beta, 0.999))


def test_gradient_is_left_unchanged() -> None:
    """The authors' code divides p.grad in place; ours leaves it as the backward pass wrote it."""
    p = torch.randn(4, dtype=torch.float64, requires_grad=True)
    p.grad = torch.randn(4, dtype=torch.float64)
    before = p.grad.clone()
    ScheduleFreeAdamW([p], weight_decay=0.1).step()
    assert torch.equal(p.grad, before)
    q = p.detach().clone().requires_grad_()
    q.grad = before.clone()
    theirs = schedulefree.AdamWScheduleFree([q], weight_decay=0.1)
    theirs.train()
    theirs.step()
    assert not torch.equal(q.grad, before)


def test_batchnorm_statistics_are_recomputed_at_x() -> None:
    """Running mean and variance become the equal-weight average over the batches, at the eval point."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3, momentum=0.3)).double()
    optimizer = ScheduleFreeSGD(model.parameters(), lr=0.1)
    batches = [torch.randn(8, 4, dtype=torch.float64) for _ in range(5)]
    for batch in batches:
        optimizer.zero_grad()
        model(batch).pow(2).sum().backward()
        optimizer.step()
    optimizer.eval()
    recompute_batchnorm_statistics(model, batches)
    with torch.no_grad():
        features = [model[0](b) for b in batches]
    expected_mean = torch.stack([f.mean(0) for f in features]).mean(0)
    expected_var = torch.stack([f.var(0, unbiased=True) for f in features]).mean(0)
    norm = model[1]
    torch.testing.assert_close(norm.running_mean, expected_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(norm.running_var, expected_var, rtol=1e-12, atol=1e-14)
    assert norm.momentum == 0.3 and not model.training


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_the_authors_call_with_foreach_takes_the_fast_path_and_their_steps(kind, monkeypatch) -> None:
    """
    The authors' classes take `foreach` as their last positional argument: the same call builds ours,
    which then runs its fast path, and the steps (eval point included) are the authors' `foreach` steps.
    """
    from annotated_opt.core import fastpath

    monkeypatch.setattr(fastpath, "BACKEND", "aot_eager")
    stepped = []
    monkeypatch.setattr(fastpath.FastPath, "step_group",
                        lambda self, *args, original=fastpath.FastPath.step_group: stepped.append(1)
                        or original(self, *args))
    positional = {"sgd": (0.05, 0.9, 0.01, 5, 0.0, 2.0, True),
                  "adamw": (0.01, (0.9, 0.999), 1e-8, 0.01, 5, 0.0, 2.0, True)}
    ours_cls, theirs_cls = {"sgd": (ScheduleFreeSGD, schedulefree.SGDScheduleFree),
                            "adamw": (ScheduleFreeAdamW, schedulefree.AdamWScheduleFree)}[kind]
    model, inputs, targets = toy_problem(1)
    twin = copy.deepcopy(model)
    ours, theirs = ours_cls(model.parameters(), *positional[kind]), theirs_cls(twin.parameters(), *positional[kind])
    assert ours.param_groups[0]["foreach"] is True
    ours.train()
    theirs.train()
    train_side_by_side((model, ours), (twin, theirs), inputs=inputs, targets=targets, steps=20)
    assert len(stepped) == 20
    ours.eval()
    theirs.eval()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
