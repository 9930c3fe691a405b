"""
Every group option torch honours per group is honoured per group here: for every class with a
`torch.optim` twin (by name) and every option its twin stores in a group, two groups, the second with the
option changed, step side by side with torch's: the parameters and every tensor of their state equal bit
for bit (float32) or to 1e-15 (float64). The option matters: the second group moves otherwise without it,
or keeps another state (ASGD's `t0` acts only on the average), except for the implementation flags, which
by design change no number here. And the option lives in the group: saved half-way and loaded into an
optimizer built without it, the run continues as if uninterrupted.
"""

import pytest
import torch

import annotated_opt

TWINS = sorted(name for name, cls in vars(torch.optim).items() if isinstance(cls, type)
               and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
               and hasattr(annotated_opt, name)
               # L-BFGS has one group only, in both; Muon takes only matrices and SparseAdam only sparse
               # gradients, which this model of vectors and dense gradients does not give (their groups
               # are checked by the battery, on their own parameters).
               and name not in ("LBFGS", "Muon", "SparseAdam"))
# The value the second group takes; options that need another one set get it in `CONTEXT`.
CHANGED = {"lr": 0.05, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1, "momentum": 0.5, "dampening": 0.3,
           "nesterov": True, "alpha": 0.9, "centered": True, "lr_decay": 0.1, "initial_accumulator_value": 0.2,
           "momentum_decay": 0.01, "decoupled_weight_decay": True, "amsgrad": True, "maximize": True,
           "foreach": True, "differentiable": True, "fused": True, "beta2_decay": -0.5, "d": 0.5, "lambd": 0.01,
           "t0": 3.0, "rho": 0.5, "etas": (0.4, 1.3), "step_sizes": (4e-3, 1.2e-2)}
CHANGED_FOR = {("Adafactor", "eps"): (1.0, 10.0), ("Adafactor", "d"): 2.0, ("Adafactor", "weight_decay"): 0.5,
               ("AdamW", "decoupled_weight_decay"): False}
CONTEXT = {"nesterov": {"momentum": 0.9}, "dampening": {"momentum": 0.9},
           "decoupled_weight_decay": {"weight_decay": 0.1}}
IMPLEMENTATION_FLAGS = {"foreach", "differentiable", "fused"}
# Where torch's multi-tensor kernel rounds otherwise than its own for-loop, the flags concerned: ours gives
# the for-loop's numbers (see implementation flags), within rounding of torch's. torch's multi-tensor
# Adafactor rounds differently in float32; its multi-tensor ASGD computes the next step size from the
# `float32` step count in `float32` arithmetic (its for-loop in Python floats), a float32 rounding even in
# a float64 model.
ROUNDS_OTHERWISE = {("Adafactor", torch.float32): IMPLEMENTATION_FLAGS, ("ASGD", torch.float64): {"foreach"}}


def run(library, name: str, dtype: torch.dtype, second_group: dict, steps: int = 8, reload_at: int | None = None,
        **kwargs) -> tuple[list[list[torch.Tensor]], torch.optim.Optimizer]:
    """
    Per parameter (the first two in the first group, the last two in the second): the parameter, then the
    tensors of its state by key. With `reload_at`, the state dict is loaded at that step into a new optimizer
    built without the second group's option, which must then come from the saved group.
    """
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(shape, generator=generator, dtype=dtype) for shape in ((4, 3), (3,), (3, 2), (2,))]
    cls = getattr(library, name)
    optimizer = cls([{"params": params[:2]}, {"params": params[2:], **second_group}], **kwargs)
    for step in range(steps):
        if step == reload_at:
            state_dict = optimizer.state_dict()
            optimizer = cls([{"params": params[:2]}, {"params": params[2:]}], **kwargs)
            optimizer.load_state_dict(state_dict)
        generator = torch.Generator().manual_seed(step + 1)
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator, dtype=dtype)
        optimizer.step()
    return [[p] + [value for _, value in sorted(optimizer.state[p].items()) if isinstance(value, torch.Tensor)]
            for p in params], optimizer


def flat(tensors: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [t for per_param in tensors for t in per_param]


def assert_equal(ours: list[list[torch.Tensor]], theirs: list[list[torch.Tensor]], dtype: torch.dtype,
                 exact_state: bool = True) -> None:
    """Equal parameters, and equal state unless `exact_state` is false (then within float32 rounding)."""
    assert [len(per_param) for per_param in ours] == [len(per_param) for per_param in theirs]
    for our_tensors, their_tensors in zip(ours, theirs):
        for index, (p, q) in enumerate(zip(our_tensors, their_tensors)):
            if index > 0 and not exact_state:
                torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
            elif dtype == torch.float64 and p.is_floating_point():
                torch.testing.assert_close(p, q, rtol=1e-15, atol=0)
            else:
                assert torch.equal(p, q)


def cases():
    return [pytest.param(name, option, dtype, id=f"{name}-{option}-{str(dtype)[6:]}")
            for name in TWINS for option in getattr(torch.optim, name)([torch.zeros(1)]).defaults
            if option != "capturable"  # torch refuses it on the CPU: test_dropin checks ours does too
            for dtype in (torch.float32, torch.float64)
            # `foreach` selects our fast path, which test_optim_db compares with torch within float32 rounding.
            if not (option == "foreach" and dtype == torch.float32)]


@pytest.mark.parametrize(("name", "option", "dtype"), cases())
def test_a_group_option_acts_on_its_group_as_in_torch(name, option, dtype) -> None:
    second = {option: CHANGED_FOR.get((name, option), CHANGED[option])}
    context = CONTEXT.get(option, {})
    ours, optimizer = run(annotated_opt, name, dtype, second, **context)
    assert optimizer.param_groups[1][option] == second[option] != optimizer.param_groups[0][option]
    if (name, option) == ("Adagrad", "initial_accumulator_value"):
        # torch fills every group's accumulators with the constructor's value and ignores the group's;
        # here the group's own value is its starting sum, the run torch gives with that value for all.
        torchs_ignoring, _ = run(torch.optim, name, dtype, second, **context)
        assert_equal(torchs_ignoring, run(torch.optim, name, dtype, {}, **context)[0], dtype)
        torchs_with_it_for_all, _ = run(torch.optim, name, dtype, {}, initial_accumulator_value=second[option])
        assert_equal(ours, torchs_ignoring[:2] + torchs_with_it_for_all[2:], dtype)
        assert not torch.equal(ours[2][0], torchs_ignoring[2][0])
        return
    theirs, _ = run(torch.optim, name, dtype, second, **context)
    without, _ = run(annotated_opt, name, dtype, {}, **context)
    if option in ROUNDS_OTHERWISE.get((name, dtype), ()):
        torch.testing.assert_close(flat(ours), flat(theirs), rtol=1e-5, atol=1e-6)
        theirs, _ = run(torch.optim, name, dtype, {}, **context)
    # The fast path that `foreach` and `fused` choose here is compared with torch within rounding by
    # test_optim_db: its state may round otherwise in float32 (as torch's fused kernels' does from torch's
    # for-loop), even where the parameters come out equal.
    assert_equal(ours, theirs, dtype, exact_state=option not in ("foreach", "fused") or dtype == torch.float64)
    # The first group is untouched by the second's option; the second moves otherwise without it.
    assert_equal(ours[:2], without[:2], dtype)
    if option not in IMPLEMENTATION_FLAGS:
        assert not all(torch.equal(p, q) for p, q in zip(flat(ours[2:]), flat(without[2:])))
    # The option is saved with its group: loaded half-way into an optimizer built without it, the run goes on.
    assert_equal(run(annotated_opt, name, dtype, second, reload_at=4, **context)[0], ours, dtype)


def test_amsgrad_set_on_a_group_of_a_plain_adam_after_construction() -> None:
    """A group added later with `amsgrad`, and one switched on before its first step, as torch reads them."""
    runs = []
    for library in (torch.optim, annotated_opt):
        generator = torch.Generator().manual_seed(0)
        params = [torch.randn(3, generator=generator) for _ in range(3)]
        optimizer = library.Adam([params[0]], lr=0.1)
        optimizer.add_param_group({"params": [params[1]], "amsgrad": True})
        optimizer.add_param_group({"params": [params[2]]})
        optimizer.param_groups[2]["amsgrad"] = True
        for step in range(6):
            for p in params:
                p.grad = torch.full_like(p, 3.0 if step == 0 else 0.1) * (-1) ** step
            optimizer.step()
        runs.append((params, optimizer))
    (theirs, torch_optimizer), (ours, our_optimizer) = runs
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))
    assert type(our_optimizer) is annotated_opt.Adam
    assert [sorted(our_optimizer.state[p]) for p in ours] == [sorted(torch_optimizer.state[p]) for p in theirs]
    assert "max_exp_avg_sq" in our_optimizer.state[ours[1]] and "max_exp_avg_sq" not in our_optimizer.state[ours[0]]
