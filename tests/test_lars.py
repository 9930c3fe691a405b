"""LARS: each convention against an independent transcription of its source, and the fast path
(`foreach=True`: the per-layer step compiled over the group) against the readable one, in float64."""

import math

import pytest
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.core.verification import verify_config
from annotated_opt.lars import LARS, LARS_CONVENTIONS

from .helpers import save_and_load

DT = torch.float64
STEPS = 3


def named_tensors(seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """MXNet-style names: weights, biases, a normalisation layer's gamma/beta, and zero-initialised
    tensors (whose norm is zero, so their ratio must fall back to 1)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "fc1_weight": (5, 4), "fc1_bias": (5,), "bn_gamma": (5,), "bn_beta": (5,),
        "conv_weight": (3, 2, 3, 3), "fc2_weight": (2, 5), "zero_weight": (3, 4), "zero_bias": (3,),
    }
    tensors = []
    for name, shape in shapes.items():
        value = torch.zeros(shape, dtype=DT) if name.startswith("zero") else torch.randn(shape, generator=g, dtype=DT)
        tensors.append((name, value.requires_grad_()))
    return tensors


def gradient_sequence(params, seed: int = 1, steps: int = STEPS) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g, dtype=DT) for _, p in params] for _ in range(steps)]


def clone(params):
    return [(n, p.detach().clone().requires_grad_()) for n, p in params]


def run_ours(params, grads, **config) -> list[torch.Tensor]:
    optimizer = LARS(params, **config)
    tensors = [p[1] if isinstance(p, tuple) else p for p in params]
    for step_grads in grads:
        for p, g in zip(tensors, step_grads):
            p.grad = g.clone()
        optimizer.step()
    return [p.detach() for p in tensors]


def assert_same(ours, expected, rtol=1e-12):
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, rtol=rtol, atol=1e-14)


# ---- independent transcriptions, one per source -------------------------------------------------


def mxnet_lars(params, grads, lr, momentum, eta, eps, wd, rescale_grad=1.0, clip_gradient=None):
    """MXNet's LARS.step: `_get_lars` (with its ratio/ratio NaN trick), then the momentum with the
    learning rate inside the buffer, mom = momentum * mom - lr * lars * (clip(rescale * g) + wd * w)."""
    weights = [p.detach().clone() for _, p in params]
    moms = [torch.zeros_like(w) for w in weights]
    for step_grads in grads:
        for i, ((name, _), g) in enumerate(zip(params, step_grads)):
            w = weights[i]
            lars = torch.tensor(1.0, dtype=DT)
            if not (name.endswith("gamma") or name.endswith("beta") or name.endswith("bias")):
                w_norm = w.norm()
                g_norm = (g * rescale_grad).norm()
                ratio = w_norm / g_norm
                nan_or_zero = 1 - ratio / ratio
                lars = eta * w_norm / (g_norm + wd * w_norm + eps)
                lars = torch.where(nan_or_zero != 0, torch.ones_like(lars), lars)
            g = g * rescale_grad
            if clip_gradient is not None:
                g = g.clamp(-clip_gradient, clip_gradient)
            g = g + wd * w
            moms[i] = momentum * moms[i] - lr * lars * g
            weights[i] = w + moms[i]
    return weights


def larc(params, grads, lr, momentum, wd, trust_coefficient, eps, clip):
    """apex's LARC wrapped around torch.optim.SGD: it takes the weight decay away from SGD, scales
    p.grad in place, lets SGD step, and gives the decay back."""
    tensors = [p for _, p in clone(params)]
    sgd = torch.optim.SGD(tensors, lr=lr, momentum=momentum, weight_decay=wd)
    for step_grads in grads:
        for p, g in zip(tensors, step_grads):
            p.grad = g.clone()
        with torch.no_grad():
            decays = []
            for group in sgd.param_groups:
                decay = group["weight_decay"]
                decays.append(decay)
                group["weight_decay"] = 0
                for p in group["params"]:
                    param_norm, grad_norm = torch.norm(p), torch.norm(p.grad)
                    if param_norm != 0 and grad_norm != 0:
                        adaptive_lr = trust_coefficient * param_norm / (grad_norm + param_norm * decay + eps)
                        if clip:
                            adaptive_lr = min(adaptive_lr / group["lr"], 1)
                        p.grad += decay * p
                        p.grad *= adaptive_lr
        sgd.step()
        for group, decay in zip(sgd.param_groups, decays):
            group["weight_decay"] = decay
    return [p.detach() for p in tensors]


def bolts(groups, grads, lr, momentum, trust_coefficient, eps, nesterov=False):
    """Lightning bolts: adaptation (and decay) only in groups with non-zero decay and only when both
    norms are non-zero; then torch's momentum."""
    state = {}
    flat = [p for group in groups for p in group["params"]]
    for step_grads in grads:
        for p, g in zip(flat, step_grads):
            p.grad = g.clone()
        with torch.no_grad():
            for group in groups:
                wd = group["weight_decay"]
                for p in group["params"]:
                    d_p = p.grad
                    p_norm, g_norm = torch.norm(p), torch.norm(p.grad)
                    if wd != 0 and p_norm != 0 and g_norm != 0:
                        lars_lr = trust_coefficient * p_norm / (g_norm + p_norm * wd + eps)
                        d_p = d_p.add(p, alpha=wd).mul(lars_lr)
                    if id(p) not in state:
                        buf = state[id(p)] = d_p.clone()
                    else:
                        buf = state[id(p)]
                        buf.mul_(momentum).add_(d_p)
                    d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
                    p.add_(d_p, alpha=-lr)
    return [p.detach() for p in flat]


def mae(params, grads, lr, momentum, wd, trust_coefficient):
    """facebookresearch/mae (and MoCo v3): only tensors with more than one dimension are decayed and
    adapted, with the norm of the decayed gradient; the buffer starts at zero."""
    weights = [p.detach().clone() for _, p in params]
    buffers = [torch.zeros_like(w) for w in weights]
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            p, dp = weights[i], g
            if p.ndim > 1:
                dp = dp.add(p, alpha=wd)
                param_norm, update_norm = torch.norm(p), torch.norm(dp)
                one = torch.ones_like(param_norm)
                q = torch.where(param_norm > 0.0,
                                torch.where(update_norm > 0, trust_coefficient * param_norm / update_norm, one), one)
                dp = dp.mul(q)
            buffers[i].mul_(momentum).add_(dp)
            weights[i] = p - lr * buffers[i]
    return weights


def optax_lars(params, grads, lr, momentum, wd, trust_coefficient, eps, nesterov=False):
    """optax.lars: add_decayed_weights, scale_by_trust_ratio (norm of the decayed update), scale by
    -lr, then trace (the momentum holds the learning rate)."""
    weights = [p.detach().clone() for _, p in params]
    traces = [torch.zeros_like(w) for w in weights]
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            p = weights[i]
            u = g + wd * p
            param_norm, update_norm = p.norm(), u.norm()
            ratio = trust_coefficient * param_norm / (update_norm + eps)
            ratio = torch.where((param_norm == 0) | (update_norm == 0), torch.ones_like(ratio), ratio)
            u = -lr * (ratio * u)
            traces[i] = u + momentum * traces[i]
            step = u + momentum * traces[i] if nesterov else traces[i]
            weights[i] = p + step
    return weights


def paper_algorithm_1(params, grads, base_lr, momentum, wd, eta, total_steps):
    """You et al., Algorithm 1: polynomial decay gamma_t = gamma_0 (1 - t/T)^2, local rate
    eta * ||w|| / (||g|| + beta ||w||), v = m v + gamma lambda (g + beta w), w = w - v."""
    weights = [p.detach().clone() for _, p in params]
    velocities = [torch.zeros_like(w) for w in weights]
    for t, step_grads in enumerate(grads):
        gamma = base_lr * (1 - t / total_steps) ** 2
        for i, g in enumerate(step_grads):
            w = weights[i]
            w_norm, g_norm = w.norm(), g.norm()
            local = eta * w_norm / (g_norm + wd * w_norm)
            if w_norm == 0 or g_norm == 0:
                local = torch.tensor(1.0, dtype=DT)
            velocities[i] = momentum * velocities[i] + gamma * local * (g + wd * w)
            weights[i] = w - velocities[i]
    return weights


# ---- each convention -----------------------------------------------------------------------------


@pytest.mark.parametrize("rescale_clip", [(1.0, None), (0.5, 0.3)], ids=["plain", "rescale-clip"])
def test_mxnet_convention(rescale_clip) -> None:
    rescale, clip = rescale_clip
    params = named_tensors()
    grads = gradient_sequence(params)
    config = dict(lr=2.0, momentum=0.9, weight_decay=0.01, trust_coefficient=0.01, rescale_grad=rescale,
                  clip_gradient=clip, **LARS_CONVENTIONS["mxnet"])
    expected = mxnet_lars(params, grads, lr=2.0, momentum=0.9, eta=0.01, eps=1e-8, wd=0.01,
                          rescale_grad=rescale, clip_gradient=clip)
    assert_same(run_ours(clone(params), grads, **config), expected)
    # The names matter: the bias, gamma and beta moved like SGD (ratio 1), the weights did not.
    plain = run_ours(clone(params), grads, **{**config, "no_adaptation_suffixes": ()})
    names = [n for n, _ in params]
    assert not torch.allclose(plain[names.index("fc1_bias")], expected[names.index("fc1_bias")])


@pytest.mark.parametrize("clip", [True, False], ids=["clip", "scale"])
def test_larc_convention(clip) -> None:
    params = named_tensors()
    grads = gradient_sequence(params)
    config = {**LARS_CONVENTIONS["larc"], "larc_clip": clip}
    lr = 0.5
    expected = larc(params, grads, lr=lr, momentum=0.9, wd=0.01, trust_coefficient=0.02, eps=1e-8, clip=clip)
    ours = run_ours([p for _, p in clone(params)], grads, lr=lr, momentum=0.9, weight_decay=0.01, **config)
    assert_same(ours, expected)


def test_larc_clip_mode_takes_the_smaller_rate() -> None:
    """With a tiny global rate the clip mode is plain SGD (min(lambda, lr) = lr). (Not for a tensor
    whose norm is itself tiny, so the zero-initialised ones are left out.)"""
    params = [(n, p) for n, p in named_tensors() if not n.startswith("zero")]
    grads = gradient_sequence(params)
    clipped = run_ours([p for _, p in clone(params)], grads, lr=1e-6, momentum=0.9, **LARS_CONVENTIONS["larc"])
    sgd = [p for _, p in clone(params)]
    optimizer = torch.optim.SGD(sgd, lr=1e-6, momentum=0.9)
    for step_grads in grads:
        for p, g in zip(sgd, step_grads):
            p.grad = g.clone()
        optimizer.step()
    assert_same(clipped, [p.detach() for p in sgd])


@pytest.mark.parametrize("nesterov", [False, True])
def test_bolts_convention_adapts_only_decayed_groups(nesterov) -> None:
    params = [p for _, p in named_tensors()]
    grads = gradient_sequence([(None, p) for p in params])

    def groups(tensors):
        return [{"params": tensors[:4], "weight_decay": 0.01}, {"params": tensors[4:], "weight_decay": 0.0}]

    theirs = [p.detach().clone().requires_grad_() for p in params]
    expected = bolts(groups(theirs), grads, lr=0.5, momentum=0.9, trust_coefficient=0.01, eps=1e-8,
                     nesterov=nesterov)
    ours = [p.detach().clone().requires_grad_() for p in params]
    optimizer = LARS(groups(ours), lr=0.5, momentum=0.9, nesterov=nesterov, trust_coefficient=0.01,
                     **LARS_CONVENTIONS["bolts"])
    for step_grads in grads:
        for p, g in zip(ours, step_grads):
            p.grad = g.clone()
        optimizer.step()
    assert_same([p.detach() for p in ours], expected)


def test_mae_convention() -> None:
    params = named_tensors()
    grads = gradient_sequence(params)
    expected = mae(params, grads, lr=0.5, momentum=0.9, wd=0.05, trust_coefficient=0.01)
    ours = run_ours([p for _, p in clone(params)], grads, lr=0.5, momentum=0.9, weight_decay=0.05,
                    trust_coefficient=0.01, **LARS_CONVENTIONS["mae"])
    assert_same(ours, expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_optax_convention(nesterov) -> None:
    params = named_tensors()
    grads = gradient_sequence(params)
    expected = optax_lars(params, grads, lr=0.5, momentum=0.9, wd=0.05, trust_coefficient=0.01, eps=0.0,
                          nesterov=nesterov)
    ours = run_ours([p for _, p in clone(params)], grads, lr=0.5, momentum=0.9, weight_decay=0.05,
                    nesterov=nesterov, trust_coefficient=0.01, **LARS_CONVENTIONS["optax"])
    assert_same(ours, expected)


def test_paper_algorithm_with_a_schedule() -> None:
    """The learning rate inside the buffer is the paper's algorithm, schedule included; torch's
    convention is a different optimizer once the rate changes."""
    params = named_tensors()
    grads = gradient_sequence(params, steps=4)
    expected = paper_algorithm_1(params, grads, base_lr=2.0, momentum=0.9, wd=0.01, eta=0.01, total_steps=4)

    def run(lr_in_momentum):
        tensors = [p for _, p in clone(params)]
        optimizer = LARS(tensors, lr=2.0, momentum=0.9, weight_decay=0.01, trust_coefficient=0.01,
                         **{**LARS_CONVENTIONS["paper"], "lr_in_momentum": lr_in_momentum})
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 - t / 4) ** 2)
        for step_grads in grads:
            for p, g in zip(tensors, step_grads):
                p.grad = g.clone()
            optimizer.step()
            schedule.step()
        return [p.detach() for p in tensors]

    assert_same(run(True), expected)
    assert max((a - b).abs().max().item() for a, b in zip(run(False), expected)) > 1e-4


def test_pytorch_optimizer_zero_gradient_differs() -> None:
    """The page's claim: with decay and an exactly zero gradient, pytorch_optimizer's ratio is
    eta/beta (it tests the whole denominator); MXNet's rule, used here, gives 1."""
    import pytorch_optimizer

    w = torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(0))
    ours, theirs = w.clone().requires_grad_(), w.clone().requires_grad_()
    for p in (ours, theirs):
        p.grad = torch.zeros_like(p)
    LARS([ours], lr=1.0, momentum=0.0, weight_decay=0.1, eps=0.0, trust_coefficient=0.01).step()
    pytorch_optimizer.LARS([theirs], lr=1.0, momentum=0.0, weight_decay=0.1, trust_coefficient=0.01).step()
    torch.testing.assert_close(ours.detach(), w - 0.1 * w, rtol=1e-14, atol=0)
    torch.testing.assert_close(theirs.detach(), w - 0.01 * w, rtol=1e-14, atol=0)


# ---- the trust ratio by hand ---------------------------------------------------------------------


def test_three_steps_by_hand_default_convention() -> None:
    """The defaults written out: ratio with ||g|| + wd ||w|| + eps, vectors neither adapted nor decayed,
    torch momentum (b_1 = d_1)."""
    w = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=DT)
    b = torch.tensor([1.0, -1.0], dtype=DT)
    grads = [(torch.tensor([[0.3, 0.0], [0.0, 0.4]], dtype=DT), torch.tensor([0.5, 0.5], dtype=DT)),
             (torch.tensor([[0.0, -0.6], [0.8, 0.0]], dtype=DT), torch.tensor([-1.0, 0.0], dtype=DT)),
             (torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=DT), torch.tensor([0.0, 2.0], dtype=DT))]
    lr, mu, wd, eta, eps = 0.1, 0.9, 0.01, 0.02, 1e-8
    weight, bias = w.clone().requires_grad_(), b.clone().requires_grad_()
    optimizer = LARS([weight, bias], lr=lr, momentum=mu, weight_decay=wd, trust_coefficient=eta, eps=eps)
    w_buf = b_buf = None
    for gw, gb in grads:
        weight.grad, bias.grad = gw.clone(), gb.clone()
        optimizer.step()
        ratio = eta * math.sqrt((w**2).sum()) / (math.sqrt((gw**2).sum()) + wd * math.sqrt((w**2).sum()) + eps)
        d = ratio * (gw + wd * w)
        w_buf = d if w_buf is None else mu * w_buf + d
        b_buf = gb if b_buf is None else mu * b_buf + gb
        w, b = w - lr * w_buf, b - lr * b_buf
        torch.testing.assert_close(weight.detach(), w, rtol=1e-14, atol=1e-16)
        torch.testing.assert_close(bias.detach(), b, rtol=1e-14, atol=1e-16)


def test_zero_norm_layers_move_like_sgd() -> None:
    """A zero-initialised matrix has ||w|| = 0: ratio 1, so its first step is exactly SGD's."""
    zero = torch.zeros(3, 4, dtype=DT, requires_grad=True)
    zero.grad = torch.ones(3, 4, dtype=DT)
    LARS([zero], lr=0.1, momentum=0.9).step()
    torch.testing.assert_close(zero.detach(), torch.full((3, 4), -0.1, dtype=DT))
    # A NaN ratio falls back to 1 as well (MXNet's rule). A NaN gradient only reaches the ratio when
    # the group applies non-finite gradients, as torch.optim does (the default refuses them).
    nan_grad = torch.ones(2, 2, dtype=DT, requires_grad=True)
    nan_grad.grad = torch.full((2, 2), float("nan"), dtype=DT)
    optimizer = LARS([{"params": [nan_grad], "nonfinite": "ignore"}], lr=0.1, momentum=0.0)
    optimizer.step()
    assert torch.isnan(nan_grad).all()


def test_never_touches_p_grad() -> None:
    params = named_tensors()
    grads = gradient_sequence(params, steps=1)
    tensors = clone(params)
    for foreach in (False, True):
        optimizer = LARS(tensors, lr=0.5, weight_decay=0.1, rescale_grad=2.0, clip_gradient=0.5, foreach=foreach,
                         **{**LARS_CONVENTIONS["mxnet"], "lr_in_momentum": False})
        for (_, p), g in zip(tensors, grads[0]):
            p.grad = g.clone()
        optimizer.step()
        for (_, p), g in zip(tensors, grads[0]):
            assert torch.equal(p.grad, g)


# ---- the fast path -----------------------------------------------------------------------------


def readable_twin(groups, **config):
    return LARS(groups, **{**config, "foreach": False})


@pytest.mark.parametrize("config", REGISTRY["lars"].configs, ids=lambda c: ",".join(sorted(c)))
def test_fast_path_equals_readable_on_every_registry_config(config) -> None:
    """The harness, with the readable path as the reference and the fast path as ours."""
    result = verify_config(REGISTRY["lars"], {**config, "foreach": True}, seed=0, steps=30,
                           reference_factory=readable_twin)
    assert result.error <= 1e-13, f"{result.error:.2e} at {result.worst}"


CONVENTION_CASES = [
    pytest.param({**convention, "momentum": momentum, "nesterov": nesterov}, id=f"{name}-m{momentum}-n{nesterov}")
    for name, convention in LARS_CONVENTIONS.items()
    for momentum, nesterov in ((0.9, False), (0.9, True), (0.0, False))
]


@pytest.mark.parametrize("config", CONVENTION_CASES)
def test_fast_path_equals_readable_on_every_convention(config) -> None:
    """Named parameters, two groups (one without decay), a per-parameter lr_scale, MXNet's
    pre-processing, and a parameter without gradient on one step."""
    params = named_tensors(3)
    grads = gradient_sequence(params, steps=6)
    params[1][1].opt_args = {"lr_scale": 0.5}
    results = []
    for foreach in (False, True):
        tensors = clone(params)
        tensors[1][1].opt_args = {"lr_scale": 0.5}
        groups = [{"params": tensors[:5], "weight_decay": 0.02},
                  {"params": tensors[5:], "weight_decay": 0.0, "lr": 0.3, "rescale_grad": 0.5, "clip_gradient": 0.4}]
        optimizer = LARS(groups, **{"lr": 0.7, "trust_coefficient": 0.02, **config, "foreach": foreach})
        history = []
        for step, step_grads in enumerate(grads):
            for index, ((_, p), g) in enumerate(zip(tensors, step_grads)):
                p.grad = None if (index == 2 and step == 3) else g.clone()
            optimizer.step()
            history.append([p.detach().clone() for _, p in tensors])
        results.append((history, optimizer))
    (readable, first), (fast, second) = results
    for a_step, b_step in zip(fast, readable):
        assert_same(a_step, b_step, rtol=1e-13)
    for p, q in zip(first.state.values(), second.state.values()):
        for key in p:
            torch.testing.assert_close(q[key], p[key], rtol=1e-13, atol=1e-15)


# ---- names, checks, state dicts ------------------------------------------------------------------


def test_name_rules_need_names() -> None:
    tensors = [p for _, p in named_tensors()]
    with pytest.raises(ValueError, match="needs named parameters"):
        LARS(tensors, no_adaptation_suffixes=("bias",))
    optimizer = LARS(named_tensors(), no_decay_suffixes=("bias",))
    assert optimizer.param_groups[0]["param_names"][1] == "fc1_bias"


def test_state_dict_with_names_is_plain_and_loads_with_weights_only() -> None:
    params = named_tensors()
    grads = gradient_sequence(params)
    first = clone(params)
    optimizer = LARS(first, **LARS_CONVENTIONS["mxnet"], weight_decay=0.01)
    for step_grads in grads[:2]:
        for (_, p), g in zip(first, step_grads):
            p.grad = g.clone()
        optimizer.step()
    state = save_and_load(optimizer.state_dict())
    second = [(n, p.detach().clone().requires_grad_()) for n, p in first]
    twin = LARS(second, **LARS_CONVENTIONS["mxnet"], weight_decay=0.01)
    twin.load_state_dict(state)
    for opt, tensors in ((optimizer, first), (twin, second)):
        for (_, p), g in zip(tensors, grads[2]):
            p.grad = g.clone()
        opt.step()
    for (_, p), (_, q) in zip(first, second):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trust_coefficient": -1.0}, "Invalid trust_coefficient: -1.0"),
        ({"eps": -1e-3}, "Invalid eps: -0.001"),
        ({"trust_ratio_norm": "weights"}, "Invalid trust_ratio_norm: 'weights'"),
        ({"lr_in_momentum": True, "dampening": 0.1}, "Invalid dampening: 0.1"),
        ({"clip_gradient": -1.0}, "Invalid clip_gradient: -1.0"),
        ({"weight_decay": -0.1}, "Invalid weight_decay: -0.1"),
        ({"momentum": -0.5}, "Invalid momentum: -0.5"),
    ],
)
def test_invalid_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        LARS([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


@pytest.mark.parametrize("value", [-2, 1.5, True])
def test_dimension_rules_take_a_number_of_dimensions_or_minus_one(value) -> None:
    for name in ("max_ndim_without_adaptation", "max_ndim_without_decay"):
        with pytest.raises(ValueError, match=f"Invalid {name}: {value}"):
            LARS([torch.nn.Parameter(torch.zeros(2, 2))], **{name: value})
        # -1 switches the rule off: a vector is then adapted (or decayed) like a matrix.
        assert LARS([torch.nn.Parameter(torch.zeros(2))], **{name: -1}).param_groups[0][name] == -1


def test_a_bad_group_added_later_is_refused_and_not_kept() -> None:
    optimizer = LARS([torch.nn.Parameter(torch.zeros(2, 2))])
    with pytest.raises(ValueError, match="Invalid eps"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "eps": -1.0})
    assert len(optimizer.param_groups) == 1


# ---- master weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("foreach", [False, True])
def test_master_weights_follow_float32_exactly(dtype, foreach) -> None:
    """With gradients that do not depend on the weights (and are exact in half precision), the float32
    master copy follows a float32 run bit for bit, and the parameter is its rounding."""
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(8, 6, generator=g), torch.randn(6, generator=g), torch.randn(4, 3, 2, 2, generator=g)]
    start = [s.to(dtype).float() for s in start]
    grads = [[torch.randn(s.shape, generator=g).to(dtype) for s in start] for _ in range(40)]
    reference = [s.clone().requires_grad_() for s in start]
    half = [s.to(dtype).requires_grad_() for s in start]
    config = dict(lr=1.0, momentum=0.9, weight_decay=1e-3, foreach=foreach)
    ref_opt = LARS(reference, **config)
    half_opt = LARS(half, multi_precision=True, **config)
    for step_grads in grads:
        for p, q, grad in zip(reference, half, step_grads):
            p.grad, q.grad = grad.float(), grad.clone()
        ref_opt.step()
        half_opt.step()
        for p, q in zip(reference, half):
            master = half_opt.state[q]["master_param"]
            assert master.dtype == torch.float32
            assert torch.equal(master, p.detach())
            assert torch.equal(q.detach(), p.detach().to(dtype))
        assert half_opt.state[half[0]]["momentum_buffer"].dtype == torch.float32


@pytest.mark.parametrize("foreach", [False, True])
def test_name_rules_apply_under_master_weights(foreach) -> None:
    """The step works on a bfloat16 parameter's float32 master, yet the name rules still find the
    parameter's name: named bfloat16 parameters follow the float32 run of the same tensors bit for bit
    (had a bias lost its name, it would have been adapted, and moved differently)."""
    params = named_tensors()
    grads = [[g.to(torch.bfloat16) for g in step_grads] for step_grads in gradient_sequence(params)]
    start = [(n, p.detach().to(torch.bfloat16).float()) for n, p in params]
    full = [(n, s.clone().requires_grad_()) for n, s in start]
    half = [(n, s.to(torch.bfloat16).requires_grad_()) for n, s in start]
    config = dict(lr=2.0, momentum=0.9, weight_decay=0.01, trust_coefficient=0.01, foreach=foreach,
                  **LARS_CONVENTIONS["mxnet"])
    full_opt, half_opt = LARS(full, **config), LARS(half, multi_precision=True, **config)
    for step_grads in grads:
        for (_, p), (_, q), g in zip(full, half, step_grads):
            p.grad, q.grad = g.float(), g.clone()
        full_opt.step()
        half_opt.step()
    for (_, p), (_, q) in zip(full, half):
        assert torch.equal(half_opt.state[q]["master_param"], p.detach())
        assert torch.equal(q.detach(), p.detach().to(torch.bfloat16))


def test_without_master_weights_small_updates_round_away() -> None:
    """The reason for master weights: LARS moves a layer by about lr * eta of its norm per step, below
    bfloat16's resolution; without a float32 copy much of the training is lost."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(16, 16, generator=g).to(torch.bfloat16).float()
    grads = [torch.randn(16, 16, generator=g).to(torch.bfloat16) for _ in range(100)]
    runs = {}
    for name, dtype, multi in (("fp32", torch.float32, False), ("master", torch.bfloat16, True),
                               ("bf16", torch.bfloat16, False)):
        p = start.clone().to(dtype).requires_grad_()
        optimizer = LARS([p], lr=1.0, momentum=0.0, trust_coefficient=1e-3, multi_precision=multi)
        for grad in grads:
            p.grad = grad.to(dtype)
            optimizer.step()
        runs[name] = optimizer.state[p]["master_param"] if multi else p.detach().float()
    moved = (runs["fp32"] - start).norm()
    assert torch.equal(runs["master"], runs["fp32"])
    assert (runs["bf16"] - runs["fp32"]).norm() > 0.3 * moved


@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "torch.save"])
def test_master_weights_survive_a_state_dict_round_trip(through_file) -> None:
    """torch casts loaded state to the parameter's dtype; the float32 master copy must not be rounded."""
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(8, 6, generator=g).to(torch.float16), torch.randn(6, generator=g).to(torch.float16)]
    grads = [[torch.randn(s.shape, generator=g).to(torch.float16) for s in start] for _ in range(10)]

    def run(params, optimizer, step_grads):
        for p, grad in zip(params, step_grads):
            p.grad = grad.clone()
        optimizer.step()

    first = [s.clone().requires_grad_() for s in start]
    optimizer = LARS(first, multi_precision=True, weight_decay=1e-3)
    for step_grads in grads[:5]:
        run(first, optimizer, step_grads)
    state = optimizer.state_dict()
    if through_file:
        state = save_and_load(state)
    second = [p.detach().clone().requires_grad_() for p in first]
    twin = LARS(second, multi_precision=True, weight_decay=1e-3)
    twin.load_state_dict(state)
    assert twin.state[second[0]]["master_param"].dtype == torch.float32
    assert twin.state[second[0]]["momentum_buffer"].dtype == torch.float32
    for step_grads in grads[5:]:
        run(first, optimizer, step_grads)
        run(second, twin, step_grads)
    for p, q in zip(first, second):
        assert torch.equal(optimizer.state[p]["master_param"], twin.state[q]["master_param"])
