r"""
AdEMAMix written out from the official code: `apple/ml-ademamix`, file `pytorch/ademamix.py`, commit
c3d73c09f1287e5c33b95189bb0aa7de0a5a7667 (`AdEMAMix.step` and its two warm-up schedulers), in float64.

The official conventions kept: Adam's bias-corrected fast average and second moment, a slow average
that is not bias-corrected, the step $\eta\,\big((\hat m_1 + \alpha(t) m_2)/(\sqrt{\hat v} + \epsilon)
+ \lambda\theta\big)$; $\alpha(t)$ linear from $0$ over `alpha_warmup` steps; $\beta_3(t)$ from $\beta_1$
with a half-life $\ln\frac12/\ln(\beta + 10^{-8}) - 1$ interpolated linearly over `beta3_warmup`
steps and mapped back by $\beta = \frac12^{1/(h+1)}$; both from the parameter's own step count. With
$\beta_1 = 0$ no fast average is kept (`None`), as in the official code.

The fast average is stored as `exp_avg` (torch's and Adam's name) where the official code says
`exp_avg_fast`; `maximize` (absent from the official code) negates the gradient.
"""

import math

import torch

from . import params_with_grads


def scheduled_alpha(step, alpha_end, warmup):
    if warmup is None or step >= warmup:
        return alpha_end
    a = step / warmup
    return (1 - a) * 0.0 + a * alpha_end


def scheduled_beta3(step, beta_end, beta_start, warmup):
    if warmup is None or step >= warmup:
        return beta_end
    a = step / warmup
    half_life = (1 - a) * (math.log(0.5) / math.log(beta_start + 1e-8) - 1) \
        + a * (math.log(0.5) / math.log(beta_end + 1e-8) - 1)
    return math.pow(0.5, 1 / (half_life + 1))


class AdEMAMix(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=2.0, beta3_warmup=None,
                 alpha_warmup=None, eps=1e-8, weight_decay=0.0, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, alpha=alpha, beta3_warmup=beta3_warmup,
                                      alpha_warmup=alpha_warmup, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in params_with_grads(self):
            b1, b2, b3_end = group["betas"]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p) if b1 != 0 else None,
                             exp_avg_slow=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            state["step"] += 1
            t = state["step"]
            alpha = scheduled_alpha(t, group["alpha"], group["alpha_warmup"])
            b3 = scheduled_beta3(t, b3_end, b1, group["beta3_warmup"])
            if b1 != 0:
                state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
                fast = state["exp_avg"]
            else:
                fast = g
            state["exp_avg_slow"] = b3 * state["exp_avg_slow"] + (1 - b3) * g
            state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
            denominator = state["exp_avg_sq"].sqrt() / math.sqrt(1 - b2**t) + group["eps"]
            update = (fast / (1 - b1**t) + alpha * state["exp_avg_slow"]) / denominator
            p.sub_(group["lr"] * (update + group["weight_decay"] * p))
