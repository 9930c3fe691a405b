r"""
MARS (its AdamW form, `mars_type="mars-adamw"`, approximate: `is_approx=True`) written out from the
official code: `AGI-Arena/MARS`, file `MARS/optimizers/mars.py`, commit
4831e28eba863a4e69d7e9474ff8e73bc1b410fe (`update_fn` and `MARS.step`), in float64.

The official conventions kept: a parameter with exactly two dimensions (or any, with `optimize_1d`)
takes $c = g + \gamma\frac{\beta_1}{1-\beta_1}(g - g_{\text{prev}})$ with $g_{\text{prev}} = 0$ at
first, divided by its norm when that exceeds one, averaged into $m$ and (squared) into $v$, and the
step $\theta \leftarrow \theta - \eta\,(\lambda\theta + m/((\sqrt{v}/\sqrt{c_2} + \epsilon)\,c_1))$,
with the running maximum of $v$ under `amsgrad`; any other parameter takes that AdamW step on $g$
itself with `betas_1d`, decay `weight_decay_1d` and learning rate $\eta \cdot$ `lr_1d`/`lr` (the
constructor's `lr`). `gamma`, `eps`, `optimize_1d`, `lr_1d`, `betas_1d` and `weight_decay_1d` are the
constructor's, for every group, as in the official code. The previous gradient is a copy (the
official code keeps the gradient tensor itself, which is the same while nothing writes into it);
`maximize` (absent from the official code) negates the gradient.
"""

import math

import torch

from . import params_with_grads


class MARS(torch.optim.Optimizer):
    def __init__(self, params, lr=3e-3, betas=(0.95, 0.99), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 gamma=0.025, optimize_1d=False, lr_1d=3e-3, betas_1d=(0.9, 0.95), weight_decay_1d=0.1,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))
        self.eps, self.gamma, self.optimize_1d = eps, gamma, optimize_1d
        self.lr_1d_factor, self.betas_1d, self.weight_decay_1d = lr_1d / lr, betas_1d, weight_decay_1d

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in params_with_grads(self):
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p),
                             last_grad=torch.zeros_like(p))
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            if self.optimize_1d or p.dim() == 2:
                b1, b2 = group["betas"]
                lr, wd = group["lr"], group["weight_decay"]
                c = g + self.gamma * (b1 / (1 - b1)) * (g - state["last_grad"])
                norm = torch.linalg.vector_norm(c)
                if norm > 1:
                    c = c / norm
            else:
                (b1, b2), c = self.betas_1d, g
                lr, wd = group["lr"] * self.lr_1d_factor, self.weight_decay_1d
            state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * c
            state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * c * c
            second = state["exp_avg_sq"]
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.maximum(state["max_exp_avg_sq"], second)
                second = state["max_exp_avg_sq"]
            denominator = (second.sqrt() / math.sqrt(1 - b2**t) + self.eps) * (1 - b1**t)
            p.sub_(lr * (wd * p + state["exp_avg"] / denominator))
            state["last_grad"] = g.clone()
