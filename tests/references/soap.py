r"""
SOAP written out from the authors' published code, in float64.

Follows `soap.py` of https://github.com/nikhilvyas/SOAP at commit
a1e553530fde97d0e6b307d7c82ac6d38b072340 (`merge_dims=False`, `precondition_1d=False`,
`normalize_grads=False`, `correct_bias=True`, the defaults), operation by operation and in the same
order: the first step only collects statistics and takes `eigh`; later steps project with
`tensordot` over dimension 0, run Adam (`mul_`/`add_`, eps added to sqrt(v) before the folded bias
correction), project back, subtract, decay the updated weights, then project the first moment back,
update the statistics with `lerp_`, refresh the bases by one sorted power-iteration step and QR every
`precondition_frequency` Adam steps, and project the first moment in again (every step, as the authors
do, whether or not the basis changed).

Two differences, both of precision: the authors create the statistics with `torch.zeros` (the default
dtype) and run `eigh` and `qr` in `float32` whatever the parameters' dtype; here everything is in the
parameters' dtype, so that a float64 comparison measures the algorithm and not float32 rounding.
The state is kept under our names (`shampoo_stat_k`, `eigenbasis_k` for dimension k, absent where the
authors keep `[]`) so the harness can compare it.
"""

from itertools import chain

import torch


def project(grad, bases):
    for basis in bases:
        if basis is None:
            grad = grad.permute(list(range(1, grad.dim())) + [0])
        else:
            grad = torch.tensordot(grad, basis, dims=[[0], [0]])
    return grad


def project_back(grad, bases):
    for basis in bases:
        if basis is None:
            grad = grad.permute(list(range(1, grad.dim())) + [0])
        else:
            grad = torch.tensordot(grad, basis, dims=[[0], [1]])
    return grad


class SOAP(torch.optim.Optimizer):
    def __init__(self, params, lr=3e-3, betas=(0.95, 0.95), shampoo_beta=None, eps=1e-8, weight_decay=0.01,
                 precondition_frequency=10, max_precond_dim=10000, maximize=False):
        self.lists = {}
        super().__init__(params, dict(lr=lr, betas=betas, shampoo_beta=shampoo_beta, eps=eps,
                                      weight_decay=weight_decay, precondition_frequency=precondition_frequency,
                                      max_precond_dim=max_precond_dim, maximize=maximize))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                # The per-dimension lists, as the authors keep them; `publish` copies them into the state.
                aux = self.lists.setdefault(p, {})
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                if "eigenbases" not in aux:
                    aux["shampoo_stats"] = [
                        torch.zeros(size, size, dtype=grad.dtype) if grad.dim() > 1 and size <= group["max_precond_dim"]
                        else None
                        for size in grad.shape
                    ]
                    aux["eigenbases"] = None
                    self.update_preconditioner(grad, state, aux, group)
                    self.publish(state, aux)
                    continue

                grad_projected = project(grad, aux["eigenbases"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad_projected, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).add_(grad_projected.square(), alpha=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"] * (1.0 - beta2 ** state["step"]) ** 0.5 / (1.0 - beta1 ** state["step"])
                norm_grad = project_back(exp_avg / denom, aux["eigenbases"])
                p.add_(norm_grad, alpha=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
                self.update_preconditioner(grad, state, aux, group)
                self.publish(state, aux)

    @staticmethod
    def publish(state, aux):
        for name, matrices in (("shampoo_stat", aux["shampoo_stats"]), ("eigenbasis", aux["eigenbases"])):
            for k, matrix in enumerate(matrices):
                if matrix is not None:
                    state[f"{name}_{k}"] = matrix

    def update_preconditioner(self, grad, state, aux, group):
        beta_s = group["shampoo_beta"] if group["shampoo_beta"] is not None else group["betas"][1]
        if aux["eigenbases"] is not None:
            state["exp_avg"] = project_back(state["exp_avg"], aux["eigenbases"])
        for idx, statistic in enumerate(aux["shampoo_stats"]):
            if statistic is not None:
                others = [*chain(range(idx), range(idx + 1, grad.dim()))]
                statistic.lerp_(torch.tensordot(grad, grad, dims=[others, others]), 1 - beta_s)
        if aux["eigenbases"] is None:
            aux["eigenbases"] = [
                None if s is None else torch.flip(torch.linalg.eigh(s)[1], [1]) for s in aux["shampoo_stats"]
            ]
        if state["step"] > 0 and state["step"] % group["precondition_frequency"] == 0:
            aux["eigenbases"] = self.power_iteration_qr(state, aux)
        if state["step"] > 0:
            state["exp_avg"] = project(state["exp_avg"], aux["eigenbases"])

    @staticmethod
    def power_iteration_qr(state, aux):
        exp_avg_sq = state["exp_avg_sq"]
        final = []
        for ind, (m, o) in enumerate(zip(aux["shampoo_stats"], aux["eigenbases"])):
            if m is None:
                final.append(None)
                continue
            est_eig = torch.diag(o.T @ m @ o)
            sort_idx = torch.argsort(est_eig, descending=True)
            exp_avg_sq = exp_avg_sq.index_select(ind, sort_idx)
            o = o[:, sort_idx]
            q, _ = torch.linalg.qr(m @ o)
            final.append(q)
        state["exp_avg_sq"] = exp_avg_sq
        return final
