r"""
# Sophia (SophiaG)

[Liu et al., 2024](https://arxiv.org/abs/2305.14342): a second-order method as cheap as Adam. Newton's
step $g/h$ uses the curvature $h$ to take long steps along flat directions and short ones along
sharp directions; Adam's $g/\sqrt{v}$ only uses the gradient's size, which is the same in both. Sophia
keeps a moving average of a **diagonal Hessian estimate** $h$, divides the momentum by it, and **clips
each coordinate** of the result, because a diagonal estimate can be tiny or negative-going where the
problem is not convex, and a Newton step there would be huge:

$$\begin{aligned}
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,g_t\\
h_t &= \beta_2 h_{t-k} + (1-\beta_2)\,\hat h_t \quad \text{only every } k \text{ steps, else } h_t = h_{t-1}\\
\theta_t &= (1 - \eta\lambda)\,\theta_{t-1}
  - \eta\,\mathrm{clip}\Big(\frac{m_t}{\rho\,B\,h_t + \epsilon},\ 1\Big)
\end{aligned}$$

with $\mathrm{clip}(z, 1) = \max(-1, \min(z, 1))$ coordinate-wise: where the curvature is large, a
Newton-like step $m/(\rho B h)$; where it is small, a step of exactly $\eta$ in the direction of $m$, as
[Lion](https://arxiv.org/abs/2302.06675) or sign descent would take. The fraction of coordinates *not*
clipped is the paper's health indicator: $10\%$ to $50\%$ is good; tune $\rho$ so it is.

```algorithm
\theta \leftarrow (1 - \eta\lambda)\,\theta_{t-1}  @ param.mul_(1 - lr * group["weight_decay"])
m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t  @ exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
h_t = \beta_2 h_{t-k} + (1-\beta_2)\,\hat g \odot \hat g \quad \text{(every } k \text{ steps, else } h_t = h_{t-1})
    @ state["hessian"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
\min\Big(1, \frac{|m_t|}{\rho\,B\,h_t + \epsilon}\Big)
    @ ratio = (exp_avg.abs() / curvature.add_(group["eps"])).nan_to_num_(nan=0.0).clamp_(max=1)
\theta_t = \theta - \eta\,\mathrm{sign}(m_t)\,\min\Big(1, \frac{|m_t|}{\rho\,B\,h_t + \epsilon}\Big)
  = \theta - \eta\,\mathrm{clip}\Big(\frac{m_t}{\rho\,B\,h_t + \epsilon},\ 1\Big)
    @ param.addcmul_(exp_avg.sign(), ratio, value=-lr)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t$ | `grad` | the gradient ($\hat g$: the gradient on sampled labels, which `update_hessian` reads) |
| $m_t$ | `exp_avg` | the momentum |
| $h_t$ | `hessian` | the moving average of the diagonal Hessian estimates, without the factor $B$ |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates of $m$ and $h$ |
| $\rho$ | `rho` | scales the curvature: larger clips fewer coordinates |
| $B$ | `bs` | the number of labels (tokens) per batch |
| $\eta$ | `lr` | the learning rate |
| $\lambda$ | `weight_decay` | the weight decay, decoupled |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $t$ | `step` | the step count |

## The Gauss-Newton-Bartlett estimate: the hook you call

For a loss $\ell(f(\theta, x), y)$ of the model's logits and a label, the Gauss-Newton matrix
$J^\top \nabla^2_{f}\ell\, J$ is positive semi-definite, and for the softmax cross-entropy Bartlett's
identity gives an unbiased estimate of its diagonal from one backward pass: sample labels
$\hat y \sim \mathrm{softmax}(f(\theta, x))$ **from the model itself**, and take
$\hat g = \nabla_\theta \frac1B\sum_b \ell(f(\theta, x_b), \hat y_b)$; then

$$\hat h = B\cdot \hat g \odot \hat g \quad\text{estimates}\quad \mathrm{diag}\big(J^\top \nabla^2_f \ell\, J\big).$$

The optimizer cannot do this itself: it needs the model, a batch, and labels sampled from the model.
So, as in the authors' code, every $k$ steps ($k = 10$ in the paper) the training loop computes
$\hat g$ and calls `update_hessian()`, which folds the gradient now in `p.grad` into $h$:

```python
logits = model(x)
loss = F.cross_entropy(logits, y)
loss.backward(); optimizer.step(); optimizer.zero_grad()
if step % k == k - 1:
    logits = model(x)                                    # the same batch will do
    y_sampled = torch.distributions.Categorical(logits=logits).sample()
    F.cross_entropy(logits, y_sampled).backward()        # mean over the batch: g_hat
    optimizer.update_hessian()                           # h <- beta2 h + (1 - beta2) g_hat^2
    optimizer.zero_grad()
```

$h$ stores the average of $\hat g^2$ without the factor $B$; the step multiplies it back in,
$\rho\,B\,h$, with $B$ the number of labels (tokens) per batch (`bs`). The cost is one extra forward
and backward pass every $k$ steps, about $2/k$ more per step on average: $20\%$ for $k = 10$ when the
backward costs twice the forward. The worked example on the character model
(`scripts/sophia_charlm.py`) measures it.

## The authors' code and the paper

* **$\epsilon$.** The paper divides by $\max(\rho\, h_t, \epsilon)$; the code by $\rho\,B\,h_t + \epsilon$
  with $\epsilon = 10^{-15}$. Equal away from $h \approx 0$; where $h = 0$ (no estimate yet) both make
  every coordinate clip, a sign step.
* **$B$.** The paper's $\hat h$ includes the factor $B$ and its $\rho$ ($\gamma$ in the first version)
  multiplies it; the code stores $\hat g^2$ and multiplies by `bs` (default $5120$) at every step, and an
  earlier version of the code had no $B$, a $\gamma = 2\times 10^4$ in the denominator's place and the ratio
  clipped at $\gamma$ instead of $1$.
* **Bias correction.** None, for $m$ or $h$ (the paper's algorithm has none either); the first steps,
  with $h = 0$ until the first refresh, are sign steps.
* The step count is a float tensor in the authors' state, and here too (a 0-d tensor, as
  [torch keeps its counts](core/scalars.md), so that a compiled step does not recompile as it grows);
  it is never read.

State: $m$ and $h$, two tensors per parameter (8 bytes per `float32` parameter), as Adam.
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_betas, check_non_negative


class Sophia(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The authors' names and defaults (`SophiaG` in the authors' `sophia.py`).

    * `lr` is $\eta$ (default $10^{-4}$): the largest step of a coordinate, since a clipped coordinate
      moves by exactly $\eta$. Use a cosine schedule with warmup, as for AdamW.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.965, 0.99)$): $\beta_2$ averages the Hessian
      estimates, one every $k$ steps, so its memory is $k/(1-\beta_2) = 1000$ steps for $k = 10$.
    * `rho` is $\rho$ (default $0.04$): larger clips fewer coordinates. Aim for $10$-$50\%$ unclipped.
    * `weight_decay` is $\lambda$ (default $0.1$), decoupled, multiplied by $\eta$ as in AdamW.
    * `bs` is $B$ (default $5120$), the number of labels per batch: tokens, for a language model. The
      authors pass it to every `step(bs=...)`; both work here (`step`'s, when given, wins).
    * `eps` is $\epsilon$ (default $10^{-15}$).
    * `maximize` ascends the objective instead.
    * `capturable` (the authors' flag) keeps the step count on the parameter's device, for a CUDA
      graph; a parameter on a device that cannot be captured is refused when it steps, with the
      `AssertionError` the authors' class raises ([implementation flags](core/implementation.md)).
    * `foreach` or `fused` selects the [fast path](core/fastpath.md): the same step, compiled.
    """

    tensor_step_count = True

    def __init__(self, params: ParamsT, lr: float = 1e-4, betas: tuple[float, float] = (0.965, 0.99),
                 rho: float = 0.04, weight_decay: float = 0.1, *, bs: int = 5120, eps: float = 1e-15,
                 maximize: bool = False, capturable: bool = False, foreach: bool | None = None,
                 fused: bool | None = None) -> None:
        check_betas(betas)
        check_non_negative("rho", rho)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("eps", eps)
        if not (isinstance(bs, int) and bs >= 1):
            raise ValueError(f"Invalid bs: {bs} (must be an integer >= 1, the labels per batch)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), rho=rho, weight_decay=weight_decay, bs=bs,
                                      eps=eps, maximize=maximize, capturable=capturable, foreach=foreach,
                                      fused=fused))

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""$m_0 = 0$ and $h_0 = 0$: until the first refresh every coordinate clips (a sign step)."""
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["hessian"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def update_hessian(self) -> None:
        r"""
        ### The hook: fold the gradient in `p.grad` into the Hessian estimate

        Call it every $k$ steps, right after a backward pass of the loss on labels sampled from the
        model (above). $$h \leftarrow \beta_2\,h + (1-\beta_2)\,\hat g \odot \hat g$$
        Parameters without a gradient keep their estimate. Bad gradients follow the `nonfinite` policy,
        as in a step.
        """
        for group in self.param_groups:
            beta2 = group["betas"][1]
            for _, grad, state in self.params_with_grads(group):
                state["hessian"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

    def group_arguments(self, group: dict[str, Any], bs: int | None = None) -> dict[str, Any]:
        r"""
        ### The authors' `step(bs=...)`

        `bs` declared here is an argument of `step` (the base class binds it), passed on to each
        parameter's update: `optimizer.step(bs=tokens)` as in the authors' training loop.
        """
        return {"bs": bs}

    def step_param(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor,
                   bs: int | None = None) -> None:
        r"""### One parameter: decay, momentum, the clipped Newton-like step"""
        beta1 = group["betas"][0]
        lr = learning_rate(group, param)
        advance(state)
        # $$\theta \leftarrow (1 - \eta\lambda)\,\theta$$
        param.mul_(1 - lr * group["weight_decay"])
        # $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t$$
        exp_avg = state["exp_avg"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        # $$\Big|\frac{m_t}{\rho B h_t + \epsilon}\Big| \text{ capped at } 1,$$ then the sign of $m_t$ back:
        # the same as clipping the signed ratio to $[-1, 1]$, with one division instead of two clamps.
        # In `float16`, $\epsilon = 10^{-15}$ rounds to zero, and a coordinate with $m = 0$ and
        # $h = 0$ would give $0/0$: that NaN becomes $0$, a zero step, as it is in higher precision.
        # (The [fast path](core/fastpath.md) compiles `nan_to_num_` to a test it can vectorise.)
        curvature = state["hessian"] * (group["rho"] * (bs if bs is not None else group["bs"]))
        ratio = (exp_avg.abs() / curvature.add_(group["eps"])).nan_to_num_(nan=0.0).clamp_(max=1)
        # $$\theta_t = \theta_{t-1} - \eta\,\mathrm{sign}(m_t)\,\min\Big(1, \frac{|m_t|}{\rho B h_t + \epsilon}\Big)$$
        param.addcmul_(exp_avg.sign(), ratio, value=-lr)
