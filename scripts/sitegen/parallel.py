"""Independent jobs of the site's build, shared among the machine's cores."""

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch


def usable_cores() -> int:
    """The cores this process may run on (all of the machine's where the system cannot say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_on_cores(function: Callable[..., Any], *arguments: Iterable[Any]) -> list[Any]:
    """
    `list(map(function, *arguments))`, computed in fresh processes, one per core, one thread each. The
    jobs must not depend on each other or on their order, and `function` must be importable by name:
    the processes are spawned, and share nothing with this one but `sys.path`.
    """
    columns = [list(column) for column in arguments]
    workers = max(1, min(usable_cores(), len(columns[0])))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return list(pool.map(function, *columns))
