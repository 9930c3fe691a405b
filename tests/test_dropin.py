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
    ours_losses = train_steps(model, ours, inputs, targets, 5)
    torch_losses = train_steps(twin, reference, inputs, targets, 5)
    if kwargs.get("foreach") or kwargs.get("fused"):
        # Our fast path: the same step compiled, which may round a float32 operation differently.
        assert ours_losses == pytest.approx(torch_losses, rel=1e-6)
    else:
        assert ours_losses == torch_losses


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


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_fused_capturable_on_the_cpu_steps_as_torchs(name) -> None:
    """torch's fused kernels take `capturable=True` on the CPU (only its other steps refuse it)."""
    model, inputs, targets = toy_problem(0, torch.float32)
    twin = copy.deepcopy(model)
    ours = getattr(annotated_opt, name)(model.parameters(), fused=True, capturable=True)
    theirs = getattr(torch.optim, name)(twin.parameters(), fused=True, capturable=True)
    assert train_steps(model, ours, inputs, targets, 5) == pytest.approx(
        train_steps(twin, theirs, inputs, targets, 5), rel=1e-6)


# Each twin's options with a differentiable step in torch (its other options either change nothing that
# autograd sees, or torch's differentiable step fails on them: AMSGrad's and Adamax's in-place maximum).
DIFFERENTIABLE = [
    ("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.1, "weight_decay": 0.1}), ("Adam", {"lr": 0.1, "maximize": True}), ("AdamW", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.01}),
    ("RMSprop", {"lr": 0.01}), ("RMSprop", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.1}), ("NAdam", {"lr": 0.1, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.1, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.1, "weight_decay": 0.1, "t0": 0}), ("Adadelta", {"lr": 1.0, "weight_decay": 0.1}),
]


def hypergradients(library, name: str, **options) -> list[torch.Tensor]:
    """
    Two differentiable steps of a weight that is a function of `start`, on gradients that require
    grad; the gradients of a loss of the stepped weight with respect to the start and to each gradient.
    """
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True)
    grads = [torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True) for _ in range(2)]
    weight = start.clone()
    optimizer = getattr(library, name)([weight], differentiable=True, **options)
    for grad in grads:
        weight.grad = grad * 1.0
        optimizer.step()
    (weight**2).sum().backward()
    return [start.grad, *(grad.grad for grad in grads)]


@pytest.mark.parametrize("flags", [{}, {"foreach": True}], ids=["readable", "foreach"])
@pytest.mark.parametrize(("name", "options"), DIFFERENTIABLE, ids=lambda value: str(value))
def test_a_differentiable_step_gives_torchs_hypergradients(name, options, flags) -> None:
    """
    `differentiable=True` lets autograd differentiate a loss after the step through the step (learned
    learning rates, meta-learning): the gradients reach the starting weight and every gradient
    stepped with as they do through torch's step (whose first momentum buffer is detached). With
    `foreach=True` the fast path, which runs without autograd, gives way to the readable step.
    """
    theirs = hypergradients(torch.optim, name, **options)
    ours = hypergradients(annotated_opt, name, **options, **flags)
    for mine, reference in zip(ours, theirs):
        if reference is None:
            assert mine is None
        else:
            torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-14)


def step_from_state(p, grad, state, optimizer_class, options, *state_values):
    """One step of a fresh optimizer from `state`: the new parameter and the state tensors autograd follows."""
    p = p.clone()
    p.grad = grad
    optimizer = optimizer_class([p], differentiable=True, **options)
    optimizer.state[p].update({key: value.clone() for key, value in state.items()})
    optimizer.step()
    return (p, *(value for value in optimizer.state[p].values() if value.requires_grad))


# Each twin's state, as torch's own tests of differentiable steps build it: the moments require grad.
STATE_KEYS = {
    "SGD": ["momentum_buffer"], "Adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "AdamW": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], "Adagrad": ["sum"],
    "RMSprop": ["square_avg", "momentum_buffer"], "NAdam": ["exp_avg", "exp_avg_sq"],
    "RAdam": ["exp_avg", "exp_avg_sq"], "Adamax": ["exp_avg", "exp_inf"], "ASGD": ["ax"],
    "Adadelta": ["square_avg", "acc_delta"], "Rprop": ["prev", "step_size"],
}
STATE_OPTIONS = {"SGD": {"momentum": 0.9, "weight_decay": 0.1}, "Adam": {"amsgrad": True}, "AdamW": {"amsgrad": True},
                 "RMSprop": {"momentum": 0.9}}
SCALAR_STATE = {"NAdam": {"mu_product": 1.0}, "ASGD": {"eta": 0.9, "mu": 1.0}}


@pytest.mark.parametrize("name", list(STATE_KEYS))
def test_a_differentiable_step_passes_gradcheck(name) -> None:
    """
    The step's derivatives with respect to the parameter, the gradient and every state tensor equal
    finite differences (`torch.autograd.gradcheck`, float64), from a state of the tenth step.
    """
    generator = torch.Generator().manual_seed(0)
    tensors = lambda: torch.rand(10, dtype=torch.float64, generator=generator, requires_grad=True)  # noqa: E731
    state = {key: tensors() for key in STATE_KEYS[name]}
    if name != "SGD":
        state["step"] = torch.tensor(10.0, dtype=torch.float64)
    state.update({key: torch.tensor(value, dtype=torch.float64) for key, value in SCALAR_STATE.get(name, {}).items()})
    options = {"lr": 0.9, **STATE_OPTIONS.get(name, {})}
    assert torch.autograd.gradcheck(step_from_state, (tensors(), tensors(), state, getattr(annotated_opt, name),
                                                      options, *state.values()))


def learning_rate_gradient(library, name: str, **options) -> torch.Tensor | None:
    """Two differentiable steps with a learning rate that requires grad; its gradient after a loss."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True) * 1.0
    lr = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    optimizer = getattr(library, name)([weight], lr=lr, differentiable=True, **options)
    for _ in range(2):
        weight.grad = torch.randn(4, dtype=torch.float64, generator=generator)
        optimizer.step()
    (weight**2).sum().backward()
    return lr.grad


@pytest.mark.parametrize(("name", "options"), [("SGD", {}), ("SGD", {"weight_decay": 0.1}), ("Adam", {}),
                                               ("AdamW", {"weight_decay": 0.1}), ("RAdam", {})],
                         ids=lambda value: str(value))
def test_a_learning_rate_that_requires_grad_gets_torchs_gradient(name, options) -> None:
    """A learned learning rate: a differentiable step keeps it a tensor that autograd follows."""
    theirs = learning_rate_gradient(torch.optim, name, **options)
    ours = learning_rate_gradient(annotated_opt, name, **options)
    assert theirs is not None
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["Adagrad", "RMSprop", "Adadelta"])
def test_a_learning_rate_that_requires_grad_fails_where_torchs_fails(name) -> None:
    """torch's differentiable steps of these pass the learning rate where only a number goes: so do ours."""
    for library in (torch.optim, annotated_opt):
        with pytest.raises(TypeError, match="must be Number, not Tensor"):
            learning_rate_gradient(library, name)


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


@pytest.mark.parametrize("direction", ["ours to torch", "torch to ours"])
def test_adagrad_checkpoint_with_a_parameter_that_never_stepped(direction) -> None:
    """torch creates Adagrad's state at construction: so do we, and a checkpoint moves either way."""
    def build(library):
        generator = torch.Generator().manual_seed(0)
        params = [torch.randn(3, generator=generator) for _ in range(2)]
        return params, library.Adagrad(params, lr=0.1, initial_accumulator_value=0.1)

    source_library, target_library = (annotated_opt, torch.optim) if direction == "ours to torch" else (
        torch.optim, annotated_opt)
    (params, source), (twin_params, twin) = build(source_library), build(source_library)
    params[0].grad = twin_params[0].grad = torch.ones(3)  # the second parameter never steps
    source.step()
    twin.step()
    assert source.state_dict()["state"].keys() == {0, 1}
    loaded_params = [p.clone() for p in params]
    loaded = target_library.Adagrad(loaded_params, lr=0.1, initial_accumulator_value=0.1)
    loaded.load_state_dict(copy.deepcopy(source.state_dict()))
    loaded.share_memory()
    for step in range(3):
        for group in (params, twin_params, loaded_params):
            for index, p in enumerate(group):
                p.grad = torch.full_like(p, 0.5 * (step + index + 1))
        twin.step()
        loaded.step()
    assert all(torch.equal(p, q) for p, q in zip(loaded_params, twin_params))


def test_adagrad_state_is_created_as_the_first_step_would_for_complex_and_master_weights() -> None:
    complex_param = torch.randn(3, dtype=torch.complex64)
    half = torch.randn(4, dtype=torch.bfloat16)
    optimizer = annotated_opt.Adagrad([complex_param], lr=0.1, initial_accumulator_value=0.2)
    optimizer.add_param_group({"params": [half], "master_weights": True})
    assert optimizer.state[complex_param]["sum"].shape == (3, 2)
    reference = complex_param.clone()
    real_twin = torch.view_as_real(reference).clone()
    lazy = torch.optim.Adagrad([real_twin], lr=0.1, initial_accumulator_value=0.2)
    for step in range(3):
        complex_param.grad = torch.full_like(complex_param, complex(1.0, -2.0) * (step + 1))
        half.grad = torch.full_like(half, 0.3)
        real_twin.grad = torch.view_as_real(complex_param.grad).clone()
        optimizer.step()
        lazy.step()
    assert torch.equal(torch.view_as_real(complex_param), real_twin)
    assert optimizer.state[half]["sum"].dtype == torch.float32 == optimizer.state[half]["master_param"].dtype


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("betas", [(torch.tensor(0.9), torch.tensor(0.99)), (torch.tensor([0.8]), torch.tensor([0.95])),
                                   (torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.99, dtype=torch.float64))],
                         ids=["0-d", "one-element", "float64"])
def test_tensor_betas_as_torch(name, dtype, betas) -> None:
    """Tensor betas (which a schedule may change in place), stored as torch stores them, with torch's steps."""
    runs = []
    for library in (torch.optim, annotated_opt):
        generator = torch.Generator().manual_seed(0)
        params = [torch.randn(4, 3, generator=generator, dtype=dtype), torch.randn(3, generator=generator, dtype=dtype)]
        optimizer = getattr(library, name)(params, lr=0.01, betas=copy.deepcopy(betas), amsgrad=True)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator, dtype=dtype)
            optimizer.step()
            optimizer.param_groups[0]["betas"][0].fill_(0.85)  # changed in place, as a schedule would
        runs.append((params, optimizer.param_groups[0]["betas"]))
    (theirs, their_betas), (ours, our_betas) = runs
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))
    assert [b.shape for b in our_betas] == [b.shape for b in their_betas] == [(), ()]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("kwargs", [{"betas": (0.9, torch.tensor(0.99))}, {"betas": (torch.tensor(0.9), 0.99)},
                                    {"betas": (torch.tensor(0.9), torch.tensor(0.99)), "foreach": True}])
def test_mixed_or_foreach_tensor_betas_are_refused_as_by_torch(name, kwargs) -> None:
    for library in (torch.optim, annotated_opt):
        with pytest.raises(ValueError, match="betas"):
            getattr(library, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)


@pytest.mark.parametrize("name", ["NAdam", "RAdam"])
def test_nadam_and_radam_take_mixed_betas_as_torch(name) -> None:
    runs = []
    for library in (torch.optim, annotated_opt):
        param = torch.linspace(-1, 1, 5)
        optimizer = getattr(library, name)([param], lr=0.01, betas=(0.9, torch.tensor(0.99)))
        for step in range(8):
            param.grad = torch.sin(param * (step + 1))
            optimizer.step()
        runs.append(param)
    assert torch.equal(*runs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
def test_fused_with_a_complex_parameter_fails_as_torchs(name) -> None:
    """torch's fused kernels take floating-point parameters only, and say so at the first step."""
    for library in (torch.optim, annotated_opt):
        p = torch.nn.Parameter(torch.ones(3, dtype=torch.complex64))
        p.grad = torch.ones_like(p)
        optimizer = getattr(library, name)([p], lr=0.1, fused=True)
        with pytest.raises(RuntimeError, match="requires all the params to be floating point"):
            optimizer.step()


def test_fused_adam_checks_a_parameter_added_after_the_first_step_as_torchs() -> None:
    for library in (torch.optim, annotated_opt):
        real = torch.nn.Parameter(torch.ones(3))
        real.grad = torch.ones(3)
        optimizer = library.Adam([real], fused=True)
        optimizer.step()
        complex_param = torch.nn.Parameter(torch.ones(3, dtype=torch.complex64))
        complex_param.grad = torch.ones_like(complex_param)
        optimizer.add_param_group({"params": [complex_param]})
        with pytest.raises(RuntimeError, match="requires all the params to be floating point"):
            optimizer.step()


def scaled_training(library, name: str, fused: bool, overflow_at: int, **options) -> tuple:
    """Eight steps of mixed-precision training code with `torch.amp.GradScaler`, one loss infinite."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = getattr(library, name)(model.parameters(), lr=0.01, fused=fused, **options)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    inputs, targets = torch.randn(32, 8), torch.randn(32, 1)
    for step in range(8):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        if step == overflow_at:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return list(model.parameters()), scaler.get_scale(), optimizer


@pytest.mark.parametrize("fused", [False, True], ids=["readable", "fused"])
@pytest.mark.parametrize(("name", "options"), [("Adam", {}), ("AdamW", {}), ("SGD", {"momentum": 0.9}),
                                               ("Adagrad", {})], ids=["Adam", "AdamW", "SGD", "Adagrad"])
def test_grad_scaler_steps_and_skips_as_with_torchs(name, options, fused) -> None:
    """
    `GradScaler` unscales the gradients before the step and skips a step whose gradients overflowed.
    torch's fused optimizers take the scale into their kernel (`_step_supports_amp_scaling`); ours are
    stepped as any optimizer, after the scaler's own check: the same steps, the same skipped step
    (which ours never sees, so it counts no skip of its own), the same scale afterwards.
    """
    theirs, their_scale, _ = scaled_training(torch.optim, name, fused, overflow_at=3, **options)
    ours, our_scale, optimizer = scaled_training(annotated_opt, name, fused, overflow_at=3, **options)
    # Doubled after every two clean steps (after steps 1, 5 and 7), halved at the overflow (step 3).
    assert our_scale == their_scale == 2.0**10 * 2**3 / 2
    assert optimizer.skipped_steps == 0
    tolerance = {"rtol": 1e-6, "atol": 1e-7} if fused else {"rtol": 0, "atol": 0}
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tolerance)
