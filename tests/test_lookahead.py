"""Lookahead: against the paper's loop written out, against pytorch_optimizer, checkpoints and errors."""

import copy

import pytest
import torch
from torch import nn

from annotated_opt import SAM, SGD, Adam, Lookahead

from .helpers import save_and_load

DTYPE = torch.float64


def problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).to(DTYPE)
    generator = torch.Generator().manual_seed(seed + 50)
    batches = [(torch.randn(12, 5, generator=generator, dtype=DTYPE), torch.randn(12, 2, generator=generator,
                                                                               dtype=DTYPE)) for _ in range(30)]
    return model, batches


def train_on(model, optimizer, batches, scheduler=None):
    for x, y in batches:
        def closure(x=x, y=y):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        closure()
        optimizer.step(closure)
        if scheduler is not None:
            scheduler.step()


@pytest.mark.parametrize(("k", "alpha"), [(5, 0.5), (3, 0.8), (1, 0.3)])
def test_matches_the_paper_loop_written_out(k, alpha) -> None:
    r"""Fast weights by torch's SGD for k steps; then phi += alpha (theta - phi); theta = phi."""
    model, batches = problem()
    twin = copy.deepcopy(model)
    optimizer = Lookahead(SGD(model.parameters(), lr=0.05, momentum=0.9), k=k, alpha=alpha)
    inner = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    slow = [p.detach().clone() for p in twin.parameters()]
    for step, batch in enumerate(batches, start=1):
        train_on(model, optimizer, [batch])
        train_on(twin, inner, [batch])
        if step % k == 0:
            with torch.no_grad():
                for p, phi in zip(twin.parameters(), slow):
                    phi.add_(alpha * (p - phi))
                    p.copy_(phi)
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_matches_pytorch_optimizer_when_every_parameter_has_a_gradient() -> None:
    from pytorch_optimizer import Lookahead as TheirLookahead

    model, batches = problem(1)
    twin = copy.deepcopy(model)
    ours = Lookahead(torch.optim.Adam(model.parameters(), lr=0.01), k=5, alpha=0.5)
    theirs = TheirLookahead(torch.optim.Adam(twin.parameters(), lr=0.01), k=5, alpha=0.5)
    for batch in batches:
        train_on(model, ours, [batch])
        train_on(twin, theirs, [batch])
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(ours.state[p]["slow_param"], theirs.state[q]["slow_params"],
                                       rtol=1e-12, atol=1e-14)


def test_a_parameter_without_gradient_on_the_sync_step_is_synchronised() -> None:
    """pytorch_optimizer leaves it out of the synchronisation; the paper (and we) pull every weight back."""
    from pytorch_optimizer import Lookahead as TheirLookahead

    results = []
    for make in (Lookahead, TheirLookahead):
        a = torch.zeros(2, dtype=DTYPE, requires_grad=True)
        b = torch.zeros(2, dtype=DTYPE, requires_grad=True)
        optimizer = make(torch.optim.SGD([a, b], lr=1.0), k=2, alpha=0.5)
        a.grad, b.grad = torch.ones(2, dtype=DTYPE), torch.ones(2, dtype=DTYPE)
        optimizer.step()
        # The synchronising step: only b has a gradient.
        a.grad = None
        optimizer.step()
        results.append(a.detach())
    # a moved by -1 on the first step; the synchronisation takes it halfway back to the start.
    assert torch.equal(results[0], torch.full((2,), -0.5, dtype=DTYPE))
    assert torch.equal(results[1], torch.full((2,), -1.0, dtype=DTYPE))


def test_a_step_without_any_gradient_changes_nothing_and_is_not_counted() -> None:
    p = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    optimizer = Lookahead(SGD([p], lr=1.0), k=2, alpha=0.5)
    p.grad = torch.ones(2, dtype=DTYPE)
    optimizer.step()
    p.grad = None
    before = copy.deepcopy(optimizer.state_dict())
    optimizer.step()
    assert torch.equal(p.detach(), torch.full((2,), -1.0, dtype=DTYPE))
    assert optimizer.param_groups[0]["lookahead_step"] == before["param_groups"][0]["lookahead_step"] == 1
    frozen = torch.zeros(3, dtype=DTYPE, requires_grad=True)
    optimizer.add_param_group({"params": [frozen]})
    p.grad = torch.ones(2, dtype=DTYPE)
    optimizer.step()
    assert frozen not in optimizer.state


def test_slow_weights_start_at_the_first_step_not_at_construction() -> None:
    """Weights loaded after the optimizer is built are kept, not pulled back towards the old ones."""
    p = torch.zeros(3, dtype=DTYPE, requires_grad=True)
    optimizer = Lookahead(SGD([p], lr=0.0), k=2, alpha=0.5)
    with torch.no_grad():
        p.fill_(4.0)
    for _ in range(2):
        p.grad = torch.ones(3, dtype=DTYPE)
        optimizer.step()
    assert torch.equal(p.detach(), torch.full((3,), 4.0, dtype=DTYPE))


def test_alpha_one_is_the_base_optimizer_and_sam_composes() -> None:
    model, batches = problem(2)
    twin = copy.deepcopy(model)
    wrapped = Lookahead(SAM(model.parameters(), SGD, lr=0.05, momentum=0.9, rho=0.1), k=3, alpha=1.0)
    alone = SAM(twin.parameters(), SGD, lr=0.05, momentum=0.9, rho=0.1)
    train_on(model, wrapped, batches[:10])
    train_on(twin, alone, batches[:10])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


@pytest.mark.parametrize("base", [Adam, torch.optim.Adam], ids=["ours", "torch"])
def test_checkpoint_mid_run_continues_identically(base) -> None:
    """Checkpoint at step 7, inside the third inner loop of k = 3, through torch.save/torch.load."""
    def make(model):
        optimizer = Lookahead(base(model.parameters(), lr=0.01), k=3, alpha=0.6)
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)

    model, batches = problem(3)
    straight = copy.deepcopy(model)
    optimizer, scheduler = make(straight)
    train_on(straight, optimizer, batches[:16], scheduler)

    first, first_scheduler = make(model)
    train_on(model, first, batches[:7], first_scheduler)
    checkpoint = save_and_load({"model": model.state_dict(), "optimizer": first.state_dict(),
                                "scheduler": first_scheduler.state_dict()})
    resumed_model = copy.deepcopy(model)
    with torch.no_grad():
        for p in resumed_model.parameters():
            p.fill_(3.0)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed, resumed_scheduler = make(resumed_model)
    resumed.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    assert resumed.param_groups is resumed.base_optimizer.param_groups
    assert resumed.param_groups[0]["lookahead_step"] == 1
    train_on(resumed_model, resumed, batches[7:16], resumed_scheduler)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), resumed_model.parameters()))
    assert resumed.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_deepcopy_keeps_the_base_and_the_slow_weights() -> None:
    model, batches = problem()
    optimizer = Lookahead(Adam(model.parameters(), lr=0.01), k=2)
    train_on(model, optimizer, batches[:3])
    twin = copy.deepcopy(optimizer)
    assert twin.param_groups is twin.base_optimizer.param_groups
    p = next(model.parameters())
    twin_p = twin.param_groups[0]["params"][0]
    assert twin_p is not p and torch.equal(twin.state[twin_p]["slow_param"], optimizer.state[p]["slow_param"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_optimizer": Adam}, "Invalid base_optimizer"),
        ({"base_optimizer": "adam"}, "Invalid base_optimizer: 'adam'"),
        ({"k": 0}, "Invalid k: 0"),
        ({"k": 2.5}, "Invalid k: 2.5"),
        ({"alpha": 0.0}, "Invalid alpha: 0.0"),
        ({"alpha": 1.5}, "Invalid alpha: 1.5"),
    ],
)
def test_invalid_arguments_raise(kwargs, message) -> None:
    arguments = {"base_optimizer": Adam([torch.zeros(2, requires_grad=True)]), **kwargs}
    with pytest.raises(ValueError) as raised:
        Lookahead(**arguments)
    assert message in str(raised.value)


def checkpoint_hook_events(optimizer) -> list[str]:
    events = []
    optimizer.register_state_dict_pre_hook(lambda opt: events.append("state_dict pre"))
    optimizer.register_state_dict_post_hook(lambda opt, state: events.append("state_dict post"))
    optimizer.register_load_state_dict_pre_hook(lambda opt, state: events.append("load pre"))
    optimizer.register_load_state_dict_post_hook(lambda opt: events.append("load post"))
    optimizer.load_state_dict(optimizer.state_dict())
    return events


def test_checkpoint_hooks_of_the_wrappers_fire_as_in_torch() -> None:
    expected = checkpoint_hook_events(torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1))
    assert expected == ["state_dict pre", "state_dict post", "load pre", "load post"]
    lookahead = Lookahead(SGD([torch.zeros(2, requires_grad=True)], lr=0.1))
    sam = SAM([torch.zeros(2, requires_grad=True)], SGD, lr=0.1)
    assert checkpoint_hook_events(lookahead) == expected
    assert checkpoint_hook_events(sam) == expected


def test_a_checkpoint_without_the_wrapper_keys_loads_with_their_defaults() -> None:
    """A checkpoint of the base alone (or one saved before a key existed) gets the wrapper's defaults."""
    p = torch.zeros(2, requires_grad=True)
    sam = SAM([p], SGD, lr=0.1, rho=0.3)
    state = SGD([torch.zeros(2, requires_grad=True)], lr=0.2).state_dict()
    sam.load_state_dict(state)
    assert sam.param_groups[0]["sam_rho"] == 0.3 and sam.param_groups[0]["lr"] == 0.2


def test_checkpoint_is_the_base_format_with_slow_weights_in_each_entry() -> None:
    model, batches = problem()
    optimizer = Lookahead(Adam(model.parameters(), lr=0.01), k=3)
    train_on(model, optimizer, batches[:2])
    state = optimizer.state_dict()
    assert set(state["param_groups"][0]) >= {"lookahead_k", "lookahead_alpha", "lookahead_step", "lr"}
    first = next(model.parameters())
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "slow_param"}
    assert torch.equal(state["state"][0]["slow_param"], optimizer.state[first]["slow_param"])
    assert "slow_param" not in optimizer.base_optimizer.state_dict()["state"][0]


def test_a_complex_parameter_is_its_real_view() -> None:
    generator = torch.Generator().manual_seed(9)
    z = torch.randn(4, generator=generator, dtype=torch.complex128).requires_grad_()
    x = torch.view_as_real(z.detach()).clone().requires_grad_()
    complex_run = Lookahead(torch.optim.SGD([z], lr=0.1, momentum=0.9), k=2, alpha=0.5)
    real_run = Lookahead(torch.optim.SGD([x], lr=0.1, momentum=0.9), k=2, alpha=0.5)
    for _ in range(6):
        noise = torch.randn(4, 2, generator=generator, dtype=DTYPE)
        z.grad = torch.view_as_complex(noise.clone())
        x.grad = noise.clone()
        complex_run.step()
        real_run.step()
    assert torch.equal(torch.view_as_real(z.detach()), x.detach())
    assert torch.equal(complex_run.state[z]["slow_param"], real_run.state[x]["slow_param"])


def gradients_for(params, step, bad=None):
    for index, p in enumerate(params):
        p.grad = 0.5 * p.detach() + torch.sin(torch.full_like(p, 1.0 + step + index))
        if bad is not None and index == 0:
            p.grad.view(-1)[0] = bad


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_step_the_base_skips_is_no_step_for_lookahead(bad) -> None:
    """No slow weights for a parameter whose first step is skipped, no count towards k, no synchronisation;
    one skip, on the count shared with the base and saved in the checkpoint. Afterwards the run is the run
    without the bad step."""
    generator = torch.Generator().manual_seed(31)
    values = [torch.randn(3, generator=generator, dtype=DTYPE) for _ in range(2)]
    params = [v.clone().requires_grad_() for v in values]
    clean = [v.clone().requires_grad_() for v in values]
    optimizer = Lookahead(SGD([{"params": params, "nonfinite": "skip"}], lr=0.1, momentum=0.9), k=2)
    reference = Lookahead(SGD(clean, lr=0.1, momentum=0.9), k=2)
    gradients_for(params, 0, bad)
    with pytest.warns(RuntimeWarning, match="SGD skipped a step"):
        optimizer.step()
    assert not optimizer.state and optimizer.param_groups[0]["lookahead_step"] == 0
    for step in range(1, 6):
        gradients_for(params, step)
        gradients_for(clean, step)
        optimizer.step()
        reference.step()
        if step == 3:
            # The second step of an inner loop of k = 2: skipped, so the synchronisation waits a step.
            gradients_for(params, step, bad)
            with pytest.warns(RuntimeWarning, match="skipped a step"):
                optimizer.step()
            assert optimizer.param_groups[0]["lookahead_step"] == 1
    assert all(torch.equal(p, q) for p, q in zip(params, clean))
    assert all(torch.equal(optimizer.state[p]["slow_param"], reference.state[q]["slow_param"])
               for p, q in zip(params, clean))
    assert optimizer.skipped_steps == optimizer.base_optimizer.skipped_steps == 2
    state = optimizer.state_dict()
    assert state["skipped_steps"] == 2
    resumed = Lookahead(SGD([{"params": copy.deepcopy(params), "nonfinite": "skip"}], lr=0.1, momentum=0.9), k=2)
    resumed.load_state_dict(state)
    assert resumed.skipped_steps == resumed.base_optimizer.skipped_steps == 2


def test_over_a_torch_base_the_wrapper_keeps_its_own_count() -> None:
    p = torch.zeros(2, dtype=DTYPE, requires_grad=True)
    optimizer = Lookahead(torch.optim.SGD([p], lr=0.1), k=2)
    p.grad = torch.ones(2, dtype=DTYPE)
    optimizer.step()
    optimizer.skipped_steps = 3
    state = optimizer.state_dict()
    assert state["skipped_steps"] == 3
    resumed = Lookahead(torch.optim.SGD([torch.zeros(2, dtype=DTYPE, requires_grad=True)], lr=0.1), k=2)
    resumed.load_state_dict(state)
    assert resumed.skipped_steps == 3
    half = torch.zeros(2, dtype=torch.bfloat16, requires_grad=True)
    refusing = Lookahead(torch.optim.SGD([{"params": [half], "master_weights": True}], lr=0.1))
    half.grad = torch.ones(2, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="Invalid master_weights: True in group 0, but the base optimizer SGD"):
        refusing.step()
    assert torch.equal(half.detach(), torch.zeros(2, dtype=torch.bfloat16))


def test_master_weights_survive_an_optimizer_loaded_before_the_model() -> None:
    """The slow weights are float32 beside the base's master, the synchronisation goes through the master,
    and loading the optimizer before the model's weights compares nothing: the run continues bit for bit."""
    generator = torch.Generator().manual_seed(32)
    values = [torch.randn(5, generator=generator).to(torch.bfloat16) for _ in range(2)]

    def make(params):
        return Lookahead(Adam([{"params": params, "master_weights": True}], lr=1e-3), k=3, alpha=0.5)

    params = [v.clone().requires_grad_() for v in values]
    optimizer = make(params)
    for step in range(4):
        gradients_for(params, step)
        optimizer.step()
    for p in params:
        state = optimizer.state[p]
        assert state["slow_param"].dtype == torch.float32
        assert state["master_param"] is optimizer.base_optimizer.state[p]["master_param"]
        # The synchronisation of step 3 moved the master by less than a bfloat16 spacing somewhere.
        assert torch.equal(p.detach(), state["master_param"].to(torch.bfloat16))
    assert any(not torch.equal(optimizer.state[p]["master_param"], p.detach().float()) for p in params)
    checkpoint = copy.deepcopy({"model": [p.detach() for p in params], "optimizer": optimizer.state_dict()})

    resumed_params = [torch.zeros_like(v).requires_grad_() for v in values]
    resumed = make(resumed_params)
    resumed.load_state_dict(checkpoint["optimizer"])
    with torch.no_grad():
        for p, saved in zip(resumed_params, checkpoint["model"]):
            p.copy_(saved)
    for step in range(4, 9):
        for run, ps in ((optimizer, params), (resumed, resumed_params)):
            gradients_for(ps, step)
            run.step()
    assert all(torch.equal(p, q) for p, q in zip(params, resumed_params))
    assert all(torch.equal(optimizer.state[p]["master_param"], resumed.state[q]["master_param"])
               for p, q in zip(params, resumed_params))
