"""Adafactor against torch.optim.Adafactor (torch's own configurations) and transformers' Adafactor."""

import pytest
import torch
from torch.testing._internal.common_optimizers import optim_db
from transformers.optimization import Adafactor as TransformersAdafactor

from annotated_opt import ADAFACTOR_CONVENTIONS, Adafactor, Adam, adafactor
from annotated_opt.adafactor import state_bytes
from annotated_opt.core.verification import relative_error

from .helpers import save_and_load

SHAPES = ((), (7,), (5, 4), (3, 2, 3, 3), (6, 3))
TORCH_CONFIGS = next(info for info in optim_db if info.optim_cls is torch.optim.Adafactor).optim_inputs_func(
    device="cpu")


def parameters(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_() for shape in SHAPES]


def twin(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def set_gradients(param_sets, step: int, seed: int = 0) -> None:
    """The same noisy gradient of a quadratic, 0.5 * theta + noise, for every set, at its own parameters."""
    generator = torch.Generator().manual_seed(1000 * seed + step)
    noise = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in SHAPES]
    for params in param_sets:
        for p, xi in zip(params, noise):
            p.grad = 0.5 * p.detach() + xi


def worst(pairs) -> float:
    return max(relative_error(a, b) for a, b in pairs)


@pytest.mark.parametrize("foreach", [False, True], ids=["for-loop", "foreach"])
@pytest.mark.parametrize("case", TORCH_CONFIGS, ids=lambda c: c.desc)
def test_equals_torch_on_its_own_configurations(case, foreach) -> None:
    """Every parameter and every state tensor after every one of 100 steps, float64, within 1e-12."""
    kwargs = {**case.kwargs, "foreach": foreach}
    ours_params, torch_params = parameters(), parameters()
    ours, reference = Adafactor(ours_params, **kwargs), torch.optim.Adafactor(torch_params, **kwargs)
    for step in range(1, 101):
        set_gradients((ours_params, torch_params), step)
        ours.step()
        reference.step()
        assert worst(zip(ours_params, torch_params)) <= 1e-12, step
        for mine, theirs in zip(ours_params, torch_params):
            theirs_state = reference.state[theirs]
            assert set(ours.state[mine]) == set(theirs_state)
            assert worst((ours.state[mine][k], v) for k, v in theirs_state.items()) <= 1e-12, step
            assert ours.state[mine]["step"].dtype == theirs_state["step"].dtype


TRANSFORMERS_CONFIGS = [
    {},
    {"beta1": 0.9, "weight_decay": 0.01},
    {"relative_step": False, "lr": 1e-2, "scale_parameter": False},
    {"relative_step": False, "lr": 3e-3, "weight_decay": 0.1, "clip_threshold": 0.5},
    {"warmup_init": True, "decay_rate": -0.5, "eps": (1e-3, 1e-2)},
    {"relative_step": False, "lr": 1e-2, "beta1": 0.5, "scale_parameter": True, "clip_threshold": 2.0},
]


@pytest.mark.parametrize("config", TRANSFORMERS_CONFIGS, ids=str)
def test_equals_transformers_over_100_steps(config) -> None:
    """The paper's convention: transformers' Adafactor, its arguments, its state reshaped, float64."""
    ours_params, their_params = parameters(1), parameters(1)
    ours = Adafactor.from_transformers(ours_params, **config)
    reference = TransformersAdafactor(their_params, **config)
    for step in range(1, 101):
        set_gradients((ours_params, their_params), step, seed=1)
        ours.step()
        reference.step()
        assert worst(zip(ours_params, their_params)) <= 1e-12, step
        for mine, theirs in zip(ours_params, their_params):
            state, their_state = ours.state[mine], reference.state[theirs]
            assert state["step"].item() == their_state["step"]
            if mine.ndim > 1:
                # transformers keeps the row and column statistics without the reduced dimension.
                assert relative_error(state["row_var"].squeeze(-1), their_state["exp_avg_sq_row"]) <= 1e-12
                assert relative_error(state["col_var"].squeeze(-2), their_state["exp_avg_sq_col"]) <= 1e-12
            else:
                assert relative_error(state["variance"], their_state["exp_avg_sq"]) <= 1e-12
            if "beta1" in config:
                assert relative_error(state["exp_avg"], their_state["exp_avg"]) <= 1e-12


def test_the_conventions_differ_where_the_page_says() -> None:
    """With weight decay on a zero-free gradient, torch's and transformers' presets give different steps."""
    results = []
    for convention in ("torch", "transformers"):
        params = parameters(2)
        optimizer = Adafactor(params, weight_decay=0.5, **ADAFACTOR_CONVENTIONS[convention])
        for step in range(1, 6):
            set_gradients((params,), step, seed=2)
            optimizer.step()
        results.append(params)
    assert worst(zip(*results)) > 1e-3


def test_checkpoints_interchange_with_torch() -> None:
    """A torch state dict continues in ours and ours in torch's, step for step."""
    torch_params, ours_params = parameters(3), parameters(3)
    reference = torch.optim.Adafactor(torch_params, weight_decay=0.1)
    for step in range(1, 6):
        set_gradients((torch_params,), step, seed=3)
        reference.step()
    ours_params = twin(torch_params)
    ours = Adafactor(ours_params, weight_decay=0.1)
    ours.load_state_dict(save_and_load(reference.state_dict()))
    back_params = twin(torch_params)
    back = torch.optim.Adafactor(back_params, weight_decay=0.1)
    back.load_state_dict(save_and_load(ours.state_dict()))
    for step in range(6, 12):
        set_gradients((torch_params, ours_params, back_params), step, seed=3)
        for optimizer in (reference, ours, back):
            optimizer.step()
    assert worst(zip(ours_params, torch_params)) == 0.0
    assert worst(zip(back_params, torch_params)) == 0.0


def test_state_is_factored_and_its_bytes_are_measured_for_4096_by_4096() -> None:
    """The page's table: a 4096 x 4096 float32 matrix, one step each; Adam's state from torch.optim."""
    torch.manual_seed(0)
    weight = torch.randn(4096, 4096, requires_grad=True)
    weight.grad = torch.randn(4096, 4096)
    measured = {}
    for name, build in (("adam", lambda p: torch.optim.Adam(p)), ("adafactor", lambda p: Adafactor(p)),
                        ("adafactor-beta1", lambda p: Adafactor(p, beta1=0.9))):
        optimizer = build([weight])
        optimizer.step()
        measured[name] = state_bytes(optimizer)
    assert measured == {"adam": 2 * 4096 * 4096 * 4 + 4, "adafactor": 2 * 4096 * 4 + 4,
                        "adafactor-beta1": 4096 * 4096 * 4 + 2 * 4096 * 4 + 4}
    # The page's table shows these very numbers.
    for value in measured.values():
        assert f"{value:,}" in adafactor.__doc__
    # Our Adam keeps its step as torch's does, a 4-byte tensor, and the same two moments.
    adam = Adam([weight])
    adam.step()
    assert state_bytes(adam) == measured["adam"]


def test_torch_uses_the_first_parameters_dtype_for_eps1() -> None:
    """torch's quirk: eps1=None is the machine epsilon of the first parameter's dtype, for the whole group."""
    generator = torch.Generator().manual_seed(4)
    first = torch.randn(3, generator=generator).requires_grad_()
    second = torch.full((4,), 1e-5, dtype=torch.float64, requires_grad=True)
    copies = [twin([first])[0], twin([second])[0], twin([second])[0]]
    reference = torch.optim.Adafactor([first, second])
    float32_eps = Adafactor([copies[1]], eps=(torch.finfo(torch.float32).eps, 1e-3))
    own_eps = Adafactor([copies[2]])
    for p in (first, second, *copies):
        p.grad = torch.full_like(p, 1e-9)
    reference.step()
    float32_eps.step()
    own_eps.step()
    assert torch.equal(second, copies[1])
    assert not torch.equal(second, copies[2])


def test_zero_size_parameter_breaks_torch_but_not_ours() -> None:
    empty = torch.zeros(2, 0, 3, dtype=torch.float64, requires_grad=True)
    empty.grad = torch.zeros_like(empty)
    with pytest.raises(ZeroDivisionError):
        torch.optim.Adafactor([empty]).step()
    optimizer = Adafactor([empty])
    optimizer.step()
    assert torch.equal(optimizer.state[empty]["col_var"], torch.zeros(2, 1, 3, dtype=torch.float64))


def test_transformers_argument_rules() -> None:
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        Adafactor.from_transformers(p, lr=1e-3)
    with pytest.raises(ValueError, match="warmup_init"):
        Adafactor(p, relative_step=False, warmup_init=True)
    with pytest.raises(ValueError, match="beta1"):
        Adafactor(p, beta1=1.0)
    with pytest.raises(ValueError, match="complex"):
        Adafactor([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
