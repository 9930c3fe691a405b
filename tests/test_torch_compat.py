"""
Where the reference has an answer for the same situation, ours gives the same one: schedulers and a
tensor learning rate (every reference), complex parameters and half-precision arithmetic (the
`torch.optim` references: other packages treat complex numbers and half precision each in their own
way, and we follow torch). The properties every optimizer must have, whether or not torch has it, are
in test_properties.py; this file checks that on the optimizers torch also has, the behaviour is torch's.
"""

import copy

import pytest
import torch

from annotated_opt.core.registry import OptimizerInfo
from annotated_opt.core.verification import (
    clone_parameters,
    gradient_closure,
    make_parameters,
    param_groups,
    reference_constructor,
    relative_error,
)

from .battery import closure_for
from .helpers import VERIFIED, config_cases, toy_problem, train_steps


def build(info: OptimizerInfo, config: dict, seed: int = 0):
    model, inputs, targets = toy_problem(seed)
    return model, info.build(model.parameters(), **config), inputs, targets


# These checks train a small model of ordinary layers (matrices, biases), with dense gradients:
# optimizers that take only matrices (Muon) or only sparse gradients (SparseAdam) are checked on their own
# parameters by the battery and the verification instead.
DENSE = [info for info in VERIFIED if info.parameters is None and not info.cls.sparse_gradients]
TORCH = [info for info in DENSE if info.reference.is_torch_optim]
# With a tensor learning rate torch's ASGD, Adamax, Adadelta, Rprop, Adafactor and L-BFGS compute the step
# size in the tensor's own float32 (ours reads the number it holds, the battery's `tensor_lr` property);
# with the number itself they agree with ours. The scheduler and tensor-lr checks compare with torch's
# optimizers, which read `lr` from their groups at every step as ours do.
TENSOR_LR_IN_FLOAT32 = {"asgd", "adamax", "adadelta", "rprop", "adafactor", "lbfgs"}


@pytest.mark.parametrize(("info", "config"), config_cases(TORCH)[::2])
def test_lr_scheduler_drives_ours_like_the_reference(info, config) -> None:
    """A torch scheduler changes our lr at the same steps and by the same amount as torch's own."""
    model, optimizer, inputs, targets = build(info, config)
    ref_model = copy.deepcopy(model)
    reference = reference_constructor(info)(ref_model.parameters(), **config)
    ours_sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(reference, step_size=3, gamma=0.5)
    ours = train_steps(model, optimizer, inputs, targets, 10, ours_sched)
    theirs = train_steps(ref_model, reference, inputs, targets, 10, ref_sched)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), rtol=1e-10, atol=0)
    assert optimizer.param_groups[0]["lr"] == reference.param_groups[0]["lr"]


# Bit-for-bit agreement in half precision needs the same operations in the same order (see
# `Reference.same_rounding`); the folded bias correction is the same step, rounded differently.
SAME_ROUNDING = [
    case for case in config_cases([info for info in TORCH if info.reference.same_rounding])
    if not case.values[1].get("fold_bias_correction")
]


def twin_runs(info, config, dtype, steps, seed=0, ours_options=None):
    """Ours and the reference on the harness's awkward parameters, stepped with the same gradients."""
    ours_params = make_parameters(seed, dtype)
    theirs_params = clone_parameters(ours_params)
    ours = info.build(param_groups(ours_params, config), **config)
    for group in ours.param_groups:
        group.update(ours_options or {})
    theirs = reference_constructor(info)(param_groups(theirs_params, config), **config)
    for step in range(1, steps + 1):
        for params, optimizer in ((ours_params, ours), (theirs_params, theirs)):
            optimizer.step(gradient_closure(params, step, seed))
    return ours, ours_params, theirs, theirs_params


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize(("info", "config"), SAME_ROUNDING)
def test_native_half_precision_is_torchs_bit_for_bit(info, config, dtype) -> None:
    """
    In the parameter's own dtype our arithmetic is torch's, rounding for rounding, including what goes
    wrong: float16 Adam turns a tiny gradient into inf (its eps of 1e-8 is 0 in float16), and from then
    on inf and NaN spread through both alike. With nonfinite="ignore" we apply such steps as torch does.
    """
    ours, ours_params, theirs, theirs_params = twin_runs(info, config, dtype, 20, ours_options={"nonfinite": "ignore"})
    for mine, reference in zip(ours_params, theirs_params):
        torch.testing.assert_close(mine, reference, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(("info", "config"), config_cases(TORCH))
def test_complex_parameters_match_torch(info, config) -> None:
    """torch.optim also optimises complex parameters as real views; its state is complex, ours is the real view."""
    generator = torch.Generator().manual_seed(0)
    ours_params = [torch.randn(shape, generator=generator, dtype=torch.complex128).requires_grad_()
                   for shape in ((3,), (2, 4), ())]
    theirs_params = clone_parameters(ours_params)
    ours = info.build(param_groups(ours_params, config), **config)
    theirs = reference_constructor(info)(param_groups(theirs_params, config), **config)
    for step in range(1, 21):
        for params, optimizer in ((ours_params, ours), (theirs_params, theirs)):
            optimizer.step(closure_for(params, step))
    for mine, reference in zip(ours_params, theirs_params):
        assert relative_error(torch.view_as_real(mine.detach()), torch.view_as_real(reference.detach())) \
            <= info.reference.tolerance
        for key, value in theirs.state[reference].items():
            if isinstance(value, torch.Tensor) and value.is_complex():
                value = torch.view_as_real(value)
            assert relative_error(ours.state[mine][key], value) <= info.reference.tolerance, key


@pytest.mark.parametrize(("info", "config"),
                         config_cases([i for i in TORCH if i.key not in TENSOR_LR_IN_FLOAT32])[1::2])
def test_tensor_learning_rate_matches_torch(info, config) -> None:
    """
    torch accepts a tensor lr too. It computes a step size such as lr / (1 - beta1^t) in the tensor's
    dtype (float32 here), we from the number the tensor holds, in float64: equal to float32 rounding.
    """
    config = {**config, "lr": torch.tensor(config["lr"])}
    ours, ours_params, theirs, theirs_params = twin_runs(info, config, torch.float64, 20)
    for mine, reference in zip(ours_params, theirs_params):
        assert relative_error(mine.detach(), reference.detach()) <= 1e-6
