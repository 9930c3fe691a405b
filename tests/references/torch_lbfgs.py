r"""
`torch.optim.LBFGS` under the verification harness, with two adaptations that change no arithmetic:

* the harness splits its parameters into two groups; when the groups agree on every option they are
  merged into torch's one group (torch refuses several), in the same order;
* torch flattens each gradient with `view(-1)`, which raises for a non-contiguous gradient (the harness's
  transposed matrix has one). `reshape(-1)` gives the same values.
"""

import torch


class LBFGS(torch.optim.LBFGS):
    def __init__(self, params, **options):
        groups = list(params)
        if groups and isinstance(groups[0], dict):
            extra = [{k: v for k, v in g.items() if k != "params"} for g in groups]
            if any(e != extra[0] for e in extra):
                raise ValueError("the harness's groups differ in their options")
            groups = [{"params": [p for g in groups for p in g["params"]], **extra[0]}]
        super().__init__(groups, **options)

    def _gather_flat_grad(self):
        views = []
        for p in self._params:
            grad = p.new(p.numel()).zero_() if p.grad is None else p.grad
            if torch.is_complex(grad):
                grad = torch.view_as_real(grad)
            views.append(grad.reshape(-1))
        return torch.cat(views, 0)
