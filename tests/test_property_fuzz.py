"""
Property-based testing of every registered optimizer: random shapes (zero-size, 0-d, non-contiguous,
complex), hyper-parameters (a registered configuration, rescaled), and gradient sequences (magnitudes
over six orders, zeros, missing gradients, the odd inf or NaN). Whatever is drawn:

* the only exception is the documented one (NonFiniteGradientError, for a bad gradient under "raise");
* finite gradients give finite parameters and state, and a bad gradient changes nothing;
* a checkpoint taken at any step, saved and loaded with weights_only=True, continues bit-identically.

Deterministic and quick in CI: hypothesis is derandomized, keeps no example database, and draws a
modest number of examples per optimizer.
"""

import copy
import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotated_opt.core.distributed import read_count
from annotated_opt.core.nonfinite import NonFiniteGradientError

from .battery import as_taken, assert_finite, entries, exempt, noise, same, shaped, twin
from .helpers import save_and_load

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BAD = (math.nan, math.inf, -math.inf)


def rescaled(draw, config):
    """The learning rate times a factor in [0.1, 3]; every other number times one in [0.5, 1]."""
    result = {}
    for key, value in config.items():
        if isinstance(value, bool) or not isinstance(value, (float, tuple)):
            result[key] = value
        elif key == "lr":
            result[key] = value * draw(st.floats(0.1, 3.0))
        elif isinstance(value, float):
            result[key] = value * draw(st.floats(0.5, 1.0))
        else:
            result[key] = tuple(v * draw(st.floats(0.5, 1.0)) for v in value)
    return result


@st.composite
def scenarios(draw, info):
    # Any shape of up to three dimensions, as the entry takes it (its matrix view, for Muon).
    shapes = draw(st.lists(st.lists(st.integers(0, 4), max_size=3).map(lambda shape: shaped(info, shape)),
                           min_size=1, max_size=3))
    steps = draw(st.integers(1, 6))
    bad_step = draw(st.none() | st.integers(1, steps))
    return {
        "config": rescaled(draw, draw(st.sampled_from(info.configs))),
        "shapes": shapes,
        "transposed": [draw(st.booleans()) and len(shape) >= 2 for shape in shapes],
        "complex": getattr(info.cls, "supports_complex", True) and draw(st.booleans()),
        "steps": steps,
        "checkpoint": draw(st.integers(0, steps - 1)),
        "seed": draw(st.integers(0, 2**16)),
        "exponents": draw(st.lists(st.integers(-3, 3), min_size=steps, max_size=steps)),
        "kinds": draw(st.lists(st.sampled_from(["grad", "grad", "grad", "zero", "none"]),
                               min_size=steps * len(shapes), max_size=steps * len(shapes))),
        "bad": None if bad_step is None else (bad_step, draw(st.sampled_from(BAD))),
        "policy": draw(st.sampled_from(["raise", "skip"])),
    }


def parameters(scenario):
    dtype = torch.complex128 if scenario["complex"] else torch.float64
    params = []
    for index, (shape, transposed) in enumerate(zip(scenario["shapes"], scenario["transposed"])):
        value = noise(shape[::-1] if transposed else shape, 0, scenario["seed"], index, dtype)
        params.append((value.transpose(0, -1) if transposed else value).requires_grad_())
    return params


def closure(scenario, optimizer, params, step):
    scale = 10.0 ** scenario["exponents"][step - 1]
    poisoned = scenario["bad"] is not None and scenario["bad"][0] == step

    def set_gradients():
        for index, p in enumerate(params):
            kind = scenario["kinds"][(step - 1) * len(params) + index]
            if kind == "none":
                p.grad = None
            elif kind == "zero":
                p.grad = torch.zeros_like(p)
            else:
                p.grad = 0.5 * p.detach() + scale * noise(p.shape, step, scenario["seed"], index, p.dtype)
        as_taken(optimizer, params, step)
        for index, p in enumerate(params):
            # The first value the gradient stores (a sparse one may store none) is the bad one.
            stored = None if p.grad is None else p.grad._values() if p.grad.is_sparse else p.grad
            if poisoned and stored is not None and stored.numel() > 0:
                stored[(0,) * stored.ndim] = scenario["bad"][1]
                poisoned_now.append(index)
        return torch.zeros(())

    poisoned_now = []
    return set_gradients, poisoned_now


def take_step(scenario, optimizer, params, step):
    """One step, checked against the documented behaviour."""
    before = (copy.deepcopy(optimizer.state_dict()), [p.detach().clone() for p in params])
    set_gradients, poisoned = closure(scenario, optimizer, params, step)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            optimizer.step(set_gradients)
    except NonFiniteGradientError:
        assert poisoned and scenario["policy"] == "raise"
    else:
        assert not (poisoned and scenario["policy"] == "raise")
        assert bool(poisoned) == any("skipped a step" in str(w.message) for w in caught)
    if poisoned:
        state, values = before
        assert same(read_count(optimizer.state_dict())[0], read_count(state)[0])
        assert all(torch.equal(p.detach(), v) for p, v in zip(params, values))
    assert_finite(optimizer, params)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("info", entries())
def test_random_shapes_hyper_parameters_and_gradients(info, data) -> None:
    exempt(info, "fuzz")
    scenario = data.draw(scenarios(info))
    params = parameters(scenario)
    optimizer = info.build(params, **scenario["config"])
    for group in optimizer.param_groups:
        group["nonfinite"] = scenario["policy"]

    restored = restored_params = None
    for step in range(1, scenario["steps"] + 1):
        if step == scenario["checkpoint"] + 1:
            checkpoint = save_and_load(optimizer.state_dict())
            restored_params = twin(params)
            restored = info.build(restored_params, **scenario["config"])
            restored.load_state_dict(checkpoint)
        take_step(scenario, optimizer, params, step)
        if restored is not None:
            take_step(scenario, restored, restored_params, step)

    if restored is not None:
        assert all(torch.equal(p.detach(), q.detach()) for p, q in zip(params, restored_params))
        assert same(optimizer.state_dict(), restored.state_dict())
