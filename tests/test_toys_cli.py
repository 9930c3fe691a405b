"""The command line `python -m annotated_opt.toys`: help, one-line errors with status 2, and real runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from annotated_opt.core.registry import REGISTRY
from annotated_opt.toys.__main__ import main
from annotated_opt.toys.objectives import OBJECTIVES

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real entry point, in a fresh interpreter, with a private home folder."""
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    # matplotlib keeps its font cache where it already is; anything else written to the home folder
    # would be a trace of labml.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "MPLCONFIGDIR": matplotlib.get_cachedir()}
    return subprocess.run([sys.executable, "-m", "annotated_opt.toys", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_help_lists_every_optimizer_and_objective(tmp_path) -> None:
    completed = run_module("--help", cwd=tmp_path)
    assert completed.returncode == 0
    for key in REGISTRY:
        assert key in completed.stdout
    for name in OBJECTIVES:
        assert name in completed.stdout
    assert "--task" in completed.stdout and "charlm" in completed.stdout


def test_unknown_optimizer_is_one_line_and_status_2(tmp_path) -> None:
    completed = run_module("--optimizer", "adamz", "--objective", "rosenbrock", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "error: unknown optimizer 'adamz'; known: sgd" in completed.stderr
    assert not (tmp_path / "toy-runs").exists()


def test_a_run_writes_its_figure_and_numbers_and_nothing_else(tmp_path) -> None:
    completed = run_module("--optimizer", "SGD", "--objective", "quadratic", "--lr", "0.02", "--steps", "30",
                           "--out", "out", "--format", "svg", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "sgd on quadratic" in completed.stdout and "wrote out/quadratic-sgd.svg" in completed.stdout
    assert sorted(os.listdir(tmp_path / "out")) == ["quadratic-sgd.json", "quadratic-sgd.svg"]
    # labml only printed: no run folders, no settings in the home folder.
    assert sorted(os.listdir(tmp_path)) == ["home", "out"] and os.listdir(tmp_path / "home") == []
    (record,) = json.loads((tmp_path / "out" / "quadratic-sgd.json").read_text())
    assert record["config"] == {"lr": 0.02} and len(record["points"]) == 31


@pytest.mark.parametrize("arguments, message", [
    (["--lr", "-1"], "argument --lr: '-1' must be a positive, finite number"),
    (["--lr", "0"], "argument --lr: '0' must be a positive, finite number"),
    (["--lr", "nan"], "argument --lr: 'nan' must be a positive, finite number"),
    (["--lr", "fast"], "argument --lr: 'fast' is not a number"),
    (["--objective", "himmelblau"], "unknown objective 'himmelblau'; known: rosenbrock"),
    (["--optimizer", "adam,nope"], "unknown optimizer 'nope'"),
    (["--steps", "0"], "argument --steps: '0' must be positive"),
    (["--set", "betas"], "argument --set: 'betas' is not NAME=VALUE"),
    (["--set", "betas=(0.9,"], "the value is not a Python literal"),
    (["--optimizer", "adam", "--set", "betas=(1.5, 0.9)"], "adam rejects {'betas': (1.5, 0.9)}: ValueError"),
    (["--optimizer", "sgd", "--set", "betas=(0.9, 0.99)"], "sgd rejects {'betas': (0.9, 0.99)}: TypeError"),
    (["--task", "mnist"], "argument --task: invalid choice: 'mnist'"),
    (["--task", "digits", "--objective", "beale"], "not allowed with argument"),
])
def test_bad_input_gets_one_line_and_status_2(arguments, message, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m annotated_opt.toys: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out").exists()


def test_several_optimizers_on_several_objectives(tmp_path, capsys) -> None:
    assert main(["--optimizer", "adam,sgd", "--objective", "saddle,beale", "--steps", "5",
                 "--out", str(tmp_path), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "adam on saddle" in out and "sgd on beale" in out
    records = json.loads((tmp_path / "saddle-adam-sgd.json").read_text())
    assert [r["optimizer"] for r in records] == ["adam", "sgd"]
    assert [r["source"] for r in records] == [REGISTRY[k].tuned("saddle").source for k in ("adam", "sgd")]


def test_task_runs(tmp_path, capsys) -> None:
    threads = torch.get_num_threads()
    try:
        assert main(["--optimizer", "adam", "--task", "digits", "--model", "cnn", "--steps", "1",
                     "--out", str(tmp_path)]) == 0
        assert main(["--optimizer", "sgd", "--task", "charlm", "--steps", "12", "--lr", "0.5", "--out", str(tmp_path),
                     "--no-plot"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "adam on digits-cnn" in out and "accuracy" in out
    (cnn_record,) = json.loads((tmp_path / "digits-cnn-adam.json").read_text())
    assert len(cnn_record["losses"]) == 22 and (tmp_path / "digits-cnn-adam.png").exists()
    (char_record,) = json.loads((tmp_path / "charlm-sgd.json").read_text())
    assert char_record["config"] == {"lr": 0.5} and len(char_record["losses"]) == 12
