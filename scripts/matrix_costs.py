"""
State memory and step time of GaLore and Kron against Adam for one n x m matrix (1024 x 1024 and
4096 x 1024), float32, one CPU thread: the numbers quoted on their pages. A few repetitions each, so
the times are indicative (they include whatever else the machine runs).

    python scripts/matrix_costs.py
"""

import time

import torch

from annotated_opt import Adam, GaLore, Kron


def state_mib(optimizer: torch.optim.Optimizer) -> float:
    return sum(v.nbytes for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)) / 2**20


def seconds_per_step(optimizer: torch.optim.Optimizer, param: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        param.grad = torch.randn_like(param)
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for shape in ((1024, 1024), (4096, 1024)):
        param = torch.randn(shape, requires_grad=True)
        adam = Adam([param])
        adam_time = seconds_per_step(adam, param, 3)
        print(f"{shape}: Adam {state_mib(adam):.1f} MiB, {1e3 * adam_time:.0f} ms/step")
        # GaLore: the first step takes the SVD, the next ones only project.
        galore = GaLore([param], rank=128, update_proj_gap=200)
        svd_time = seconds_per_step(galore, param, 1)
        print(f"{shape}: GaLore r=128 {state_mib(galore):.1f} MiB, {1e3 * seconds_per_step(galore, param, 3):.0f} "
              f"ms/step, {1e3 * svd_time:.0f} ms for a step with an SVD")
        # Kron: every step updates inside the flat start; with update_prob_max=min=0.5 every other one does.
        kron = Kron([param])
        update_time = seconds_per_step(kron, param, 2)
        kron_rare = Kron([param], update_prob_max=0.5, update_prob_min=0.5)
        seconds_per_step(kron_rare, param, 1)
        plain_time = 2 * seconds_per_step(kron_rare, param, 2) - update_time
        print(f"{shape}: Kron {state_mib(kron):.1f} MiB, {1e3 * update_time:.0f} ms for a step that updates the "
              f"preconditioner, {1e3 * plain_time:.0f} ms for one that does not")


if __name__ == "__main__":
    main()
