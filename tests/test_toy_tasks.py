"""The small real tasks: the digits CNN, the character model, and the task runner's bookkeeping."""

import math

import pytest
import torch

from annotated_opt import SGD, Adam
from annotated_opt.core.registry import REGISTRY, OptimizerInfo
from annotated_opt.toys import charlm
from annotated_opt.toys.digits import DigitsData, cnn, evaluate, load_digits, mlp, train
from annotated_opt.toys.tasks import TASKS, moving_mean, run_task, steps_to_target, task_score, text_validation_blocks


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models: a second thread only adds synchronisation, and on a busy machine a lot of it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_moving_mean_and_steps_to_target_by_hand() -> None:
    assert moving_mean([4.0, 2.0, 0.0, 2.0], 2).tolist() == [4.0, 3.0, 1.0, 1.0]
    assert moving_mean([3.0, 1.0, 2.0], 5).tolist() == [3.0, 2.0, 2.0]
    assert steps_to_target([4.0, 2.0, 0.0, 2.0], 2, 1.0) == 3
    assert steps_to_target([4.0, 2.0], 2, 1.0) is None


def test_cnn_shapes() -> None:
    model = cnn()
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    assert sum(p.numel() for p in model.parameters()) == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (128 * 10 + 10)


def test_evaluating_before_the_step_changes_nothing_for_plain_optimizers() -> None:
    # Both conventions compute the same gradients at the same parameters, so the runs are identical.
    data = load_digits()
    runs = [train(cnn(), lambda m: SGD(m.parameters(), lr=0.1, momentum=0.9), data, epochs=1,
                  evaluate_before_step=before) for before in (True, False)]
    assert runs[0].losses == runs[1].losses and runs[0].test_accuracy == runs[1].test_accuracy


def test_vocabulary_and_windows() -> None:
    assert len(charlm.VOCABULARY) == 96 and len(set(charlm.VOCABULARY)) == 96
    ids = charlm.encode("def f():\n\treturn 'é'\n")
    assert charlm.decode(ids) == "def f():\n?return '?'\n"
    x, y = charlm.windows(torch.arange(10), torch.tensor([0, 3]), 4)
    assert x.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]] and y.tolist() == [4, 7]


def test_the_text_is_standard_library_source() -> None:
    text = charlm.load_text(("bisect",))
    assert "def bisect_right(" in text and text.startswith('"""')
    data = charlm.load_chars()
    assert len(data.train) > 50_000 and abs(len(data.heldout) / (len(data.train) + len(data.heldout)) - 0.1) < 1e-3


def test_the_character_model_learns() -> None:
    result = charlm.train(charlm.charlm(), lambda m: Adam(m.parameters(), lr=1e-2), steps=60)
    # A uniform guess costs ln 96 = 4.56 nats; sixty steps learn at least the common characters.
    assert result.losses[0] == pytest.approx(math.log(96), abs=0.3)
    assert sum(result.losses[-10:]) / 10 < 3.2 and result.heldout_loss < 3.3 and result.heldout_accuracy > 0.15


class RefusesModel(torch.optim.SGD):
    def __init__(self, params, lr: float = 0.1) -> None:
        raise ValueError("call initialize(model) first")


def test_run_task_reports_refusal_divergence_and_results() -> None:
    refusing = OptimizerInfo(name="RefusesModel", cls=RefusesModel, paper="", url="", year=2000, family="test",
                             parent=None, state_tensors=0)
    skipped = run_task(refusing, TASKS["digits-mlp"], {"lr": 0.1}, length=1)
    assert skipped.skipped == "ValueError: call initialize(model) first"
    assert task_score(TASKS["digits-mlp"], skipped) == math.inf

    diverged = run_task(REGISTRY["sgd"], TASKS["digits-mlp"], {"lr": 1e4}, length=2)
    assert diverged.diverged and len(diverged.losses) < 44 and task_score(TASKS["digits-mlp"], diverged) == math.inf

    result = run_task(REGISTRY["adam"], TASKS["digits-mlp"], {"lr": 1e-2}, length=3)
    assert result.source == "given" and len(result.losses) == 3 * 22 and not result.diverged
    assert result.final_loss == pytest.approx(sum(result.losses[-22:]) / 22, rel=1e-12)
    assert result.accuracy > 0.85 and result.heldout_loss < 0.6
    # Every task is tuned on a validation split: a run that held none back cannot be scored.
    text = run_task(REGISTRY["adam"], TASKS["charlm"], {"lr": 1e-2}, length=2)
    for task_name, run in (("digits-mlp", result), ("charlm", text)):
        with pytest.raises(ValueError, match="validation=True"):
            task_score(TASKS[task_name], run)


def test_each_epoch_of_the_digits_is_cut_into_batches_of_nearly_equal_size() -> None:
    # 1,348 images in batches of at most 64: 22 batches, 6 of 62 and 16 of 61 (no batch of 4 at the
    # end), every image once; 1,078 (a tuning run's): 17 batches, 7 of 64 and 10 of 63.
    for images, expected in ((1348, [62] * 6 + [61] * 16), (1078, [64] * 7 + [63] * 10)):
        data = load_digits()
        data = DigitsData(data.train_x[:images], data.train_y[:images], data.test_x, data.test_y)
        batches: list[torch.Tensor] = []
        model = mlp(seed=0)
        model.register_forward_pre_hook(
            lambda module, args, seen=batches: seen.append(args[0]) if module.training else None)
        train(model, lambda m: SGD(m.parameters(), lr=0.01), data, epochs=1, evaluate_before_step=False)
        assert [len(batch) for batch in batches] == expected
        assert torch.allclose(torch.cat(batches).sum(0), data.train_x.sum(0))
    with pytest.raises(ValueError, match="steps=0"):
        train(mlp(), lambda m: SGD(m.parameters(), lr=0.01), steps=0)


def test_a_digits_tuning_run_is_scored_on_training_images_it_did_not_train_on() -> None:
    # The run of the tuning search, and the same run by hand: the training images less their last
    # fifth, the same seeds and batch order, as many steps as two epochs of the full run (2 x 22, so
    # three epochs of the 1,078 images' 17 batches, the third cut short), then the loss on the fifth
    # left out.
    run = run_task(REGISTRY["adam"], TASKS["digits-mlp"], {"lr": 1e-2}, length=2, seed=3, validation=True)
    data = load_digits()
    cut = len(data.train_y) - 270
    model = mlp(seed=3)
    by_hand = train(model, lambda m: Adam(m.parameters(), lr=1e-2),
                    data=DigitsData(data.train_x[:cut], data.train_y[:cut], data.test_x, data.test_y),
                    epochs=3, steps=44, seed=3, evaluate_before_step=False)
    expected = evaluate(model, data.train_x[cut:], data.train_y[cut:])[0]
    assert len(run.losses) == 44 == len(run_task(REGISTRY["adam"], TASKS["digits-mlp"], {"lr": 1e-2}, length=2).losses)
    assert (run.heldout_loss, run.accuracy) == (by_hand.test_loss, by_hand.test_accuracy)
    assert run.losses == by_hand.losses
    assert task_score(TASKS["digits-mlp"], run) == run.validation_loss == expected


def test_window_starts_skip_every_window_that_reads_a_held_back_character() -> None:
    held_back = torch.zeros(30, dtype=torch.bool)
    held_back[[3, 17, 18, 29]] = True
    data = charlm.CharData(torch.arange(30), torch.arange(5), held_back)
    # By brute force: a window from s reads positions s .. s + k (its k inputs and its target).
    expected = [s for s in range(30 - 4) if not any(held_back[s:s + 5].tolist())]
    assert charlm.window_starts(data, 4).tolist() == expected == [4, 5, 6, 7, 8, 9, 10, 11, 12, 19, 20, 21, 22, 23, 24]
    assert charlm.window_starts(charlm.CharData(torch.arange(30), torch.arange(5)), 4).tolist() == list(range(26))


def test_a_text_tuning_run_trains_around_its_validation_blocks_and_is_scored_on_them(monkeypatch) -> None:
    text = charlm.load_chars()
    blocks = text_validation_blocks(len(text.train))
    # A ninth of the training text, as six stretches, one in the middle of each sixth of it.
    sixth = len(text.train) // 6
    assert len(blocks) == 6
    for i, (start, end) in enumerate(blocks):
        assert i * sixth < start < end < (i + 1) * sixth and abs((start - i * sixth) - ((i + 1) * sixth - end)) <= 1
    assert sum(end - start for start, end in blocks) == pytest.approx(len(text.train) / 9, abs=len(blocks))

    # Every training window the run reads lies clear of every block.
    read = []
    windows = charlm.windows

    def recording_windows(ids, starts, context):
        if len(ids) == len(text.train):
            read.extend((int(s), int(s) + context) for s in starts)
        return windows(ids, starts, context)

    monkeypatch.setattr(charlm, "windows", recording_windows)
    run = run_task(REGISTRY["adam"], TASKS["charlm"], {"lr": 1e-2}, length=5, seed=3, validation=True)
    assert len(read) == 5 * 128 and len(run.losses) == 5
    assert all(last < start or first >= end for first, last in read for start, end in blocks)

    # The score: the trained model's loss on each block on its own, weighted by the block's length.
    monkeypatch.setattr(charlm, "windows", windows)
    scored = []
    original = charlm.evaluate
    monkeypatch.setattr(charlm, "evaluate", lambda model, ids: scored.append(original(model, ids)) or scored[-1])
    run = run_task(REGISTRY["adam"], TASKS["charlm"], {"lr": 1e-2}, length=5, seed=3, validation=True)
    assert len(scored) == 1 + len(blocks)
    weights = [end - start for start, end in blocks]
    expected = sum(loss * weight for (loss, _), weight in zip(scored[1:], weights)) / sum(weights)
    assert run.validation_loss == pytest.approx(expected, rel=1e-12)
    assert task_score(TASKS["charlm"], run) == run.validation_loss


class IgnoresClosure(torch.optim.SGD):
    def step(self, closure=None):
        return super().step()


def test_an_optimizer_that_ignores_the_closure_is_an_error_not_a_silent_stale_step() -> None:
    with pytest.raises(RuntimeError, match="never called the closure"):
        train(cnn(), lambda m: IgnoresClosure(m.parameters(), lr=0.1), load_digits(), epochs=1,
              evaluate_before_step=False)


def test_the_transformer_predicts_every_next_character_causally_and_learns() -> None:
    model = charlm.char_transformer(0, context=8)
    ids = torch.arange(20) % 96
    x, y = model.batch(ids, torch.tensor([0, 5]))
    assert x.tolist()[1] == list(range(5, 13)) and y.tolist()[1] == list(range(6, 14))
    # Causal: changing the last character of the window changes no earlier position's logits.
    changed = x.clone()
    changed[:, -1] = 0
    with torch.no_grad():
        assert torch.equal(model(x)[:, :-1], model(changed)[:, :-1]) and not torch.equal(model(x), model(changed))
    result = charlm.train(charlm.char_transformer(0, context=16), lambda m: Adam(m.parameters(), lr=1e-2),
                          steps=60, batch_size=32)
    assert result.losses[0] == pytest.approx(math.log(96), abs=0.5)
    assert sum(result.losses[-10:]) / 10 < 3.2 and result.heldout_loss < 3.3
