"""SAM and ASAM: the two passes against a hand-written computation, BatchNorm, checkpoints, errors, digits."""

import copy
import functools

import pytest
import torch
from torch import nn

from annotated_opt import SAM, SGD, Adam, disable_running_stats, enable_running_stats, running_stats_frozen
from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.digits import load_digits, mlp, train

from .helpers import save_and_load

DTYPE = torch.float64


def regression_problem(seed: int = 0):
    """A small tanh network and a stream of seeded batches, in float64."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(DTYPE)
    generator = torch.Generator().manual_seed(seed + 100)
    batches = [(torch.randn(16, 5, generator=generator, dtype=DTYPE), torch.randn(16, 3, generator=generator,
                                                                               dtype=DTYPE)) for _ in range(25)]
    return model, batches


def functional_loss(weights, x, y):
    """The network of `regression_problem` as a function of its four tensors."""
    w1, b1, w2, b2 = weights
    return ((torch.tanh(x @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean()


def gradient(weights, x, y):
    leaves = [w.detach().requires_grad_() for w in weights]
    return list(torch.autograd.grad(functional_loss(leaves, x, y), leaves))


def closure_for(model, optimizer, x, y):
    def closure():
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss
    return closure


# Two groups with different learning rates *and* different radii: the first layer and the second.
GROUP_LR = (0.05, 0.02)
GROUP_RHO = (0.05, 0.2)


def hand_written_run(weights, batches, base, adaptive, rho_scale):
    r"""
    The paper's two passes on plain tensors: $g = \nabla L(w)$; one norm $N$ over all four tensors;
    $\epsilon = \rho_{group} T^2 g / (N + 10^{-12})$; $g' = \nabla L(w + \epsilon)$; base step at $w$ with
    $g'$. SGD with momentum and Adam are written out too. Returns the weights after every step.
    """
    weights = [w.detach().clone() for w in weights]
    groups = (0, 0, 1, 1)
    buffers = [None] * 4
    m = [torch.zeros_like(w) for w in weights]
    v = [torch.zeros_like(w) for w in weights]
    history = []
    for t, (x, y) in enumerate(batches, start=1):
        g = gradient(weights, x, y)
        scale = [w.abs() if adaptive else torch.ones_like(w) for w in weights]
        norm = torch.sqrt(sum(((s * gi) ** 2).sum() for s, gi in zip(scale, g)))
        perturbed = [w + rho_scale * GROUP_RHO[k] * s * s * gi / (norm + 1e-12)
                     for w, s, gi, k in zip(weights, scale, g, groups)]
        g_sam = gradient(perturbed, x, y)
        for i, (gi, k) in enumerate(zip(g_sam, groups)):
            lr = GROUP_LR[k]
            if base == "sgd":
                buffers[i] = gi.clone() if buffers[i] is None else 0.9 * buffers[i] + gi
                weights[i] = weights[i] - lr * buffers[i]
            else:
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi * gi
                m_hat, v_hat = m[i] / (1 - 0.9**t), v[i] / (1 - 0.999**t)
                weights[i] = weights[i] - lr * m_hat / (v_hat.sqrt() + 1e-8)
        history.append(list(weights))
    return history


@pytest.mark.parametrize("adaptive", [False, True], ids=["SAM", "ASAM"])
@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_steps_equal_a_hand_written_two_pass_computation(base, adaptive) -> None:
    model, batches = regression_problem()
    rho_scale = 20.0 if adaptive else 1.0
    expected = hand_written_run([p.detach() for p in model.parameters()], batches, base, adaptive, rho_scale)

    layers = [model[0], model[2]]
    groups = [{"params": list(layer.parameters()), "lr": lr, "sam_rho": rho_scale * rho}
              for layer, lr, rho in zip(layers, GROUP_LR, GROUP_RHO)]
    if base == "sgd":
        optimizer = SAM(groups, SGD, momentum=0.9, adaptive=adaptive)
    else:
        optimizer = SAM(groups, Adam, adaptive=adaptive)

    assert len(batches) >= 20
    for (x, y), weights in zip(batches, expected):
        closure = closure_for(model, optimizer, x, y)
        closure()
        optimizer.step(closure)
        for ours, theirs in zip(model.parameters(), weights):
            torch.testing.assert_close(ours.detach(), theirs, rtol=1e-10, atol=1e-13)


def test_perturbation_uses_one_norm_over_all_groups() -> None:
    """After `first_step`, every weight has moved by rho * g / ||g||, ||g|| over both groups together."""
    model, batches = regression_problem(1)
    layers = [model[0], model[2]]
    optimizer = SAM([{"params": list(layer.parameters())} for layer in layers], SGD, lr=0.1, rho=0.3)
    closure_for(model, optimizer, *batches[0])()
    before = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    global_norm = torch.sqrt(sum((g * g).sum() for g in grads))
    optimizer.first_step()
    for p, w, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach() - w, 0.3 * g / global_norm, rtol=1e-10, atol=1e-15)
    # A per-group norm would be a different (larger) perturbation for each group.
    first_group_norm = torch.sqrt(sum((g * g).sum() for g in grads[:2]))
    assert first_group_norm < global_norm * 0.999


def test_restore_is_exact_where_subtracting_the_perturbation_is_not() -> None:
    """With a base that does not move (lr = 0), a SAM step leaves the weights bit-identical."""
    generator = torch.Generator().manual_seed(0)
    p = torch.randn(1000, generator=generator).requires_grad_()
    start = p.detach().clone()
    noise = torch.randn(1000, generator=generator)
    optimizer = SAM([p], SGD, lr=0.0, rho=0.5)

    def closure():
        p.grad = noise.clone()
        return torch.zeros(())

    closure()
    optimizer.step(closure)
    assert torch.equal(p.detach(), start)
    # The other way back, (w + e) - e, misses w in float32 for some weights.
    e = 0.5 * noise / noise.norm()
    assert not torch.equal((start + e) - e, start)


def test_a_weight_without_a_second_gradient_is_restored_too() -> None:
    """The reference code only restores weights that have a gradient in the second pass."""
    a = torch.ones(3, dtype=DTYPE, requires_grad=True)
    b = torch.ones(2, dtype=DTYPE, requires_grad=True)
    optimizer = SAM([a, b], SGD, lr=0.1)
    a.grad, b.grad = torch.ones(3, dtype=DTYPE), torch.ones(2, dtype=DTYPE)

    def second_pass_without_b():
        a.grad = torch.full((3,), 2.0, dtype=DTYPE)
        return torch.zeros(())

    optimizer.step(second_pass_without_b)
    assert torch.equal(b.detach(), torch.ones(2, dtype=DTYPE))
    torch.testing.assert_close(a.detach(), torch.full((3,), 1 - 0.1 * 2.0, dtype=DTYPE))


def test_maximize_perturbs_down_the_objective() -> None:
    """For a maximiser the worst case is the lower point: epsilon points along -g."""
    p = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    optimizer = SAM([p], SGD, lr=0.1, rho=0.5, maximize=True)
    p.grad = torch.tensor([3.0, 4.0], dtype=DTYPE)
    optimizer.first_step()
    torch.testing.assert_close(p.detach(), -0.5 * torch.tensor([0.6, 0.8], dtype=DTYPE))


TORCH_BASES = [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
               torch.optim.Adadelta, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam]


@pytest.mark.parametrize("base_cls", TORCH_BASES, ids=lambda c: c.__name__)
def test_any_torch_optimizer_works_as_the_base(base_cls) -> None:
    """SAM over a torch.optim class equals the two passes written out around that same class."""
    model, batches = regression_problem(2)
    twin = copy.deepcopy(model)
    optimizer = SAM(model.parameters(), base_cls, rho=0.1, lr=0.01)
    base = base_cls(twin.parameters(), lr=0.01)
    for x, y in batches[:20]:
        closure = closure_for(model, optimizer, x, y)
        closure()
        optimizer.step(closure)

        by_hand = closure_for(twin, base, x, y)
        by_hand()
        grads = [p.grad for p in twin.parameters()]
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        saved = [p.detach().clone() for p in twin.parameters()]
        with torch.no_grad():
            for p, g in zip(twin.parameters(), grads):
                p.add_(0.1 * g / (norm + 1e-12))
        by_hand()
        with torch.no_grad():
            for p, w in zip(twin.parameters(), saved):
                p.copy_(w)
        base.step()
    for ours, theirs in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)


def test_sam_keys_do_not_clash_with_the_base() -> None:
    """Adadelta has its own rho: SAM's radius lives beside it, as sam_rho."""
    optimizer = SAM([torch.zeros(2, requires_grad=True)], torch.optim.Adadelta, rho=0.05)
    group = optimizer.param_groups[0]
    assert group["rho"] == 0.9 and group["sam_rho"] == 0.05


def test_an_instance_works_as_the_base_and_shares_everything() -> None:
    model, batches = regression_problem(3)
    twin = copy.deepcopy(model)
    from_class = SAM(model.parameters(), SGD, rho=0.1, lr=0.05, momentum=0.9)
    base = SGD(twin.parameters(), lr=0.05, momentum=0.9)
    from_instance = SAM(None, base, rho=0.1)
    assert from_instance.param_groups is base.param_groups and from_instance.state is base.state
    for x, y in batches[:5]:
        for m, opt in ((model, from_class), (twin, from_instance)):
            closure = closure_for(m, opt, x, y)
            closure()
            opt.step(closure)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
    assert "momentum_buffer" in from_instance.state[next(twin.parameters())]


def test_a_closure_only_loop_equals_the_loop_that_computes_the_first_gradient() -> None:
    """Without gradients at the call, SAM evaluates the closure for the first pass too; after a step the
    gradients are cleared, so the next step knows it must."""
    model, batches = regression_problem(5)
    twin = copy.deepcopy(model)
    first_outside = SAM(model.parameters(), SGD, lr=0.05, momentum=0.9, rho=0.1)
    closure_only = SAM(twin.parameters(), SGD, lr=0.05, momentum=0.9, rho=0.1)
    for x, y in batches[:8]:
        closure = closure_for(model, first_outside, x, y)
        closure()
        first_outside.step(closure)
        calls = []

        def counted(x=x, y=y, calls=calls):
            calls.append(torch.is_grad_enabled())
            return closure_for(twin, closure_only, x, y)()

        closure_only.step(counted)
        assert calls == [True, True]
        assert all(p.grad is None for p in twin.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


def test_scheduler_acts_on_the_shared_groups() -> None:
    model, batches = regression_problem()
    optimizer = SAM(model.parameters(), SGD, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for x, y in batches[:4]:
        closure = closure_for(model, optimizer, x, y)
        closure()
        optimizer.step(closure)
        scheduler.step()
    assert optimizer.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def run_with_checkpoint(make_optimizer, model, batches, stop: int, through_file: bool = True):
    """Train to `stop`, checkpoint model+optimizer+scheduler, rebuild everything, load, train on."""
    optimizer = make_optimizer(model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.7)

    def train_on(model, optimizer, scheduler, part):
        for x, y in part:
            closure = closure_for(model, optimizer, x, y)
            closure()
            optimizer.step(closure)
            scheduler.step()

    train_on(model, optimizer, scheduler, batches[:stop])
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict()}
    checkpoint = save_and_load(checkpoint)

    resumed_model = copy.deepcopy(model)
    with torch.no_grad():
        for p in resumed_model.parameters():
            p.fill_(7.0)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = make_optimizer(resumed_model)
    resumed_scheduler = torch.optim.lr_scheduler.StepLR(resumed, step_size=3, gamma=0.7)
    resumed.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    train_on(resumed_model, resumed, resumed_scheduler, batches[stop:])
    return resumed_model, resumed


@pytest.mark.parametrize("base", [SGD, torch.optim.SGD, Adam], ids=["ours-SGD", "torch-SGD", "ours-Adam"])
def test_checkpoint_mid_run_continues_identically(base) -> None:
    make = functools.partial(SAM, base_optimizer=base, lr=0.05, rho=0.1, adaptive=base is Adam)
    make_optimizer = lambda model: make(model.parameters())
    model, batches = regression_problem(4)
    straight = copy.deepcopy(model)
    optimizer = make_optimizer(straight)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.7)
    for x, y in batches[:20]:
        closure = closure_for(straight, optimizer, x, y)
        closure()
        optimizer.step(closure)
        scheduler.step()

    resumed_model, resumed = run_with_checkpoint(make_optimizer, model, batches[:20], stop=9)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), resumed_model.parameters()))
    # The loaded groups are shared again: one list for the wrapper and its base.
    assert resumed.param_groups is resumed.base_optimizer.param_groups
    assert resumed.state is resumed.base_optimizer.state
    assert resumed.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_deepcopy_keeps_the_base_and_the_sharing() -> None:
    model, batches = regression_problem()
    optimizer = SAM(model.parameters(), SGD, lr=0.1, momentum=0.9)
    closure = closure_for(model, optimizer, *batches[0])
    closure()
    optimizer.step(closure)
    twin = copy.deepcopy(optimizer)
    assert twin.base_optimizer is not optimizer.base_optimizer
    assert twin.param_groups is twin.base_optimizer.param_groups
    assert twin.state is twin.base_optimizer.state
    twin.param_groups[0]["lr"] = 1.0
    assert optimizer.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: SAM(p, "SGD"), ValueError, "Invalid base_optimizer: 'SGD'"),
        (lambda p: SAM(p, functools.partial(SGD, lr=0.1)), ValueError, "Invalid base_optimizer"),
        (lambda p: SAM(p, None), ValueError, "Invalid base_optimizer: None"),
        (lambda p: SAM(p, SGD, rho=-0.1), ValueError, "Invalid rho: -0.1"),
        (lambda p: SAM(None, SGD(p, lr=0.1), lr=0.2), ValueError, "Invalid arguments ['lr']"),
        (lambda p: SAM([torch.zeros(1, requires_grad=True)], SGD(p, lr=0.1)), ValueError, "Invalid params"),
    ],
)
def test_invalid_construction_raises(make, error, message) -> None:
    with pytest.raises(error) as raised:
        make([torch.zeros(3, requires_grad=True)])
    assert message in str(raised.value)


def test_step_without_closure_or_gradients_raises_and_leaves_weights_alone() -> None:
    p = torch.ones(3, requires_grad=True)
    optimizer = SAM([p], SGD, lr=0.1)
    # A bare step is SAM's step only after first_step, or on zero gradients (see test_distributed.py);
    # without any gradient it changes nothing, as a step with a closure that computes none.
    assert optimizer.step() is None
    # No gradient before the step, none from the closure: nothing to do, as in torch.optim.
    assert optimizer.step(lambda: None) is None
    assert torch.equal(p.detach(), torch.ones(3)) and not optimizer.state.get(p)
    p.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="produced no gradients"):
        optimizer.step(lambda: None)
    assert torch.equal(p.detach(), torch.ones(3))

    def failing():
        raise KeyError("a failing batch")

    p.grad = torch.ones(3)
    with pytest.raises(KeyError):
        optimizer.step(failing)
    assert torch.equal(p.detach(), torch.ones(3))
    with pytest.raises(RuntimeError, match="without a first_step"):
        optimizer.second_step()


# ---------------------------------------------------------------------------------------------------------
# BatchNorm


def batchnorm_model(momentum=0.1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12, momentum=momentum), nn.ReLU(),
                         nn.Linear(12, 3)).to(DTYPE)


def batchnorm_batches(n: int = 8):
    generator = torch.Generator().manual_seed(5)
    return [(torch.randn(20, 6, generator=generator, dtype=DTYPE),
             torch.randint(0, 3, (20,), generator=generator)) for _ in range(n)]


def batchnorm_step(model, optimizer, x, y, freeze: bool) -> dict:
    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    closure()
    after_first_pass = {name: buffer.clone() for name, buffer in model[1].named_buffers()}
    if freeze:
        with running_stats_frozen(model):
            optimizer.step(closure)
    else:
        optimizer.step(closure)
    return after_first_pass


def test_second_pass_leaves_batchnorm_statistics_unchanged() -> None:
    frozen_model, free_model = batchnorm_model(), batchnorm_model()
    frozen = SAM(frozen_model.parameters(), SGD, lr=0.1, momentum=0.9, rho=0.1)
    free = SAM(free_model.parameters(), SGD, lr=0.1, momentum=0.9, rho=0.1)
    for step, (x, y) in enumerate(batchnorm_batches(), start=1):
        snapshot = batchnorm_step(frozen_model, frozen, x, y, freeze=True)
        for key, value in frozen_model[1].named_buffers():
            assert torch.equal(value, snapshot[key]), key
        assert int(frozen_model[1].num_batches_tracked) == step
        free_snapshot = batchnorm_step(free_model, free, x, y, freeze=False)
        # Without freezing them the second pass does move them: the test can fail.
        assert not torch.equal(free_model[1].running_mean, free_snapshot["running_mean"])
        assert int(free_model[1].num_batches_tracked) == 2 * step
    # The second pass still normalised with the batch's statistics, as in training: the weights of
    # both runs are the same; only the running statistics differ.
    for p, q in zip(frozen_model.parameters(), free_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert frozen_model[1].track_running_stats


def test_zero_momentum_trick_still_counts_batches_and_skews_a_cumulative_average() -> None:
    """The reference code sets momentum to 0: the count still grows, which matters when
    momentum=None (the running statistics are then a cumulative average weighted by that count)."""
    ours_model, theirs_model = batchnorm_model(momentum=None), batchnorm_model(momentum=None)
    ours = SAM(ours_model.parameters(), SGD, lr=0.1, rho=0.1)
    theirs = SAM(theirs_model.parameters(), SGD, lr=0.1, rho=0.1)
    for x, y in batchnorm_batches(4):
        batchnorm_step(ours_model, ours, x, y, freeze=True)

        def closure(x=x, y=y):
            theirs.zero_grad()
            loss = nn.functional.cross_entropy(theirs_model(x), y)
            loss.backward()
            return loss

        closure()
        layer = theirs_model[1]
        layer.momentum = 0
        theirs.step(closure)
        layer.momentum = None
    assert int(ours_model[1].num_batches_tracked) == 4
    assert int(theirs_model[1].num_batches_tracked) == 8
    # Cumulative average of the first-pass batch means: ours is exactly that average.
    assert not torch.allclose(ours_model[1].running_mean, theirs_model[1].running_mean, rtol=1e-6, atol=0)


def test_running_stats_switches_restore_each_layer_setting() -> None:
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm2d(3, track_running_stats=False), nn.Linear(3, 3))
    disable_running_stats(model)
    disable_running_stats(model)
    assert not model[0].track_running_stats and not model[1].track_running_stats
    enable_running_stats(model)
    assert model[0].track_running_stats and not model[1].track_running_stats
    with pytest.raises(ZeroDivisionError):
        with running_stats_frozen(model):
            assert not model[0].track_running_stats
            raise ZeroDivisionError
    assert model[0].track_running_stats


# ---------------------------------------------------------------------------------------------------------
# The real task


def test_sam_trains_the_digits() -> None:
    data = load_digits()
    info = REGISTRY["sam"]
    result = train(mlp(), lambda m: info.build(m.parameters(), lr=0.05, rho=0.05), data, epochs=5)
    assert result.test_accuracy > 0.9
    assert sum(result.losses[-21:]) / 21 < result.losses[0] / 5


def second_pass_poisoned(params, value):
    """A closure whose first evaluation in a step is finite and whose second puts `value` in one gradient."""
    calls = []

    def closure():
        calls.append(None)
        for index, p in enumerate(params):
            p.grad = 0.5 * p.detach() + 0.1 * (index + 1)
            if len(calls) == 2 and index == len(params) - 1:
                p.grad.view(-1)[0] = value
        return torch.zeros(())

    return closure


def finite_closure(params):
    def closure():
        for index, p in enumerate(params):
            p.grad = 0.5 * p.detach() + 0.1 * (index + 1)
        return torch.zeros(())
    return closure


@pytest.mark.parametrize("base", [SGD, torch.optim.SGD], ids=["ours", "torch"])
def test_a_nonfinite_second_pass_is_skipped_at_the_exact_weights(base) -> None:
    """Finite at w, NaN at w + eps: the weights go back exactly, the base does not step, one skip is counted
    (on the base's count when the base is ours) and saved; the run goes on as if the step had not been taken.
    Over a torch.optim base, SAM's own check is the only one."""
    generator = torch.Generator().manual_seed(21)
    params = [torch.randn(3, 2, generator=generator, dtype=DTYPE).requires_grad_() for _ in range(2)]
    optimizer = SAM([{"params": params, "nonfinite": "skip"}], base, lr=0.1, momentum=0.9, rho=0.3)
    for _ in range(2):
        optimizer.step(finite_closure(params))
    twins, twin = copy.deepcopy((params, optimizer))
    before = copy.deepcopy(optimizer.state_dict())
    with pytest.warns(RuntimeWarning, match="SAM skipped a step"):
        optimizer.step(second_pass_poisoned(params, float("nan")))
    assert all(torch.equal(p, q) for p, q in zip(params, twins))
    after = optimizer.state_dict()
    assert after.pop("skipped_steps") == optimizer.skipped_steps == 1
    assert before.pop("skipped_steps") == 0
    assert set(after["state"]) == set(before["state"])
    assert all(torch.equal(after["state"][i]["momentum_buffer"], before["state"][i]["momentum_buffer"])
               for i in before["state"])
    if base is SGD:
        assert optimizer.base_optimizer.skipped_steps == 1
    restored_params = copy.deepcopy(params)
    restored = SAM([{"params": restored_params, "nonfinite": "skip"}], base, lr=0.1, momentum=0.9, rho=0.3)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.skipped_steps == 1
    for _ in range(3):
        for run, ps in ((optimizer, params), (twin, twins), (restored, restored_params)):
            run.step(finite_closure(ps))
    assert all(torch.equal(p, q) and torch.equal(p, r) for p, q, r in zip(params, twins, restored_params))


def test_a_nonfinite_second_pass_raises_at_the_exact_weights_and_by_hand_it_is_skipped_too() -> None:
    from annotated_opt.core.nonfinite import NonFiniteGradientError

    params = [torch.linspace(-1, 1, 5, dtype=DTYPE).requires_grad_()]
    optimizer = SAM(params, SGD, lr=0.1, rho=0.3)
    start = params[0].detach().clone()
    with pytest.raises(NonFiniteGradientError, match="SAM got a non-finite gradient in parameter 0 of group 0"):
        optimizer.step(second_pass_poisoned(params, float("inf")))
    assert torch.equal(params[0], start) and not optimizer.state.get(params[0])
    # The pieces called by hand: the check of the second pass is in second_step.
    optimizer.param_groups[0]["nonfinite"] = "skip"
    closure = second_pass_poisoned(params, float("nan"))
    closure()
    optimizer.first_step(zero_grad=True)
    assert not torch.equal(params[0], start)
    closure()
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        optimizer.second_step(zero_grad=True)
    assert torch.equal(params[0], start) and optimizer.skipped_steps == 1 and not optimizer.state.get(params[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_a_skipped_first_step_leaves_no_state_not_even_a_master(dtype) -> None:
    """The first pass creates the state (the master, Adam's moments) of a parameter's first step; when the
    step is then skipped, all of it goes again, and the next step is a first step like any other."""
    generator = torch.Generator().manual_seed(22)
    values = [torch.randn(4, generator=generator).to(dtype) for _ in range(2)]
    params = [v.clone().requires_grad_() for v in values]
    fresh_params = [v.clone().requires_grad_() for v in values]
    groups = lambda ps: [{"params": ps, "nonfinite": "skip", "master_weights": True}]  # noqa: E731
    optimizer, fresh = SAM(groups(params), Adam, lr=0.01), SAM(groups(fresh_params), Adam, lr=0.01)
    with pytest.warns(RuntimeWarning, match="skipped a step"):
        optimizer.step(second_pass_poisoned(params, float("nan")))
    assert optimizer.state_dict()["state"] == {} and not optimizer.state
    assert all(torch.equal(p, v) for p, v in zip(params, values))
    optimizer.step(finite_closure(params))
    fresh.step(finite_closure(fresh_params))
    assert all(torch.equal(p, q) for p, q in zip(params, fresh_params))
    assert all(torch.equal(optimizer.state[p]["master_param"], fresh.state[q]["master_param"])
               for p, q in zip(params, fresh_params))


def test_master_weights_need_a_base_that_keeps_them() -> None:
    """A torch.optim base updates the half-precision parameter itself: the option is refused, not ignored."""
    p = torch.ones(3, dtype=torch.bfloat16, requires_grad=True)
    optimizer = SAM([{"params": [p], "master_weights": True}], torch.optim.Adam, lr=0.1)
    with pytest.raises(ValueError, match="Invalid master_weights: True in group 0, but the base optimizer Adam"):
        optimizer.step(finite_closure([p]))
    assert torch.equal(p.detach(), torch.ones(3, dtype=torch.bfloat16)) and not optimizer.state
