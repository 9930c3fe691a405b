"""The composable optimizer: each assembled optimizer equals its class-based twin; order matters as predicted."""

import copy
from collections.abc import Callable

import pytest
import torch

import annotated_opt
from annotated_opt.composable import (
    AverageGrad,
    AverageSqrGrad,
    ComposableOptimizer,
    Stat,
    StepCount,
    adam,
    adamw,
    assembled,
    decoupled_weight_decay,
    l2_reg,
    lamb,
    momentum_step,
    sgd_step,
)
from annotated_opt.core.verification import (
    SEEDS,
    clone_parameters,
    gradient_closure,
    make_parameters,
    param_groups,
    relative_error,
)

from .helpers import save_and_load, toy_problem, train_steps

STEPS = 100
TOLERANCE = 1e-12

# (name, assembled function, twin class, twin's constructor arguments, the assembled function's arguments,
#  twin state key -> composable state key)
SGD_KEYS = {}
MOMENTUM_KEYS = {"momentum_buffer": "grad_avg"}
RMSPROP_KEYS = {"square_avg": "sqr_avg"}
ADAM_KEYS = {"exp_avg": "grad_avg", "exp_avg_sq": "sqr_avg", "step": "step"}

CASES = [
    ("sgd", assembled.sgd, "SGD", {"lr": 0.05}, SGD_KEYS),
    ("sgd-l2", assembled.sgd, "SGD", {"lr": 0.05, "weight_decay": 0.01}, SGD_KEYS),
    ("momentum", assembled.momentum, "SGD", {"lr": 0.05, "momentum": 0.9}, MOMENTUM_KEYS),
    ("momentum-l2", assembled.momentum, "SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}, MOMENTUM_KEYS),
    ("rmsprop", assembled.rmsprop, "RMSprop", {"lr": 0.01}, RMSPROP_KEYS),
    ("rmsprop-l2", assembled.rmsprop, "RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01},
     RMSPROP_KEYS),
    ("adam", assembled.adam, "Adam", {"lr": 0.01}, ADAM_KEYS),
    ("adam-l2", assembled.adam, "Adam", {"lr": 0.01, "weight_decay": 0.05}, ADAM_KEYS),
    ("adam-betas", assembled.adam, "Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}, ADAM_KEYS),
    ("adamw", assembled.adamw, "AdamW", {"lr": 0.01}, ADAM_KEYS),
    ("adamw-wd", assembled.adamw, "AdamW", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.85, 0.995)}, ADAM_KEYS),
]


def twin_classes(name: str) -> list:
    """The class-based twin of this library and torch's own, both built with torch's arguments."""
    return [getattr(annotated_opt, name), getattr(torch.optim, name)]


def compare_runs(make_ours: Callable, make_twin: Callable, config: dict, keys: dict, seed: int,
                 steps: int = STEPS) -> float:
    """
    Run both on the harness's awkward parameters (two groups, the second with half the lr and twice
    the weight decay, a parameter without gradient every third step, a frozen one) and return the
    largest relative error over every parameter and every mapped state tensor, after every step.
    """
    ours_params = make_parameters(seed, torch.float64)
    twin_params = clone_parameters(ours_params)
    ours = make_ours(param_groups(ours_params, config), **config)
    twin = make_twin(param_groups(twin_params, config), **config)
    worst = 0.0
    for step in range(1, steps + 1):
        for params, optimizer in ((ours_params, ours), (twin_params, twin)):
            closure = gradient_closure(params, step, seed)
            closure()
            optimizer.step(closure)
        for mine, theirs in zip(ours_params, twin_params):
            worst = max(worst, relative_error(mine.detach(), theirs.detach()))
            twin_state, our_state = twin.state.get(theirs, {}), ours.state.get(mine, {})
            assert bool(twin_state) == bool(our_state), f"state created differently at step {step}"
            for twin_key, our_key in keys.items():
                if twin_state:
                    worst = max(worst, relative_error(our_state[our_key], twin_state[twin_key]))
    return worst


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("twin_source", ["annotated_opt", "torch.optim"])
@pytest.mark.parametrize(("name", "build", "twin_name", "config", "keys"), CASES, ids=[c[0] for c in CASES])
def test_assembled_optimizer_equals_its_twin(name, build, twin_name, config, keys, twin_source, seed) -> None:
    twin = twin_classes(twin_name)[0 if twin_source == "annotated_opt" else 1]
    error = compare_runs(build, twin, config, keys, seed)
    assert error <= TOLERANCE, f"{name} vs {twin_source}.{twin_name}: {error:.2e}"


LAMB_KEYS = {"exp_avg": "grad_avg", "exp_avg_sq": "sqr_avg"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
@pytest.mark.parametrize("config", [{"lr": 0.01}, {"lr": 0.01, "weight_decay": 0.05, "betas": (0.8, 0.99)}],
                         ids=["plain", "decay"])
def test_lamb_without_bias_correction_equals_pytorch_optimizer(config, foreach, seed) -> None:
    """
    `pytorch_optimizer.Lamb` clamps the weight norm at 10, adds eps to the update norm, and with
    `weight_decouple=False` adds the decay to the update (the paper's rule). Its `adam_debias=True`
    turns off the one correction it makes by default (see the next test), leaving none at all.
    """
    from pytorch_optimizer import Lamb

    def reference(groups, **config):
        return Lamb(groups, weight_decouple=False, eps=1e-6, foreach=foreach, adam_debias=True, **config)

    def ours(groups, **config):
        return lamb(groups, bias_correction=False, eps=1e-6, **config)

    assert compare_runs(ours, reference, config, LAMB_KEYS, seed) <= TOLERANCE


def test_pytorch_optimizer_lamb_divides_its_step_by_the_first_correction_after_the_trust_ratio() -> None:
    r"""
    A quirk of `pytorch_optimizer.Lamb` 4.1.0: its docstring says the default has no bias correction,
    but by default (`adam_debias=False`) it divides the step size by $1-\beta_1^t$ *after* the trust
    ratio, which has already normalised the update's length. Its first step is therefore
    $1/(1-\beta_1) = 10$ times the uncorrected one, whatever the gradients.
    """
    from pytorch_optimizer import Lamb

    generator = torch.Generator().manual_seed(5)
    start = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    grad = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    ours_param, their_param = start.clone().requires_grad_(), start.clone().requires_grad_()
    ours = lamb([ours_param], lr=0.01, bias_correction=False)
    theirs = Lamb([their_param], lr=0.01, weight_decouple=False, foreach=False)
    for param, optimizer in ((ours_param, ours), (their_param, theirs)):
        param.grad = grad.clone()
        optimizer.step()
    torch.testing.assert_close(their_param.detach() - start, 10 * (ours_param.detach() - start), rtol=1e-12,
                               atol=0)


def lamb_by_hand(weights: torch.Tensor, grads: list[torch.Tensor], lr: float, betas: tuple[float, float],
                 eps: float, weight_decay: float) -> torch.Tensor:
    r"""The paper's LAMB (Algorithm 2, with bias correction) written out for one tensor."""
    beta1, beta2 = betas
    m = torch.zeros_like(weights)
    v = torch.zeros_like(weights)
    w = weights.clone()
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        u = m_hat / (v_hat.sqrt() + eps) + weight_decay * w
        phi = min(w.norm().item(), 10.0)
        w = w - lr * phi / (u.norm().item() + eps) * u
    return w


def test_lamb_with_bias_correction_follows_the_paper_by_hand() -> None:
    generator = torch.Generator().manual_seed(3)
    weights = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    grads = [torch.randn(4, 3, generator=generator, dtype=torch.float64) for _ in range(5)]
    param = weights.clone().requires_grad_()
    optimizer = lamb([param], lr=0.02, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1)
    for g in grads:
        param.grad = g.clone()
        optimizer.step()
    expected = lamb_by_hand(weights, grads, 0.02, (0.9, 0.999), 1e-6, 0.1)
    torch.testing.assert_close(param.detach(), expected, rtol=1e-13, atol=0)


def test_lamb_moves_each_layer_by_lr_times_its_norm() -> None:
    r"""
    At step 1 with bias correction $\hat m = g$, $\hat v = g^2$, so $u = g / (|g| + \epsilon)$: the
    step has length $\eta\,\lVert\theta\rVert\,\lVert u\rVert / (\lVert u\rVert + \epsilon)$, whatever
    the gradient's scale. A zero tensor (a fresh bias) gets a trust ratio of one.
    """
    small = torch.full((10,), 0.5, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimizer = lamb([small, zero], lr=0.1, eps=1e-6)
    small.grad = torch.linspace(-1e3, 2e3, 10, dtype=torch.float64)
    zero.grad = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    before = small.detach().clone()
    optimizer.step()
    u = small.grad / (small.grad.abs() + 1e-6)
    expected_length = 0.1 * before.norm() * u.norm() / (u.norm() + 1e-6)
    torch.testing.assert_close((small.detach() - before).norm(), expected_length, rtol=1e-14, atol=0)
    torch.testing.assert_close(zero.detach(), -0.1 * zero.grad / (zero.grad.abs() + 1e-6), rtol=1e-14, atol=0)


# ----- Order of the pieces: what the weight-decay guide predicts -----


def one_step_each(warmup: list, runs: list[tuple[list, dict]], **hypers) -> list[torch.Tensor]:
    """
    Train with the `warmup` pieces for 20 steps, then take one more step from that same state and the
    same gradient with each `(pieces, hypers)` of `runs`. Returns theta before, then after each run.
    """
    torch.manual_seed(0)
    param = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    optimizer = ComposableOptimizer([param], warmup, **hypers)
    for _ in range(20):
        param.grad = torch.randn_like(param) + 0.3 * param.detach()
        optimizer.step()
    grad = torch.randn_like(param)
    before = param.detach().clone()
    results = [before]
    for pieces, run_hypers in runs:
        twin_param = before.clone().requires_grad_()
        twin = ComposableOptimizer([twin_param], pieces, **run_hypers)
        state = optimizer.state_dict()
        state["param_groups"] = twin.state_dict()["param_groups"]
        twin.load_state_dict(state)
        twin_param.grad = grad.clone()
        twin.step()
        results.append(twin_param.detach())
    return results


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_decay_after_the_update_shrinks_the_update_by_lr_times_wd(kind) -> None:
    r"""
    Decay first: $\theta_a = (1-\eta\lambda)\theta + \Delta$. Decay after:
    $\theta_b = (1-\eta\lambda)(\theta + \Delta) = \theta_a - \eta\lambda\Delta$.
    """
    hypers = {"lr": 0.05, "weight_decay": 0.2}
    if kind == "sgd":
        update = [sgd_step]
    else:
        update = [*assembled.adam_stats(), annotated_opt.composable.adam_step]
    decay_first = [decoupled_weight_decay, *update]
    decay_after = [*update, decoupled_weight_decay]
    before, theta_a, theta_b = one_step_each(decay_first, [(decay_first, hypers), (decay_after, hypers)], **hypers)
    delta = theta_a - (1 - 0.05 * 0.2) * before
    assert delta.abs().max() > 1e-3
    torch.testing.assert_close(theta_b, theta_a - 0.05 * 0.2 * delta, rtol=0, atol=1e-15)
    assert (theta_b - theta_a).abs().max() > 1e-5


def test_l2_placed_after_the_average_is_lost() -> None:
    r"""
    The course's order (stats first, then an L2 stepper) gives momentum without any decay; L2 placed
    before the average adds $-\eta\lambda\theta$ to this step's update.
    """
    hypers = {"lr": 0.05, "momentum": 0.9}
    decay = {**hypers, "weight_decay": 0.1}
    no_decay = [AverageGrad(), momentum_step]
    before, theta_late, theta_none, theta_early = one_step_each(no_decay, [
        ([AverageGrad(), l2_reg, momentum_step], decay),
        (no_decay, hypers),
        ([l2_reg, AverageGrad(), momentum_step], decay),
    ], **hypers)
    assert torch.equal(theta_late, theta_none)
    torch.testing.assert_close(theta_early, theta_none - 0.05 * 0.1 * before, rtol=0, atol=1e-15)


def run_adam_family(pieces: list, steps: int = 100, **hypers) -> torch.Tensor:
    torch.manual_seed(1)
    param = torch.randn(50, dtype=torch.float64, requires_grad=True)
    scales = torch.logspace(-2, 2, 50, dtype=torch.float64)
    optimizer = ComposableOptimizer([param], pieces, **hypers)
    for _ in range(steps):
        param.grad = scales * torch.randn(50, dtype=torch.float64)
        optimizer.step()
    return param.detach()


def test_l2_and_decoupled_decay_agree_for_sgd_but_not_for_adam() -> None:
    hypers = {"lr": 0.01, "weight_decay": 0.5}
    sgd_l2 = run_adam_family([l2_reg, sgd_step], **hypers)
    sgd_decoupled = run_adam_family([decoupled_weight_decay, sgd_step], **hypers)
    torch.testing.assert_close(sgd_l2, sgd_decoupled, rtol=1e-12, atol=1e-14)

    adam_pieces = [*assembled.adam_stats(), annotated_opt.composable.adam_step]
    adam_l2 = run_adam_family([l2_reg, *adam_pieces], **hypers)
    adam_decoupled = run_adam_family([decoupled_weight_decay, *adam_pieces], **hypers)
    assert (adam_l2 - adam_decoupled).abs().max() > 1e-2


# ----- A proper torch.optim.Optimizer -----


@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "torch.save"])
@pytest.mark.parametrize("build", [assembled.momentum, adam, adamw, lamb], ids=lambda f: f.__name__)
def test_state_dict_round_trip_continues_bit_identically(build, through_file) -> None:
    model, inputs, targets = toy_problem(0)
    optimizer = build(model.parameters(), lr=0.01)
    train_steps(model, optimizer, inputs, targets, 7)
    twin_model = copy.deepcopy(model)
    twin = build(twin_model.parameters(), lr=0.01)
    state = optimizer.state_dict()
    if through_file:
        state = save_and_load(state)
    twin.load_state_dict(state)
    assert train_steps(model, optimizer, inputs, targets, 8) == train_steps(twin_model, twin, inputs, targets, 8)
    for p, q in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(p, q)


def test_a_hyper_parameter_changed_in_one_group_leaves_the_other_alone() -> None:
    torch.manual_seed(0)
    first = [torch.randn(4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    second = [p.detach().clone().requires_grad_() for p in first]
    together = adam([{"params": first[:1]}, {"params": first[1:]}], lr=0.01)
    apart = [adam([second[0]], lr=0.01), adam([second[1]], lr=0.01)]
    together.param_groups[1]["momentum"] = 0.5
    apart[1].param_groups[0]["momentum"] = 0.5
    for _ in range(10):
        grads = [torch.randn(4, dtype=torch.float64) for _ in range(2)]
        for p, q, g in zip(first, second, grads):
            p.grad, q.grad = g.clone(), g.clone()
        together.step()
        for optimizer in apart:
            optimizer.step()
    for p, q in zip(first, second):
        assert torch.equal(p, q)
    assert together.param_groups[0]["momentum"] == 0.9


def test_defaults_come_from_the_pieces_and_keywords_override() -> None:
    param = torch.zeros(2, requires_grad=True)
    optimizer = ComposableOptimizer([param], [l2_reg, *assembled.adam_stats(), annotated_opt.composable.adam_step])
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["sqr_momentum"], group["eps"], group["weight_decay"]) == (0.9, 0.999, 1e-8, 0.0)
    assert adam([param], betas=(0.8, 0.9)).param_groups[0]["sqr_momentum"] == 0.9


def test_bad_hyper_parameters_are_refused_by_name() -> None:
    param = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="momentun"):
        ComposableOptimizer([param], [AverageGrad(), momentum_step], momentun=0.9)
    with pytest.raises(ValueError, match="momentum: 1.0"):
        ComposableOptimizer([param], [AverageGrad(), momentum_step], momentum=1.0)
    with pytest.raises(ValueError, match="pieces"):
        ComposableOptimizer([param], [])


def test_per_parameter_options_and_torch_schedulers_apply() -> None:
    frozen = torch.ones(3, dtype=torch.float64, requires_grad=True)
    moving = torch.ones(3, dtype=torch.float64, requires_grad=True)
    frozen.opt_args = {"lr_scale": 0.0}
    optimizer = assembled.momentum([frozen, moving], lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(2):
        frozen.grad = torch.ones(3, dtype=torch.float64)
        moving.grad = torch.ones(3, dtype=torch.float64)
        optimizer.step()
        scheduler.step()
    assert torch.equal(frozen.detach(), torch.ones(3, dtype=torch.float64))
    # lr 0.1 then 0.05; the momentum buffer is 1 then 1.9: 1 - 0.1 - 0.05 * 1.9
    torch.testing.assert_close(moving.detach(), torch.full((3,), 1 - 0.1 - 0.095, dtype=torch.float64))


def test_gradients_are_never_modified() -> None:
    param = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = adam([param], weight_decay=0.5)
    param.grad = torch.full((3,), 2.0, dtype=torch.float64)
    optimizer.step()
    assert torch.equal(param.grad, torch.full((3,), 2.0, dtype=torch.float64))


# ----- The stats, and the momentum guide's claims about them -----


@pytest.mark.parametrize("dampening", [False, True])
def test_debiased_average_of_a_constant_is_that_constant_at_every_step(dampening) -> None:
    r"""The weights sum to $d\,(1-\beta^t)/(1-\beta)$, so the debiased average of $g, g, \dots$ is $g$."""
    from annotated_opt.composable.steppers import debias

    stat, count = AverageGrad(dampening=dampening), StepCount()
    g = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    state = {**stat.init_state(g), **count.init_state(g)}
    for t in range(1, 30):
        stat.update(state, g, momentum=0.9)
        count.update(state, g)
        d = 0.1 if dampening else 1.0
        raw_sum = d * sum(0.9**k for k in range(t))
        torch.testing.assert_close(state["grad_avg"], raw_sum * g, rtol=1e-14, atol=0)
        torch.testing.assert_close(state["grad_avg"] / debias(0.9, state["mom_damp"], state["step"]), g,
                                   rtol=1e-13, atol=0)


def test_average_squared_gradient_and_the_lag_behind_a_trend() -> None:
    r"""
    $v_t = (1-\beta_2^t)\,g^2$ for a constant gradient; and on a ramp $g_i = c\,i$ the dampened average
    trails by $\beta/(1-\beta)$ steps once $\beta^t$ is negligible, as the momentum guide derives.
    """
    stat = AverageSqrGrad()
    g = torch.tensor([3.0], dtype=torch.float64)
    state = stat.init_state(g)
    for _ in range(5):
        stat.update(state, g, sqr_momentum=0.99)
    torch.testing.assert_close(state["sqr_avg"], (1 - 0.99**5) * g * g, rtol=1e-14, atol=0)

    ramp = AverageGrad(dampening=True)
    state = ramp.init_state(g)
    slope, steps = 0.01, 2000
    for i in range(1, steps + 1):
        ramp.update(state, torch.tensor([slope * i], dtype=torch.float64), momentum=0.9)
    torch.testing.assert_close(state["grad_avg"].item(), slope * (steps - 0.9 / 0.1), rtol=1e-12, atol=0)


def test_step_count_is_per_parameter_and_skips_steps_without_a_gradient() -> None:
    used, sometimes = (torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    optimizer = adam([used, sometimes])
    for step in range(6):
        used.grad = torch.ones(2, dtype=torch.float64)
        sometimes.grad = torch.ones(2, dtype=torch.float64) if step % 2 else None
        optimizer.step()
    assert optimizer.state[used]["step"] == 6 and optimizer.state[sometimes]["step"] == 3
    assert "pieces: l2_reg, AverageGrad(dampening=True)" in repr(optimizer)
    assert isinstance(AverageGrad(), Stat)
