"""
Our optimizers handed to the training loops people use, in place of torch's: PyTorch Lightning's
`Trainer` and Hugging Face's `Trainer`. Each tool drives the optimizer its own way (a closure in `step`,
gradient accumulation, clipping, a scheduler stepped per batch, bfloat16 autocast), and a run with
ours must end on the parameters of the same run with torch's: exactly on the readable path, and to
float32 rounding on the fast path (`fused=True`, `foreach=True`: the same step compiled, which may
round an operation differently, within the fast path's float32 tolerance, justified in
`tests/test_fastpath.py`, relative to each tensor's largest weight).
"""

import tempfile

import pytest
import torch

import annotated_opt

from .test_fastpath import FLOAT32_TOLERANCE

# Two epochs of 8 batches, two batches per step: 8 steps.
BATCHES_PER_EPOCH = 8
STEPS = 8


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(16 * BATCHES_PER_EPOCH, 10, generator=generator)
    return inputs, 2 * inputs[:, :1] - inputs[:, 1:2]


def assert_same_run(ours: torch.nn.Module, theirs: torch.nn.Module, options: dict) -> None:
    for p, q in zip(ours.parameters(), theirs.parameters()):
        if options.get("fused") or options.get("foreach"):
            assert ((p - q).abs().max() / q.abs().max()).item() <= FLOAT32_TOLERANCE
        else:
            assert torch.equal(p, q)


# Lightning and Hugging Face import much at first use: the cases of each tool run in one worker.
LIGHTNING_CASES = [
    ("Adam", {"lr": 0.01}, "32-true", 1.0),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "fused": True}, "32-true", 1.0),
    # Lightning refuses to clip gradients for torch's fused optimizers under mixed precision.
    ("AdamW", {"lr": 0.01, "fused": True}, "bf16-mixed", None),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, "bf16-mixed", 1.0),
    ("RMSprop", {"lr": 0.01, "foreach": True}, "32-true", 1.0),
]


@pytest.mark.xdist_group("lightning")
@pytest.mark.parametrize(("name", "options", "precision", "clip"), LIGHTNING_CASES,
                         ids=[f"{case[0]}-{'-'.join(case[1])}-{case[2]}" for case in LIGHTNING_CASES])
def test_lightning_trainer_runs_ours_as_torchs(name, options, precision, clip) -> None:
    """Two epochs with a closure per step, two batches per step, clipping and a one-cycle schedule per batch."""
    import lightning

    class Regression(lightning.LightningModule):
        def __init__(self, library) -> None:
            super().__init__()
            self.net = network()
            self.library = library

        def training_step(self, batch, index):
            inputs, targets = batch
            return torch.nn.functional.mse_loss(self.net(inputs), targets)

        def configure_optimizers(self):
            optimizer = getattr(self.library, name)(self.parameters(), **options)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=STEPS)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    runs = []
    for library in (annotated_opt, torch.optim):
        module = Regression(library)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*regression_data()), batch_size=16)
        trainer = lightning.Trainer(
            max_epochs=2, precision=precision, accelerator="cpu", devices=1, gradient_clip_val=clip,
            accumulate_grad_batches=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False)
        trainer.fit(module, loader)
        assert trainer.global_step == STEPS
        runs.append(module.net)
    assert_same_run(*runs, options)


HUGGING_FACE_CASES = [
    ("AdamW", {"lr": 0.01, "weight_decay": 0.01}, False),
    ("AdamW", {"lr": 0.01, "fused": True}, True),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, True),
    ("Adagrad", {"lr": 0.05, "foreach": True}, False),
]


@pytest.mark.xdist_group("hugging_face")
@pytest.mark.parametrize(("name", "options", "bf16"), HUGGING_FACE_CASES,
                         ids=[f"{case[0]}-{'-'.join(case[1])}-{'bf16' if case[2] else 'fp32'}"
                              for case in HUGGING_FACE_CASES])
def test_hugging_face_trainer_runs_ours_as_torchs(name, options, bf16) -> None:
    """Two epochs with a warm-up schedule, two batches per step and clipping, the optimizer given to `Trainer`."""
    import transformers
    inputs, targets = regression_data()

    class Regression(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()

        def forward(self, x, labels):
            return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}

    examples = [{"x": x, "labels": y} for x, y in zip(inputs, targets)]
    runs = []
    for library in (annotated_opt, torch.optim):
        model = Regression()
        optimizer = getattr(library, name)(model.parameters(), **options)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 2, STEPS)
        with tempfile.TemporaryDirectory() as output:
            arguments = transformers.TrainingArguments(
                output_dir=output, per_device_train_batch_size=16, gradient_accumulation_steps=2,
                num_train_epochs=2, max_grad_norm=1.0, bf16=bf16, use_cpu=True, seed=0, report_to=[],
                save_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
            trainer = transformers.Trainer(model=model, args=arguments, train_dataset=examples,
                                           optimizers=(optimizer, schedule))
            trainer.train()
        assert trainer.state.global_step == STEPS
        runs.append(model.net)
    assert_same_run(*runs, options)
