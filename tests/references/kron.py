r"""
PSGD Kron written out from the package's published code, in float64.

Follows `kron_torch/kron.py` of https://github.com/evanatyourservice/kron_torch at commit
7a725ea4007ec1d22e4c46347a18f224260116ed (released as `kron-torch` 0.3.3) with its defaults
(`merge_dims=True`, `momentum_into_precond_update=True`, `memory_save_mode=None`): tensors of more than
two dimensions merged into the squarer matrix; the momentum with `mul_`/`add_` and debiased; the
update schedule as an exponential anneal with a flat start, drawn by a counter that resets when it
reaches 1/p; the einsum expressions of `_init_Q_exprs`; the probe `G += sqrt(eps32) * mean|G| * V` added in place to
the debiased momentum, which is then preconditioned; `_lb`'s bound; the RMS clip to 1.1; the decay
`pre_grad + wd * p` for tensors of two or more dimensions.

Differences: everything in float64 (the package's default `precond_dtype` is float32, and its
`_solve_triangular_right` solves in float32 whatever it is given), so that a float64 comparison measures
the algorithm; no `torch.compile`; the noise V from a generator seeded with the parameter's step count,
drawn in float32, rather than from torch's global generator (RNG control: the package itself is compared with its global
generator driven the same way in `tests/test_kron.py`); the schedule's counter kept per parameter (the
package keeps one for the optimizer: the same when every parameter has a gradient at every step);
scalars and empty tensors, on which the package fails (`permute` of a 0-d tensor, an inf-norm of
nothing), are a one-element diagonal and left alone; `maximize` negates the gradient; the state is
published under the names `preconditioner_k`, `steps_since_update`; the factors are balanced before every
update, where the package balances when `random.Random(42)` draws below 0.01 on an update step: balancing
rescales the factors without changing their product or any later step (`tests/test_kron.py` shows it),
but the factors themselves, which the comparison reads, differ.
"""

import math
import string

import torch

LETTERS = string.ascii_lowercase + string.ascii_uppercase


def merged_shape(shape):
    if len(shape) <= 2:
        return list(shape)
    shape1 = [math.prod(shape[:-1]), shape[-1]]
    shape2 = [shape[0], math.prod(shape[1:])]
    return shape1 if shape1[1] - shape1[0] <= shape2[1] - shape2[0] else shape2


def init_q_exprs(shape, scale, max_size, min_ndim, dtype):
    """The factors and the einsum expressions, as `_init_Q_exprs` builds them for one to two dimensions."""
    if len(shape) == 0:
        return [scale * torch.ones((), dtype=dtype)], (",->", [",->"], ",,->")
    scale = scale ** (1 / len(shape))
    factors, a_inputs, a_last, a_out, g_exprs, p1, p2, p3, p4 = [], [], "", "", [], [], [], "", ""
    for i, size in enumerate(shape):
        row, col, col2 = LETTERS[i], LETTERS[i + 13], LETTERS[i + 26]
        swapped = "".join(col if j == i else LETTERS[j] for j in range(len(shape)))
        if size == 1 or size > max_size or len(shape) < min_ndim:
            factors.append(scale * torch.ones(size, dtype=dtype))
            a_inputs.append(row)
            a_last += row
            a_out += row
            g_exprs.append(f"{swapped},{swapped}->{col}")
            p1.append(col)
            p2.append(col)
            p3 += col
            p4 += col
        else:
            factors.append(scale * torch.eye(size, dtype=dtype))
            a_inputs.append(row + col)
            a_last += col
            a_out += row
            swapped2 = "".join(col2 if j == i else LETTERS[j] for j in range(len(shape)))
            g_exprs.append(f"{swapped},{swapped2}->{col}{col2}")
            p1.append(row + col)
            p2.append(row + col2)
            p3 += col2
            p4 += col
    expr_a = ",".join(a_inputs) + "," + a_last + "->" + a_out
    expr_p = ",".join(p1) + "," + ",".join(p2) + "," + p3 + "->" + p4
    return factors, (expr_a, g_exprs, expr_p)


def lower_bound(a, max_abs):
    a = a / max_abs
    column_norms = torch.einsum("ij,ij->j", a, a)
    x = torch.index_select(a, 1, torch.argmax(column_norms)).flatten()
    x = torch.einsum("i,ij->j", x, a)
    x = x / x.norm()
    x = torch.einsum("j,kj->k", x, a)
    return x.norm() * max_abs


def update_precond(factors, exprs, g, noise, precond_lr, tiny):
    expr_a, g_exprs, _ = exprs
    eps = torch.tensor(torch.finfo(torch.float32).eps, dtype=g.dtype)
    g += eps.sqrt() * g.abs().mean() * noise
    order = g.dim()
    if order == 0:
        conj_b = noise / factors[0]
    else:
        conj_b = noise.permute(*range(1, order), 0)
        for i, q in enumerate(factors):
            if q.dim() < 2:
                conj_b = conj_b / q
            else:
                flat = conj_b.reshape(-1, conj_b.size(-1))
                conj_b = torch.linalg.solve_triangular(q, flat, upper=True, left=False).reshape_as(conj_b)
            if i < order - 1:
                conj_b = torch.transpose(conj_b, i, order - 1)
    a = torch.einsum(expr_a, *factors, g)
    for q, expr_g in zip(factors, g_exprs):
        term1 = torch.einsum(expr_g, a, a)
        term2 = torch.einsum(expr_g, conj_b, conj_b)
        term1, term2 = term1 - term2, term1 + term2
        term1 = term1 * precond_lr
        norm = term2.abs().max()
        if q.dim() < 2:
            term1 = term1 * q / norm.clamp(min=tiny)
        else:
            term1 = torch.triu(term1)
            term1 = term1 / torch.where(norm > 0, lower_bound(term2, norm), norm).clamp(min=tiny)
            term1 = torch.mm(term1, q)
        q.sub_(term1)


def balance(factors):
    norms = torch.stack([q.abs().max() for q in factors])
    geometric_mean = norms.log().mean().exp()
    for q, ratio in zip(factors, geometric_mean / norms):
        q.mul_(ratio)


class Kron(torch.optim.Optimizer):
    def __init__(self, params, lr=3e-4, momentum=0.9, weight_decay=0.0, precond_lr=0.1, precond_init_scale=1.0,
                 max_size_triangular=8192, min_ndim_triangular=2, update_prob_max=1.0, update_prob_min=0.03,
                 update_prob_decay=0.001, update_prob_flat_start=500, maximize=False):
        super().__init__(params, dict(
            lr=lr, b1=momentum, weight_decay=weight_decay, precond_lr=precond_lr,
            precond_init_scale=precond_init_scale, max_size_triangular=max_size_triangular,
            min_ndim_triangular=min_ndim_triangular, max_prob=update_prob_max, min_prob=update_prob_min,
            decay=update_prob_decay, flat_start=update_prob_flat_start, maximize=maximize))
        self.private = {}

    @torch.no_grad()
    def step(self, closure=None):
        group0 = self.param_groups[0]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                private = self.private.setdefault(p, {})
                if len(state) == 0:
                    state["step"] = 0
                    state["steps_since_update"] = 0
                    state["momentum_buffer"] = torch.zeros_like(grad)
                    private["shape"] = merged_shape(grad.shape)
                    private["Q"], private["exprs"] = init_q_exprs(
                        private["shape"], group["precond_init_scale"], group["max_size_triangular"],
                        group["min_ndim_triangular"], grad.dtype)
                # The schedule at this parameter's count of earlier steps.
                prob_step = state["step"]
                probability = group0["max_prob"] * math.exp(-group0["decay"] * (prob_step - group0["flat_start"]))
                probability = min(max(probability, group0["min_prob"]), group0["max_prob"])
                state["steps_since_update"] += 1
                do_update = state["steps_since_update"] >= 1 / probability
                if do_update:
                    state["steps_since_update"] = 0
                state["step"] += 1
                beta = group["b1"]
                momentum_buffer = state["momentum_buffer"]
                momentum_buffer.mul_(beta).add_(grad, alpha=1 - beta)
                self.publish(state, private)
                if p.numel() == 0:
                    continue
                debiased = (momentum_buffer / (1 - beta ** state["step"])).reshape(private["shape"])
                factors, exprs = private["Q"], private["exprs"]
                if debiased.dim() > 1 and do_update:
                    balance(factors)
                if do_update:
                    generator = torch.Generator().manual_seed(state["step"])
                    noise = torch.randn(debiased.shape, generator=generator, dtype=torch.float32).to(debiased.dtype)
                    update_precond(factors, exprs, debiased, noise, group["precond_lr"],
                                   torch.finfo(debiased.dtype).tiny)
                pre_grad = torch.einsum(exprs[-1], *factors, *factors, debiased)
                pre_grad = pre_grad * torch.minimum(torch.tensor(1.0, dtype=pre_grad.dtype),
                                                    1.1 / pre_grad.square().mean().sqrt().add(1e-12))
                pre_grad = pre_grad.view(p.shape)
                if group["weight_decay"] != 0 and p.dim() >= 2:
                    pre_grad = pre_grad + group["weight_decay"] * p
                p.add_(pre_grad, alpha=-group["lr"])
                self.publish(state, private)

    @staticmethod
    def publish(state, private):
        for index, q in enumerate(private["Q"]):
            state[f"preconditioner_{index}"] = q.reshape(-1) if q.dim() == 0 else q
