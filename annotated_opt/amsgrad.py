r"""
# AMSGrad: Adam with a memory of its largest second moment

[Reddi, Kale & Kumar, 2018](https://openreview.net/forum?id=ryQu7f-RZ) showed that [Adam](adam.md)
can fail to converge even on a convex problem. The culprit is the moving average $v_t$: after a rare
large gradient, $v_t$ forgets it within about $1/(1-\beta_2)$ steps, the step size grows back, and the
frequent small gradients pointing the wrong way win. Their counter-example is a one-dimensional
linear loss where Adam drifts to the worst end of the interval; [the experiment](adam_counterexample.md)
runs it, and the plot on this page shows the two trajectories.

The fix changes one line. Keep the largest $v$ seen so far and divide by that:

$$\textcolor{orange}{v^{\max}_t = \max\left(v^{\max}_{t-1},\, v_t\right)} \qquad
  \theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\textcolor{orange}{v^{\max}_t} / (1-\beta_2^t)} + \epsilon}.$$

The effective step size $\eta / \sqrt{v^{\max}_t}$ can then only shrink, which is what the
convergence proof needs. Like `torch.optim.Adam(amsgrad=True)`, the maximum is taken over the
*uncorrected* $v_t$ and the bias correction is applied afterwards. (The paper's algorithm has no bias
correction at all; other implementations take the maximum of $\hat v_t$. The three differ in the first
few hundred steps.)

Everything else is inherited from [Adam](adam.md): this class overrides only `second_moment`.
"""

from typing import Any

import torch

from .adam import Adam


class AMSGrad(Adam):
    r"""
    ## Hyper-parameters

    Those of [Adam](adam.md), with `amsgrad=True` by default (`False` gives Adam back, which is how
    [RAdam](radam.md) and others reuse this class). `decoupled_weight_decay=True` gives AdamW with
    AMSGrad, i.e. `torch.optim.AdamW(amsgrad=True)`.
    """

    supports_amsgrad = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: Any = 0.0, amsgrad: bool = True, **kwargs: Any) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        super().init_state(state, group, param)
        if group["amsgrad"]:
            # $v^{\max}_0 = 0$
            state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def second_moment(self, state: dict[str, Any], group: dict[str, Any]) -> torch.Tensor:
        exp_avg_sq = super().second_moment(state, group)
        if not group["amsgrad"]:
            return exp_avg_sq
        # $$\textcolor{orange}{v^{\max}_t = \max\left(v^{\max}_{t-1},\, v_t\right)}$$
        max_exp_avg_sq = state["max_exp_avg_sq"]
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        return max_exp_avg_sq
