r"""
SAM and ASAM written out directly from the equations, over `torch.optim`'s SGD or Adam.

One function of the step does all of it, in the order of the paper: the gradient $g$ at $w$ (computed
by the closure unless it is already there); $\epsilon = \rho\, T^2 g / (N + 10^{-12})$ with one norm
$N = \lVert T g\rVert$ over every parameter ($T = |w|$ for ASAM, $1$ for SAM, and $g$ negated for a
maximising group); move to $w + \epsilon$; recompute the gradient there with the closure; put $w$ back;
take the base step; clear the gradients. Complex parameters are handled as their real views. The base is
`torch.optim`'s own, so `state` is torch's state and the harness compares it with ours.
"""

import torch


def real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


class TwoPassSAM:
    """Mixed into a `torch.optim` class: its `step` becomes the SAM step, its own step the base step."""

    def setup(self, rho: float, adaptive: bool) -> None:
        self.rho = rho
        self.adaptive = adaptive

    def clear_gradients(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self, closure):
        loss = None
        if all(p.grad is None for group in self.param_groups for p in group["params"]):
            with torch.enable_grad():
                loss = closure()

        pairs = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    g = -p.grad if group.get("maximize", False) else p.grad
                    pairs.append((p, real(p), real(g)))
        if not pairs:
            self.clear_gradients()
            return loss

        norms = [torch.linalg.vector_norm(w.abs() * g if self.adaptive else g) for _, w, g in pairs]
        norm = torch.linalg.vector_norm(torch.stack(norms))
        saved = [w.clone() for _, w, _ in pairs]
        for _, w, g in pairs:
            epsilon = g * (self.rho / (norm + 1e-12))
            if self.adaptive:
                epsilon = epsilon * w * w
            w.add_(epsilon)

        self.clear_gradients()
        with torch.enable_grad():
            loss = closure()
        for (_, w, _), original in zip(pairs, saved):
            w.copy_(original)
        super().step()
        self.clear_gradients()
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
