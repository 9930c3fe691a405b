"""Every registered optimizer appears in the gallery, on the results page, and on its own page."""

import sys
from pathlib import Path

import pytest
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.objectives import OBJECTIVES
from annotated_opt.toys.tasks import TASKS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from plots import results, style, toys  # noqa: E402

# One worker runs this file: its runs of every optimizer are made once, not once per worker.
pytestmark = pytest.mark.xdist_group("gallery")


@pytest.fixture(scope="module")
def toy_runs():
    return toys.run_all(steps=3)


@pytest.fixture(scope="module")
def task_runs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # One epoch of the digits, ten steps of the character model: the bookkeeping, not the numbers.
        return results.run_all(length_scale=0.02)
    finally:
        torch.set_num_threads(threads)


def table_rows(markdown: str, section: str) -> list[str]:
    body = markdown.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| optimizer")]


def test_every_optimizer_in_every_gallery_table(toy_runs) -> None:
    markdown = toys.gallery_markdown(toy_runs)
    names = [info.name for info in REGISTRY.values()]
    for objective in OBJECTIVES.values():
        rows = table_rows(markdown, objective.title)
        assert [row.split(" | ")[0][2:] for row in rows] == names
        assert f"<!-- plot: gallery/{objective.name} -->" in markdown


def test_every_optimizer_gets_its_own_trajectory_figure(toy_runs) -> None:
    planned = {(plot.page, plot.slug) for plot in toys.plan(toy_runs)}
    assert {(key, toys.TRAJECTORY_SLUG) for key in REGISTRY} <= planned
    assert {("gallery", name) for name in OBJECTIVES} <= planned


def test_every_optimizer_in_every_results_table_and_page(task_runs) -> None:
    markdown = results.results_markdown(task_runs)
    names = [info.name for info in REGISTRY.values()]
    for name, task in TASKS.items():
        rows = table_rows(markdown, task.title)
        assert [row.split(" | ")[0][2:] for row in rows] == names
        assert f"<!-- plot: results/{name} -->" in markdown
    planned = {(plot.page, plot.slug) for plot in results.plan(task_runs)}
    assert {(key, results.TASKS_SLUG) for key in REGISTRY} <= planned
    assert {("results", name) for name in TASKS} <= planned


def test_figures_are_written_deterministically(toy_runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(style, "PLOTS_DIR", tmp_path / "plots")
    plots = toys.plan(toy_runs)
    mine = next(p for p in plots if p.page == "sgd")
    gallery = next(p for p in plots if p.page == "gallery" and p.slug == "saddle")
    first = [style.save(p.draw(), p.page, p.slug, p.caption).read_bytes() for p in (mine, gallery)]
    again = [style.save(p.draw(), p.page, p.slug, p.caption).read_bytes() for p in (mine, gallery)]
    assert first == again
    assert (tmp_path / "plots" / "sgd" / "toy-trajectories.txt").read_text().startswith("SGD on the five")
    assert first[0].startswith(b"<?xml")
