r"""
# RMSprop: Adagrad that forgets

Proposed by Geoffrey Hinton in a
[lecture](https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf) rather than a
paper, RMSprop fixes [Adagrad](adagrad.md)'s ever-shrinking steps by replacing the *sum* of squared
gradients with an exponential moving *average*,

$$v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2,$$

so the step size tracks the recent scale of each coordinate's gradient:

$$\theta_t = \theta_{t-1} - \eta \frac{g_t}{\sqrt{v_t} + \epsilon}.$$

$\sqrt{v_t}$ is the root mean square (RMS) of the recent gradients, hence the name. The average
weights the gradient of $k$ steps ago by $(1-\alpha)\,\alpha^k$, so it remembers about
$1/(1-\alpha)$ steps: 100 for torch's $\alpha = 0.99$, 10 for the lecture's $0.9$. Adagrad's step
decays like $1/\sqrt{t}$ because its denominator grows like $\sqrt{t}$; RMSprop's denominator stays
at the gradient's current scale, so a coordinate with steady gradients moves by about $\eta$ per step
forever. The lecture's motivation was mini-batch training: Rprop, which steps by the *sign* of the
gradient, works with full batches but not with mini-batches, where signs are noisy; dividing by the
RMS gives a step that behaves like the sign when the gradient is steady and is small when it is noise.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay)}
    @ grad = self.weight_decay(param, grad, group)
v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2
    @ square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
\bar g_t = \alpha\, \bar g_{t-1} + (1 - \alpha)\, g_t \quad \text{(centred only)}
    @ grad_avg.lerp_(grad, 1 - alpha)
\sigma_t = \sqrt{v_t - \bar g_t^2}\ \text{(centred)}, \ \text{else } \sqrt{v_t}
    @ scale = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
b_t = \mu\, b_{t-1} + g_t / (\sigma_t + \epsilon) \quad \text{(momentum only)}
    @ buffer.mul_(group["momentum"]).addcdiv_(grad, scale)
\theta_t = \theta_{t-1} - \eta\, b_t, \quad \text{else } \theta_t = \theta_{t-1} - \eta\, g_t / (\sigma_t + \epsilon)
    @ param.addcdiv_(grad, scale, value=-lr)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient |
| $v_t$ | `square_avg` | the moving average of $g^2$ |
| $\bar g_t$ | `grad_avg` | the moving average of $g$ (centred only) |
| $\sigma_t$ | `scale` | the denominator, before $\epsilon$ |
| $b_t$ | `buffer`, `momentum_buffer` | the momentum buffer |
| $\alpha$ | `alpha` | the decay of the averages |
| $\mu$ | `momentum` | the momentum |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay |

## No bias correction: the first steps are large

$v$ starts at zero and is *not* bias-corrected. With a steady gradient $g$ the average after $t$
steps is $v_t = (1-\alpha^t)\,g^2$, so the step is

$$|\Delta\theta_t| = \frac{\eta}{\sqrt{1-\alpha^t}}:
  \qquad 10\,\eta \text{ at } t = 1, \quad 3.2\,\eta \text{ at } t = 10, \quad
  1.26\,\eta \text{ at } t = 100, \quad 1.03\,\eta \text{ at } t = 300$$

for $\alpha = 0.99$. The very first step is ten times the steady one, whatever the gradient's
scale, and the excess takes a few hundred steps to fade; with momentum $\mu = 0.9$ these early
steps are also summed by the buffer. A small $\eta$ or a warmup hides the transient;
[Adam](adam.md) removes it, dividing $v_t$ by $1-\beta_2^t$, and its first step has size $\eta$.

## Two options

Both as in `torch.optim.RMSprop`:

* **centered** ([Graves, 2013](https://arxiv.org/abs/1308.0850)) also averages the gradient,
  $\bar g_t = \alpha\,\bar g_{t-1} + (1-\alpha)\,g_t$, and divides by an estimate of the standard
  deviation, $\sqrt{v_t - \bar g_t^2}$, instead of the root mean square. The step is then the
  gradient measured in units of its own noise. Where the gradient is consistent this denominator is
  small, and the step long: with a perfectly steady gradient
  $v_t - \bar g_t^2 = \alpha^t(1-\alpha^t)\,g^2$, which falls to zero, and the step grows like
  $\eta\,\alpha^{-t/2}$ (150 times $\eta$ after 1000 steps at $\alpha = 0.99$) until $\epsilon$ or
  rounding stops it. Real gradients are noisy, and then the variance is bounded below by the noise.
* **momentum** accumulates the normalised step in a buffer,
  $b_t = \mu\, b_{t-1} + g_t / (\sqrt{v_t}+\epsilon)$, and steps $\theta_t = \theta_{t-1} - \eta\, b_t$.
  As with [SGD](sgd.md), on a steady slope the buffer tends to $1/(1-\mu)$ times the normalised
  gradient, so the effective step is $\eta/(1-\mu)$. Note that the momentum is applied *after* the
  division, unlike Adam, which divides the momentum.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_non_negative
from .core.weight_decay import WeightDecay


class RMSprop(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.RMSprop`.

    * `lr` is $\eta$ (default $10^{-2}$). That default is large for a network: the steady step is
      about $\eta$ per coordinate, and the first ones ten times that. $10^{-3}$ to $10^{-4}$ is the
      usual range (Keras's default is $10^{-3}$); smaller still with momentum, since the effective
      step is then $\eta/(1-\mu)$.
    * `alpha` is the decay $\alpha$ of the averages (default $0.99$, a memory of about 100 steps;
      Hinton's lecture used $0.9$, a memory of 10). A longer memory gives a smoother denominator and
      a longer start-up transient.
    * `eps` is $\epsilon$, added after the square root (default $10^{-8}$). Coordinates whose RMS is
      below $\epsilon$ take SGD steps with learning rate $\eta/\epsilon$ instead of normalised ones.
      TensorFlow 1's `RMSPropOptimizer` added $\epsilon$ *inside* the root, a different optimizer
      for the same value of $\epsilon$.
    * `weight_decay` is $\lambda$, L2 by default: the decay is normalised like the gradient.
    * `momentum` is $\mu$ (default $0$, off; $0.9$ is common when on).
    * `centered` divides by the estimated standard deviation instead of the root mean square; it
      keeps one more tensor per parameter.
    * `maximize` ascends the objective instead.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        r"""
        Arguments are checked here, at construction, and stored in `defaults` so that each param
        group carries its own values.
        """
        check_non_negative("alpha", alpha)
        check_non_negative("eps", eps)
        check_non_negative("momentum", momentum)
        # A plain number means L2 regularisation, as in torch.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            momentum=momentum,
            centered=centered,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        $v_0 = 0$ and, only when their options are on, $b_0 = 0$ and $\bar g_0 = 0$, under torch's
        names, so that the [verification](verification.md) can compare the two states tensor by
        tensor.
        """
        # The step count is kept for compatibility with torch's state; the update never reads it,
        # since there is no bias correction.
        state["step"] = new_step_count(group, param)
        # $v_0 = 0$
        state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["momentum"] > 0:
            # $b_0 = 0$
            state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["centered"]:
            # $\bar g_0 = 0$
            state["grad_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One RMSprop step

        Decay, the averages, the denominator $\sigma_t + \epsilon$, then the update with or without
        momentum.
        """
        alpha = group["alpha"]
        advance(state)
        # L2 by default, $g_t \leftarrow g_t + \lambda\,\theta_{t-1}$ (see [weight decay](weight_decay.md)).
        grad = self.weight_decay(param, grad, group)

        # The average of the squares, in place and in two fused passes (`addcmul_` squares, scales
        # and adds without a temporary for $g_t^2$):
        # $$v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2$$
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)

        if group["centered"]:
            # The average of the gradient, written as a linear interpolation: `lerp_(g, w)` computes
            # $\bar g + w\,(g - \bar g)$, which for $w = 1-\alpha$ is the same moving average in one
            # operation. The variance $v_t - \bar g_t^2$ is non-negative (both averages have the same
            # weights, and by Cauchy-Schwarz $\bar g_t^2 \le (1-\alpha^t)\, v_t$); `addcmul` (not in
            # place) leaves $v_t$ in the state intact.
            # $$\bar g_t = \alpha\,\bar g_{t-1} + (1-\alpha)\,g_t \qquad
            #   \sigma_t = \sqrt{v_t - \bar g_t^2}$$
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            scale = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            # A new tensor: $v_t$ itself must stay in the state.
            # $$\sigma_t = \sqrt{v_t}$$
            scale = square_avg.sqrt()
        # $\epsilon$ outside the root, added in place to the temporary: $\sigma_t + \epsilon$ (into a new
        # tensor in a differentiable step, whose backward pass needs the root as it was).
        scale = scale.add(group["eps"]) if group["differentiable"] else scale.add_(group["eps"])

        lr = learning_rate(group, param)
        if group["momentum"] > 0:
            # The buffer accumulates *normalised* gradients; its scale is $1/(1-\mu)$, not the
            # gradient's.
            # $$b_t = \mu\, b_{t-1} + \frac{g_t}{\sigma_t + \epsilon} \qquad \theta_t = \theta_{t-1} - \eta\, b_t$$
            buffer = state["momentum_buffer"]
            buffer.mul_(group["momentum"]).addcdiv_(grad, scale)
            param.add_(buffer, alpha=-lr)
        else:
            # `addcdiv_` divides, scales and adds in one pass:
            # $$\theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sigma_t + \epsilon}$$
            param.addcdiv_(grad, scale, value=-lr)
