r"""
# A tiny character-level language model

The second small real task: predict the next character of Python source code. The text is already on
every machine that runs this library: the source files of a few modules of Python's own standard
library, read with `inspect.getsource`, about 70,000 characters. Nothing is downloaded. (The exact
text changes a little between Python versions, so the numbers do too; on one machine they are
reproducible.)

The model is the smallest one that learns something real, in the spirit of
[Bengio et al., 2003](https://www.jmlr.org/papers/v3/bengio03a.html): each of the previous `context`
characters is embedded into a short vector, the vectors are concatenated, and a one-hidden-layer
perceptron turns them into the logits of the next character:

$$\text{logits} = W_2\,\mathrm{ReLU}\big(W_1\,[e_{c_{t-k}}; \dots; e_{c_{t-1}}] + b_1\big) + b_2.$$

Its embedding is a lookup table, so its gradient is dense but mostly zero per step (only the rows of
characters in the batch change): a different regime from the digits models, where every weight gets
a gradient on every step. A few hundred steps take a second or two on a CPU.

The vocabulary is fixed: newline and the 95 printable ASCII characters; anything else (a stray
accented letter in a comment) is read as `?`. The last 10% of the text is held out to measure the
loss and the next-character accuracy after training.
"""

import importlib
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..digits import closure_step

SOURCE_MODULES = ("textwrap", "heapq", "bisect", "colorsys", "fnmatch", "string")
VOCABULARY = "\n" + "".join(chr(code) for code in range(32, 127))
UNKNOWN = VOCABULARY.index("?")


def load_text(modules: tuple[str, ...] = SOURCE_MODULES) -> str:
    """The source code of the given standard-library modules, one after the other."""
    return "".join(inspect.getsource(importlib.import_module(name)) for name in modules)


def encode(text: str) -> torch.Tensor:
    """Each character's index in `VOCABULARY` (unknown characters become `?`)."""
    index = {character: i for i, character in enumerate(VOCABULARY)}
    return torch.tensor([index.get(character, UNKNOWN) for character in text], dtype=torch.long)


def decode(ids: torch.Tensor) -> str:
    return "".join(VOCABULARY[i] for i in ids.tolist())


@dataclass(frozen=True)
class CharData:
    train: torch.Tensor
    heldout: torch.Tensor


def load_chars(heldout_fraction: float = 0.1) -> CharData:
    """The encoded text, split into a training part and the held-out end."""
    ids = encode(load_text())
    split = int(len(ids) * (1 - heldout_fraction))
    return CharData(ids[:split], ids[split:])


class CharMLP(nn.Module):
    r"""
    The next-character model: `embedding`-dimensional character vectors for the last `context`
    characters, concatenated, then a hidden layer of `hidden` ReLU units.
    """

    def __init__(self, context: int = 16, embedding: int = 16, hidden: int = 256) -> None:
        super().__init__()
        self.context = context
        self.embedding = nn.Embedding(len(VOCABULARY), embedding)
        self.hidden = nn.Linear(context * embedding, hidden)
        self.output = nn.Linear(hidden, len(VOCABULARY))

    def forward(self, characters: torch.Tensor) -> torch.Tensor:
        r"""`characters` has shape `(batch, context)`; the result, `(batch, vocabulary)` logits."""
        vectors = self.embedding(characters).flatten(1)
        return self.output(torch.relu(self.hidden(vectors)))


def charlm(context: int = 16, embedding: int = 16, hidden: int = 256, seed: int = 0) -> CharMLP:
    """A `CharMLP` with a seeded initialisation."""
    torch.manual_seed(seed)
    return CharMLP(context, embedding, hidden)


def windows(ids: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `context` characters from each start, and the character that follows each window."""
    offsets = torch.arange(context)
    return ids[starts[:, None] + offsets], ids[starts + context]


@dataclass
class CharLMResult:
    losses: list[float] = field(default_factory=list)
    heldout_loss: float = 0.0
    heldout_accuracy: float = 0.0
    seconds: float = 0.0


def evaluate(model: CharMLP, ids: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy (nats per character) and next-character accuracy over every window of `ids`."""
    starts = torch.arange(len(ids) - model.context)
    x, y = windows(ids, starts, model.context)
    with torch.no_grad():
        logits = model(x)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def train(model: CharMLP, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
          data: CharData | None = None, steps: int = 400, batch_size: int = 128, seed: int = 0,
          after_step: Callable[[int, float], bool | None] | None = None,
          evaluate_before_step: bool = True) -> CharLMResult:
    r"""
    Train on `steps` batches of `batch_size` windows drawn at seeded random positions of the training
    text, then measure the held-out loss and accuracy. `after_step` and `evaluate_before_step` work as
    in `annotated_opt.digits.train`: the closure is always handed to `step`, and by default the
    gradients are also computed before it (what SAM needs).
    """
    data = data or load_chars()
    optimizer = make_optimizer(model)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = CharLMResult()
    start = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        starts = torch.randint(len(data.train) - model.context, (batch_size,), generator=generator)
        x, y = windows(data.train, starts, model.context)

        def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss

        loss = closure_step(optimizer, closure, evaluate_before_step)
        result.losses.append(loss.item())
        if after_step is not None and after_step(step, loss.item()) is False:
            break
    result.seconds = time.perf_counter() - start
    model.eval()
    result.heldout_loss, result.heldout_accuracy = evaluate(model, data.heldout)
    return result
