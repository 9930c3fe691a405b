"""Nero and NeroPlus: the constraints hold after every step, the first steps equal hand-derived ones,
and the trajectories equal transcriptions of the official code (jxbz/nero, ALF's NeroPlus) and
pytorch_optimizer's Nero, in float64."""

import math

import pytest
import pytorch_optimizer
import torch

from annotated_opt.nero import Nero, row_means, row_norms
from annotated_opt.nero_plus import NeroPlus

DT = torch.float64
SHAPES = [(5, 4), (3, 2, 3, 3), (7,), (6, 3)]


def tensors(seed=0, shapes=SHAPES, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype).requires_grad_() for shape in shapes]


def copies(params):
    return [p.detach().clone().requires_grad_() for p in params]


def noise(params, step, seed=1):
    g = torch.Generator().manual_seed(1000 * seed + step)
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


def set_grads(params, step, skip=()):
    for index, (p, xi) in enumerate(zip(params, noise(params, step))):
        p.grad = None if index in skip else 0.5 * p.detach() + xi


def assert_constrained(param, max_norm=1.0, tol=1e-6):
    torch.testing.assert_close(row_norms(param.detach()), torch.full_like(row_norms(param.detach()), max_norm),
                               rtol=0, atol=tol)
    assert row_means(param.detach()).abs().max() < tol


# ---- a transcription of the official Nero (jxbz/nero, nero.py) -----------------------------------


def official_neuron_norm(x):
    if x.dim() > 1:
        return x.reshape(x.shape[0], -1).norm(dim=1).reshape([x.shape[0]] + [1] * (x.dim() - 1))
    return x.abs()


def official_neuron_mean(x):
    return x.reshape(x.shape[0], -1).mean(dim=1).reshape([x.shape[0]] + [1] * (x.dim() - 1))


class OfficialNero:
    """The official constructor projects and fixes `scale`; each step normalises by the per-neuron
    running norm, replaces NaN by 0, and projects again."""

    def __init__(self, params, lr=0.01, beta=0.999, constraints=True):
        self.params, self.lr, self.beta, self.constraints = params, lr, beta, constraints
        self.state = {}
        with torch.no_grad():
            for p in params:
                if constraints and p.dim() > 1:
                    p -= official_neuron_mean(p)
                    p /= official_neuron_norm(p)
                scale = official_neuron_norm(p).mean()
                self.state[p] = {"step": 0, "exp_avg_sq": torch.zeros_like(official_neuron_norm(p)),
                                 "scale": 0.01 if scale == 0.0 else scale}

    @torch.no_grad()
    def step(self):
        for p in self.params:
            if p.grad is None:
                continue
            state = self.state[p]
            state["step"] += 1
            bias_correction = 1 - self.beta ** state["step"]
            state["exp_avg_sq"] = self.beta * state["exp_avg_sq"] + (1 - self.beta) * official_neuron_norm(p.grad) ** 2
            grad_normed = p.grad / (state["exp_avg_sq"] / bias_correction).sqrt()
            grad_normed[torch.isnan(grad_normed)] = 0
            p -= self.lr * state["scale"] * grad_normed
            if self.constraints and p.dim() > 1:
                p -= official_neuron_mean(p)
                p /= official_neuron_norm(p)


@pytest.mark.parametrize("constraints", [True, False])
def test_nero_equals_the_official_code(constraints) -> None:
    """100 steps; one parameter skips every third step (the official code counts steps per parameter)."""
    theirs = tensors(shapes=SHAPES[:3] + [()])
    ours = copies(theirs)
    official = OfficialNero(theirs, lr=0.03, beta=0.99, constraints=constraints)
    optimizer = Nero(Nero.initialize(ours, constraints=constraints), lr=0.03, beta=0.99, constraints=constraints)
    for step in range(1, 101):
        skip = (2,) if step % 3 == 0 else ()
        set_grads(theirs, step, skip)
        set_grads(ours, step, skip)
        official.step()
        optimizer.step()
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(optimizer.state[p]["exp_avg_sq"], official.state[q]["exp_avg_sq"],
                                       rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("foreach", [False, True])
def test_nero_equals_pytorch_optimizer_without_eps(foreach) -> None:
    """pytorch_optimizer's Nero with eps=0, when every parameter has a gradient on every step."""
    theirs = tensors(shapes=SHAPES[:3] + [()])
    ours = copies(theirs)
    optimizer = Nero(Nero.initialize(ours), lr=0.05)
    # It projects lazily, at the first step; projecting an initialised tensor again changes nothing.
    Nero.initialize(theirs)
    reference = pytorch_optimizer.Nero(theirs, lr=0.05, eps=0.0, foreach=foreach)
    for step in range(1, 101):
        set_grads(theirs, step)
        set_grads(ours, step)
        reference.step()
        optimizer.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)
        for key in ("exp_avg_sq", "scale"):
            torch.testing.assert_close(optimizer.state[p][key], torch.as_tensor(reference.state[q][key]),
                                       rtol=1e-12, atol=1e-14)


def test_pytorch_optimizer_nero_counts_steps_per_group() -> None:
    """Its quirk: a parameter that skips a step gets the group's bias correction, not its own."""
    theirs = tensors(shapes=[(4, 3), (5,)])
    official_params = copies(theirs)
    Nero.initialize(theirs)
    official = OfficialNero(official_params, lr=0.05)
    reference = pytorch_optimizer.Nero(theirs, lr=0.05, eps=0.0)
    for step in range(1, 4):
        skip = (1,) if step == 1 else ()
        set_grads(theirs, step, skip)
        set_grads(official_params, step, skip)
        reference.step()
        official.step()
    torch.testing.assert_close(theirs[0].detach(), official_params[0].detach(), rtol=1e-12, atol=1e-14)
    assert (theirs[1] - official_params[1]).abs().max() > 1e-4


def test_nero_first_two_steps_by_hand() -> None:
    """A 2x3 matrix (constrained) and a vector (element-wise, scale = mean |b|)."""
    beta, lr = 0.9, 0.1
    w = torch.tensor([[1.0, 0.0, -1.0], [2.0, -1.0, -1.0]], dtype=DT)
    w = w / w.norm(dim=1, keepdim=True)
    b = torch.tensor([0.5, -1.5], dtype=DT)
    weight, bias = w.clone().requires_grad_(), b.clone().requires_grad_()
    optimizer = Nero([weight, bias], lr=lr, beta=beta)
    grads = [(torch.tensor([[0.3, 0.1, -0.2], [0.0, 0.0, 0.0]], dtype=DT), torch.tensor([0.2, -0.4], dtype=DT)),
             (torch.tensor([[-0.1, 0.5, 0.2], [0.6, 0.0, 0.1]], dtype=DT), torch.tensor([0.0, 0.3], dtype=DT))]
    v_w, v_b, scale_b = torch.zeros(2, 1, dtype=DT), torch.zeros(2, dtype=DT), (0.5 + 1.5) / 2
    for t, (gw, gb) in enumerate(grads, start=1):
        weight.grad, bias.grad = gw, gb
        optimizer.step()
        v_w = beta * v_w + (1 - beta) * (gw**2).sum(dim=1, keepdim=True)
        v_b = beta * v_b + (1 - beta) * gb**2
        # The second row's gradient is zero at step 1 with v = 0: 0/0 gives a zero step.
        step_w = torch.nan_to_num(gw / torch.sqrt(v_w / (1 - beta**t)), nan=0.0)
        step_b = torch.nan_to_num(gb / torch.sqrt(v_b / (1 - beta**t)), nan=0.0)
        w = w - lr * 1.0 * step_w
        w = w - w.mean(dim=1, keepdim=True)
        w = w / w.norm(dim=1, keepdim=True)
        b = b - lr * scale_b * step_b
        torch.testing.assert_close(weight.detach(), w, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(bias.detach(), b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_constrained_row_keeps_norm_and_mean_after_every_step(cls, dtype) -> None:
    shapes = [(8, 5), (4, 3, 3, 3), (9,), (), (7, 4)]
    params = tensors(shapes=shapes, dtype=dtype)
    params[-1] = torch.randn(4, 7, dtype=dtype).t().requires_grad_()
    assert not params[-1].is_contiguous()
    optimizer = cls(cls.initialize(params), lr=0.05)
    vector_norms = []
    for step in range(1, 51):
        set_grads(params, step)
        optimizer.step()
        for p in params:
            if p.ndim > 1:
                assert_constrained(p)
        vector_norms.append(params[2].detach().norm().item())
    # The vector is unconstrained: its norm and mean move freely.
    assert max(vector_norms) - min(vector_norms) > 1e-2
    assert abs(params[2].detach().mean().item()) > 1e-3


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
def test_uninitialised_parameters_are_refused_clearly(cls) -> None:
    params = tensors()
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter 0 of shape \(5, 4\) is not initialised.*"
                                         rf"call {cls.__name__}\.initialize\(model\)"):
        cls(params)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    # A generator is consumed once by `initialize`, which hands back the groups for the constructor.
    optimizer = cls(cls.initialize(model.named_parameters()))
    assert optimizer.param_groups[0]["param_names"][0] == "0.weight"
    with pytest.raises(ValueError, match="is not initialised"):
        optimizer.add_param_group({"params": [("extra", torch.nn.Parameter(torch.randn(3, 3) + 1))]})
    assert len(optimizer.param_groups) == 1
    scaled = torch.nn.Parameter(torch.randn(3, 4))
    cls.initialize([scaled])
    with torch.no_grad():
        scaled.mul_(1.5)
    with pytest.raises(ValueError, match="norm is off by 50.0%"):
        optimizer.add_param_group({"params": [("scaled", scaled)]})


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
def test_zero_gradients_move_constrained_rows_by_rounding_only(cls) -> None:
    """The registry's reason for exempting Nero from "zero gradients change nothing": the step is zero,
    and only the projection moves a constrained row, by a few roundings; a free vector does not move."""
    params = tensors()
    optimizer = cls(cls.initialize(params), lr=0.05)
    before = copies(params)
    for _ in range(5):
        for p in params:
            p.grad = torch.zeros_like(p)
        optimizer.step()
    assert any(not torch.equal(p, q) for p, q in zip(params, before) if p.ndim > 1)
    for p, q in zip(params, before):
        if p.ndim > 1:
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-15)
        else:
            assert torch.equal(p, q)


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
def test_initialize_missing_leaves_constrained_parameters_exactly_as_they_are(cls) -> None:
    """Resuming: a model whose rows were projected at its last step is not projected again (which would
    move it by rounding), so a restored optimizer continues bit for bit; a fresh parameter is projected."""
    params = tensors()
    optimizer = cls(cls.initialize(params), lr=0.05)
    for step in range(1, 4):
        set_grads(params, step)
        optimizer.step()
    resumed = copies(params)
    reprojected = copies(params)
    cls.initialize(reprojected)
    assert any(not torch.equal(p, q) for p, q in zip(params, reprojected))
    restored = cls(cls.initialize_missing(resumed, lr=0.05), lr=0.05)
    assert all(torch.equal(p, q) for p, q in zip(params, resumed))
    restored.load_state_dict(optimizer.state_dict())
    for step in range(4, 7):
        set_grads(params, step)
        set_grads(resumed, step)
        optimizer.step()
        restored.step()
    assert all(torch.equal(p, q) for p, q in zip(params, resumed))
    fresh = torch.randn(4, 3, dtype=DT, generator=torch.Generator().manual_seed(5)).requires_grad_()
    cls.initialize_missing([fresh])
    assert_constrained(fresh)


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
def test_neurons_of_one_weight_and_of_none_are_left_free(cls) -> None:
    """A one-weight neuron with zero mean would be zero (the official Nero divides 0 by 0 there): a
    (k, 1) matrix is left unconstrained and trains; (0, k) and (k, 0) parameters are accepted."""
    column = torch.randn(4, 1, dtype=DT, generator=torch.Generator().manual_seed(6)).requires_grad_()
    start = column.detach().clone()
    empty = [torch.zeros(0, 3, dtype=DT, requires_grad=True), torch.zeros(2, 0, dtype=DT, requires_grad=True)]
    optimizer = cls(cls.initialize([column, *empty]), lr=0.05)
    assert torch.equal(column.detach(), start)
    for step in range(1, 4):
        set_grads([column, *empty], step)
        optimizer.step()
    assert torch.isfinite(column).all() and not torch.equal(column.detach(), start)
    assert [p.shape for p in empty] == [(0, 3), (2, 0)]


@pytest.mark.parametrize("cls", [Nero, NeroPlus])
def test_complex_and_all_zero_parameters_are_refused_clearly(cls) -> None:
    z = torch.randn(3, 4, dtype=torch.complex128, requires_grad=True)
    before = z.detach().clone()
    with pytest.raises(ValueError, match=f"{cls.__name__} does not support complex parameters"):
        cls.initialize([z])
    assert torch.equal(z.detach(), before)
    with pytest.raises(ValueError, match="does not support complex parameters"):
        cls([z])
    zero = torch.zeros(3, 4, dtype=DT, requires_grad=True)
    with pytest.raises(ValueError, match="weights are all zero, and projecting cannot give it a norm"):
        cls(cls.initialize([zero]))


def test_nero_scale_of_zero_and_empty_parameters() -> None:
    zero_bias = torch.zeros(4, dtype=DT, requires_grad=True)
    empty = torch.zeros(0, dtype=DT, requires_grad=True)
    optimizer = Nero([zero_bias, empty], lr=0.1)
    zero_bias.grad, empty.grad = torch.ones(4, dtype=DT), torch.zeros(0, dtype=DT)
    optimizer.step()
    assert optimizer.state[zero_bias]["scale"].item() == 0.01
    assert optimizer.state[empty]["scale"].item() == 0.01
    # First step: g / sqrt(v / (1 - beta)) = sign(g), so every element moves by lr * 0.01.
    torch.testing.assert_close(zero_bias.detach(), torch.full((4,), -0.001, dtype=DT))


# ---- a transcription of ALF's NeroPlus -----------------------------------------------------------


def alf_norm(x):
    if x.ndim > 1:
        return x.reshape(x.shape[0], -1).norm(dim=1).reshape(x.shape[0], *([1] * (x.ndim - 1)))
    return x.norm()


def alf_opt_arg(p, name, default):
    opt_args = getattr(p, "opt_args", None)
    if opt_args is None:
        return default
    value = opt_args.get(name, None)
    return default if value is None else value


def alf_constraints(p, max_norm, fixed_norm, zero_mean):
    if p.ndim > 1:
        return (alf_opt_arg(p, "max_norm", max_norm), alf_opt_arg(p, "fixed_norm", fixed_norm),
                alf_opt_arg(p, "zero_mean", zero_mean))
    if p.ndim == 1:
        return (alf_opt_arg(p, "max_norm", math.inf), alf_opt_arg(p, "fixed_norm", False),
                alf_opt_arg(p, "zero_mean", False))
    return max_norm, fixed_norm, zero_mean


def alf_normalize(p, max_norm, fixed_norm, zero_mean):
    if zero_mean:
        if p.ndim > 1:
            p -= p.mean(dim=tuple(range(1, p.ndim)), keepdim=True)
        elif p.ndim == 1:
            p -= p.mean()
    if max_norm != math.inf:
        scale = max_norm / (alf_norm(p) + 1e-30)
        if not fixed_norm:
            scale = scale.clamp(max=1)
        p *= scale


class AlfNeroPlus:
    """ALF's NeroPlus.step (the version that multiplies the decay by weight_decay), with its state
    created eagerly as in its add_param_group."""

    def __init__(self, params, lr=0.01, betas=(0.9, 0.999), eps=1e-7, normalizing_grad_by_norm=False, max_norm=1,
                 weight_decay=0, l2_regularization=0, fixed_norm=True, zero_mean=True):
        self.params = params
        self.group = dict(lr=lr, betas=betas, eps=eps, by_norm=normalizing_grad_by_norm, max_norm=max_norm,
                          weight_decay=weight_decay, l2=l2_regularization, fixed_norm=fixed_norm, zero_mean=zero_mean)
        self.state = {}
        for p in params:
            self.state[p] = {"step": 0,
                             "exp_avg_sq": torch.zeros_like(alf_norm(p)) if normalizing_grad_by_norm
                             else torch.zeros_like(p)}
            if betas[0] > 0:
                self.state[p]["exp_avg"] = torch.zeros_like(p)

    @staticmethod
    def initialize(params, max_norm=1, fixed_norm=True, zero_mean=True):
        with torch.no_grad():
            for p in params:
                alf_normalize(p, *alf_constraints(p, max_norm, fixed_norm, zero_mean))

    @torch.no_grad()
    def step(self):
        group = self.group
        beta1, beta2 = group["betas"]
        for p in self.params:
            if p.grad is None:
                continue
            constraints = alf_constraints(p, group["max_norm"], group["fixed_norm"], group["zero_mean"])
            lr, lr_scale = alf_opt_arg(p, "lr", group["lr"]), alf_opt_arg(p, "lr_scale", 1)
            state = self.state[p]
            state["step"] += 1
            bias_correction1, bias_correction2 = 1, 1 - beta2 ** state["step"]
            grad = p.grad
            weight_decay = alf_opt_arg(p, "weight_decay", group["weight_decay"])
            l2 = alf_opt_arg(p, "l2_regularization", group["l2"])
            if l2 != 0:
                grad = grad.add(p, alpha=l2)
            if beta1 > 0:
                bias_correction1 = 1 - beta1 ** state["step"]
                exp_avg = state["exp_avg"]
                exp_avg.lerp_(grad, 1 - beta1)
            else:
                exp_avg = grad
            sq = alf_norm(grad) ** 2 if group["by_norm"] else grad**2
            state["exp_avg_sq"].lerp_(sq, 1 - beta2)
            denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
            if weight_decay > 0:
                p.mul_(1 - lr_scale * lr * weight_decay)
            step_size = lr_scale * lr * math.sqrt(bias_correction2) / bias_correction1
            p.addcdiv_(exp_avg, denom, value=-step_size)
            alf_normalize(p, *constraints)


def with_overrides(params):
    """Per-parameter options on the tensors of the test: a bounded 2x norm, a free head, a constrained
    vector, a slower layer."""
    params[0].opt_args = {"max_norm": 2.0, "fixed_norm": False, "lr_scale": 0.5}
    params[1].opt_args = {"weight_decay": 0.2, "l2_regularization": None}
    params[2].opt_args = {"zero_mean": True, "max_norm": 3.0, "fixed_norm": True}
    params[3].opt_args = {"fixed_norm": False, "max_norm": math.inf, "zero_mean": False, "lr": 0.02}
    return params


NEROPLUS_CONFIGS = [
    pytest.param({}, False, id="defaults"),
    pytest.param({"normalizing_grad_by_norm": True, "betas": (0.0, 0.99)}, False, id="nero-like"),
    pytest.param({"normalizing_grad_by_norm": True, "betas": (0.8, 0.99)}, False, id="by-norm-momentum"),
    pytest.param({"max_norm": 2.0, "fixed_norm": False, "zero_mean": False, "weight_decay": 0.1,
                  "l2_regularization": 0.05, "eps": 1e-4}, False, id="bounded-decay-l2"),
    pytest.param({"weight_decay": 0.05, "l2_regularization": 0.01}, True, id="per-parameter-options"),
]


@pytest.mark.parametrize(("config", "overrides"), NEROPLUS_CONFIGS)
def test_neroplus_equals_alf(config, overrides) -> None:
    """100 steps against the transcription; the parameter at index 2 (a vector) skips every third step."""
    theirs = tensors(seed=2)
    ours = copies(theirs)
    if overrides:
        with_overrides(theirs)
        with_overrides(ours)
    options = {k: config[k] for k in ("max_norm", "fixed_norm", "zero_mean") if k in config}
    AlfNeroPlus.initialize(theirs, **options)
    optimizer = NeroPlus(NeroPlus.initialize(ours, **options), lr=0.03, **config)
    reference = AlfNeroPlus(theirs, lr=0.03, **config)
    for step in range(1, 101):
        skip = (2,) if step % 3 == 0 else ()
        set_grads(theirs, step, skip)
        set_grads(ours, step, skip)
        reference.step()
        optimizer.step()
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-13)
    for p, q in zip(ours, theirs):
        for key, value in reference.state[q].items():
            # The step count is torch's tensor here and a Python int in the transcription: compare values.
            torch.testing.assert_close(torch.as_tensor(optimizer.state[p][key]), torch.as_tensor(value),
                                       rtol=1e-12, atol=1e-13, check_dtype=key != "step")


def test_per_parameter_overrides_take_effect() -> None:
    params = with_overrides(tensors(seed=2))
    optimizer = NeroPlus(NeroPlus.initialize(params), lr=0.05)
    frozen = torch.nn.Parameter(torch.randn(3, 4, dtype=DT))
    frozen.opt_args = {"lr_scale": 0.0}
    NeroPlus.initialize([frozen])
    optimizer.add_param_group({"params": [frozen]})
    start = frozen.detach().clone()
    for step in range(1, 31):
        set_grads(params, step)
        frozen.grad = torch.randn(3, 4, dtype=DT)
        optimizer.step()
        # Bounded by 2, not fixed at 1.
        assert row_norms(params[0].detach()).max() <= 2.0 + 1e-12
        assert row_means(params[0].detach()).abs().max() < 1e-12
        # The constrained vector: zero mean and norm 3 as one neuron.
        assert abs(params[2].detach().mean().item()) < 1e-12
        assert params[2].detach().norm().item() == pytest.approx(3.0, rel=1e-12)
        # The free head: not projected at all.
        assert abs(row_norms(params[3].detach()).max().item() - 1.0) > 1e-3
    assert row_norms(params[0].detach()).max() > 1.01
    torch.testing.assert_close(frozen.detach(), start, rtol=0, atol=1e-15)


def test_neroplus_first_step_by_hand() -> None:
    """Defaults: m_1 = 0.1 g, v_1 = 0.001 g^2, step size lr sqrt(0.001) / 0.1, eps 1e-7, projection."""
    w = torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]], dtype=DT)
    w = w / w.norm(dim=1, keepdim=True)
    g = torch.tensor([[0.2, 0.4, -0.1], [-0.3, 0.0, 0.5]], dtype=DT)
    p = w.clone().requires_grad_()
    p.grad = g
    NeroPlus([p], lr=0.1).step()
    m, v = 0.1 * g, 0.001 * g * g
    expected = w - 0.1 * math.sqrt(0.001) / 0.1 * m / (v.sqrt() + 1e-7)
    expected = expected - expected.mean(dim=1, keepdim=True)
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=1e-15)


def test_alf_pins_a_scalar_and_we_do_not() -> None:
    """ALF gives a 0-d parameter the group's constraints (norm fixed at 1); here it is free, like a vector."""
    theirs = torch.tensor(0.3, dtype=DT, requires_grad=True)
    ours = theirs.detach().clone().requires_grad_()
    AlfNeroPlus.initialize([theirs])
    NeroPlus.initialize([ours])
    assert theirs.item() == pytest.approx(1.0) and ours.item() == pytest.approx(0.3)


def test_zero_eps_zero_gradient_row_does_not_produce_nan() -> None:
    p = torch.nn.Parameter(torch.eye(3, dtype=DT) - 1 / 3)
    NeroPlus.initialize([p])
    optimizer = NeroPlus([p], eps=0.0, normalizing_grad_by_norm=True)
    p.grad = torch.zeros(3, 3, dtype=DT)
    p.grad[0] = 1.0
    optimizer.step()
    assert torch.isfinite(p).all()


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (Nero, {"beta": 1.0}, "Invalid beta: 1.0"),
        (Nero, {"lr": -1.0}, "Invalid lr: -1.0"),
        (NeroPlus, {"betas": (0.9, 0.0)}, "Invalid beta parameter at index 1: 0.0"),
        (NeroPlus, {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
        (NeroPlus, {"max_norm": 0.0}, "Invalid max_norm: 0.0"),
        (NeroPlus, {"weight_decay": -1.0}, "Invalid weight_decay: -1.0"),
        (NeroPlus, {"l2_regularization": -1.0}, "Invalid l2_regularization: -1.0"),
        (NeroPlus, {"eps": -1.0}, "Invalid eps: -1.0"),
    ],
)
def test_invalid_arguments(cls, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        cls([torch.nn.Parameter(torch.zeros(3))], **kwargs)
