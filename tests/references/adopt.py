r"""
ADOPT written out from the official code: `iShohei220/adopt`, file `src/adopt/adopt.py`, commit
6468572b4b3688a2f056b796b071da540568520e (`_single_tensor_adopt`), in float64.

The official conventions kept: the first gradient of a parameter only sets $v = g^2$ and moves
nothing; after it, $m \leftarrow \beta_1 m + (1-\beta_1)\,\mathrm{clip}(g/\max(\sqrt v, \epsilon), c)$ with
$c$ = `clip_lambda(t)` and $t$ the number of steps taken before this one, $\theta \leftarrow \theta -
\eta m$, and only then $v \leftarrow \beta_2 v + (1-\beta_2) g^2$. L2 decay (the default) is added to
the gradient at every step, the first included; decoupled decay, $\theta \leftarrow \theta -
\eta\lambda\theta$, from the second step on. The official argument `decouple` is called
`decoupled_weight_decay` here, torch's name, so that the harness can hand the same configuration to
both. `step` is a number rather than the official 0-d tensor.
"""

import torch

from . import params_with_grads


class ADOPT(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.9999), eps=1e-6, clip_lambda=lambda t: t**0.25,
                 weight_decay=0.0, decoupled_weight_decay=False, maximize=False):
        self.clip_lambda = clip_lambda
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in params_with_grads(self):
            b1, b2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            t = state["step"]
            if wd and not group["decoupled_weight_decay"]:
                g = g + wd * p
            state["step"] = t + 1
            if t == 0:
                state["exp_avg_sq"] = g * g
                continue
            if wd and group["decoupled_weight_decay"]:
                p.sub_(lr * wd * p)
            normalised = g / torch.clamp(state["exp_avg_sq"].sqrt(), min=group["eps"])
            if self.clip_lambda is not None:
                normalised = normalised.clamp(-self.clip_lambda(t), self.clip_lambda(t))
            state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * normalised
            p.sub_(lr * state["exp_avg"])
            state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * g * g
