"""The package's layout: optimizers flat at the top, machinery in subpackages, every public name kept."""

import importlib
from pathlib import Path

import pytest

import annotated_opt
from annotated_opt.core.registry import REGISTRY

PACKAGE = Path(annotated_opt.__file__).parent


@pytest.mark.parametrize("name", annotated_opt.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(annotated_opt, name) is not None
    namespace: dict = {}
    exec(f"from annotated_opt import {name}", namespace)
    assert namespace[name] is getattr(annotated_opt, name)


def test_all_has_no_duplicates() -> None:
    assert len(annotated_opt.__all__) == len(set(annotated_opt.__all__))


@pytest.mark.parametrize(("old", "new"), annotated_opt.MOVED_MODULES.items())
def test_moved_modules_keep_their_old_paths(old: str, new: str) -> None:
    moved = importlib.import_module(f"annotated_opt.{old}")
    assert moved is importlib.import_module(f"annotated_opt.{new}")


def test_old_import_statements_still_work() -> None:
    from annotated_opt.base import GenericAdaptiveOptimizer
    from annotated_opt.composable.schedules import sched_cos
    from annotated_opt.digits import load_digits
    from annotated_opt.lr_schedules import Noam
    from annotated_opt.registry import REGISTRY as old_registry

    assert GenericAdaptiveOptimizer is annotated_opt.GenericAdaptiveOptimizer
    assert old_registry is REGISTRY
    assert callable(sched_cos) and callable(load_digits) and Noam.__name__ == "Noam"


def test_top_level_modules_are_the_optimizers() -> None:
    """A reader opening the package folder sees the algorithms, and only them."""
    top_level = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    optimizer_modules = {info.module.rpartition(".")[2] for info in REGISTRY.values()
                         if info.module.count(".") == 1}
    assert top_level == optimizer_modules


def test_optimizer_pages_keep_their_addresses() -> None:
    """Each optimizer's page is built from `annotated_opt/<module>.py`, so its URL is what it was."""
    for info in REGISTRY.values():
        assert info.module == f"annotated_opt.{info.cls.__module__.rpartition('.')[2]}"
        assert (PACKAGE / f"{info.module.rpartition('.')[2]}.py").is_file()
