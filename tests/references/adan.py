r"""
Adan written out from the official code: `sail-sg/Adan`, file `adan.py`, commit
2c65beaf400775753b155da4082c3819fea689b9 (`_single_tensor_adan` and `Adan.step`), in float64.

The official conventions kept: `betas` weight the *old* value ($m = \beta_1 m + (1-\beta_1) g$, one
minus the paper's $\beta$s); every average starts at zero and is bias-corrected; at the first step the
previous gradient is the current one, so the first difference is zero; the corrected gradient is
$g + \beta_2 (g - g_{\text{prev}})$; the step is $m/c_1 + \beta_2\,\delta/c_2$ over
$\sqrt{n}/\sqrt{c_3} + \epsilon$; the decay divides by $1 + \eta\lambda$ after the step, or
(`no_prox=True`) multiplies by $1 - \eta\lambda$ before it. State keys are the official ones.

Two departures, both conventions of the harness rather than of the algorithm: the step count is kept
per parameter (the official code counts per group, which differs only for a parameter that misses
gradients), and `maximize` (absent from the official code) negates the gradient. The official global
gradient clipping (`max_grad_norm`, off by default) is left out.
"""

import torch

from . import params_with_grads


class Adan(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, no_prox=False,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, no_prox=no_prox,
                                      maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in params_with_grads(self):
            b1, b2, b3 = group["betas"]
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            if not state:
                state["step"] = 0
                for key in ("exp_avg", "exp_avg_sq", "exp_avg_diff"):
                    state[key] = torch.zeros_like(p)
            state["step"] += 1
            k = state["step"]
            previous = g if k == 1 else -state["neg_pre_grad"]
            diff = g - previous
            state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * g
            state["exp_avg_diff"] = b2 * state["exp_avg_diff"] + (1 - b2) * diff
            nesterov = g + b2 * diff
            state["exp_avg_sq"] = b3 * state["exp_avg_sq"] + (1 - b3) * nesterov * nesterov
            denominator = state["exp_avg_sq"].sqrt() / (1 - b3**k) ** 0.5 + eps
            update = (state["exp_avg"] / (1 - b1**k) + b2 * state["exp_avg_diff"] / (1 - b2**k)) / denominator
            if group["no_prox"]:
                p.copy_(p * (1 - lr * wd) - lr * update)
            else:
                p.copy_((p - lr * update) / (1 + lr * wd))
            state["neg_pre_grad"] = -g.clone()
