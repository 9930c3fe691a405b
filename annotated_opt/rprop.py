r"""
# Rprop: resilient backpropagation

[Riedmiller & Braun, 1993](https://doi.org/10.1109/ICNN.1993.298623) threw away the size of the
gradient altogether. Each weight keeps its own step size $s$ and moves by exactly $s$, against the
*sign* of its gradient; the step size adapts by watching the sign from one step to the next:

$$
\begin{aligned}
s_t &= \mathrm{clip}\big(f_t\, s_{t-1},\; s_{\min},\; s_{\max}\big), \qquad
f_t = \begin{cases} \eta^+ & g_t\, g_{t-1} > 0 \text{ (same sign: speed up)} \\
                    \eta^- & g_t\, g_{t-1} < 0 \text{ (sign flipped: we jumped over a minimum, slow down)} \\
                    1 & \text{otherwise} \end{cases} \\
\theta_t &= \theta_{t-1} - s_t\, \mathrm{sign}(g_t), \quad\text{with } g_t := 0 \text{ where the sign flipped}
\end{aligned}
$$

($s$ is `step_size`, $g_{t-1}$ is `prev`.) Where the sign flipped, the weight does not move this
step, and the stored gradient is set to zero, so that the next step counts as "otherwise" and
neither grows nor shrinks again: after overshooting, take one pause, then continue with the halved
step. This is the variant Igel and Hüsken call Rprop$^-$ (no backtracking of the overshooting step).

The step sizes grow geometrically ($1.2^{t}$) while the sign holds, and halve at each overshoot, so
each weight finds its own scale within a few dozen steps, whatever the scale of its gradient. That
made Rprop one of the fastest full-batch methods for small networks of its time.

```algorithm
f_t = \eta^+ \text{ where } g_t\, g_{t-1} > 0, \quad \eta^- \text{ where } g_t\, g_{t-1} < 0, \quad 1 \text{ elsewhere}
    @ factor = torch.where(agreement > 0, eta_plus, torch.where(flipped, eta_minus, torch.ones_like(grad)))
s_t = \mathrm{clip}\big(f_t\, s_{t-1},\; s_{\min},\; s_{\max}\big), \quad s_0 = \texttt{lr}
    @ step_size.mul_(factor).clamp_(step_size_min, step_size_max)
g_t := 0 \text{ where } g_t\, g_{t-1} < 0  @ grad = grad.masked_fill(flipped, 0)
\theta_t = \theta_{t-1} - s_t\, \mathrm{sign}(g_t)  @ param.addcmul_(grad.sign(), step_size, value=-1)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $g_t, g_{t-1}$ | `grad`, `prev` | the gradient, and the previous one (zero where its sign flipped) |
| $s_t$ | `step_size` | every weight's own step size |
| $s_0$ | `lr` | the first step size of every weight: the only use of the learning rate |
| $s_{\min}, s_{\max}$ | `step_size_min`, `step_size_max` | the clip of the step sizes (`step_sizes`) |
| $f_t$ | `factor` | the factor on the step size |
| $\eta^-, \eta^+$ | `eta_minus`, `eta_plus` | the factors on a flip and on agreement (`etas`) |

## Why it breaks with mini-batches

Rprop reads the **sign** of one gradient, and compares it with the previous one. With full-batch
gradients both are exact, and a flip means the minimum lies between the two points. With mini-batch
gradients the sign is noisy: a weight whose true gradient is small compared to the noise flips sign
at random, about half the time, and its step size shrinks towards $s_{\min}$ for no reason.

Worse, the sign discards the *magnitudes* that would have averaged the noise away. Take a weight
that sees gradients $+0.1$ on nine mini-batches and $-0.9$ on the tenth: the true gradient is zero
and SGD, averaging, stays put; Rprop moves it $+s$ nine times and $-s$ once, a steady drift of
$0.8\,s$ per step in a direction no full gradient ever pointed. Hinton's
[lecture 6e](https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf) makes exactly
this point and then asks what part of Rprop survives. Its answer is [RMSprop](rmsprop.md): keep
Rprop's key property, a step whose size does not depend on the gradient's scale, but obtain it by
dividing by a *running average* of the gradient's magnitude, $g_t/\sqrt{v_t}$, instead of taking
$\mathrm{sign}(g_t) = g_t/|g_t|$ of a single one. The average of many mini-batches' magnitudes is
stable, so the normalisation no longer amplifies the noise, and the ratio is close to the sign when
the gradient is consistent and small when it is noise. What RMSprop dropped is the per-weight step
size adapted by sign agreement.

## Matching `torch.optim.Rprop`

Torch keeps the rule above, and two consequences of its state that are easy to miss:

* `lr` is only the **initial** step size $s_0$ of every weight. After the first step the learning
  rate is never read again: a learning-rate scheduler has no effect on Rprop.
* the first step has no previous gradient ($g_0 = 0$), so it is an "otherwise" step: every weight
  moves by exactly $s_0$ = `lr`, which is not clipped to $[s_{\min}, s_{\max}]$ until it is first
  multiplied.

State: the previous gradient and the step sizes, two tensors the size of the parameter (8 bytes per
`float32` parameter).
"""

from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check, check_length, check_passed_on, check_unpacks


class Rprop(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Rprop`.

    * `lr` is $s_0$ (default $10^{-2}$), every weight's first step (above); the rest is adaptive.
      Choose it of the order of the first change you would accept in a weight.
    * `etas` are $(\eta^-, \eta^+)$ (default $(0.5, 1.2)$, the paper's), the factors on a flip and on
      agreement; $0 < \eta^- < 1 < \eta^+$.
    * `step_sizes` are $(s_{\min}, s_{\max})$ (default $(10^{-6}, 50)$), the clip of every step size.
      $50$ is rarely reached; lower it to bound the largest move of a weight. As in torch they are not
      checked, only handed to `clamp_`: `None` leaves that side open, and a negative bound is taken.
    * `maximize` ascends the objective instead.
    * `foreach`, `capturable` and `differentiable` are stored as torch stores them (see
      [Adadelta](adadelta.md)).

    Rprop is meant for full-batch training (above); for mini-batches, use [RMSprop](rmsprop.md) or
    [Adam](adam.md).
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        # torch's one condition, read by index (too few `etas` is its `IndexError`); too many, which
        # torch finds only when its step unpacks them, are refused now with the same `ValueError`.
        check_length("etas", etas, 2, "(eta_minus, eta_plus)")
        check("etas", etas, lambda e: 0.0 < e[0] < 1.0 < e[1], "need 0 < etas[0] < 1 < etas[1]")
        # The clip is not checked by torch: its step unpacks it and hands both ends to `clamp_`, which
        # takes a negative end, an infinite one or `None` (no clip on that side), and with
        # $s_{\min} > s_{\max}$ sets every step size to $s_{\max}$. The same values are taken here,
        # with the same numbers; only the unpacking is checked now.
        check_unpacks("step_sizes", step_sizes, 2)
        for index, bound in enumerate(step_sizes):
            check_passed_on(f"step_sizes[{index}]", bound)
        defaults = dict(
            lr=lr,
            etas=tuple(etas),
            step_sizes=tuple(step_sizes),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The step count (a 0-d tensor, as torch keeps it), $g_0 = 0$ and $s_0$ = `lr` everywhere."""
        state["step"] = new_step_count(group, param)
        state["prev"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step_size"] = torch.full_like(param, learning_rate(group, param), memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Rprop step

        Compare signs, adapt the step sizes, move by the sign. The group's `lr` is not read here.
        """
        eta_minus, eta_plus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        step_size, prev = state["step_size"], state["prev"]
        advance(state)
        # $g_t\, g_{t-1}$: positive where the gradient kept its sign, negative where it flipped, zero
        # where either is zero. (torch takes its sign first; comparing the product itself decides the
        # same, with one operation less in the fast path's loop.)
        agreement = grad.mul(prev)
        flipped = agreement < 0
        # $$f_t \in \{\eta^+, \eta^-, 1\}$$
        # (`where`, not an assignment through a boolean index, which a sharded `DTensor` refuses; an
        # $\eta$ given as a one-element tensor broadcasts.)
        factor = torch.where(agreement > 0, eta_plus, torch.where(flipped, eta_minus, torch.ones_like(grad)))
        # $$s_t = \mathrm{clip}(f_t\, s_{t-1},\; s_{\min},\; s_{\max})$$
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        # After a flip: no move now, and a zero "previous gradient" for the next comparison.
        # $$g_t := 0 \text{ where } g_t\, g_{t-1} < 0$$
        grad = grad.masked_fill(flipped, 0)
        # $$\theta_t = \theta_{t-1} - s_t\, \mathrm{sign}(g_t)$$
        param.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
