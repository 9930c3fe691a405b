r"""
# Adagrad: a learning rate per coordinate

[SGD](sgd.md) uses one learning rate for every coordinate. But coordinates differ: the embedding of
a frequent word gets a gradient at every step, the embedding of a rare word once in a thousand; a
weight behind a large input sees large gradients, one behind a small input small ones. One $\eta$
is then too large for some and too small for others.
[Duchi, Hazan & Singer, 2011](https://jmlr.org/papers/v12/duchi11a.html) gave every coordinate its own
step size, set by its own history. Each coordinate remembers the sum of its squared gradients,

$$s_t = s_{t-1} + g_t^2,$$

and the step divides by its square root:

$$\theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{s_t} + \epsilon}.$$

(All operations are coordinate-wise: $g_t^2$ is the element-wise square, the division is
element-wise.) The paper derives this as the diagonal of a preconditioner that makes the online
regret, the loss accumulated against the best fixed $\theta$ in hindsight, grow only as
$O(\sqrt{T})$ on convex problems, with a constant that is small when the gradients are sparse.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay)}
    @ grad = self.weight_decay(param, grad, group)
\eta_t = \eta / (1 + (t - 1)\,\delta)  @ step_size = learning_rate(group, param)
s_t = s_{t-1} + g_t^2  @ state["sum"].addcmul_(grad, grad, value=1)
\theta_t = \theta_{t-1} - \eta_t\, g_t / (\sqrt{s_t} + \epsilon)
    @ param.addcdiv_(grad, denominator, value=-step_size)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $s_t$ | `sum` | the sum of squared gradients, per coordinate (`initial_accumulator_value` at first) |
| $\eta$ | `lr` | the learning rate |
| $\eta_t$ | `step_size` | the decayed learning rate |
| $\delta$ | `lr_decay` | its decay |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay |
| $t$ | `step` | the step count |

## Why the steps decay like $1/\sqrt{t}$

Suppose a coordinate's gradients have a steady size, $|g_i| \approx G$. Then

$$s_t \approx t\,G^2 \quad\Longrightarrow\quad
  |\Delta\theta_t| = \eta\,\frac{|g_t|}{\sqrt{s_t}} \approx \eta\,\frac{G}{\sqrt{t}\,G} = \frac{\eta}{\sqrt{t}}.$$

Two things follow. The step does not depend on $G$: multiplying the loss by 100 changes nothing,
so one $\eta$ serves coordinates whose gradients differ by orders of magnitude. And the step
shrinks as $1/\sqrt{t}$, the rate the convex theory asks for: the total distance travelled,
$\sum_{i \le t} \eta/\sqrt{i} \approx 2\eta\sqrt{t}$, still grows without bound, but the noise is
averaged away. For a coordinate active on only $k$ of the $t$ steps, $s_t \approx k\,G^2$ and its
step is $\eta/\sqrt{k}$: rare features keep large steps, which made Adagrad the optimizer of choice
for sparse features (GloVe's word vectors were trained with it, at $\eta = 0.05$).

Its weakness is the same sum: it only grows. On a long non-convex run the steps keep shrinking even
when the landscape changes and large steps would be right again; to travel a distance $D$ at
$\eta/\sqrt{t}$ takes about $(D/2\eta)^2$ steps. [RMSprop](rmsprop.md) and [Adam](adam.md) replace
the sum with a moving average to forget old gradients.

## Matching `torch.optim.Adagrad`

As in torch, the learning rate may also decay with the step count,
$\eta_t = \eta / (1 + (t-1)\,\delta)$, and the sum may start from a positive value $s_0$.
$\epsilon$ is added to $\sqrt{s_t}$, after the square root. As in torch, the state is created when a
parameter joins the optimizer (`add_param_group` below), not at its first gradient, so checkpoints
move between the two even for parameters that never stepped. One deliberate difference: torch fills
$s_0$ of *every* group with the constructor's `initial_accumulator_value` and ignores a group's own
value; here each group's `initial_accumulator_value` is its $s_0$, as a group option should be.

Sparse gradients (`nn.Embedding(sparse=True)`) are accepted, as by torch, and take a *lazy* step
that touches only the rows in the gradient; for Adagrad, unlike for optimizers with moving averages,
that is exactly the dense step (see the sparse step below).
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate, param_option
from .core.precision import uses_master
from .core.scalars import advance, fill_if, new_step_count
from .core.validation import check_non_negative
from .core.weight_decay import WeightDecay


class Adagrad(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Adagrad`.

    * `lr` is $\eta$ (default $10^{-2}$). It is the size of the *first* step of every coordinate,
      and the steps shrink from there, so Adagrad takes a larger $\eta$ than Adam: $0.01$ to $0.1$.
    * `lr_decay` is $\delta$ in $\eta_t = \eta / (1 + (t-1)\delta)$. The accumulator already decays
      the steps; an extra decay is rarely needed, and leaves the steps falling like $1/t^{3/2}$.
    * `weight_decay` is $\lambda$, L2 by default: $\lambda\theta$ joins the gradient, and so also
      the sum $s_t$.
    * `initial_accumulator_value` is $s_0$ (TensorFlow's default is $0.1$, torch's $0$). With
      $s_0 = 0$ the first step is $\eta\, g_1/|g_1|$, of size $\eta$ whatever the gradient's scale,
      even for a gradient that is pure noise. A positive $s_0$ acts as a prior of past gradients of
      size $\sqrt{s_0}$: gradients much smaller than that take SGD steps with learning rate
      $\eta/\sqrt{s_0}$, and only larger ones are normalised.
    * `eps` is $\epsilon$, added to $\sqrt{s_t}$ (default $10^{-10}$). It only matters for a
      coordinate whose gradients have all been zero, where it turns $0/0$ into $0$.
    * `maximize` ascends the objective instead.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    # Sparse gradients (`nn.Embedding(sparse=True)`) are accepted, as by torch: see the sparse step.
    supports_sparse = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float | WeightDecay = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        r"""
        Arguments are checked here, at construction: a negative $s_0$ would make $\sqrt{s_t}$ NaN
        in the first step, and a negative $\delta$ would make $\eta_t$ grow and then change sign.
        """
        check_non_negative("lr_decay", lr_decay)
        check_non_negative("initial_accumulator_value", initial_accumulator_value)
        # $s_0$ fills the accumulators (`full_like`), which takes a number or a 0-d tensor only.
        if isinstance(initial_accumulator_value, torch.Tensor) and initial_accumulator_value.dim() > 0:
            raise TypeError(f"Invalid initial_accumulator_value: {initial_accumulator_value} (must be a number)")
        check_non_negative("eps", eps)
        # A plain number means L2 regularisation, as in torch.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        ### The state is created with the group

        torch's Adagrad creates each parameter's step count and $s_0$ when the parameter joins (in its
        constructor), not at its first gradient, and its checkpoints hold them for parameters that never
        stepped. So does this class (the constructor adds its groups through here too). The state is
        the one the first step would create: that of the real view for a complex parameter, and a
        `float32` one for a parameter with master weights (whose master the first step adds).
        """
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for param in group["params"]:
            target = torch.view_as_real(param) if param.is_complex() else param
            self.init_state(self.state[param], group, target.float() if uses_master(group, target) else target)

    def share_memory(self) -> None:
        r"""Moves the accumulators to shared memory, for Hogwild-style training, as torch's Adagrad does."""
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param]["sum"].share_memory_()

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The step count $t = 0$ and the accumulator $s_0$, one number per coordinate, with the
        parameter's shape and memory layout (`preserve_format` keeps a channels-last or transposed
        parameter's strides, so the element-wise operations below run over matching memory).
        """
        state["step"] = new_step_count(group, param)
        # $s_0$, one accumulator per coordinate, filled with `initial_accumulator_value`.
        state["sum"] = torch.full_like(
            param, group["initial_accumulator_value"], memory_format=torch.preserve_format
        )

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adagrad step

        Decay, learning rate, accumulator, update. The accumulator is updated *before* it is used,
        so the current gradient is part of its own normaliser: $|g_t| \le \sqrt{s_t}$, and no step
        is ever longer than $\eta_t$.
        """
        # The state was created with the group, possibly in half precision before master weights were
        # switched on: at the first step $s_0$ is written again, in place (shared memory stays shared),
        # in the precision of the tensor this step updates. The first step is picked by `fill_if`, not
        # by an `if` on the count: an `if` on a tensor's value would cut the
        # [compiled step](core/fastpath.md) in two ([scalars](core/scalars.md) says how it chooses).
        fill_if(state["sum"], state["step"] == 0, group["initial_accumulator_value"])
        # $t \leftarrow t + 1$: counted per parameter, so a parameter that skips steps (no gradient)
        # keeps its own, smaller, count.
        step = advance(state)
        # L2 by default, $g_t \leftarrow g_t + \lambda\,\theta_{t-1}$ (see [weight decay](weight_decay.md)).
        # Decay would make a sparse gradient dense, which is the very thing the sparse step avoids.
        if grad.is_sparse and param_option(group, param, "weight_decay") != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")
        grad = self.weight_decay(param, grad, group)
        # A scalar, computed in Python: the learning rate in force (after any schedule) and the
        # step-count decay,
        # $$\eta_t = \frac{\eta}{1 + (t-1)\,\delta}$$
        step_size = learning_rate(group, param) / (1 + (step - 1) * group["lr_decay"])
        if grad.is_sparse:
            self.sparse_update(state, group, grad, param, step_size)
            return
        # `addcmul_` squares and adds in one pass, with no temporary tensor for $g_t^2$:
        # $$s_t = s_{t-1} + g_t^2$$
        state["sum"].addcmul_(grad, grad, value=1)
        # The denominator is a new tensor (the sum itself must keep $s_t$), and $\epsilon$ is added to
        # it in place, except in a differentiable step, whose backward pass needs the root as it was.
        # `addcdiv_` then divides, scales and adds in one pass:
        # $$\theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{s_t} + \epsilon}$$
        root = state["sum"].sqrt()
        denominator = root + group["eps"] if group["differentiable"] else root.add_(group["eps"])
        param.addcdiv_(grad, denominator, value=-step_size)

    def sparse_update(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor, step_size: float
    ) -> None:
        r"""
        ### The sparse step

        The same update, on the rows the gradient names only (an `nn.Embedding(sparse=True)` names the
        rows of the tokens in the batch). A coordinate outside the gradient has $g_t = 0$, so the dense
        step would leave its $s_t$ unchanged and move it by $0/(\sqrt{s_t}+\epsilon) = 0$: for Adagrad
        the sparse step is *exactly* the dense one, only cheaper, since it touches $k$ rows instead of
        the whole table. (That is not so for optimizers with momentum or moving averages, whose state
        decays at every step whether a row was used or not; see [SGD](sgd.md).)

        Repeated indices are summed first (`coalesce`), as the dense gradient would sum them.
        """
        grad = grad.coalesce()
        indices, values = grad._indices(), grad._values()
        # $$s_t = s_{t-1} + g_t^2$$ on the named rows
        state["sum"].add_(torch.sparse_coo_tensor(indices, values.pow(2), grad.size()))
        # $$\theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{s_t} + \epsilon}$$ on the same rows
        denominator = state["sum"].sparse_mask(grad)._values().sqrt_().add_(group["eps"])
        param.add_(torch.sparse_coo_tensor(indices, values / denominator, grad.size()), alpha=-step_size)
