r"""
SAM and ASAM written out directly from the equations, over `torch.optim`'s SGD or Adam.

One function of the step does all of it, in the order of the paper: the gradient at $w$ is already in
`p.grad`; $\epsilon = \rho\, T^2 g / \lVert T g\rVert$ with one norm over every parameter ($T = |w|$ for
ASAM, $1$ for SAM, and $g$ negated for a maximising group); move to $w + \epsilon$; recompute the
gradient there with the closure; put $w$ back; take the base step. The base is `torch.optim`'s own,
so `state` is torch's state and the harness compares it with ours.
"""

import torch


class TwoPassSAM:
    """Mixed into a `torch.optim` class: its `step` becomes the SAM step, its own step the base step."""

    def setup(self, rho: float, adaptive: bool) -> None:
        self.rho = rho
        self.adaptive = adaptive

    @torch.no_grad()
    def step(self, closure):
        gradients = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    g = -p.grad if group.get("maximize", False) else p.grad
                    gradients.append((p, g, p.abs() if self.adaptive else torch.ones_like(p)))

        norm = torch.sqrt(sum(((t * g) ** 2).sum() for p, g, t in gradients))
        saved = [p.clone() for p, _, _ in gradients]
        for p, g, t in gradients:
            p.add_(self.rho * t * t * g / (norm + 1e-12))

        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        with torch.enable_grad():
            loss = closure()

        for (p, _, _), w in zip(gradients, saved):
            p.copy_(w)
        super().step()
        return loss


class SAMOverSGD(TwoPassSAM, torch.optim.SGD):
    def __init__(self, params, rho=0.05, adaptive=False, **kwargs):
        super().__init__(params, **kwargs)
        self.setup(rho, adaptive)


class SAMOverAdam(TwoPassSAM, torch.optim.Adam):
    def __init__(self, params, rho=0.05, adaptive=False, **kwargs):
        super().__init__(params, **kwargs)
        self.setup(rho, adaptive)


def SAM(params, base="SGD", rho=0.05, adaptive=False, **kwargs):
    """The reference for a registry configuration: `base` names the torch optimizer underneath."""
    return {"SGD": SAMOverSGD, "Adam": SAMOverAdam}[base](params, rho=rho, adaptive=adaptive, **kwargs)
