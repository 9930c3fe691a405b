r"""
# ASGD: averaged stochastic gradient descent

Plain SGD with a constant learning rate does not converge on a noisy problem: it reaches the
neighbourhood of the minimum and then rattles around it, at a distance set by $\eta$ and the
gradient noise. Decaying $\eta$ fixes that, slowly. [Polyak & Juditsky, 1992](https://doi.org/10.1137/0330046)
found a better way: keep running SGD with fairly large steps, and report the **average of the
iterates** $\bar\theta_t = \frac1t\sum_{i\le t}\theta_i$. The rattling averages out, and the average
converges at the best possible rate for the problem (the rate of the optimal second-order method,
with no Hessian in sight). [Xu, 2011](https://arxiv.org/abs/1107.2490) and
[Bottou's SGD code](https://leon.bottou.org/projects/sgd) made it practical for large linear models;
`torch.optim.ASGD` follows them:

$$
\begin{aligned}
\theta_t &= (1 - \lambda\,\eta_{t-1})\,\theta_{t-1} - \eta_{t-1}\, g_t \\
\bar\theta_t &= \bar\theta_{t-1} + \mu_{t-1}\,(\theta_t - \bar\theta_{t-1}) \\
\eta_t &= \frac{\eta}{(1 + \lambda\,\eta\, t)^{\alpha}} \qquad
\mu_t = \frac{1}{\max(1,\; t - t_0)}
\end{aligned}
$$

($\bar\theta$ is `ax`, $\eta_t$ is `eta`, $\mu_t$ is `mu`.) With $\mu = 1/(t-t_0)$ the second line is
exactly a running mean: since the weight lags one step behind, $\bar\theta_t$ is the plain average of
$\theta_{t_0+2}, \dots, \theta_t$. Until then $\mu = 1$ and $\bar\theta$ simply copies $\theta$.

```algorithm
g_t \leftarrow g_t + \lambda_2\,\theta_{t-1} \quad \text{(the second L2 term, when } \lambda_2 > 0\text{)}
    @ grad = self.weight_decay(param, grad, group)
\theta_t = \textcolor{orange}{(1 - \lambda\,\eta_{t-1})}\,\theta_{t-1} - \eta_{t-1}\, g_t
    @ param.mul_(1 - lambd * eta).add_(grad, alpha=-eta)
\textcolor{orange}{\bar\theta_t = \bar\theta_{t-1} + \mu_{t-1}\,(\theta_t - \bar\theta_{t-1})}
    @ average.copy_(choose(mu != 1, average + param.sub(average).mul_(mu), param))
\textcolor{orange}{\eta_t = \eta / (1 + \lambda\,\eta\, t)^{\alpha}}
    @ state["eta"].copy_(torch.as_tensor(lr / (1 + lambd * lr * step) ** group["alpha"]))
\textcolor{orange}{\mu_t = 1 / \max(1,\; t - t_0)}
    @ state["mu"].copy_(torch.as_tensor(1 / later))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter, trained as by SGD |
| $\bar\theta_t$ | `ax`, `average` | the average of the iterates, the answer to evaluate |
| $g_t$ | `grad` | the gradient |
| $\eta$ | `lr` | the learning rate, the initial step size |
| $\eta_t$ | `eta` | the decayed step size, used at step $t+1$ |
| $\mu_t$ | `mu` | the weight of the new iterate in the average, used at step $t+1$ |
| $\lambda$ | `lambd` | the built-in L2 pull, which also sets the decay of $\eta_t$ |
| $\alpha$ | `alpha` | the power of that decay |
| $t_0$ | `t0` | the step after which averaging starts |
| $\lambda_2$ | `weight_decay` | the second L2 term, added to the gradient |
| $t$ | `step` | the step count |

## The average is the answer: how to use it

The optimizer trains $\theta$ (the model's parameters) exactly like SGD with a decaying step and an
L2 pull $\lambda$; it never moves the parameters to the average. **The average is what you
evaluate and deploy**, and you must fetch it yourself: `average_parameters()` here returns it per
parameter, and `swap_in_average()` copies it into the model (call it again to swap back) for an
evaluation. In torch the same tensors are `optimizer.state[p]["ax"]`.

Two defaults deserve a warning:

* $t_0 = 10^6$: averaging starts after a **million** steps. Before that `ax` is a copy of the
  parameters, and ASGD is SGD with the $\eta_t$ decay. For a run of a few thousand steps, set
  $t_0$ to where the loss has stopped falling fast (a third to a half of the run is common).
* $\lambda = 10^{-4}$ is a second, built-in L2 regularisation, on top of `weight_decay`: in Xu's
  paper $\lambda$ is the regularisation constant of the objective, and it also sets the decay of
  $\eta_t$. Set it to 0 for an undecayed, unregularised SGD plus averaging.

Averaging the weights of one run, late in training, is the idea that
[stochastic weight averaging](https://arxiv.org/abs/1803.05407) (`torch.optim.swa_utils`) later
applied to deep networks, with the average taken once per epoch.

## Matching `torch.optim.ASGD`

Three details of torch's implementation, all kept here:

* the step uses $\eta_{t-1}$, the step size computed at the *end of the previous step*, and the
  initial $\eta_0$ is the learning rate when the parameter first got a gradient. A scheduler that
  changes `lr` therefore acts one step late, and only through the decay formula;
* $\eta_t$ and $\mu_t$ are stored as 0-d tensors in torch's scalar precision, `float32` unless the
  default dtype is `float64` ([scalar state](core/scalars.md)), so even a `float64` model takes
  steps of a `float32`-rounded size. We read them back from the state exactly as torch does;
* torch's `load_state_dict` casts both to the parameter's dtype. Torch's own steps stay exact anyway,
  because each new value passes through a `float32` tensor (`torch.as_tensor`) before it is stored.
  This class stores them the same way, and after a load also puts both back to the scalar precision,
  so that the state is what a run that never stopped holds; a reloaded run continues bit for bit.

None of $\lambda$, $\alpha$, $t_0$ is checked by torch, and none is here (but for NaN): a negative
value is taken, with torch's numbers. When $1 + \lambda\eta t < 0$ (a negative $\lambda$), Python's
power of that negative float to a fractional $\alpha$ is a complex number; torch stores its real
part as $\eta_t$ (with a warning that the imaginary part is discarded), and so does this class.

State: the average, one tensor the size of the parameter (4 bytes per `float32` parameter), and three
scalars.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.scalars import advance, choose, restore_scalar_precision, scalar
from .core.validation import check_passed_on
from .core.weight_decay import WeightDecay

# The 0-d state entries kept in the scalar precision.
SCALAR_STATE = ("eta", "mu")


class ASGD(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.ASGD`.

    * `lr` is $\eta$ (default $10^{-2}$), the initial step size; as for SGD.
    * `lambd` is $\lambda$ (default $10^{-4}$): the built-in L2 pull and the rate of the step-size
      decay (above).
    * `alpha` is $\alpha$ (default $0.75$), the power of the decay. Between $1/2$ and $1$: Polyak and
      Juditsky need the steps to decay more slowly than $1/t$, and $0.75$ is Bottou's choice.
    * `t0` is $t_0$ (default $10^6$), the step after which averaging starts (above).
    * `weight_decay` is a second L2 term, added to the gradient as in the other torch optimizers.
    * `maximize` ascends the objective instead.
    * `foreach`, `differentiable` and `capturable` are stored as torch stores them (see
      [Adadelta](adadelta.md)).
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        # torch checks none of the three: any value its arithmetic takes is taken, with its numbers.
        # A negative $\lambda$ pushes the weights out and speeds the step size up, a negative $\alpha$
        # makes the step size grow with $t$, a negative $t_0$ starts averaging at once; $\alpha = -\infty$
        # divides by zero in the step, as in torch.
        for name, value in (("lambd", lambd), ("alpha", alpha), ("t0", t0)):
            check_passed_on(name, value)
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            **self.weight_decay.defaults(),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        $t = 0$, $\eta_0 = \eta$ (the learning rate in force now), $\mu_0 = 1$ and $\bar\theta_0 = 0$,
        the scalars as 0-d tensors in torch's scalar precision. torch keeps all three on the parameter's
        device, whatever the options (its other optimizers keep a count on the CPU unless `capturable`),
        and so does this one: a checkpoint's tensors are where torch's would be.
        """
        state["step"] = scalar(0.0, param.device)
        state["eta"] = scalar(learning_rate(group, param), param.device)
        state["mu"] = scalar(1.0, param.device)
        state["ax"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One ASGD step

        An SGD step with the stored step size, the average, and then the step size and averaging
        weight for the *next* step.
        """
        lambd = group["lambd"]
        step = advance(state)
        grad = self.weight_decay(param, grad, group)
        # The step size and weight computed at the end of the previous step, read back from their
        # (possibly `float32`) tensors, as torch reads them.
        eta, mu = state["eta"].item(), state["mu"].item()
        # $$\theta_t = (1 - \lambda\,\eta_{t-1})\,\theta_{t-1} - \eta_{t-1}\, g_t$$
        param.mul_(1 - lambd * eta).add_(grad, alpha=-eta)
        # The running mean; while $\mu = 1$ it is a copy, made exactly rather than as
        # $\bar\theta + 1\cdot(\theta - \bar\theta)$, which rounds ([choose](core/scalars.md) is the
        # `if` that also works in the fast path, where $\mu$ is a tensor).
        # $$\bar\theta_t = \bar\theta_{t-1} + \mu_{t-1}\,(\theta_t - \bar\theta_{t-1})$$
        average = state["ax"]
        average.copy_(choose(mu != 1, average + param.sub(average).mul_(mu), param))
        # The schedule for the next step, from the learning rate in force now. Each value reaches the
        # state through a tensor, as in torch: `as_tensor` rounds a number to the scalar precision, and
        # `copy_` takes the real part of a complex one (see the notes) and refuses a tensor of another shape.
        # $$\eta_t = \frac{\eta}{(1 + \lambda\,\eta\, t)^{\alpha}} \qquad \mu_t = \frac{1}{\max(1,\; t - t_0)}$$
        lr = learning_rate(group, param)
        state["eta"].copy_(torch.as_tensor(lr / (1 + lambd * lr * step) ** group["alpha"]))
        # Python's `max`, as torch takes it; inside a compiled step, where $t$ is a tensor, its `where`.
        averaged_steps = step - group["t0"]
        compiled = torch.compiler.is_compiling()
        later = choose(averaged_steps > 1, averaged_steps, 1) if compiled else max(1, averaged_steps)
        state["mu"].copy_(torch.as_tensor(1 / later))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""torch's load, then $\eta_t$ and $\mu_t$ back to the scalar precision (see the notes above)."""
        super().load_state_dict(state_dict)
        restore_scalar_precision(self.state, SCALAR_STATE)

    def average_parameters(self) -> list[torch.Tensor]:
        r"""
        ### The averages, for evaluation

        $\bar\theta$ of every parameter that has stepped, in the order of the groups (a parameter
        without state yet is its own average).
        """
        return [self.state[p]["ax"] if p in self.state else p.detach()
                for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def swap_in_average(self) -> None:
        r"""
        Exchange each parameter's values with its average, in place: call once to evaluate the
        average, and once more to continue training from where it was.
        """
        for group in self.param_groups:
            for param in group["params"]:
                if param in self.state:
                    average = self.state[param]["ax"]
                    target = torch.view_as_real(param) if torch.is_complex(param) else param
                    held = target.clone()
                    target.copy_(average)
                    average.copy_(held)
