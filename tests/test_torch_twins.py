"""
The twins of torch.optim's Adadelta, Adamax, ASGD, Rprop, SparseAdam and Muon: equal to torch on torch's
own configurations (optim_db) after every step, the same constructor and group options, checkpoints that
move between the two, and the behaviour their pages describe.
"""

import inspect
import math
import warnings

import pytest
import torch
from torch.testing._internal.common_optimizers import optim_db

import annotated_opt
from annotated_opt import ASGD, Adadelta, Adamax, Muon, Rprop, SparseAdam, split_for_muon
from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import (
    clone_parameters,
    gradient_closure,
    make_parameters,
    param_groups,
    parameter_set,
    relative_error,
    takes_sparse_gradients,
)
from annotated_opt.muon import MUON_COEFFICIENTS, NEWTON_SCHULZ_COEFFICIENTS, orthogonalize
from annotated_opt.toys.charlm import charlm

from .helpers import save_and_load

TWINS = {cls.__name__: cls for cls in (Adadelta, Adamax, ASGD, Rprop, SparseAdam, Muon)}
DB = {info.optim_cls.__name__: info for info in optim_db}
STEPS = 100


def parameters_for(name: str, seed: int) -> list[torch.Tensor]:
    """The verification's parameter set of the twin's registry entry (matrices for Muon)."""
    return parameter_set(REGISTRY[name.lower()], seed, torch.float64)


def run_pair(name: str, ours_kwargs: dict, torch_kwargs: dict, seed: int, steps: int = STEPS) -> float:
    """Ours and torch's side by side; the largest relative error of any parameter or state entry, any step."""
    ours_params = parameters_for(name, seed)
    torch_params = clone_parameters(ours_params)
    ours = TWINS[name](param_groups(ours_params, {}), **ours_kwargs)
    theirs = DB[name].optim_cls(param_groups(torch_params, {}), **torch_kwargs)
    worst = 0.0
    for step in range(1, steps + 1):
        for params, optimizer in ((ours_params, ours), (torch_params, theirs)):
            gradient_closure(params, step, seed, sparse=takes_sparse_gradients(TWINS[name]))()
            optimizer.step()
        for mine, their in zip(ours_params, torch_params):
            worst = max(worst, relative_error(mine.detach(), their.detach()))
            for key, value in theirs.state.get(their, {}).items():
                assert type(ours.state[mine][key]) is type(value), key
                if isinstance(value, torch.Tensor):
                    assert ours.state[mine][key].dtype == value.dtype, key
                worst = max(worst, relative_error(ours.state[mine][key], value))
    for our_group, their_group in zip(ours.param_groups, theirs.param_groups):
        assert set(their_group) <= set(our_group), set(their_group) - set(our_group)
    return worst


def db_cases() -> list:
    return [pytest.param(name, case.kwargs, id=f"{name}-{case.desc}")
            for name in TWINS for case in DB[name].optim_inputs_func(device="cpu")]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("name", "kwargs"), db_cases())
def test_equals_torch_on_its_own_configurations(name: str, kwargs: dict, seed: int) -> None:
    """Every parameter and state entry, after every step, within 1e-12 (in fact to the bit)."""
    lr = kwargs.get("lr")
    if isinstance(lr, torch.Tensor):
        # torch computes the step size in the tensor's float32; ours computes a tensor learning rate as
        # the float it holds (the battery's tensor_lr property), so the comparison is with that float.
        torch_kwargs = {**kwargs, "lr": lr.item()}
        assert run_pair(name, kwargs, torch_kwargs, seed, steps=10) == 0.0
    assert run_pair(name, kwargs, {**kwargs, "lr": lr.item()} if isinstance(lr, torch.Tensor) else kwargs,
                    seed) <= 1e-12


@pytest.mark.parametrize("name", TWINS)
def test_constructor_takes_every_torch_argument_with_its_default(name: str) -> None:
    ours = inspect.signature(TWINS[name].__init__).parameters
    for argument, parameter in inspect.signature(DB[name].optim_cls.__init__).parameters.items():
        assert argument in ours, argument
        assert ours[argument].default == parameter.default, argument


def test_every_torch_optimizer_has_a_twin() -> None:
    """torch.optim's optimizer classes, each by name in annotated_opt."""
    torch_optimizers = {name for name, value in vars(torch.optim).items()
                        if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer)
                        and value is not torch.optim.Optimizer}
    assert len(torch_optimizers) == 15
    missing = sorted(name for name in torch_optimizers
                     if not (inspect.isclass(getattr(annotated_opt, name, None))
                             and issubclass(getattr(annotated_opt, name), torch.optim.Optimizer)))
    assert not missing, f"no twin in annotated_opt for torch.optim.{', '.join(missing)}"


@pytest.mark.parametrize("name", TWINS)
def test_torch_checkpoint_loads_and_continues_identically(name: str) -> None:
    """A checkpoint of torch's optimizer, loaded into ours, continues exactly as torch's own continues."""
    sparse = takes_sparse_gradients(TWINS[name])
    kwargs = {"lr": 0.05, "t0": 3} if name == "ASGD" else {"lr": 0.01}
    torch_params = parameters_for(name, 4)
    ours_params = clone_parameters(torch_params)
    theirs = DB[name].optim_cls(param_groups(torch_params, {}), **kwargs)
    for step in range(1, 6):
        gradient_closure(torch_params, step, 4, sparse=sparse)()
        theirs.step()
    with torch.no_grad():
        for mine, their in zip(ours_params, torch_params):
            mine.copy_(their)
    ours = TWINS[name](param_groups(ours_params, {}), **kwargs)
    ours.load_state_dict(save_and_load(theirs.state_dict()))
    for step in range(6, 16):
        for params, optimizer in ((torch_params, theirs), (ours_params, ours)):
            gradient_closure(params, step, 4, sparse=sparse)()
            optimizer.step()
    for mine, their in zip(ours_params, torch_params):
        assert torch.equal(mine.detach(), their.detach())


def test_reloaded_asgd_continues_bit_for_bit() -> None:
    """torch's load casts eta and mu to float64; both torch's and ours still continue exactly."""
    kwargs = {"lr": 0.05, "t0": 3}
    runs = {}
    for label, cls, reload in (("ours", ASGD, True), ("torch", torch.optim.ASGD, True),
                               ("unreloaded", torch.optim.ASGD, False)):
        params = make_parameters(5, torch.float64)
        optimizer = cls(param_groups(params, {}), **kwargs)
        for step in range(1, 31):
            gradient_closure(params, step, 5)()
            optimizer.step()
            if reload and step == 5:
                state = save_and_load(optimizer.state_dict())
                optimizer = cls(param_groups(params, {}), **kwargs)
                optimizer.load_state_dict(state)
        runs[label] = params
    assert all(torch.equal(a, b) for a, b in zip(runs["ours"], runs["unreloaded"]))
    assert all(torch.equal(a, b) for a, b in zip(runs["torch"], runs["unreloaded"]))


def test_asgd_average_is_the_mean_of_the_iterates_after_t0() -> None:
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    optimizer = ASGD([p], lr=0.1, t0=4, lambd=0.0)
    iterates = []
    for step in range(1, 13):
        p.grad = p.detach() + torch.tensor([0.3, -0.1], dtype=torch.float64) * (-1) ** step
        optimizer.step()
        iterates.append(p.detach().clone())
    # mu_t = 1/(t - t0) is used at step t + 1: step t0 + 2 = 6 still copies, then the running mean from it.
    # (mu = 1/3, 1/5, ... is kept in float32, as torch keeps it: equal to float32 rounding.)
    torch.testing.assert_close(optimizer.state[p]["ax"], torch.stack(iterates[5:]).mean(0), rtol=1e-7, atol=0)
    trained = p.detach().clone()
    optimizer.swap_in_average()
    torch.testing.assert_close(p.detach(), torch.stack(iterates[5:]).mean(0), rtol=1e-7, atol=0)
    optimizer.swap_in_average()
    assert torch.equal(p.detach(), trained)


@pytest.mark.parametrize("kwargs", [{"lambd": -200.0}, {"lambd": -200.0, "alpha": 0.5}, {"alpha": -2.0, "t0": -5.0}],
                         ids=["negative-lambd", "negative-lambd-alpha-half", "negative-alpha-t0"])
def test_asgd_takes_the_negative_values_torch_takes(kwargs) -> None:
    """
    torch checks none of lambd, alpha, t0. With lambd = -200 the base 1 + lambd*lr*t is negative from the
    first step, its fractional power a complex number, and torch keeps the real part as the step size.
    """
    runs = []
    for cls in (torch.optim.ASGD, ASGD):
        generator = torch.Generator().manual_seed(0)
        params = [torch.randn(3, 2, generator=generator), torch.randn(4, generator=generator)]
        optimizer = cls(params, **kwargs)
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's, once: the imaginary part is discarded
                optimizer.step()
        runs.append([t for p in params for t in (p, optimizer.state[p]["eta"], optimizer.state[p]["ax"])])
    theirs, ours = runs
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    if "lambd" in kwargs:
        lr, step = 0.01, 4
        power = (1 + kwargs["lambd"] * lr * step) ** kwargs.get("alpha", 0.75)
        assert isinstance(power, complex)
        assert optimizer.state[params[0]]["eta"].item() == torch.tensor((lr / power).real).item()


def test_adamax_first_step_and_step_bound() -> None:
    """The first step is lr in size; no step exceeds (1-b1)/(1-b1/b2) * lr/(1-b1^t)."""
    generator = torch.Generator().manual_seed(0)
    p = torch.zeros(1000, dtype=torch.float64, requires_grad=True)
    lr, (beta1, beta2) = 0.01, (0.9, 0.999)
    optimizer = Adamax([p], lr=lr, eps=0.0)
    for step in range(1, 300):
        before = p.detach().clone()
        # Quiet, then a burst ten thousand times larger: Adam's steps would jump to several lr here.
        scale = 1e-4 if step < 100 else 1.0
        p.grad = scale * torch.randn(1000, generator=generator, dtype=torch.float64).abs()
        optimizer.step()
        size = (p.detach() - before).abs().max().item()
        bound = (1 - beta1) / (1 - beta1 / beta2) * lr / (1 - beta1**step)
        assert size <= bound * (1 + 1e-12)
        if step == 1:
            assert size == pytest.approx(lr, rel=1e-12)


def test_rprop_ignores_a_learning_rate_schedule() -> None:
    """lr is only the initial step size: a scheduler changes nothing after the first step."""
    runs = []
    for gamma in (1.0, 0.1):
        params = make_parameters(2, torch.float64)
        optimizer = Rprop(param_groups(params, {}), lr=0.01)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
        for step in range(1, 20):
            gradient_closure(params, step, 2)()
            optimizer.step()
            scheduler.step()
        runs.append(params)
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def embedding_pair(seed: int = 0) -> tuple[torch.nn.Embedding, torch.nn.Embedding]:
    torch.manual_seed(seed)
    first = torch.nn.Embedding(40, 5, sparse=True).double()
    second = torch.nn.Embedding(40, 5, sparse=True).double()
    second.load_state_dict(first.state_dict())
    return first, second


def test_sparse_adam_with_a_sparse_embedding_equals_torch_and_freezes_absent_rows() -> None:
    ours_table, torch_table = embedding_pair()
    ours = SparseAdam(ours_table.parameters(), lr=0.01)
    theirs = torch.optim.SparseAdam(torch_table.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for _ in range(60):
        # Indices 30-39 never appear after the first steps; repeated indices in a batch are common.
        tokens = torch.randint(0, 30, (8, 6), generator=generator)
        for table, optimizer in ((ours_table, ours), (torch_table, theirs)):
            optimizer.zero_grad()
            table(tokens).pow(2).sum().backward()
            optimizer.step()
        assert torch.equal(ours_table.weight, torch_table.weight)
    state = ours.state[ours_table.weight]
    moments_before = {k: state[k].clone() for k in ("exp_avg", "exp_avg_sq")}
    weight_before = ours_table.weight.detach().clone()
    ours.zero_grad()
    ours_table(torch.tensor([[0, 1]])).sum().backward()
    ours.step()
    untouched = torch.arange(40) > 1
    assert torch.equal(ours_table.weight[untouched], weight_before[untouched])
    for key, before in moments_before.items():
        assert torch.equal(state[key][untouched], before[untouched]), key
        assert not torch.equal(state[key][:2], before[:2]), key


def test_sparse_adam_refuses_dense_gradients_and_sparse_parameters() -> None:
    p = torch.zeros(3, 2, requires_grad=True)
    optimizer = SparseAdam([p])
    p.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="does not support dense gradients"):
        optimizer.step()
    with pytest.raises(ValueError, match="requires dense parameter tensors"):
        SparseAdam([torch.zeros(3).to_sparse()])


def test_sparse_adam_differs_from_dense_adam_only_by_its_eps() -> None:
    """With every row present at every step, SparseAdam is Adam with eps divided by sqrt(1 - beta2^t)."""
    generator = torch.Generator().manual_seed(3)
    dense = torch.randn(6, 3, generator=generator, dtype=torch.float64).requires_grad_()
    sparse = dense.detach().clone().requires_grad_()
    lazy = SparseAdam([sparse], lr=0.01, eps=1e-3)
    adam = annotated_opt.Adam([dense], lr=0.01, eps=1e-3)
    for step in range(1, 30):
        gradient = torch.randn(6, 3, generator=generator, dtype=torch.float64) * 1e-3
        sparse.grad = gradient.to_sparse(1)
        dense.grad = gradient
        # Adam's eps that makes its denominator sqrt(v) + eps, as SparseAdam's is.
        adam.param_groups[0]["eps"] = 1e-3 / math.sqrt(1 - 0.999**step)
        lazy.step()
        adam.step()
        torch.testing.assert_close(sparse.detach(), dense.detach(), rtol=1e-12, atol=0)


def test_muon_keeps_its_momentum_where_torch_normalises_it() -> None:
    """torch, bfloat16, nesterov=False: the iteration divides the momentum buffer itself by its norm."""
    generator = torch.Generator().manual_seed(0)
    gradient = torch.randn(4, 6, generator=generator).bfloat16()
    params = [torch.randn(4, 6, generator=generator).bfloat16().requires_grad_() for _ in range(2)]
    ours = Muon([params[0]], nesterov=False, momentum=0.5)
    theirs = torch.optim.Muon([params[1]], nesterov=False, momentum=0.5)
    for p, optimizer in zip(params, (ours, theirs)):
        p.grad = gradient.clone()
        optimizer.step()
    torch.testing.assert_close(ours.state[params[0]]["momentum_buffer"], 0.5 * gradient)
    assert theirs.state[params[1]]["momentum_buffer"].float().norm().item() == pytest.approx(1.0, rel=1e-2)


@pytest.mark.parametrize("options", [{"ns_steps": 150}, {"ns_steps": 2.0}, {"ns_coefficients": (1.0, 2.0)},
                                     {"adjust_lr_fn": "original_"}])
def test_muon_checks_a_groups_own_iteration_options(options: dict) -> None:
    """
    A group added with a bad iteration option fails with torch's exception type, when it is added (torch:
    in its step). A misspelt `adjust_lr_fn` torch takes in a group and steps with no adjustment; it is
    refused here, as in the constructor (the library checks every group, not only the constructor's).
    """
    generator = torch.Generator().manual_seed(0)
    errors = []
    for cls in (torch.optim.Muon, Muon):
        params = [torch.randn(3, 2, generator=generator), torch.randn(4, 3, generator=generator)]
        optimizer = cls([params[0]])
        try:
            optimizer.add_param_group({"params": [params[1]], **options})
            for p in params:
                p.grad = torch.ones_like(p)
            optimizer.step()
        except (ValueError, TypeError) as error:
            errors.append(error)
        else:
            errors.append(None)
    theirs, ours = errors
    assert ours is not None and next(iter(options)).rstrip("s") in str(ours)
    assert isinstance(ours, type(theirs)) if "adjust_lr_fn" not in options else theirs is None


@pytest.mark.parametrize("shape", [(16, 64), (64, 16)])
def test_newton_schulz_singular_values(shape: tuple[int, int]) -> None:
    """The page's claims: U and V are kept; the classical iteration converges to UV^T, Muon's stays in a band."""
    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(shape[0], shape[0], generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], shape[1], generator=generator, dtype=torch.float64))
    n = min(shape)
    # Singular values over two orders of magnitude (Muon lifts those above about 1/500 of the norm).
    s = torch.logspace(0, -2, n, dtype=torch.float64)
    matrix = u[:, :n] @ torch.diag(s) @ v[:, :n].T
    polar = u[:, :n] @ v[:, :n].T
    classical = orthogonalize(matrix, NEWTON_SCHULZ_COEFFICIENTS, steps=30, dtype=torch.float64)
    torch.testing.assert_close(classical, polar, rtol=0, atol=1e-9)
    muon = orthogonalize(matrix, MUON_COEFFICIENTS, steps=5, dtype=torch.float64)
    # Same singular vectors: U^T O V is diagonal; its diagonal, the new singular values, lies in a band.
    core = u[:, :n].T @ muon @ v[:, :n]
    torch.testing.assert_close(core, torch.diag(torch.diagonal(core)), rtol=0, atol=1e-9)
    assert torch.diagonal(core).min() > 0.5 and torch.diagonal(core).max() < 1.3
    # Five classical steps leave the smallest directions far from one.
    five_classical = u[:, :n].T @ orthogonalize(matrix, NEWTON_SCHULZ_COEFFICIENTS, steps=5,
                                                dtype=torch.float64) @ v[:, :n]
    assert torch.diagonal(five_classical).min() < 0.5


def test_split_for_muon_on_the_character_model() -> None:
    model = charlm(hidden=32)
    hidden, rest = split_for_muon(model)
    assert [p is model.hidden.weight for p in hidden] == [True]
    assert {id(p) for p in rest} == {id(model.embedding.weight), id(model.hidden.bias), id(model.output.weight),
                                     id(model.output.bias)}
    Muon(hidden)
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        Muon(rest)
