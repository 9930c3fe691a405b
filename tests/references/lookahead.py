r"""
Lookahead written out directly from the paper's Algorithm 1, over `torch.optim`'s Adam or SGD.

The slow weights are copies of the weights when the wrapper is built; after every $k$-th base step,
$\phi \leftarrow \phi + \alpha(\theta - \phi)$ and $\theta \leftarrow \phi$ for every parameter
(complex ones as their real views). The
base's `param_groups` are reused so a scheduler drives it; `state` holds only the slow weights, under
the same key as ours, so the harness compares them.
"""

from collections import defaultdict

import torch


def real(tensor):
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


class Lookahead(torch.optim.Optimizer):
    def __init__(self, params, base="Adam", k=5, alpha=0.5, **kwargs):
        self.inner = getattr(torch.optim, base)(params, **kwargs)
        self.k, self.alpha, self.steps = k, alpha, 0
        super().__init__(self.inner.param_groups, self.inner.defaults)
        self.param_groups = self.inner.param_groups
        self.state = defaultdict(dict)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["slow_param"] = real(p).detach().clone()

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.inner.step(closure)
        self.steps += 1
        if self.steps % self.k == 0:
            for p, state in self.state.items():
                slow = state["slow_param"]
                slow.lerp_(real(p), self.alpha)
                real(p).copy_(slow)
        return loss
