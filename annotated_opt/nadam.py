r"""
# NAdam: Adam with Nesterov momentum

[Dozat, 2016](https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ) brought the look-ahead of
[Nesterov momentum](sgd.md) into [Adam](adam.md). Classical momentum steps along the momentum of the
*current* step; Nesterov's steps along the momentum the *next* step will have, and so reacts one step
earlier when the gradient changes. NAdam splits Adam's step direction $\hat m_t$ into the fresh
gradient's share and the momentum's, and gives the momentum the *next* step's coefficient and bias
correction:

$$\textcolor{orange}{\bar m_t = \frac{\mu_{t+1}\, m_t}{1 - \prod_{i=1}^{t+1}\mu_i}
  + \frac{(1-\mu_t)\, g_t}{1 - \prod_{i=1}^{t}\mu_i}} \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\textcolor{orange}{\bar m_t}}{\sqrt{\hat v_t} + \epsilon}.$$

```algorithm
\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})
    @ mu = momentum_coefficient(beta1, group["momentum_decay"], step)
m_t, v_t \ \text{as in Adam}  @ exp_avg = self.update_moments(state, group, grad)
\theta \leftarrow \theta - \eta\, \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i}\, \frac{g_t}{\sqrt{\hat v_t} + \epsilon}
    @ param.addcdiv_(grad, denominator, value=-lr * (1 - mu) / (1 - mu_product))
\theta_t = \theta - \eta\, \textcolor{orange}{\frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i}}
    \frac{m_t}{\sqrt{\hat v_t} + \epsilon}
    @ param.addcdiv_(exp_avg, denominator, value=-lr * mu_next / (1 - mu_product_next))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $m_t$ | `exp_avg` | the first moment |
| $v_t$ | `exp_avg_sq` | the second moment |
| $\mu_t$ | `mu` | the momentum coefficient of step $t$ ($\mu_{t+1}$: `mu_next`) |
| $\psi$ | `momentum_decay` | how fast $\mu_t$ warms up |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |

## The momentum schedule

Dozat also lets the momentum coefficient grow during training, following
[Sutskever et al., 2013](https://proceedings.mlr.press/v28/sutskever13.html), who found that
Nesterov's method works best with a momentum that increases over time,

$$\mu_t = \beta_1\left(1 - \tfrac12\, 0.96^{\,t\psi}\right),$$

from $\beta_1/2$ at the start towards $\beta_1$; $\psi$ is the `momentum_decay` ($0.004$, so
$\mu_t$ reaches $0.9\,\beta_1$ after about $10\,000$ steps). Because $\mu_t$ changes from step to step,
the bias correction of the first moment is the running product $\prod_i \mu_i$ rather than
$\beta_1^t$, and the state keeps that product, `mu_product`. The moment itself is still the
average $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$ with the constant $\beta_1$, exactly as in torch.

## Following `torch.optim.NAdam`

This class follows `torch.optim.NAdam` to the last bit, including one detail that is easy to miss:
torch keeps `mu_product` as a 0-d tensor in its [*scalar* precision](core/scalars.md), `float32` unless the default
dtype is `float64`, even for `float64` parameters. The product then carries `float32` rounding (about
$10^{-7}$ relative) and, since it shrinks by about half every step, underflows to exactly $0$ after
some 130 steps (with $\beta_1 = 0.9$). Neither matters for training (only $1 - \prod_i \mu_i$ enters
the step), but a `float64` product moves the parameters away from torch's by about $10^{-10}$
relative within 200 steps. We keep the product the way torch does, so the two agree bit for bit and
checkpoints move between them; a test shows both facts.

Weight decay is L2 unless `decoupled_weight_decay=True` (torch's NAdamW).

NAdam extends [Adam](adam.md) and overrides `init_state`, `load_state_dict` and `step_param`: the
Nesterov update needs the gradient itself, which Adam's `adam_update` hook is not given.
"""

from typing import Any

import torch

from .adam import Adam
from .core import distributed
from .core.base import ParamsT
from .core.options import learning_rate
from .core.scalars import advance, new_scalar, restore_scalar_precision
from .core.validation import check_non_negative
from .core.weight_decay import WeightDecay


def momentum_coefficient(beta1: float, momentum_decay: float, step: int) -> float:
    r"""
    ### The momentum schedule
    $$\mu_t = \beta_1\left(1 - \tfrac12\, 0.96^{\,t\psi}\right)$$
    """
    return beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))


class NAdam(Adam):
    r"""
    ## Hyper-parameters

    The arguments follow `torch.optim.NAdam`:

    * `lr` is $\eta$; the default $2\times10^{-3}$ is torch's.
    * `betas`, `eps` as in [Adam](adam.md); $\beta_1$ is the limit of the momentum schedule.
    * `momentum_decay` is $\psi$ (default $0.004$); $0$ gives the constant $\mu_t = \beta_1/2$.
    * `weight_decay` is $\lambda$; `decoupled_weight_decay=True` applies it to the weights directly.
    """

    # torch's twin has no `fused`.
    torch_flags = ("foreach", "capturable", "differentiable")
    # torch's NAdam takes any two numbers as `betas`, a float and a tensor mixed included.
    torch_adam_betas = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        **kwargs: Any,
    ) -> None:
        check_non_negative("momentum_decay", momentum_decay)
        super().__init__(params, lr, betas, eps, weight_decay, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay, momentum_decay=momentum_decay, **kwargs)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""Adam's state, and the running product of the momentum coefficients, $\prod_{i \le 0}\mu_i = 1$."""
        super().init_state(state, group, param)
        state["mu_product"] = new_scalar(group, param, 1.0)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        ### Loading: a checkpoint continues as the optimizer that wrote it would

        `torch.optim.Optimizer.load_state_dict` casts every floating-point state tensor to its
        parameter's dtype, `mu_product` included. `torch.optim.NAdam` continues from its own checkpoint
        with that cast: for `float64` parameters its product is then `float64`, and its steps drift from
        those of the optimizer it was saved from by about $10^{-12}$ within 100 steps. So:

        * a checkpoint of ours: the product goes back to torch's scalar precision, and the run continues
          bit for bit as if it had never been interrupted;
        * a `torch.optim.NAdam` checkpoint: the product stays as torch's loading leaves it, and the next
          steps are those torch itself takes from the same checkpoint.

        A checkpoint of ours is told apart by the count of skipped steps that each of ours carries.
        """
        ours = any(distributed.COUNT_KEY in part for part in (state_dict, *state_dict["param_groups"]))
        super().load_state_dict(state_dict)
        if ours:
            restore_scalar_precision(self.state, ("mu_product",))

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One NAdam step

        The same order as Adam: weight decay, moments, update; the update also reads `grad`.
        """
        grad = self.weight_decay(param, grad, group)
        advance(state)
        exp_avg = self.update_moments(state, group, grad)
        self.nesterov_update(state, group, param, grad, exp_avg, self.second_moment(state, group))

    def nesterov_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        grad: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The Nesterov update
        """
        beta1, beta2 = group["betas"]
        step = state["step"].item()
        lr = learning_rate(group, param)
        # This step's momentum coefficient and the next one's, $\mu_t$ and $\mu_{t+1}$
        mu = momentum_coefficient(beta1, group["momentum_decay"], step)
        mu_next = momentum_coefficient(beta1, group["momentum_decay"], step + 1)
        # $$\prod_{i=1}^{t}\mu_i = \mu_t \prod_{i=1}^{t-1}\mu_i,$$
        # kept in the state (in torch's scalar precision), read back as a number
        mu_product_tensor = state["mu_product"]
        mu_product_tensor.mul_(mu)
        mu_product = mu_product_tensor.item()
        mu_product_next = mu_product * mu_next

        # $$\sqrt{\hat v_t} + \epsilon = \sqrt{v_t / (1-\beta_2^t)} + \epsilon$$
        second_moment = exp_avg_sq.div(1 - beta2**step)
        if group["differentiable"]:
            # New tensors: the backward pass needs the quotient and its root as they were.
            denominator = second_moment.sqrt().add(group["eps"])
        else:
            denominator = second_moment.sqrt_().add_(group["eps"])
        if group["differentiable"]:
            # torch's differentiable form: the two scales stay tensors (the product's precision), so
            # autograd can follow them, and multiply the tensors before the division.
            scaled_grad = grad * (-lr * (1 - mu) / (1 - mu_product_tensor))
            scaled_exp_avg = exp_avg * (-lr * mu_next / (1 - mu_product_tensor * mu_next))
            param.addcdiv_(scaled_grad, denominator).addcdiv_(scaled_exp_avg, denominator)
            return
        # The fresh gradient's share, $$\eta\,\frac{1-\mu_t}{1 - \prod_{i=1}^{t}\mu_i}\cdot
        #   \frac{g_t}{\sqrt{\hat v_t} + \epsilon}$$
        param.addcdiv_(grad, denominator, value=-lr * (1 - mu) / (1 - mu_product))
        # and the momentum's, with the *next* coefficient, $$\eta\,\frac{\mu_{t+1}}{1 - \prod_{i=1}^{t+1}\mu_i}
        #   \cdot\frac{m_t}{\sqrt{\hat v_t} + \epsilon}$$
        param.addcdiv_(exp_avg, denominator, value=-lr * mu_next / (1 - mu_product_next))
