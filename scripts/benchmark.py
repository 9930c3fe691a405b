"""Step time of every optimizer, readable and fast path, against torch.optim, in one run.

Optimizer steps are memory-bound: fp32 Adam must read p, g, m, v and write p, m, v, 28 bytes per
parameter at the very least. This script times one `step()` (median of several) of every registered
optimizer on a GPT-2-like parameter set, on its readable path and on its fast path (`fused=True`: the
annotated `step_param` compiled, see annotated_opt/core/fastpath.py), as ratios to torch's for-loop
and fused Adam (each timed in turn with the path it is compared with, so that the load of the machine
weighs on both alike) and foreach Adam, to the optimizer's torch twin where one exists, and as
achieved bandwidth against a measured copy. A second case, 1,000 tensors of 1,000 elements, measures the per-tensor
overhead. Compile time (the first fast step, less a steady one) is reported apart. Each path of each
optimizer is measured in a process of its own, so that no measurement depends on what ran before it.
The table and a chart go to the site's Speed page (docs/generated/speed.md, docs/generated/plots/speed/).
Each row also says how far the fast path's parameters ended from the readable path's after the same
steps on the same gradients: the two paths are checked against each other on the machine that timed
them.

    python scripts/benchmark.py                  # 31.7 M parameters, a few minutes
    python scripts/benchmark.py --device cuda    # the same on a GPU (docs/generated/speed-cuda.md)
    python scripts/benchmark.py --scale 0.05     # smaller, for a quick look (does not write the page)
"""

import argparse
import contextlib
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from annotated_opt.core import fastpath  # noqa: E402
from annotated_opt.core.registry import REGISTRY  # noqa: E402

# One transformer block of GPT-2 small (d = 768): attention in/out projections, MLP, two layer norms.
BLOCK_SHAPES = [(3 * 768, 768), (3 * 768,), (768, 768), (768,), (4 * 768, 768), (4 * 768,), (768, 4 * 768),
                (768,), (768,), (768,), (768,), (768,)]

# Where the parameters live: the CPU, or a GPU with `--device cuda`.
DEVICE = torch.device("cpu")


def page_fragment() -> Path:
    """The Speed page's table for this device: speed.md for the CPU, speed-cuda.md for a GPU."""
    suffix = "" if DEVICE.type == "cpu" else f"-{DEVICE.type}"
    return ROOT / "docs" / "generated" / f"speed{suffix}.md"


def gpt2_like_shapes(scale: float) -> list[tuple[int, ...]]:
    """Embeddings plus `round(12 * scale)` blocks (at least one)."""
    return [(int(50257 * scale), 768), (1024, 768)] + BLOCK_SHAPES * max(1, round(12 * scale))


def parameters(shapes: list[tuple[int, ...]], seed: int = 0) -> list[torch.Tensor]:
    """Float32 parameters with random gradients on `DEVICE`, the same for every call."""
    generator = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=generator).to(DEVICE).requires_grad_()
        p.grad = torch.randn(shape, generator=generator).to(DEVICE)
        params.append(p)
    return params


def timed(call: Callable[[], object]) -> float:
    """Seconds of one call; on a GPU, until the kernels it queued have run."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    call()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def first_and_median(step: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The first call's time (state, and compilation on the fast path) and the median of the next ones."""
    first = timed(step)
    return first, statistics.median(timed(step) for _ in range(repeats))


def alternating_medians(step: Callable[[], object], reference: Callable[[], object],
                        repeats: int) -> tuple[float, float]:
    """
    The median of `repeats` calls of `step` and of `reference`, called in turn: both medians come
    from the same stretch of time, so that a change in the load of the machine moves both alike.
    """
    times: dict[str, list[float]] = {"step": [], "reference": []}
    for _ in range(repeats):
        for name, call in (("step", step), ("reference", reference)):
            times[name].append(timed(call))
    return statistics.median(times["step"]), statistics.median(times["reference"])


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in parameter-sized state tensors (each storage counted once)."""
    storages = {}
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                storages[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
    return sum(storages.values())


def elementwise(info) -> bool:
    """Whether the optimizer updates each parameter on its own, through the base class's step (the fast path)."""
    return info.factory is None and fastpath.covers(info.cls)


def not_timed_here(info) -> str | None:
    """Why the optimizer cannot step the benchmark's parameters, or None when it can."""
    if info.requires_closure:
        return f"{info.name} (its step calls a closure that re-evaluates a model)"
    if info.cls.sparse_gradients:
        return f"{info.name} (it takes sparse gradients only, an embedding's, and these are dense)"
    if info.parameters is not None:
        return f"{info.name} (it steps matrices only, and these parameters include vectors)"
    return None


TORCH_ADAM = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def torch_variants(shapes, repeats) -> dict[str, float]:
    """torch.optim.Adam's three implementations: the median time of each."""
    return {variant: first_and_median(torch.optim.Adam(parameters(shapes), **kwargs).step, repeats)[1]
            for variant, kwargs in TORCH_ADAM.items()}


def has_twin(info) -> bool:
    """Whether the optimizer has a twin in torch.optim."""
    return info.reference is not None and info.reference.is_torch_optim


def twin_time(info, shapes, repeats) -> float | None:
    """The torch twin's fastest CPU implementation (fused where torch has one, else foreach)."""
    if not has_twin(info):
        return None
    module, name = info.reference.target.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    for kwargs in ({"fused": True}, {"foreach": True}):
        try:
            with time_limit(TIME_LIMIT):
                optimizer = cls(parameters(shapes), **info.reference.kwargs, **kwargs)
                return first_and_median(optimizer.step, repeats)[1]
        except Exception:  # noqa: BLE001 (not this implementation: try the next, else no twin time)
            continue
    return None


def measure(info, shapes, repeats, fast: bool, reference: Callable[[], object]) -> dict[str, object]:
    """
    The first and the median step time, the median of the `reference` step (torch's Adam) timed in
    turn with it, the state kept, and the parameters after the steps, as many on either path when the
    optimizer has a fast path (`1 + SETTLING_STEPS + 2 * repeats`); or, when the step fails, the error,
    so that the row says what went wrong and the run goes on to the next optimizer. On the fast path,
    also the median step without the check for non-finite gradients (torch's optimizers make none),
    with its own `reference` median: the same compiled graphs, since the check runs before them.
    """
    try:
        with time_limit(TIME_LIMIT):
            params = parameters(shapes)
            optimizer = info.build(params)
            for group in optimizer.param_groups:
                if fast:
                    group["fused"] = True
            first = timed(optimizer.step)
            # The steps of a warm-up (RAdam's SGD steps until its sixth, AdEMAMix's schedules) are not
            # the steps of a training run: the timed ones come after a few more.
            for _ in range(SETTLING_STEPS):
                optimizer.step()
            median, reference_median = alternating_medians(optimizer.step, reference, repeats)
            unchecked = None
            if fast:
                for group in optimizer.param_groups:
                    group["nonfinite"] = "ignore"
                unchecked = alternating_medians(optimizer.step, reference, repeats)
            elif elementwise(info):
                # As many steps as the fast path takes, so that their parameters can be compared.
                for _ in range(repeats):
                    optimizer.step()
    except Exception as error:  # noqa: BLE001 (any failure is reported in the row)
        return {"error": error_text(error)}
    # A step that could not be traced as one graph runs compiled in pieces: the row says so.
    pieces = fast and optimizer._fast_path.in_pieces
    return {"first": first, "median": median, "reference": reference_median, "state": state_bytes(optimizer),
            "pieces": pieces, "unchecked": unchecked, "params": params}


def distance(readable: dict[str, object], fast: dict[str, object] | None) -> float | None:
    """
    The largest difference between the parameters of the two paths after the same steps on the same
    gradients (each saved by its process), relative to the largest parameter of its tensor; None when
    either path failed or there is no fast path.
    """
    if fast is None or failed(readable) or failed(fast):
        return None
    pairs = zip(torch.load(readable["params"]), torch.load(fast["params"]))
    return max(((p - q).abs().max() / p.abs().max()).item() for p, q in pairs)


PATHS = {"readable": "for-loop", "fast": "fused"}


def in_own_process(args: argparse.Namespace, key: str, path: str, shapes: str = "model",
                   save: Path | None = None) -> dict[str, object]:
    """
    One measurement (`path`: "readable", "fast" or "twin"; `shapes`: "model" or "small") made by this
    script in a fresh process, so that it does not depend on what ran before it (the heap, the
    compiler's caches, the memory the allocator kept).
    """
    command = [sys.executable, __file__, "--scale", str(args.scale), "--repeats", str(args.repeats),
               "--device", args.device, "--measure", f"{key}:{path}:{shapes}"]
    if save is not None:
        command += ["--save", str(save)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT + 300)
    except subprocess.TimeoutExpired:
        return {"error": f"TimeoutError: over {TIME_LIMIT + 300} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        return {"error": table_cell(f"exit status {done.returncode}: {lines[-1]}")}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_alone(args: argparse.Namespace) -> None:
    """
    The measurement `--measure key:path:shapes` asks for, printed as one line of JSON: a path's times
    beside torch's Adam (for-loop Adam for the readable path, fused for the fast one, warmed up before),
    with its parameters saved to `--save`; or the twin's time.
    """
    key, path, which = args.measure.split(":")
    info = REGISTRY[key]
    shapes = SMALL_SHAPES if which == "small" else gpt2_like_shapes(args.scale)
    if path == "twin":
        print(json.dumps({"twin": twin_time(info, shapes, args.repeats)}))
        return
    reference = torch.optim.Adam(parameters(shapes), **TORCH_ADAM[PATHS[path]]).step
    reference()
    result = measure(info, shapes, args.repeats, path == "fast", reference)
    params = result.pop("params", None)
    if params is not None and args.save:
        torch.save([p.detach().cpu() for p in params], args.save)
        result["params"] = args.save
    print(json.dumps(result))


# Untimed steps between the first step and the timed ones.
SETTLING_STEPS = 5

# Seconds one measurement (its first step, compilation included, and its repeats) may take before it
# is reported as too slow and the run moves on.
TIME_LIMIT = 900


@contextlib.contextmanager
def time_limit(seconds: int):
    """Raise `TimeoutError` in the block after `seconds` (checked between Python statements)."""

    def expire(signum, frame):
        raise TimeoutError(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def error_text(error: BaseException) -> str:
    """The error's type and the first line of its message, short enough for a table cell."""
    lines = str(error).strip().splitlines()
    return table_cell(f"{type(error).__name__}: {lines[0] if lines else ''}")


def table_cell(text: str) -> str:
    """`text` short enough for a table cell, with no `|` to split it."""
    text = text.replace("|", "/")
    return text if len(text) <= 100 else text[:97] + "..."


def failed(result: dict[str, object] | None) -> bool:
    return result is not None and "error" in result


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25, help="fraction of GPT-2 small's layers/vocab")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--optimizers", default="all", help="comma-separated registry keys, or all")
    parser.add_argument("--device", default="cpu", help="cpu (one thread), or cuda")
    # The run calls this script again for each measurement, with these two options.
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    return parser.parse_args()


def set_up(args: argparse.Namespace) -> None:
    """The same conditions in every process of a run."""
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # Compile times as a first run sees them: no graph is taken from an earlier run's on-disk cache.
    torch._inductor.config.fx_graph_cache = False
    torch._functorch.config.enable_autograd_cache = False


def main() -> None:
    args = arguments()
    set_up(args)
    if args.measure:
        measure_alone(args)
        return

    shapes = gpt2_like_shapes(args.scale)
    count = sum(torch.Size(s).numel() for s in shapes)
    params = parameters(shapes)
    copy_targets = [torch.empty_like(p) for p in params]
    copy_time = first_and_median(lambda: [t.copy_(p) for t, p in zip(copy_targets, params)], args.repeats)[1]
    copy_bandwidth = 8 * count / copy_time

    machine = (f"{torch.get_num_threads()} thread" if DEVICE.type == "cpu"
               else f"{torch.cuda.get_device_name(DEVICE)}")
    header = (f"{count / 1e6:.1f} M float32 parameters in {len(shapes)} tensors, {machine}, torch "
              f"{torch.__version__}; copy of all parameters {milliseconds(copy_time)} ms "
              f"({copy_bandwidth / 1e9:.1f} GB/s read+write)")
    start_load = os.getloadavg()[0]
    print(f"{header}; load average {start_load:.1f}", flush=True)
    adam = torch_variants(shapes, args.repeats)
    print("torch Adam: " + ", ".join(f"{k} {milliseconds(v)} ms" for k, v in adam.items()), flush=True)

    # The line below the table first: the cost per tensor on many small ones.
    notes = [small_tensor_case(args)]
    print("\n".join(notes), flush=True)

    keys = list(REGISTRY) if args.optimizers == "all" else args.optimizers.split(",")
    untimed = [reason for reason in map(not_timed_here, (REGISTRY[key] for key in keys)) if reason]
    if untimed:
        notes.append("Not timed on these parameters: " + "; ".join(untimed))
    keys = [key for key in keys if not_timed_here(REGISTRY[key]) is None]
    rows = []
    # Where the two paths leave their parameters for the comparison.
    with tempfile.TemporaryDirectory() as saved:
        for position, key in enumerate(keys):
            info = REGISTRY[key]
            if elementwise(info):
                readable = in_own_process(args, key, "readable", save=Path(saved) / "readable.pt")
                fast = in_own_process(args, key, "fast", save=Path(saved) / "fast.pt")
            else:
                readable, fast = in_own_process(args, key, "readable"), None
            twin = in_own_process(args, key, "twin").get("twin") if has_twin(info) else None
            # The least memory traffic of a step: read and write the parameter and each state tensor,
            # read the gradient.
            state = readable.get("state", fast.get("state", 0) if fast else 0)
            traffic = count * 12 + 2 * state
            row = {"name": info.name, "readable": readable, "fast": fast, "twin": twin, "traffic": traffic,
                   "adam_traffic": count * 28, "distance": distance(readable, fast)}
            rows.append(row)
            print(format_row(row, adam, copy_bandwidth), flush=True)
            # The page is written after every row, so that a run stopped from outside leaves what it measured.
            if args.scale == 0.25 and args.optimizers == "all":
                # Other work on the machine slows every measurement: say how much there was.
                load = f"load average {start_load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end"
                remaining = [REGISTRY[k].name for k in keys[position + 1:]]
                stopped = [f"A partial run: it had not reached {remaining[0]}"] if remaining else []
                write_page(f"{header}; {load}", adam, rows, stopped + notes, copy_bandwidth)
    print(f"load average {start_load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end", flush=True)


# The second case: many small tensors, where the cost per tensor outweighs the cost per element.
SMALL_SHAPES = [(1000,)] * 1000


def small_tensor_case(args: argparse.Namespace) -> str:
    """Adam on 1,000 tensors of 1,000 elements, each path in a process of its own."""
    small_adam = torch_variants(SMALL_SHAPES, args.repeats)
    torch_line = "torch " + ", ".join(f"{k} {milliseconds(v)} ms" for k, v in small_adam.items())
    parts = []
    for path, reference in PATHS.items():
        result = in_own_process(args, "adam", path, shapes="small")
        if failed(result):
            parts.append(f"{path} fails ({result['error']})")
            continue
        part = f"{path} {milliseconds(result['median'])} ms ({result['median'] / result['reference']:.2f}x {reference}"
        if path == "fast":
            unchecked, unchecked_reference = result["unchecked"]
            part += (f"; compiled in {result['first'] - result['median']:.1f} s), fast without the check "
                     f"{milliseconds(unchecked)} ms ({unchecked / unchecked_reference:.2f}x {reference}")
        parts.append(part + ")")
    return f"1,000 tensors of 1,000 elements, Adam: {', '.join(parts)}; {torch_line}"


COLUMNS = ("optimizer", "readable ms", "fast ms", "readable / for-loop Adam", "fast / fused Adam",
           "fast without the check / fused Adam", "least bytes / Adam's", "fast / foreach Adam", "twin ms",
           "fast GB/s", "% of copy", "state MB", "compile s", "fast vs readable")


def row_cells(row, adam, copy_bandwidth) -> list[str]:
    """One row of the table; a path that failed shows its error instead of its times."""
    readable, fast = row["readable"], row["fast"]
    if failed(readable):
        return [row["name"], f"fails: {readable['error']}"] + ["-"] * (len(COLUMNS) - 2)
    # At equal bandwidth no step can beat its least traffic over Adam's, 28 bytes per parameter.
    bound = f"{row['traffic'] / row['adam_traffic']:.2f}"
    if failed(fast):
        fast_cells = [f"fails: {fast['error']}", "-", "-", bound, "-"]
        fast = None
    elif fast:
        # The ratio to fused Adam is to its time measured in turn with this step; the ratio to foreach
        # Adam goes through it, with foreach's time relative to fused's from the start of the run.
        to_fused = fast["median"] / fast["reference"]
        unchecked, unchecked_reference = fast["unchecked"]
        fast_cells = [milliseconds(fast["median"]) + (" (in pieces)" if fast["pieces"] else ""),
                      f"{to_fused:.2f}", f"{unchecked / unchecked_reference:.2f}", bound,
                      f"{to_fused * adam['fused'] / adam['foreach']:.2f}"]
    else:
        fast_cells = ["-", "-", "-", bound, "-"]
    best = fast["median"] if fast else readable["median"]
    return [row["name"], milliseconds(readable["median"]), fast_cells[0],
            f"{readable['median'] / readable['reference']:.2f}", *fast_cells[1:],
            milliseconds(row["twin"]) if row["twin"] else "-",
            f"{row['traffic'] / best / 1e9:.1f}", f"{100 * row['traffic'] / best / copy_bandwidth:.0f}",
            f"{readable['state'] / 1e6:.0f}",
            f"{fast['first'] - fast['median']:.1f}" if fast else "-",
            "-" if row["distance"] is None else f"{row['distance']:.0e}"]


def milliseconds(seconds: float) -> str:
    """Three significant digits, and whole milliseconds from 100 on: 0.412 on a GPU, 13.8, 138, 5904."""
    value = seconds * 1e3
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def format_row(row, adam, copy_bandwidth) -> str:
    return " | ".join(row_cells(row, adam, copy_bandwidth))


def write_page(header, adam, rows, notes, copy_bandwidth) -> None:
    """The Speed page's table and chart."""
    command = " ".join(["python scripts/benchmark.py", *sys.argv[1:]])
    lines = [f"Measured with `{command}`: {header}. torch's Adam: "
             + ", ".join(f"{k} {milliseconds(v)} ms" for k, v in adam.items()) + ".", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(row, adam, copy_bandwidth)) + " |" for row in rows]
    for note in notes:
        lines += ["", note + "."]
    lines += [""]
    fragment = page_fragment()
    fragment.parent.mkdir(parents=True, exist_ok=True)
    fragment.write_text("\n".join(lines))

    from plots.style import plt, save

    figure, axes = plt.subplots(figsize=(8, 0.3 * len(rows) + 1.8))
    rows = rows[::-1]
    positions = range(len(rows))
    for offset, path, label in ((0.2, "readable", "readable path"), (-0.2, "fast", "fast path (fused=True)")):
        times = [row[path]["median"] * 1e3 if row[path] and not failed(row[path]) else float("nan") for row in rows]
        axes.barh([y + offset for y in positions], times, height=0.4, label=label)
    for y, row in zip(positions, rows):
        if failed(row["readable"]) or failed(row["fast"]):
            axes.annotate("fails (see the table)", (0, y), xycoords=("axes fraction", "data"), xytext=(4, -3),
                          textcoords="offset points", fontsize=8)
    for variant, style in (("for-loop", ":"), ("foreach", "--"), ("fused", "-")):
        axes.axvline(adam[variant] * 1e3, color="black", linestyle=style, linewidth=1,
                     label=f"torch Adam, {variant}")
    # From a few milliseconds to tens of seconds (the matrix optimizers' readable steps): a log scale.
    axes.set_xscale("log")
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_yticks(list(positions), [row["name"] for row in rows])
    where = "one CPU thread" if DEVICE.type == "cpu" else torch.cuda.get_device_name(DEVICE)
    axes.set_xlabel(f"ms per step (median; log scale), 31.7 M float32 parameters, {where}")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=8, frameon=False)
    slug = page_fragment().stem.replace("speed", "step-time")
    save(figure, "speed", slug, f"Step time of every optimizer on {where}, readable and fast path, against "
         "torch's three Adam implementations (vertical lines), on a log scale.")


if __name__ == "__main__":
    main()
