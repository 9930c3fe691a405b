r"""
# A tiny character-level language model

The second small real task: predict the next character of Python source code. The text is already on
every machine that runs this library: the source files of a few modules of Python's own standard
library, read with `inspect.getsource`, about 70,000 characters. Nothing is downloaded. (The exact
text changes a little between Python versions, so the numbers do too; on one machine they are
reproducible.)

Language modelling is where much of today's optimizer research is measured, and it differs from image
classification in the way that matters here: the input is a sequence of discrete symbols looked up
in an embedding table, so a step changes only the rows of the characters in the batch, and the
frequent characters (space, `e`, `t`) are seen far more often than the rare ones. That is exactly the situation
per-coordinate adaptive methods were designed for ([Adagrad](adagrad.md)'s motivating case).

## The model

The smallest one that learns something real, in the spirit of
[Bengio et al., 2003](https://www.jmlr.org/papers/v3/bengio03a.html): each of the previous `context`
characters is embedded into a short vector, the vectors are concatenated, and a one-hidden-layer
perceptron turns them into the logits of the next character:

$$\text{logits} = W_2\,\mathrm{ReLU}\big(W_1\,[e_{c_{t-k}}; \dots; e_{c_{t-1}}] + b_1\big) + b_2.$$

With the defaults ($k = 16$ characters of context, 16-dimensional embeddings, 256 hidden units) it
has 92,000 parameters: 1,536 in the embedding, 65,792 in the hidden layer and 24,672 in the output.

Its embedding is a lookup table, so its gradient is dense but mostly zero per step (only the rows of
characters in the batch change): a different regime from the digits models, where every weight gets
a gradient on every step. A few hundred steps take a second or two on a CPU.

## The loss, and what the numbers mean

Training minimises the cross-entropy of the next character, in nats,
$$L = -\frac{1}{B}\sum_{b=1}^{B} \log p_\theta\big(c^{(b)}_{t} \,\big|\, c^{(b)}_{t-k}, \dots, c^{(b)}_{t-1}\big),$$
over a batch of $B$ windows. A model that knows nothing predicts the uniform distribution and scores
$\ln 96 \approx 4.56$; one that has learned the character frequencies alone (a space is 29% of this
text), about $3.1$; the [tasks](tasks.md) target, $2.2$, needs the model to use the context (the
letters of a keyword it has started, the indentation after a colon). $e^{L}$ is the *perplexity*: the number of
equally likely characters the model is, in effect, choosing between.

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

from .digits import closure_step, evaluation_point

# ## The text and its alphabet
#
# Six small, pure-Python modules of the standard library: ordinary, well-written code with
# docstrings, comments and identifiers, so the model has both English and Python syntax to learn.
# Pure-Python modules are chosen because `inspect.getsource` needs a source file (a module written
# in C has none).
SOURCE_MODULES = ("textwrap", "heapq", "bisect", "colorsys", "fnmatch", "string")
# Newline (index 0) and the 95 printable ASCII characters, codes 32 to 126: 96 symbols. Tab is not
# among them: the standard library is indented with spaces.
VOCABULARY = "\n" + "".join(chr(code) for code in range(32, 127))
UNKNOWN = VOCABULARY.index("?")


def load_text(modules: tuple[str, ...] = SOURCE_MODULES) -> str:
    r"""The source code of the given standard-library modules, one after the other."""
    return "".join(inspect.getsource(importlib.import_module(name)) for name in modules)


def encode(text: str) -> torch.Tensor:
    r"""Each character's index in `VOCABULARY` (unknown characters become `?`)."""
    index = {character: i for i, character in enumerate(VOCABULARY)}
    return torch.tensor([index.get(character, UNKNOWN) for character in text], dtype=torch.long)


def decode(ids: torch.Tensor) -> str:
    r"""The text of a tensor of indices: `decode(encode(text)) == text` for text in the vocabulary."""
    return "".join(VOCABULARY[i] for i in ids.tolist())


@dataclass(frozen=True)
class CharData:
    r"""
    The encoded text: `train`, the first 90%, and `heldout`, the rest, both 1-d index tensors.
    `held_back`, when given, marks characters of `train` (a boolean mask of its length) that no
    training window may read: a validation sample kept inside the training text (see `window_starts`).
    """

    train: torch.Tensor
    heldout: torch.Tensor
    held_back: torch.Tensor | None = None


def load_chars(heldout_fraction: float = 0.1) -> CharData:
    r"""
    The encoded text, split into a training part and the held-out end.

    The split is by position, not at random: the held-out part is the end of the last module
    (`string`), text the model has never seen any window of. A random split of windows would put near-copies of each
    held-out window (shifted by one character) in the training set, and the held-out loss would then
    measure memory rather than generalisation.
    """
    ids = encode(load_text())
    split = int(len(ids) * (1 - heldout_fraction))
    return CharData(ids[:split], ids[split:])


class CharMLP(nn.Module):
    r"""
    The next-character model: `embedding`-dimensional character vectors for the last `context`
    characters, concatenated, then a hidden layer of `hidden` ReLU units.

    * `context` is $k$, how far back the model can look: 16 characters cover a keyword and what
      precedes it, but not a whole line. A longer context costs parameters in the hidden layer
      ($k \times$ `embedding` $\times$ `hidden`) and makes each step slower.
    * `embedding`: 16 dimensions are plenty for 96 symbols.
    * `hidden`: the width of the one hidden layer, where most of the capacity (and most of the
      parameters) is.
    """

    def __init__(self, context: int = 16, embedding: int = 16, hidden: int = 256) -> None:
        super().__init__()
        self.context = context
        # $e_c$: one learned vector per symbol of the vocabulary.
        self.embedding = nn.Embedding(len(VOCABULARY), embedding)
        # $W_1, b_1$ and $W_2, b_2$.
        self.hidden = nn.Linear(context * embedding, hidden)
        self.output = nn.Linear(hidden, len(VOCABULARY))

    def forward(self, characters: torch.Tensor) -> torch.Tensor:
        r"""`characters` has shape `(batch, context)`; the result, `(batch, vocabulary)` logits."""
        # $$[e_{c_{t-k}}; \dots; e_{c_{t-1}}]$$ the embeddings, concatenated into one vector per window
        vectors = self.embedding(characters).flatten(1)
        # $$W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2$$
        return self.output(torch.relu(self.hidden(vectors)))

    def batch(self, ids: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The inputs and targets of the windows at `starts`: one target, the next character, per window."""
        return windows(ids, starts, self.context)


def charlm(context: int = 16, embedding: int = 16, hidden: int = 256, seed: int = 0) -> CharMLP:
    r"""
    A `CharMLP` with a seeded initialisation (torch's default initialisation of each layer, drawn
    after `torch.manual_seed(seed)`), so every optimizer starts from the same weights.
    """
    torch.manual_seed(seed)
    return CharMLP(context, embedding, hidden)


class CharTransformer(nn.Module):
    r"""
    ### A tiny transformer on the same text

    The model class behind most of today's optimizer comparisons, at a size that trains in seconds:
    learned character and position embeddings of width $d$, `layers` pre-norm blocks of causal
    self-attention (`heads` heads) and a two-layer perceptron of width $2d$, a final layer norm and a
    linear read-out. Unlike `CharMLP` it predicts *every* next character of its window at once, each
    from the characters before it (the causal mask), so one window of $k$ characters gives $k$ targets.

    What makes it a different problem for an optimizer: layer norms and attention make the loss
    invariant to the scale of some weights and very sensitive to others, the embedding rows of rare
    characters see few gradients, and the softmax of the attention saturates at large learning rates.
    This is where Adam's per-coordinate scaling is known to matter most against SGD
    ([Zhang et al., 2020](https://arxiv.org/abs/1912.03194) trace it to heavy-tailed gradient noise).
    With the defaults ($k = 16$ characters of context, $d = 32$, 2 layers, 2 heads) it has 23,904
    parameters, a quarter of `CharMLP`'s, yet each step costs more: attention compares every pair of
    positions, and there are 16 predictions per window.
    """

    def __init__(self, context: int = 16, width: int = 32, layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.context = context
        self.embedding = nn.Embedding(len(VOCABULARY), width)
        self.position = nn.Embedding(context, width)
        block = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, len(VOCABULARY))
        # Position $i$ may attend to positions $j \le i$ only: $-\infty$ above the diagonal.
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, characters: torch.Tensor) -> torch.Tensor:
        r"""`characters` has shape `(batch, context)`; the result, `(batch, context, vocabulary)` logits."""
        positions = torch.arange(characters.shape[1])
        hidden = self.embedding(characters) + self.position(positions)
        mask = self.mask[: characters.shape[1], : characters.shape[1]]
        return self.output(self.norm(self.blocks(hidden, mask=mask, is_causal=True)))

    def batch(self, ids: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The windows at `starts` and, as targets, the same windows moved one character on."""
        inputs, last = windows(ids, starts, self.context)
        return inputs, torch.cat((inputs[:, 1:], last[:, None]), dim=1)


def char_transformer(seed: int = 0, **sizes: int) -> CharTransformer:
    r"""A `CharTransformer` with a seeded initialisation, like `charlm`."""
    torch.manual_seed(seed)
    return CharTransformer(**sizes)


def windows(ids: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""
    The `context` characters from each start, and the character that follows each window:
    for a start $s$, the input is $c_s, \dots, c_{s+k-1}$ and the target $c_{s+k}$. Built with one
    gather, `ids[starts[:, None] + offsets]`, of shape `(len(starts), context)`.
    """
    offsets = torch.arange(context)
    return ids[starts[:, None] + offsets], ids[starts + context]


def window_starts(data: CharData, context: int) -> torch.Tensor:
    r"""
    Every start $s$ a training window may take: the window and its target, $c_s, \dots, c_{s+k}$, must
    lie in the training text and, when `data.held_back` is given, read none of its characters. With
    $H_i$ the number of held-back characters before position $i$ (a running sum of the mask), the
    window at $s$ is clear exactly when $H_{s+k+1} - H_s = 0$.
    """
    starts = torch.arange(len(data.train) - context)
    if data.held_back is None:
        return starts
    # $$H_i = \sum_{j < i} \text{held\_back}_j$$
    before = torch.cat((torch.zeros(1, dtype=torch.long), data.held_back.long().cumsum(0)))
    return starts[before[starts + context + 1] == before[starts]]


@dataclass
class CharLMResult:
    r"""The per-step training losses, the held-out loss and accuracy, and the wall time of the loop."""

    losses: list[float] = field(default_factory=list)
    heldout_loss: float = 0.0
    heldout_accuracy: float = 0.0
    seconds: float = 0.0


def evaluate(model: CharMLP | CharTransformer, ids: torch.Tensor) -> tuple[float, float]:
    r"""
    Mean cross-entropy (nats per character) and next-character accuracy on the text `ids`.

    For `CharMLP` every position that has a full context is scored; the transformer, which scores a
    whole window at once, reads the text in consecutive windows, so each character is scored once.
    One batch (the held-out text is about 7,000 characters, small enough), without gradients.
    """
    stride = model.context if isinstance(model, CharTransformer) else 1
    x, y = model.batch(ids, torch.arange(0, len(ids) - model.context, stride))
    with torch.no_grad():
        logits = model(x).flatten(0, -2)
    y = y.flatten()
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def train(model: CharMLP | CharTransformer, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
          data: CharData | None = None, steps: int = 400, batch_size: int = 128, seed: int = 0,
          after_step: Callable[[int, float], bool | None] | None = None,
          evaluate_before_step: bool = True) -> CharLMResult:
    r"""
    ### The training loop

    Train on `steps` batches of `batch_size` windows drawn at seeded random positions of the training
    text, then measure the held-out loss and accuracy. `after_step` and `evaluate_before_step` work as
    in `annotated_opt.digits.train` (see [digits](digits.md)): the closure is always handed to
    `step`, and by default the gradients are also computed before it (what SAM needs).

    Batches are drawn with replacement rather than in epochs: 500 steps of 128 windows see about as
    many windows as there are positions in the text, so "an epoch" means little here, and drawing
    at random keeps every batch an independent sample. A window never reads characters the data
    holds back (`window_starts`).
    """
    data = data or load_chars()
    usable = window_starts(data, model.context)
    optimizer = make_optimizer(model)
    # The batches' own generator, so the order depends only on `seed`, not on what else ran before.
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = CharLMResult()
    start = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        # $B$ random starts, each with room for a full window and its target.
        starts = usable[torch.randint(len(usable), (batch_size,), generator=generator)]
        x, y = model.batch(data.train, starts)

        # The closure recomputes the loss and its gradients on this batch; the defaults bind the
        # batch, so the closure stays correct even if it is called after the loop has moved on.
        def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            optimizer.zero_grad()
            # Both models' logits flattened to one row per target (the transformer has a window of them).
            loss = loss_fn(model(x).flatten(0, -2), y.flatten())
            loss.backward()
            return loss

        loss = closure_step(optimizer, closure, evaluate_before_step)
        result.losses.append(loss.item())
        # `after_step` may stop the run (the tasks stop a diverging one).
        if after_step is not None and after_step(step, loss.item()) is False:
            break
    result.seconds = time.perf_counter() - start
    evaluation_point(optimizer)
    model.eval()
    result.heldout_loss, result.heldout_accuracy = evaluate(model, data.heldout)
    return result
