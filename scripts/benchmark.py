"""Step time of our optimizers against torch.optim on a GPT-2-like parameter set, in one run.

Optimizer steps are memory-bound: fp32 Adam must read p, g, m, v and write p, m, v, 28 bytes per
parameter at the very least. This script times one `step()` of each optimizer (median of several)
and prints it as a ratio to torch.optim's for-loop, foreach and fused implementations, and to the
time of simply copying the parameters once (the memory-bandwidth floor's yardstick).

    python scripts/benchmark.py                # about 30 M parameters
    python scripts/benchmark.py --scale 0.25   # smaller, for a quick look
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import annotated_opt

# One transformer block of GPT-2 small (d = 768): attention in/out projections, MLP, two layer norms.
BLOCK_SHAPES = [(3 * 768, 768), (3 * 768,), (768, 768), (768,), (4 * 768, 768), (4 * 768,), (768, 4 * 768),
                (768,), (768,), (768,), (768,), (768,)]


def gpt2_like_parameters(scale: float, seed: int = 0) -> list[torch.Tensor]:
    """Embeddings plus `round(12 * scale)` blocks (at least one), float32, with random gradients."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(int(50257 * scale), 768), (1024, 768)] + BLOCK_SHAPES * max(1, round(12 * scale))
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=generator).requires_grad_()
        p.grad = torch.randn(shape, generator=generator)
        params.append(p)
    return params


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    step()  # the first step allocates state; it is not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25, help="fraction of GPT-2 small's layers/vocab")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    params = gpt2_like_parameters(args.scale)
    count = sum(p.numel() for p in params)
    print(f"{count / 1e6:.1f} M float32 parameters in {len(params)} tensors, {torch.get_num_threads()} threads")

    copy_targets = [torch.empty_like(p) for p in params]
    copy_time = median_seconds(lambda: [t.copy_(p) for t, p in zip(copy_targets, params)], args.repeats)
    print(f"copy of all parameters: {copy_time * 1e3:.1f} ms ({8 * count / copy_time / 1e9:.1f} GB/s)")

    pairs = [
        ("SGD momentum", lambda ps: annotated_opt.SGD(ps, lr=0.01, momentum=0.9),
         lambda ps, **kw: torch.optim.SGD(ps, lr=0.01, momentum=0.9, **kw)),
        ("Adam", lambda ps: annotated_opt.Adam(ps), lambda ps, **kw: torch.optim.Adam(ps, **kw)),
        ("Adam folded", lambda ps: annotated_opt.Adam(ps, fold_bias_correction=True),
         lambda ps, **kw: torch.optim.Adam(ps, **kw)),
        ("AdamW", lambda ps: annotated_opt.AdamW(ps), lambda ps, **kw: torch.optim.AdamW(ps, **kw)),
    ]
    print(f"{'optimizer':<14}{'ours ms':>9}{'x for-loop':>12}{'x foreach':>11}{'x fused':>9}{'x copy':>8}")
    for name, ours, theirs in pairs:
        timings = {"ours": median_seconds(ours(params).step, args.repeats)}
        for variant, kwargs in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}),
                                ("fused", {"fused": True})):
            timings[variant] = median_seconds(theirs(params, **kwargs).step, args.repeats)
        t = timings["ours"]
        print(f"{name:<14}{t * 1e3:>9.1f}{t / timings['for-loop']:>12.2f}{t / timings['foreach']:>11.2f}"
              f"{t / timings['fused']:>9.2f}{t / copy_time:>8.1f}")


if __name__ == "__main__":
    main()
