r"""
# Stochastic gradient descent, with momentum and Nesterov

Every optimizer in this library is a variation on one line. To lower a loss $f(\theta)$, move the
parameters a little against its gradient,

$$\theta_t = \theta_{t-1} - \eta\, g_t,$$

where $g_t = \nabla_\theta f_t(\theta_{t-1})$ is the gradient of the loss on this step's mini-batch
and $\eta$ is the learning rate. The first-order Taylor expansion says why it works:
$f(\theta - \eta g) \approx f(\theta) - \eta\,\lVert g\rVert^2$, a decrease as long as $\eta$ is small
enough for the curvature to be ignored. On a quadratic with largest curvature $L$ (the largest
eigenvalue of the Hessian), "small enough" means $\eta < 2/L$; with $\eta \approx 1/L$ the error
along the direction of smallest curvature $\ell$ shrinks by a factor $1 - \ell/L$ per step, so plain
gradient descent needs about $\kappa = L/\ell$ steps, the *condition number*, per factor $e$ of
progress along it. [Robbins & Monro, 1951](https://doi.org/10.1214/aoms/1177729586) showed that the
noisy mini-batch gradient still converges if the learning rate decays, slowly enough to get anywhere
($\sum_t \eta_t = \infty$) and fast enough to average the noise away ($\sum_t \eta_t^2 < \infty$):
hence *stochastic* gradient descent.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay, when } \lambda > 0\text{)}
    @ grad = self.weight_decay(param, grad, group)
b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t
    @ buffer.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
d_t = g_t + \mu\, b_t \ \text{(Nesterov)}, \quad \text{else } d_t = b_t
    @ return grad.add(buffer, alpha=momentum)
\theta_t = \theta_{t-1} - \eta\, d_t  @ param.add_(direction, alpha=-lr)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter, updated in place |
| $g_t$ | `grad` | the gradient at step $t$ |
| $b_t$ | `buffer`, `momentum_buffer` | the momentum buffer |
| $d_t$ | `direction` | the direction of the step |
| $\mu$ | `momentum` | the momentum |
| $\tau$ | `dampening` | the dampening |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay |

## Momentum

**Momentum** ([Polyak, 1964](https://doi.org/10.1016/0041-5553(64)90137-5);
[Sutskever et al., 2013](https://proceedings.mlr.press/v28/sutskever13.html)) attacks the condition
number. It keeps a running sum of past gradients, the *buffer* $b_t$, and steps along it instead.
Directions where the gradients agree add up; directions where they flip sign from step to step cancel.
In a narrow valley this removes the zig-zag across the valley and speeds up the walk along it.

$$b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad \theta_t = \theta_{t-1} - \eta\, b_t$$

$\mu$ is the momentum and $\tau$ the *dampening*. With $\tau = 0$ (torch's default) the buffer is a
geometric sum: on a steady slope, $g_t = g$, it tends to $b_\infty = g + \mu g + \mu^2 g + \dots
= \frac{g}{1-\mu}$, so the effective step is $\frac{\eta}{1-\mu}$, ten times $\eta$ for $\mu = 0.9$.
Across a valley, where $g_t$ alternates in sign, the same sum is
$g - \mu g + \mu^2 g - \dots = \frac{g}{1+\mu}$, about half the gradient. The ratio of the two,
$\frac{1+\mu}{1-\mu} = 19$, is roughly what momentum buys on an ill-conditioned problem: on a
quadratic, Polyak's heavy ball with a well chosen $\mu$ needs about $\sqrt{\kappa}$ steps where
gradient descent needs $\kappa$. With $\tau = \mu$
the buffer is instead an exponential moving average that stays at the scale of the gradient (the
"momentum with dampening" of the fastai course); the two are the same optimizer with $\eta$ rescaled
by $1-\mu$, apart from the first step (below).

## Nesterov momentum

**Nesterov momentum** evaluates the gradient where momentum is about to take the parameters rather
than where they are. Sutskever's form keeps a look-ahead, $b_t = \mu b_{t-1} + \nabla f(\theta_{t-1}
- \eta\mu\, b_{t-1})$, $\theta_t = \theta_{t-1} - \eta\, b_t$. Storing the look-ahead point
$\phi_t = \theta_t - \eta\mu\, b_t$ instead of $\theta_t$ turns it into a rule that needs only the
gradient at the stored point, $g_t = \nabla f(\phi_{t-1})$:

$$\phi_t = \theta_{t-1} - \eta\, b_t - \eta\mu\, b_t
        = \phi_{t-1} + \eta\mu\, b_{t-1} - \eta\,(1+\mu)\, b_t
        = \phi_{t-1} - \eta\,(g_t + \mu\, b_t).$$

That is the form torch (and this class) uses: step along $g_t + \mu\, b_t$. Compared with classical
momentum it corrects itself one step earlier when the buffer overshoots, because the fresh gradient
enters the step twice, once directly and once through $b_t$.

## Matching `torch.optim.SGD`

This module follows `torch.optim.SGD` to the last rounding, including two details worth knowing:

* On the very first step the buffer is a copy of the gradient, $b_1 = g_1$, *not* $(1-\tau)\,g_1$.
  With $\tau = 0$ the two agree (a buffer starting at $0$ gives $\mu\cdot 0 + g_1$). With
  $\tau = \mu$ the choice matters: a moving average started at $0$ would be biased towards $0$ for
  the first $1/(1-\mu)$ steps (the bias [Adam](adam.md) corrects by dividing by $1-\beta_1^t$);
  starting it at the first sample removes that bias without any correction.
* Weight decay is L2 regularisation, added to the gradient *before* the momentum, so the decay term
  is accumulated by the buffer like the rest of the gradient (see [weight decay](weight_decay.md)).

## Sparse gradients: lazy or dense

An `nn.Embedding(sparse=True)` gives a gradient that names only the rows used by the batch. Two
semantics are possible for the rows it does not name. **Dense**: they had a zero gradient, and the
optimizer's state still evolves for them (a momentum buffer keeps moving the row, decaying by $\mu$
per step). **Lazy**: they are left alone, state and all, until they next appear (MXNet's
`lazy_update`, torch's `SparseAdam`). Without momentum the two coincide (a zero gradient moves nothing),
and the sparse step is simply cheaper. With momentum, torch's SGD (and this class, which takes the same
steps) keeps the buffer itself sparse: it holds the rows seen so far, decays them all at every step and
moves them, so a row stops changing only when its buffer has decayed; rows never seen stay untouched.

[LARS](lars.md) extends this class and rescales what goes into the buffer layer by layer.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.validation import check_non_negative, check_real, check_scalar
from .core.weight_decay import WeightDecay


class SGD(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.SGD`.

    * `lr` is $\eta$. Torch's default, $10^{-3}$, is small for SGD: $0.01$ to $0.1$ is typical. The
      classic recipe for a ResNet on ImageNet is $\eta = 0.1$ with $\mu = 0.9$ for a batch of 256,
      scaled linearly with the batch size ([Goyal et al., 2017](https://arxiv.org/abs/1706.02677)),
      with a warmup when the batch is large. Think in terms of the effective step $\eta/(1-\mu)$:
      changing $\mu$ from $0.9$ to $0.99$ without dividing $\eta$ by ten makes every step ten times
      longer.
    * `momentum` is $\mu$; $0.9$ is the usual choice, $0$ turns momentum off (and keeps no state).
    * `dampening` is $\tau$; keep $0$ for torch's convention. $\tau = \mu$ gives an averaged buffer,
      which behaves like $\tau = 0$ with $\eta$ multiplied by $1-\mu$.
    * `weight_decay` is $\lambda$: L2 regularisation by default, or pass a
      [`WeightDecay`](weight_decay.md) object for decoupled decay. $10^{-4}$ (ImageNet) to
      $5\times 10^{-4}$ (CIFAR) are the usual values with $\eta = 0.1$.
    * `nesterov` switches to Nesterov momentum; it needs $\mu > 0$ and $\tau = 0$ (the constructor
      refuses anything else, as torch does).
    * `maximize` ascends the objective instead: the base class negates the gradient before
      `step_param` sees it.
    """

    # Sparse gradients (`nn.Embedding(sparse=True)`) are accepted, as by torch: see the sparse step.
    supports_sparse = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float | WeightDecay = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        r"""
        The arguments are checked here, at construction, so that a typo fails before any training
        has started rather than after the first step.
        """
        check_non_negative("momentum", momentum)
        # A negative dampening over-weights the fresh gradient; torch accepts it, and so do we.
        check_scalar("dampening", dampening)
        check_real("dampening", dampening)
        # Nesterov's derivation above assumes an undamped buffer: with $\tau \neq 0$ it would give
        # $(1-\tau)\,g_t + \mu\, b_t$, not the $g_t + \mu\, b_t$ computed below, and torch refuses the
        # combination rather than define it.
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Invalid nesterov: True needs momentum > 0 and dampening = 0 "
                f"(got momentum={momentum}, dampening={dampening})"
            )
        # A plain number means L2 regularisation, torch's convention for SGD.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=False)
        # Every hyper-parameter goes into `defaults`, so each param group holds its own copy and a
        # scheduler (or a per-group dictionary) can change it.
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
            **self.weight_decay.defaults(),
        )
        super().__init__(params, defaults)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One SGD step

        `grad` is already the gradient to descend: the base class has negated it for `maximize`
        and skipped parameters without one. Three stages: decay, direction, step.
        """
        # Weight decay first: as L2 it becomes part of the gradient that momentum accumulates,
        # $$g_t \leftarrow g_t + \lambda\,\theta_{t-1}$$
        # (decoupled decay would instead shrink `param` here and leave `grad` alone).
        grad = self.weight_decay(param, grad, group)
        # $d_t$: the gradient, the buffer, or Nesterov's look-ahead direction.
        direction = self.momentum_direction(state, group, grad)
        # The learning rate is read now, not at construction: a scheduler or a parameter's own
        # `lr_scale` ([options](options.md)) is honoured at every step.
        # $$\theta_t = \theta_{t-1} - \eta\, d_t$$
        lr = learning_rate(group, param)
        if isinstance(lr, torch.Tensor):
            # A learning rate that autograd follows (a differentiable step) multiplies as a tensor.
            param.addcmul_(direction, lr, value=-1)
        else:
            param.add_(direction, alpha=-lr)

    def momentum_direction(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The direction momentum chooses

        Returns $d_t$: the gradient itself without momentum, the buffer $b_t$ with it, or
        $g_t + \mu\, b_t$ with Nesterov. Subclasses that change what goes *into* the buffer
        ([LARS](lars.md) scales it per layer) reuse this unchanged.

        The buffer is created lazily, at the first step, not in `init_state`: this is what
        `torch.optim.SGD` does, and it keeps the state of an optimizer without momentum empty, so
        checkpoints of the two agree key for key.
        """
        momentum = group["momentum"]
        # Without momentum, $d_t = g_t$: no buffer is kept at all.
        if momentum == 0:
            return grad
        buffer = state.get("momentum_buffer")
        if buffer is None:
            # The first buffer is the gradient itself, $b_1 = g_1$, whatever the dampening. A clone,
            # because `grad` may be `param.grad` itself, which `zero_grad(set_to_none=False)` and the
            # next backward pass change in place; detached, as torch's is, so that a differentiable
            # step does not differentiate through the first buffer.
            buffer = state["momentum_buffer"] = grad.clone().detach()
        else:
            # In place, so the buffer in the state is the one updated:
            # $$b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t$$
            buffer.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
        if group["nesterov"]:
            # Nesterov steps along $g_t + \mu\, b_t$; `add`, not `add_`, so neither the buffer nor
            # the gradient is modified.
            return grad.add(buffer, alpha=momentum)
        return buffer
