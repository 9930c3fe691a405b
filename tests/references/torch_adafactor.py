r"""
`torch.optim.Adafactor`, unchanged, except that zero-size parameters are kept out of its step.

torch computes a parameter's RMS as `norm / numel ** 0.5` in Python, which raises `ZeroDivisionError` for
a parameter with no elements. Such a parameter has nothing to update, so hiding its gradient for the
duration of the step changes nothing else: every other parameter goes through torch's own code.
"""

import torch


class Adafactor(torch.optim.Adafactor):
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        empty = [p for group in self.param_groups for p in group["params"] if p.numel() == 0 and p.grad is not None]
        grads = [p.grad for p in empty]
        for p in empty:
            p.grad = None
        try:
            super().step()
        finally:
            for p, grad in zip(empty, grads):
                p.grad = grad
        return loss
