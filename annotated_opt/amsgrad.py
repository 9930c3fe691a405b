r"""
# AMSGrad: Adam with a memory of its largest second moment

[Reddi, Kale & Kumar, 2018](https://openreview.net/forum?id=ryQu7f-RZ) showed that [Adam](adam.md)
can fail to converge even on a convex problem. The culprit is the moving average $v_t$: after a rare
large gradient, $v_t$ forgets it within about $1/(1-\beta_2)$ steps, the step size grows back, and the
frequent small gradients pointing the wrong way win. Their counter-example is a one-dimensional
linear loss where Adam drifts to the worst end of the interval; [the experiment](counterexample.md)
runs it, and the plot on this page shows the two trajectories.

The fix changes one line. Keep the largest $v$ seen so far and divide by that:

$$\textcolor{orange}{v^{\max}_t = \max\left(v^{\max}_{t-1},\, v_t\right)} \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\textcolor{orange}{v^{\max}_t} / (1-\beta_2^t)} + \epsilon}.$$

```algorithm
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2
    @ adam.py: exp_avg.lerp_(grad, 1 - beta1)
\textcolor{orange}{v^{\max}_t = \max(v^{\max}_{t-1}, v_t)}
    @ adam.py: maximum_into(state["max_exp_avg_sq"], exp_avg_sq, group["differentiable"])
\theta_t = \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\textcolor{orange}{v^{\max}_t} / (1 - \beta_2^t)} + \epsilon)
    @ adam.py: param.addcdiv_
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $v^{\max}_t$ | `amsgrad` | the running maximum of $v_t$, which the denominator uses; kept when `amsgrad` is on |

The other symbols are [Adam](adam.md)'s, whose code computes $v^{\max}_t$ (its state key is
max_exp_avg_sq, next to $v_t$'s exp_avg_sq; see "Where the code is" below).

## Why the maximum gives convergence

The guarantee is about *regret* in online convex optimisation: the loss accumulated along the way,
$\sum_{t \le T} f_t(\theta_t)$, minus that of the best fixed point in hindsight. The standard proof
for adaptive methods writes each step's progress towards the optimum $\theta^*$ as a difference of
squared distances measured in the metric $\sqrt{v_t}/\eta_t$ (coordinate-wise), and sums over $t$.
The sum telescopes, and leaves something bounded by the diameter of the feasible set, only if the
metric never shrinks:
$$\Gamma_t = \frac{\sqrt{v_t}}{\eta_t} - \frac{\sqrt{v_{t-1}}}{\eta_{t-1}} \succeq 0
  \quad\text{for every } t,$$
that is, if every coordinate's effective learning rate $\eta_t/\sqrt{v_t}$ never grows. SGD with a
decaying $\eta_t$ satisfies it, and so does [Adagrad](adagrad.md), whose sum only grows. Adam does
not: $v_t$ falls after every large gradient, $\Gamma_t$ turns negative, and the original convergence
proof of Adam had exactly this gap; the counter-example shows that it is not a gap in the proof only.
With the running maximum, $\sqrt{v^{\max}_t}$ never falls, so with $\eta_t = \eta/\sqrt{t}$ the
condition holds by construction. The remaining terms are bounded as for Adagrad, and the paper's
theorem (which also asks $\beta_1/\sqrt{\beta_2} < 1$ and lets $\beta_1$ decay) gives a regret of
$O(\sqrt{T})$: the average regret, $R(T)/T$, goes to zero.

The price is one more tensor per parameter, and a denominator that cannot come down: a single
outlier gradient early in training lowers that coordinate's step for the rest of the run.

## Which maximum

Like `torch.optim.Adam(amsgrad=True)`, the maximum is taken over the *uncorrected* $v_t$, and the
bias correction is applied afterwards. (The paper's algorithm has no bias correction at all; other
implementations take the maximum of $\hat v_t$. The three differ in the first few thousand steps.)
With torch's order the effective learning rate is *not* monotone in the first steps: if the largest
gradient comes at $t = 1$, $v^{\max}_t$ stays at $(1-\beta_2)\,g_1^2$, while the correction divides it by
$1-\beta_2^t$, which grows from $10^{-3}$ to $0.63$ over the first 1000 steps (for
$\beta_2 = 0.999$). The corrected denominator then falls from $|g_1|$ to $0.04\,|g_1|$, and the step
grows 25-fold. The maximum of $\hat v_t$ would stay at $g_1^2$. Once $\beta_2^t$ is negligible, all
three forms are monotone, as the proof requires.

## Where the code is

`torch.optim.Adam` has AMSGrad as a flag, `amsgrad`, read per parameter group: one group may keep the
maximum while another does not. So the maximum lives in [Adam](adam.md) itself, in its
`second_moment` (and the extra tensor in its `init_state`), guarded by the group's flag; this class is
Adam with the flag on by default, and `Adam(amsgrad=True)` builds one.
"""

from typing import Any

from .adam import Adam


class AMSGrad(Adam):
    r"""
    ## Hyper-parameters

    Those of [Adam](adam.md), with `amsgrad=True` by default (`False` gives Adam back, which is how
    [RAdam](radam.md) and others reuse this class). `decoupled_weight_decay=True` gives AdamW with
    AMSGrad, i.e. `torch.optim.AdamW(amsgrad=True)`.

    Adam's values carry over. The denominator is never below Adam's $v_t$ for the same history, so
    the steps are shorter, increasingly so late in training; if it learns visibly slower than Adam,
    a somewhat larger $\eta$ is the first thing to try. Gradient clipping matters more than usual,
    since one unclipped spike sets the denominator for good.
    """

    # Tells [Adam](adam.md)'s constructor that `amsgrad=True` is meaningful here.
    supports_amsgrad = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: Any = 0.0, amsgrad: bool = True, **kwargs: Any) -> None:
        r"""
        Adam's positional arguments in torch's order, so that `AMSGrad(params, 1e-3, (0.9, 0.999))`
        reads like `torch.optim.Adam`; every other option passes through to Adam.
        """
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)
