r"""
# The generic adaptive optimizer

Every optimizer in this library is written against one small contract. An optimizer is two things:

1. the **state** it keeps for each parameter (a momentum buffer, running moments, a step count), and
2. the **update** of one parameter from its gradient and that state.

So each optimizer answers two questions, as two methods:

* `init_state(state, group, param)` creates the per-parameter state, the first time a parameter gets
  a gradient;
* `step_param(state, group, grad, param)` updates one parameter in place, written so that it reads
  like the equations in the paper.

Everything else (running the closure, walking the parameter groups, skipping parameters without a
gradient, refusing sparse gradients, `maximize`) is the same for all of them and lives here, once, in
the template method `step`. Because the class extends `torch.optim.Optimizer`, everything torch builds
on top of that class keeps working unchanged: `state_dict`/`load_state_dict`, `add_param_group`,
`zero_grad`, step hooks, and every scheduler in `torch.optim.lr_scheduler`.

An optimizer that truly needs a whole group at once (layer-wise trust ratios computed together,
the two passes of SAM, the slow weights of Lookahead) may override `step`; its page says so.
"""

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from .validation import check_non_negative

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, torch.Tensor]]


class GenericAdaptiveOptimizer(torch.optim.Optimizer):
    r"""
    ## Base class

    `params` are the parameters (or parameter groups) to optimise, exactly as for any
    `torch.optim.Optimizer`; `defaults` holds the hyper-parameters every group starts from.
    Every optimizer has a learning rate, so it is checked here; the subclasses check the rest.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        check_non_negative("lr", defaults["lr"])
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        ### Initialise the state of one parameter

        Called once per parameter, the first time it has a gradient. The default keeps no state
        (plain gradient descent needs none).
        """

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### Update one parameter

        `grad` is the gradient to descend (already negated when the group maximises); `param` is
        updated in place. Implementations must never modify `param.grad` itself.
        """
        raise NotImplementedError

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        ### Loading a checkpoint without aliasing it

        `torch.optim.Optimizer.load_state_dict` keeps the very tensors of an in-memory state dict
        when their dtype and device already fit, so the loaded optimizer and the one the dict came
        from would silently update the same buffers. We load a deep copy instead.
        """
        super().load_state_dict(copy.deepcopy(state_dict))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        r"""
        ### The template step

        First the closure, when one is given: it re-evaluates the model and returns the loss, so it
        needs gradients switched back on (the step itself runs under `no_grad`).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            for param, grad, state in self.params_with_grads(group):
                self.step_param(state, group, grad, param)

        return loss

    def params_with_grads(
        self, group: dict[str, Any]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
        r"""
        ### The parameters of a group that take part in this step

        Yields `(param, grad, state)` for every parameter of `group` that has a gradient, with the
        state initialised. Optimizers that override `step` to see a whole group at once iterate
        through here too, so every optimizer treats gradients the same way.
        """
        for param in group["params"]:
            # A parameter without a gradient (frozen, or unused in this forward pass) is left
            # exactly as it is: its state does not advance either.
            if param.grad is None:
                continue
            grad = param.grad
            # A sparse gradient would silently be treated as dense by the arithmetic below;
            # refuse it instead.
            if grad.is_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients "
                    "(use torch.optim.SparseAdam or a dense gradient)"
                )
            # To maximise $f$ we descend $-f$, whose gradient is $-g$. This makes a new tensor,
            # so `param.grad` is never touched.
            if group.get("maximize", False):
                grad = -grad

            state = self.state[param]
            if len(state) == 0:
                self.init_state(state, group, param)
            yield param, grad, state
