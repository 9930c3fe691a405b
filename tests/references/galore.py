r"""
GaLore's AdamW written out from the authors' published code, in float64.

Follows `galore_torch/adamw.py` and `galore_torch/galore_projector.py` of
https://github.com/jiaweizzhao/GaLore at commit a6bc1650984b1c090a4e108d7c0e3109ee7ad844 (the files
released as `galore-torch` 1.0), with `proj_type="std"`: the step count starts at 0 and the projector
takes a new SVD when the count *before* this step is a multiple of `update_proj_gap`; a tall gradient
(rows >= columns) is multiplied by the first `rank` rows of Vh transposed, a wide one by the first
`rank` columns of U from the left; Adam in the Hugging Face form (`mul_`/`add_`, eps added to sqrt(v),
bias correction folded into the step size); the step projected back by the side its shape says, times
`scale`; then `p.add_(p, alpha=-lr * weight_decay)`.

Differences, each of form and none of arithmetic: the authors compute the SVD in float32 whatever the
parameter's dtype, here in the parameter's own, so that a float64 comparison measures the algorithm and
not float32 rounding (the package itself is compared, looser, in `tests/test_galore.py`); they apply
GaLore to the parameters of the groups that hold a `rank`, here to every non-empty matrix (our rule;
other tensors take the same AdamW without projection); `maximize` negates the gradient (the authors
have no such option); the projector's matrix is published as the state entry `projection`.
"""

import math

import torch


class Projector:
    def __init__(self, rank, update_proj_gap, scale):
        self.rank = rank
        self.update_proj_gap = update_proj_gap
        self.scale = scale
        self.ortho_matrix = None

    def project(self, full_rank_grad, iteration):
        if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
            if self.ortho_matrix is None or iteration % self.update_proj_gap == 0:
                _, _, vh = torch.linalg.svd(full_rank_grad, full_matrices=False)
                self.ortho_matrix = vh[:self.rank, :]
            return torch.matmul(full_rank_grad, self.ortho_matrix.t())
        if self.ortho_matrix is None or iteration % self.update_proj_gap == 0:
            u, _, _ = torch.linalg.svd(full_rank_grad, full_matrices=False)
            self.ortho_matrix = u[:, :self.rank]
        return torch.matmul(self.ortho_matrix.t(), full_rank_grad)

    def project_back(self, low_rank_grad):
        if low_rank_grad.shape[0] >= low_rank_grad.shape[1]:
            full_rank_grad = torch.matmul(low_rank_grad, self.ortho_matrix)
        else:
            full_rank_grad = torch.matmul(self.ortho_matrix, low_rank_grad)
        return full_rank_grad * self.scale


class GaLore(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, rank=128,
                 update_proj_gap=200, scale=0.25, maximize=False):
        self.projectors = {}
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
                                      update_proj_gap=update_proj_gap, scale=scale, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                projected = group["rank"] is not None and p.dim() == 2 and p.numel() > 0
                if projected:
                    projector = self.projectors.setdefault(
                        p, Projector(group["rank"], group["update_proj_gap"], group["scale"]))
                    grad = projector.project(grad, state["step"])
                    state["projection"] = projector.ortho_matrix
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"] * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
                norm_grad = exp_avg / denom
                if projected:
                    norm_grad = projector.project_back(norm_grad)
                p.add_(norm_grad, alpha=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
