"""Master weights: why they are needed (torch loses the same updates), and how they stay in agreement."""

import pytest
import torch

from annotated_opt import SGD, Adam, GenericAdaptiveOptimizer


def parameter(values, dtype) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, requires_grad=True)


def test_bfloat16_loses_small_updates_like_torch_and_master_weights_keep_them() -> None:
    """
    Near 4.0 bfloat16 values are 2^-5 apart, so a step of lr * g = 1e-3 rounds back to 4.0: after 100
    steps torch.optim.SGD has not moved, nor have we natively. float32 moves by 0.1; with master weights
    the master is exactly that float32 result and the parameter its rounding.
    """
    native, torch_native, master = (parameter([4.0, -4.0], torch.bfloat16) for _ in range(3))
    full = parameter([4.0, -4.0], torch.float32)
    optimizers = [SGD([native], lr=1e-3), torch.optim.SGD([torch_native], lr=1e-3),
                  SGD([{"params": [master], "master_weights": True}], lr=1e-3), torch.optim.SGD([full], lr=1e-3)]
    for _ in range(100):
        for p, optimizer in zip((native, torch_native, master, full), optimizers):
            p.grad = torch.ones_like(p)
            optimizer.step()
    assert torch.equal(native.detach(), torch.tensor([4.0, -4.0], dtype=torch.bfloat16))
    assert torch.equal(torch_native.detach(), native.detach())
    # Hand-derived float32 result: 4 - 100 * 1e-3 (in float32 arithmetic, as torch computes it).
    assert full.detach().tolist() == pytest.approx([3.9, -4.1], abs=1e-5)
    assert torch.equal(optimizers[2].state[master]["master_param"], full.detach())
    assert torch.equal(master.detach(), full.detach().to(torch.bfloat16))


def test_float16_adam_divides_zero_by_zero_like_torch_and_master_weights_do_not() -> None:
    """eps = 1e-8 rounds to 0 in float16: a zero gradient gives 0/0, a tiny one overflows."""
    grad = torch.tensor([0.0, 1e-3, 1.0], dtype=torch.float16)
    ours, theirs, master = (parameter([1.0, 1.0, 1.0], torch.float16) for _ in range(3))
    optimizers = [Adam([ours], lr=0.1, nonfinite="ignore"), torch.optim.Adam([theirs], lr=0.1),
                  Adam([master], lr=0.1, master_weights=True)]
    for p, optimizer in zip((ours, theirs, master), optimizers):
        p.grad = grad.clone()
        optimizer.step()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0, equal_nan=True)
    assert torch.isnan(ours[0]) and torch.isinf(ours[1])
    # In float32 the first Adam step is lr * g / (|g| + eps): 0 for g = 0, about lr otherwise.
    assert master.detach().tolist() == pytest.approx([1.0, 0.9, 0.9], abs=1e-3)


def test_switching_master_weights_on_and_off_mid_run() -> None:
    p = parameter([1.0, 2.0, 3.0], torch.bfloat16)
    optimizer = Adam([p], lr=1e-3)
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer.state[p]["exp_avg"].dtype == torch.bfloat16
    optimizer.param_groups[0]["master_weights"] = True
    optimizer.step()
    state = optimizer.state[p]
    assert state["master_param"].dtype == state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32
    optimizer.param_groups[0]["master_weights"] = False
    optimizer.step()
    assert "master_param" not in optimizer.state[p]
    assert optimizer.state[p]["exp_avg"].dtype == torch.bfloat16


def test_a_parameter_changed_from_outside_reseeds_its_master() -> None:
    p = parameter([1.0, 2.0], torch.bfloat16)
    optimizer = SGD([{"params": [p], "master_weights": True}], lr=1e-3)
    p.grad = torch.ones_like(p)
    optimizer.step()
    master_before = optimizer.state[p]["master_param"].clone()
    # Writing back the very value the master rounds to is no change: the master keeps its precision.
    with torch.no_grad():
        p.copy_(master_before.to(torch.bfloat16))
    optimizer.step()
    assert torch.equal(optimizer.state[p]["master_param"], master_before - 1e-3)
    # A real change wins over the master.
    with torch.no_grad():
        p.fill_(5.0)
    optimizer.step()
    assert torch.equal(optimizer.state[p]["master_param"], torch.tensor([5.0, 5.0]) - 1e-3)


class WholeGroupFirst(GenericAdaptiveOptimizer):
    """Collects a whole group before updating it, as layer-wise optimizers (LARS, LAMB) do."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            items = list(self.params_with_grads(group))
            total = sum(grad.sum() for _, grad, _ in items)
            for param, grad, _ in items:
                param.add_(grad + 0 * total, alpha=-group["lr"])


class PerturbThenRead(GenericAdaptiveOptimizer):
    """Moves the parameters, then reads them within the same step, as SAM's second forward pass does."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})
        self.seen = []

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param, grad, _ in self.params_with_grads(group):
                param.add_(grad, alpha=-group["lr"])
        self.seen = [p.detach().clone() for group in self.param_groups for p in group["params"]]


@pytest.mark.parametrize("cls", [WholeGroupFirst, PerturbThenRead])
def test_master_weights_reach_parameters_whatever_the_step_does(cls) -> None:
    """Written back as the loop moves on, and at the end of the step for anything changed after that."""
    p = parameter([4.0, -4.0, 0.5], torch.bfloat16)
    optimizer = cls([{"params": [p], "master_weights": True}], lr=0.25)
    p.grad = torch.ones_like(p)
    optimizer.step()
    expected = torch.tensor([3.75, -4.25, 0.25])
    assert torch.equal(optimizer.state[p]["master_param"], expected)
    assert torch.equal(p.detach(), expected.to(torch.bfloat16))
    if cls is PerturbThenRead:
        assert torch.equal(optimizer.seen[0], p.detach())


def test_per_parameter_options_reach_master_weights_and_complex_parameters() -> None:
    """`opt_args` live on the parameter; the master or real view that is updated must see them too."""
    half = parameter([1.0, 2.0], torch.bfloat16)
    half.opt_args = {"lr_scale": 0.5}
    complex_param = torch.tensor([1.0 + 1.0j], dtype=torch.complex128, requires_grad=True)
    complex_param.opt_args = {"lr": 0.25}
    optimizer = SGD([{"params": [half], "master_weights": True}, {"params": [complex_param]}], lr=0.1)
    half.grad = torch.ones_like(half)
    complex_param.grad = torch.tensor([1.0 - 2.0j], dtype=torch.complex128)
    optimizer.step()
    # theta - lr * lr_scale * g, and theta - lr' * g with the parameter's own lr.
    assert torch.equal(optimizer.state[half]["master_param"], torch.tensor([1.0, 2.0]) - 0.05)
    assert complex_param.detach().tolist() == [complex(0.75, 1.5)]
    assert not hasattr(optimizer.state[half]["master_param"], "opt_args")
