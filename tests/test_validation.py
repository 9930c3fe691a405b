"""
Bad input fails at construction with a message naming the argument and its value: the exact messages,
optimizer by optimizer. That every numeric argument of every registered optimizer refuses NaN and
negative values, and every group option its invalid values, is a property of the battery
(test_properties.py).
"""

import pytest
import torch

from annotated_opt import SGD, Adagrad, Adam, AdamW, AMSGrad, RMSprop, WeightDecay


def param() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (SGD, {"lr": -0.1}, "Invalid lr: -0.1"),
        (SGD, {"momentum": -0.5}, "Invalid momentum: -0.5"),
        (SGD, {"dampening": float("nan")}, "Invalid dampening: nan"),
        (SGD, {"weight_decay": -1e-4}, "Invalid weight_decay: -0.0001"),
        (SGD, {"nesterov": True}, "Invalid nesterov"),
        (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1"),
        (Adagrad, {"lr_decay": -1.0}, "Invalid lr_decay: -1.0"),
        (Adagrad, {"initial_accumulator_value": -1.0}, "Invalid initial_accumulator_value: -1.0"),
        (Adagrad, {"eps": -1e-10}, "Invalid eps: -1e-10"),
        (RMSprop, {"alpha": -0.9}, "Invalid alpha: -0.9"),
        (RMSprop, {"momentum": -0.9}, "Invalid momentum: -0.9"),
        (RMSprop, {"eps": -1.0}, "Invalid eps: -1.0"),
        (Adam, {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
        (Adam, {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
        (Adam, {"eps": -1e-8}, "Invalid eps: -1e-08"),
        (Adam, {"lr": float("nan")}, "Invalid lr: nan"),
        (AdamW, {"weight_decay": -0.01}, "Invalid weight_decay: -0.01"),
        (AMSGrad, {"betas": (0.9, 1.5)}, "Invalid beta parameter at index 1: 1.5"),
    ],
)
def test_invalid_hyper_parameters_raise(cls, kwargs, message) -> None:
    with pytest.raises(ValueError) as error:
        cls(param(), **kwargs)
    assert message in str(error.value)


def test_weight_decay_object_is_immutable_and_validated() -> None:
    decay = WeightDecay(0.1)
    with pytest.raises(AttributeError):
        decay.weight_decay = 0.2  # type: ignore[misc]
    with pytest.raises(ValueError, match="Invalid weight_decay: -1"):
        WeightDecay(-1)


@pytest.mark.parametrize("cls", [Adam, AdamW, AMSGrad])
def test_an_unknown_keyword_is_refused_not_stored(cls) -> None:
    """`momentum` is SGD's word; given to the Adam family it would be kept in the group and ignored."""
    with pytest.raises(TypeError, match="unexpected keyword arguments: momentum"):
        cls(param(), momentum=0.9)
