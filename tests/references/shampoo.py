r"""
Shampoo written out from the reference implementation's semantics, in float64.

Follows `DistributedShampoo` of https://github.com/facebookresearch/optimizers at commit
f60660661194de26d3ee78bae6d15820ff8e583d: `distributed_shampoo/distributed_shampoo.py`
(`_compute_search_directions`: L2 or decoupled decay, factor and grafting updates, the filtered gradient
with `beta3 = beta1` and bias correction `1 - beta1**t`, grafting by `||P_graft|| / (||P|| + 1e-16)`,
the grafted method before `start_preconditioning_step`, `perform_amortized_computation` when
`t % precondition_frequency == 0 and t > start` or `t == start`),
`preconditioner/shampoo_preconditioner_list.py` (factors `beta2 * F + w * G G^T` with `w = 1` for
`beta2 == 1`, else `1 - beta2` and bias correction `1 - beta2**t`; inverse factors start as identities),
`preconditioner/matrix_functions.py` (`matrix_inverse_root` through `eigh(A + eps I)`, the smallest
eigenvalue shifted to `eps` when below it, `Q diag(L^(-1/root)) Q^T`) and
`preconditioner/adagrad_preconditioner_list.py` (the grafting accumulator, `sqrt(V / bc2) + eps`).

Configuration and shape handling are ours, as the page states: a parameter of two or more dimensions is
the matrix (first dimension, the rest), blocked by explicit index ranges; vectors and scalars take the
grafted step (or the filtered gradient), and the step count is per parameter.
"""

import torch


def inverse_fourth_root(a, eps):
    eye = torch.eye(a.shape[0], dtype=a.dtype)
    lam, q = torch.linalg.eigh(a + eps * eye)
    if lam.numel() and lam.min().item() < eps:
        lam = lam - lam.min().item() + eps
    return q * lam.pow(-1.0 / 4).unsqueeze(0) @ q.T


class Shampoo(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, betas=(0.9, 1.0), eps=1e-12, weight_decay=0.0, max_preconditioner_dim=1024,
                 precondition_frequency=1, start_preconditioning_step=None, grafting_beta2=0.999, grafting_eps=1e-10,
                 maximize=False, decoupled_weight_decay=True):
        if start_preconditioning_step is None:
            start_preconditioning_step = precondition_frequency
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, b=max_preconditioner_dim,
                                      freq=precondition_frequency, start=start_preconditioning_step,
                                      gb2=grafting_beta2, geps=grafting_eps, maximize=maximize,
                                      decoupled=decoupled_weight_decay))

    @staticmethod
    def ranges(n, b):
        return [(i, min(i + b, n)) for i in range(0, n, b)] or [(0, 0)]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = (-p.grad if group["maximize"] else p.grad).clone()
                state = self.state[p]
                matrix = p.dim() >= 2
                shape2 = (p.shape[0], p.numel() // p.shape[0] if p.shape[0] else 0) if matrix else None
                rows = self.ranges(shape2[0], group["b"]) if matrix else []
                cols = self.ranges(shape2[1], group["b"]) if matrix else []
                blocks = [(r, c) for r in rows for c in cols]
                if not state:
                    state["step"] = 0
                    if beta1 > 0:
                        state["filtered_grad"] = torch.zeros_like(p)
                    if group["gb2"] is not None:
                        state["grafting_sq"] = torch.zeros_like(p)
                    if matrix:
                        for k, ((r0, r1), (c0, c1)) in enumerate(blocks):
                            state[f"left_{k}"] = torch.zeros(r1 - r0, r1 - r0, dtype=p.dtype)
                            state[f"right_{k}"] = torch.zeros(c1 - c0, c1 - c0, dtype=p.dtype)
                            state[f"left_inv_root_{k}"] = torch.eye(r1 - r0, dtype=p.dtype)
                            state[f"right_inv_root_{k}"] = torch.eye(c1 - c0, dtype=p.dtype)
                wd = group["weight_decay"]
                if wd != 0 and not group["decoupled"]:
                    g = g + wd * p
                state["step"] += 1
                t = state["step"]
                # grafting accumulator
                if group["gb2"] is not None:
                    gb2 = group["gb2"]
                    v = state["grafting_sq"]
                    if gb2 != 1.0:
                        v.mul_(gb2)
                    v.add_(g * g, alpha=1.0 if gb2 == 1.0 else 1 - gb2)
                    gbc2 = 1 - gb2**t if gb2 < 1.0 else 1.0
                # filtered gradient
                if beta1 != 0:
                    state["filtered_grad"].lerp_(g, 1 - beta1)
                    gbar = state["filtered_grad"] / (1.0 - beta1 * beta1 ** (t - 1))
                else:
                    gbar = g
                graft = None
                if group["gb2"] is not None:
                    graft = gbar / ((state["grafting_sq"] / gbc2).sqrt() + group["geps"])
                if matrix:
                    g2, gbar2 = g.reshape(shape2), gbar.reshape(shape2)
                    graft2 = graft.reshape(shape2) if graft is not None else None
                    bc2 = 1 - beta2**t if beta2 < 1.0 else 1.0
                    w = 1.0 if beta2 == 1.0 else 1 - beta2
                    amortize = (t % group["freq"] == 0 and t > group["start"]) or t == group["start"]
                    direction = torch.empty_like(gbar2)
                    for k, ((r0, r1), (c0, c1)) in enumerate(blocks):
                        gb = g2[r0:r1, c0:c1]
                        for side, outer in (("left", gb @ gb.T), ("right", gb.T @ gb)):
                            if beta2 != 1.0:
                                state[f"{side}_{k}"].mul_(beta2)
                            state[f"{side}_{k}"].add_(outer, alpha=w)
                            if amortize:
                                state[f"{side}_inv_root_{k}"] = inverse_fourth_root(state[f"{side}_{k}"] / bc2,
                                                                                    group["eps"])
                        if graft2 is not None and t < group["start"]:
                            direction[r0:r1, c0:c1] = graft2[r0:r1, c0:c1]
                            continue
                        pb = state[f"left_inv_root_{k}"] @ gbar2[r0:r1, c0:c1] @ state[f"right_inv_root_{k}"]
                        if graft2 is not None:
                            pb = pb * (graft2[r0:r1, c0:c1].norm() / (pb.norm() + 1e-16))
                        direction[r0:r1, c0:c1] = pb
                    direction = direction.reshape(p.shape)
                else:
                    direction = graft if graft is not None else gbar
                if wd != 0 and group["decoupled"]:
                    direction = direction + wd * p
                p.add_(direction, alpha=-group["lr"])
