"""The robust tuning of the small tasks: the selection rule, divergence handling, notes, and one shipped entry."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from annotated_opt.core.nonfinite import NonFiniteGradientError
from annotated_opt.core.registry import REGISTRY, OptimizerInfo
from annotated_opt.core.tuned import load_tuned
from annotated_opt.toys import experiments
from annotated_opt.toys.__main__ import main
from annotated_opt.toys.tasks import TASKS, run_task, task_score


def candidate(lr: float, *scores: float) -> dict:
    return {"config": {"lr": lr}, "scores": list(scores)}


def test_the_worst_seed_decides_and_one_diverged_seed_rules_a_candidate_out() -> None:
    # The best mean (lr 0.3) diverged on one seed; the best single seed (lr 0.1) is poor on the other.
    candidates = [candidate(0.01, 0.50, 0.52), candidate(0.1, 0.10, 0.60), candidate(0.3, 0.05, math.inf),
                  candidate(0.03, 0.30, 0.31)]
    assert experiments.select(candidates, 0.02) == candidates[3]
    assert experiments.robust_score([0.1, 0.6]) == 0.6 and experiments.robust_score([0.1, math.inf]) == math.inf


def test_within_the_tolerance_the_smaller_learning_rate_wins() -> None:
    candidates = [candidate(0.1, 0.100, 0.101), candidate(0.03, 0.101, 0.1015), candidate(0.01, 0.2, 0.2)]
    # 0.1015 is within 2% of 0.101: a tie, and the smaller rate is further from divergence.
    assert experiments.select(candidates, 0.02)["config"]["lr"] == 0.03
    # Without a tolerance (the text's), the best score wins.
    assert experiments.select(candidates, 0.0)["config"]["lr"] == 0.1
    assert experiments.select([candidate(0.1, math.inf, 1.0)], 0.02) is None and experiments.select([], 0.0) is None


def test_search_space_table_and_fallback() -> None:
    assert [k.name for k in experiments.search_space(REGISTRY["lars"])] == ["trust_coefficient"]
    assert [k.name for k in experiments.search_space(REGISTRY["adam"])] == ["beta1"]
    assert experiments.search_space(REGISTRY["adagrad"]) == ()
    config = experiments.make_config(REGISTRY["nadam"], 0.01, {"beta1": 0.85})
    assert config == {"lr": 0.01, "betas": (0.85, 0.999)}
    # Lion's searched knob is its moment's decay, the second of its betas.
    assert [k.name for k in experiments.search_space(REGISTRY["lion"])] == ["beta2"]
    config = experiments.make_config(REGISTRY["lion"], 0.001, {"beta2": 0.98})
    assert config == {"lr": 0.001, "betas": (0.9, 0.98)}
    assert experiments.make_config(REGISTRY["adan"], 0.01, {"beta2": 0.9})["betas"] == (0.98, 0.9, 0.99)
    # Every knob names an argument its optimizer takes (or beta1, for one that takes betas).
    for key, knobs in experiments.SEARCH_SPACES.items():
        for knob in knobs:
            info = REGISTRY[key]
            values = {knob.name: knob.low}
            info.build([torch.nn.Parameter(torch.randn(2, 2))], **experiments.make_config(info, 0.01, values))


class RaisesOnThirdStep(torch.optim.SGD):
    def step(self, closure=None):
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps == 3:
            raise NonFiniteGradientError("0.weight has a non-finite gradient")
        return super().step(closure)


def test_a_run_whose_optimizer_raises_on_a_nonfinite_gradient_is_recorded_as_diverged() -> None:
    info = OptimizerInfo(name="RaisesOnThirdStep", cls=RaisesOnThirdStep, paper="", url="", year=2000,
                         family="test", parent=None, state_tensors=0)
    result = run_task(info, TASKS["digits-mlp"], {"lr": 0.1}, length=1)
    assert result.diverged and len(result.losses) == 2 and math.isfinite(result.losses[-1])
    assert result.final_loss == math.inf and result.accuracy == 0.0
    assert task_score(TASKS["digits-mlp"], result) == math.inf


def test_a_comparison_goes_on_after_a_diverged_run(tmp_path, capsys) -> None:
    # LAMB raises NonFiniteGradientError on the digits CNN at lr 0.3; Adam after it still runs.
    assert main(["--optimizer", "lamb,adam", "--task", "digits", "--model", "cnn", "--lr", "0.3",
                 "--no-plot", "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / "digits-cnn-lamb-adam.json").read_text())
    assert [r["optimizer"] for r in records] == ["lamb", "adam"] and records[0]["diverged"]
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("lamb on")]
    assert "lr=0.3" in line and "diverged after" in line


def evaluation(final: float, heldout: float, accuracy: float, reached: int | None = 10, diverged: bool = False,
               curve: tuple[float, ...] = (2.0, 0.1)) -> dict:
    return {"final_loss": final, "heldout_loss": heldout, "accuracy": accuracy, "steps_to_target": reached,
            "diverged": diverged, "curve": list(curve), "steps": 2, "seconds_per_step": 0.01}


def record(*runs: dict, sweep: tuple[tuple[float, float], ...] = ((0.01, 1.5), (0.1, 0.5))) -> dict:
    sweep_candidates = [{"stage": "sweep", "config": {"lr": lr}, "scores": [s, s], "diverged": 0} for lr, s in sweep]
    return {"evaluation": list(runs), "chosen": None, "candidates": sweep_candidates}


def test_notes_are_read_from_the_data() -> None:
    records = {
        "a": record(evaluation(0.1, 0.1, 0.98), evaluation(0.1, 0.1, 0.97), evaluation(0.1, 0.1, 0.96)),
        "b": record(evaluation(0.1, 0.1, 0.97), evaluation(0.1, 0.1, 0.96), evaluation(0.1, 0.1, 0.95)),
        "c": record(evaluation(0.5, 0.5, 0.80, None), evaluation(0.5, 0.5, 0.81, None),
                    evaluation(math.inf, math.inf, 0.0, None, diverged=True),
                    sweep=((0.001, 0.50), (0.01, 0.28), (0.1, 0.29), (1.0, 0.6))),
        "d": record(evaluation(0.4, 0.5, 0.85, curve=(2.0, 0.1, 0.4)), evaluation(0.1, 0.1, 0.85),
                    evaluation(0.1, 0.1, 0.86)),
    }
    notes = experiments.notes("digits-mlp", records)
    assert notes["a"].startswith("best") and "narrow: one good grid lr" in notes["a"]
    assert notes["b"].startswith("within noise of the best")
    assert notes["c"].startswith("diverged on 1 of 3 seeds; plateau") and "forgiving: lr good over x100" in notes["c"]
    assert notes["d"].startswith("unstable") and "within noise" not in notes["d"]


def test_curves_are_subsampled_to_a_bounded_length_ending_at_the_last_step() -> None:
    losses = [float(i) for i in range(1, 251)]
    kept = experiments.curve(losses, 1)
    assert len(kept) <= experiments.CURVE_POINTS + 1 and kept[-1] == 250.0 and kept == sorted(kept)


@pytest.fixture(scope="module")
def shipped() -> dict:
    return json.loads(experiments.RESULTS_PATH.read_text())


def test_every_shipped_tuned_task_entry_is_the_choice_of_its_recorded_search(shipped) -> None:
    # The rule, applied again to the stored candidates, picks the stored choice, and the tuned file holds it.
    for key, tasks in shipped.items():
        if key.startswith("_"):
            continue
        for task_name, found in tasks.items():
            # Tuned and evaluated at the task's length (a change of length means searching again).
            assert found["length"] == TASKS[task_name].length
            if found.get("skipped"):
                # The optimizer refuses the model: nothing ran, and nothing is tuned.
                assert not found["candidates"] and found["chosen"] is None and not found["evaluation"]
                assert task_name not in load_tuned().get(key, {})
                continue
            assert experiments.select(found["candidates"], TASKS[task_name].tie_tolerance) == found["chosen"]
            if found["chosen"] is None:
                # Every rate of the sweep diverged: nothing to refine around, to evaluate or to ship.
                assert len(found["candidates"]) == len(experiments.SWEEP_LRS)
                assert not found["evaluation"] and task_name not in load_tuned().get(key, {})
                continue
            assert len(found["candidates"]) == len(experiments.SWEEP_LRS) + experiments.REFINE_TRIALS
            assert load_tuned()[key][task_name] == experiments.tuned_entry(found)
            assert len(found["evaluation"]) == len(experiments.EVALUATION_SEEDS)


# How far a rerun of a stored entry may land from its record on another kind of CPU. The matrix
# products and reductions take other vector instructions there, which round differently, and a
# training run amplifies the difference as it goes. Measured between two kinds: the
# digits MLP's losses move by 3e-7 to 1e-5 relative; the character transformer's by 0.02% to 0.15%
# (0.5% bounds them, where its seeds differ by 1.8% or more). On a third kind (an AMD EPYC) the
# character transformer repeats its record exactly, and the digits MLP's first tuning seed within
# 1e-7, but its second seed's validation loss moves by 0.29%: one run amplified a rounding difference
# further. 0.5% bounds that too, where the digits MLP's two tuning seeds differ by 2%. The character
# model's 500 steps move its losses by 0.5% to 0.7%, half the gap between two seeds, so it is not
# used here. On one machine a run repeats exactly, which is checked too.
REPRODUCTION_TOLERANCE = {"digits-mlp": 5e-3, "chartransformer": 5e-3}


@pytest.mark.parametrize("task_name", sorted(REPRODUCTION_TOLERANCE))
def test_one_tuned_entry_reproduces(shipped, task_name) -> None:
    # SGD on a digits and a text task: its chosen candidate on the tuning seeds (validation split
    # included), and its first evaluation run, run twice.
    found = shipped["sgd"][task_name]
    task = TASKS[task_name]
    tolerance = REPRODUCTION_TOLERANCE[task_name]
    torch.set_num_threads(1)
    config = REGISTRY["sgd"].tuned(task_name).config
    assert config == found["chosen"]["config"]
    again = experiments.candidate(REGISTRY["sgd"], task, config, found["chosen"]["stage"])
    assert again["scores"] == pytest.approx(found["chosen"]["scores"], rel=tolerance)
    runs = [run_task(REGISTRY["sgd"], task, seed=experiments.EVALUATION_SEEDS[0]) for _ in range(2)]
    numbers = [(run.final_loss, run.accuracy, run.heldout_loss) for run in runs]
    assert numbers[0] == numbers[1]
    stored = found["evaluation"][0]
    recorded = (stored["final_loss"], stored["accuracy"], stored["heldout_loss"])
    assert numbers[0] == pytest.approx(recorded, rel=tolerance)


def test_the_benchmark_page_has_a_row_with_a_note_for_every_optimizer_and_task() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from plots import benchmark

    data = benchmark.load()
    markdown = benchmark.markdown(data)
    benchmarked = {key for records in data.values() for key in records}
    names = [info.name for info in REGISTRY.values() if info.key in benchmarked]
    # An optimizer registered after the last tuning run is named as not yet benchmarked, not left out.
    for info in REGISTRY.values():
        if info.key not in benchmarked:
            assert info.name in markdown.split("Not yet benchmarked", 1)[1]
    for name, task in TASKS.items():
        body = markdown.split(f"## {task.title}\n", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| optimizer")]
        shown = [row.split(" | ")[0][2:] for row in rows]
        # Every benchmarked optimizer has its row, or is named as not yet run on this task.
        absent = [n for n in names if n not in shown]
        assert shown == [n for n in names if n in shown]
        assert not absent or all(n in body.split("Not yet run on this task:", 1)[1] for n in absent)
        assert all(row.rstrip(" |").rsplit(" | ", 1)[1] for row in rows)
        assert f"<!-- plot: benchmark/{name}-sensitivity -->" in body


@pytest.mark.parametrize("key", [key for key, info in REGISTRY.items() if "betas" in info.defaults])
def test_a_searched_beta1_keeps_every_other_beta_and_builds(key) -> None:
    info = REGISTRY[key]
    config = experiments.make_config(info, 0.01, {"beta1": 0.8})
    assert config["betas"] == (0.8, *info.defaults["betas"][1:])
    params = [torch.nn.Parameter(torch.randn(2, 2, generator=torch.Generator().manual_seed(0)))]
    info.build(params, **config)


def test_an_optimizer_that_refuses_the_model_is_recorded_as_not_run_with_its_reason() -> None:
    record = experiments.experiment(REGISTRY["sparseadam"], "digits-mlp")
    assert record["chosen"] is None and not record["candidates"] and not record["evaluation"]
    assert "sparse gradients" in record["skipped"]
    note = experiments.notes("digits-mlp", {"sparseadam": record})["sparseadam"]
    assert note.startswith("not run: takes only sparse")


def test_a_search_that_chooses_nothing_removes_the_stale_entry(tmp_path) -> None:
    from annotated_opt.toys.tuning import write

    path = tmp_path / "tuned.json"
    entries = {"digits-mlp": {"config": {"lr": 0.1}, "score": 0.2}, "charlm": {"config": {"lr": 1.0}, "score": 2.0}}
    write({"sgd": entries}, path=path)
    write({"sgd": {"digits-mlp": None}}, path=path)
    stored = json.loads(path.read_text())
    assert "digits-mlp" not in stored["sgd"] and stored["sgd"]["charlm"]["config"] == {"lr": 1.0}


def test_the_acceptance_check_runs_the_tuned_setting_and_excepts_full_batch_methods(capsys) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_acceptance

    # Lion on the MLP: 9 sweep rates and the tuned setting, each on the 3 evaluation seeds (a few seconds).
    check_acceptance.main(["--task", "digits-mlp", "--optimizer", "lion", "--optimizer", "lbfgs"])
    lines = capsys.readouterr().out.splitlines()
    lion = next(line for line in lines if line.split()[0] == "lion")
    gap = float(lion.split()[-2])
    assert lion.endswith("ok") and gap >= -check_acceptance.MARGIN  # accuracy: higher is better
    # The tuned median is measured again, and the stored one shown beside it.
    assert "tuned" in lion and "(stored" in lion
    lbfgs = next(line for line in lines if line.split()[0] == "lbfgs")
    assert "excepted: a full-batch method" in lbfgs and "sweep" not in lbfgs
    assert lines[-1] == f"0 below the margin of {check_acceptance.MARGIN}"
