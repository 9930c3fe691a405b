r"""
# SAM: sharpness-aware minimisation, and ASAM

Two minima can have the same training loss and generalise very differently. At a **sharp** minimum the
loss climbs steeply as soon as the weights move a little, and the weights that fit the test data are
never quite the ones that fit the training data; at a **flat** minimum a small move costs almost
nothing. [Foret et al., 2021](https://arxiv.org/abs/2010.01412) therefore minimise not the loss at the
weights but the worst loss in a ball of radius $\rho$ around them:

$$\min_w \; L^{\mathrm{SAM}}(w) \qquad L^{\mathrm{SAM}}(w) = \max_{\lVert\epsilon\rVert_2 \le \rho} L(w + \epsilon).$$

A sharp minimum is a poor minimum of $L^{\mathrm{SAM}}$, because its walls are within reach of
$\epsilon$; a flat one is a good minimum of both. The first figure on this page shows this on a
one-dimensional loss.

One SAM step, around any base optimizer (derived below; ASAM's terms in orange):

```algorithm
N = \Big(\sum_i \lVert \textcolor{orange}{T_{w_i}}\, g_i \rVert_2^2\Big)^{1/2}
    \quad \text{(one norm over every parameter of every group)}
    @ norm = torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))
\hat\epsilon = \rho\, \textcolor{orange}{T_w^2}\, g / (N + 10^{-12})
    @ perturbation = grad * (group["sam_rho"] / (norm + PERTURBATION_EPS)).to(param)
w \leftarrow w + \hat\epsilon \quad \text{(after saving a copy of } w\text{)}  @ param.add_(perturbation)
w \leftarrow w_{\text{saved}} \quad \text{(copied back, after the second pass)}
    @ precision.assign(target, master, saved)
w_t = \mathrm{BaseStep}\big(w_{t-1},\ g^{\mathrm{SAM}}\big), \quad g^{\mathrm{SAM}} = \nabla L(w_{t-1} + \hat\epsilon)
    @ self.base_optimizer.step()
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $w$ | `param` | the weights (the `float32` master with master weights) |
| $g$ | `grad` | the gradient at $w$, from the first pass; $g^{\mathrm{SAM}}$ is the second pass's |
| $\rho$ | `rho`, `sam_rho` | the radius of the neighbourhood |
| $N$ | `norm` | the norm of the gradient over all parameters |
| $\epsilon$ | `perturbation` | the perturbation, $\hat\epsilon$ the one SAM takes |
| $L$ | `loss` | the loss; `step` returns $L(w + \hat\epsilon)$ |

$T_w = \mathrm{diag}(\lvert w\rvert)$ for ASAM (`adaptive`, kept in each group as `sam_adaptive`) and
$T_w = I$ for SAM. The perturbation is written $\epsilon$ as in the paper; the $10^{-12}$ that keeps its
division from being by zero is `PERTURBATION_EPS`.

## The two passes

The inner maximum has no closed form, so SAM takes one step of it, to first order. Around $w$,
$L(w+\epsilon) \approx L(w) + \epsilon^\top g$ with $g = \nabla L(w)$, and the best $\epsilon$ of
norm $\rho$ for a linear function points along the gradient:

$$\hat\epsilon(w) = \rho\,\frac{g}{\lVert g \rVert_2}.$$

The gradient of $L^{\mathrm{SAM}}$ is then approximated by the gradient of $L$ at the perturbed point
(dropping the term that differentiates $\hat\epsilon$ itself, a second-order term the paper shows does
not help), and *that* gradient is given to the base optimizer, **at the original weights**:

1. **first pass**: compute $g = \nabla L(w)$ (unless it is already there); then `first_step` saves $w$
   and moves to $w + \hat\epsilon(w)$;
2. **second pass** (the closure): compute $g^{\mathrm{SAM}} = \nabla L(w + \hat\epsilon)$;
3. `second_step`: put back the saved $w$ and let the base optimizer step with $g^{\mathrm{SAM}}$.

Each step costs two forward and backward passes. The norm $\lVert g\rVert_2$ is **one** norm over
all parameters of all groups: the ball is a ball in the space of all the weights. Computing it per
group (or per tensor) would give every group its own radius $\rho$.

The weights are restored by **copying the saved tensor back**, not by subtracting $\hat\epsilon$:
$(w + \hat\epsilon) - \hat\epsilon$ is not $w$ in floating point, and the error would accumulate over
training.

## ASAM: a radius that scales with the weights

A network with ReLUs computes the same function when one layer's weights are multiplied by $c$ and the
next layer's by $1/c$, but a ball of fixed radius is not invariant to that rescaling: the "sharpness"
SAM measures depends on how the weights happen to be scaled.
[Kwon et al., 2021](https://arxiv.org/abs/2102.11600) (ASAM) measure the ball relative to each weight,
with $T_w = \mathrm{diag}(\lvert w\rvert)$:

$$\hat\epsilon(w) = \rho\,\frac{\textcolor{orange}{T_w^2}\, g}{\lVert \textcolor{orange}{T_w}\, g \rVert_2}
 = \rho\,\frac{\textcolor{orange}{w^2} \odot g}{\lVert \textcolor{orange}{\lvert w\rvert} \odot g \rVert_2}.$$

With `adaptive=True` a large weight is perturbed more than a small one. The radius is then relative,
so it is much larger: the reference code suggests $\rho = 2$ where SAM uses $0.05$. (The ASAM paper
adds a small $\xi$ to $\lvert w\rvert$ (its $\eta$, not a learning rate), so that weights at exactly
zero are perturbed too, and its official code perturbs weights but not biases; we follow the form of the
widely used reference code, $\xi = 0$ on every parameter. A zero weight is then not perturbed, but it
is still trained.)

## Using it

`step(closure)` needs a closure that computes the loss and its gradients at the current weights. When
`step` is called the gradients at $w$ may already be there, as in the training loop of the reference
code; SAM then uses them and evaluates the closure once, for the second pass. When there are none,
SAM evaluates the closure for the first pass too:

```python
def closure():
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss

loss = closure()                      # first pass: the gradient at w
with running_stats_frozen(model):     # the second pass must not update BatchNorm's statistics
    optimizer.step(closure)           # perturb, second pass, restore, base step
```

Either way, `step` leaves the gradients cleared (`None`), also when it raises: those it ends with
belong to the perturbed point, not to any weights, and clearing them is how the next step knows whether
its first pass has been done. `step` returns what the second pass of the closure returned, the loss at
the perturbed point $L(w + \hat\epsilon)$, which estimates $L^{\mathrm{SAM}}(w)$. A step in which no
parameter has a gradient changes nothing, as in `torch.optim`. The pieces are also there to call by
hand: `first_step`, your own second pass, `second_step`.

**Without a closure.** Where the training loop owns the backward pass and calls `step()` bare, do the
two passes yourself: `first_step()` after the first backward, a second forward and backward at the
perturbed weights, then `step()` (which is then `second_step()`). With the Hugging Face `Trainer`
(gradient accumulation of 1: each micro-batch would otherwise be perturbed on its own), override
`training_step`:

```python
class SAMTrainer(transformers.Trainer):
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)   # g at w
        sam = self.optimizer.optimizer                                      # inside accelerate's wrapper
        sam.first_step(zero_grad=True)                                      # to w + eps
        with running_stats_frozen(model):
            super().training_step(model, inputs, num_items_in_batch)       # g_SAM at w + eps
        return loss                                                         # the Trainer then calls step()
```

A bare `step()` is also a SAM step when every gradient is zero ($\hat\epsilon = 0$), which is how
`torch.distributed.checkpoint` creates the state of a fresh optimizer. Any other bare `step()` raises.
With Lightning, whose closure runs `training_step` and `backward`, pass a closure to `step` as usual,
through `second_pass_frozen` (below) for BatchNorm.

**BatchNorm.** The second forward pass runs in training mode, so every BatchNorm layer would fold the
statistics of the *perturbed* network into its running averages, and count the batch twice.
`running_stats_frozen(model)` (or `disable_running_stats` / `enable_running_stats`) switches that off
for the second pass: the layers still normalise with the batch's own statistics, as training requires,
but leave `running_mean`, `running_var` and `num_batches_tracked` exactly as they were. The reference
code sets the layers' `momentum` to $0$ instead; that keeps the averages (unless a batch statistic is
not finite: $0 \cdot \infty$ is NaN) but still adds one to `num_batches_tracked` per step, which
changes the averages of layers built with `momentum=None` (a cumulative average, weighted by that
count).

**Bad gradients.** One SAM step looks at two sets of gradients, and either may hold an `inf` or a
`NaN`. For the option [`nonfinite`](nonfinite.md) it is still one step, so SAM checks both, each before
it is used: $g$ before any weight moves, $g^{\mathrm{SAM}}$ after the weights are back at $w$ and before
the base sees it. Under `"raise"` the error leaves the weights at $w$; under `"skip"` the step is not
taken at all,

$$w_t = \begin{cases} \mathrm{BaseStep}\big(w_{t-1},\; \nabla L(w_{t-1} + \hat\epsilon)\big)
  & \text{if } g \text{ and } g^{\mathrm{SAM}} \text{ are finite,} \\
  w_{t-1} \text{ exactly (the saved copy), the base's state untouched} & \text{otherwise,} \end{cases}$$

and it is counted once, in the count SAM shares with its base ([wrappers](wrapper.md)), which its
checkpoint saves. A parameter whose first step it was keeps no state from it either. SAM checks the
second pass itself, so this holds over a `torch.optim` base too, which never checks. (A closure that
raises is handled the same way: the weights go back before the error propagates.)

**Half precision.** With `master_weights=True` in a group of `bfloat16`/`float16` parameters the base
keeps a `float32` master $w^{32}$ of each ([master weights](precision.md)), and SAM works on it: the
perturbation is computed and added in `float32` (the second pass sees the model's rounding of
$w^{32} + \hat\epsilon$), the saved copy is the master's, and the restore puts back
$w^{32}$ exactly, the parameter getting its rounding. With the same gradients the run follows `float32`
training bit for bit. (Restoring the parameter alone would round $w$ at every step, and the base would
re-seed its master from the rounded value.) The master lives in the shared state, so the base must be
one of this library's optimizers; over a `torch.optim` base the option is refused.

**Differences from the reference code** (besides BatchNorm): the restore covers every
perturbed weight even if it gets no gradient in the second pass (the reference skips those and leaves
them perturbed for good); with `maximize=True` the perturbation goes *down* the objective, the worst
case for a maximiser; and the checkpoint holds the base's state, which the reference's `state_dict`
leaves out.
"""

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .core import precision
from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.validation import check_non_negative
from .core.wrapper import OptimizerWrapper, make_base_optimizer

PERTURBATION_EPS = 1e-12
SAVED = "sam_saved_param"
FIRST_STEP = "sam_first_step"


class SAM(OptimizerWrapper):
    r"""
    ## Hyper-parameters

    * `base_optimizer` is the optimizer that takes the actual step: a class (`SGD`, `torch.optim.AdamW`),
      built here over `params` with the remaining keyword arguments, or an optimizer already built over
      the same parameters (then `params` may be `None`). The original paper uses SGD with momentum.
    * `rho` is $\rho$, the radius of the neighbourhood (default $0.05$; the paper tunes it in
      $\{0.01, 0.02, 0.05, 0.1, 0.2, 0.5\}$). Kept in each group as `sam_rho`.
    * `adaptive` switches to ASAM (kept as `sam_adaptive`); use a much larger `rho` with it (the reference
      code suggests $2$; on the digits $1$ works).

    `param_groups` and `state` *are* those of the base optimizer, so `optimizer.state[p]` shows the
    base's momentum, and `state_dict` is the base's (with the SAM keys in its groups).
    """

    def __init__(self, params: ParamsT | None, base_optimizer: Any, rho: float = 0.05, adaptive: bool = False,
                 **kwargs: Any) -> None:
        check_non_negative("rho", rho)
        base = make_base_optimizer(params, base_optimizer, kwargs)
        super().__init__(base, {"sam_rho": rho, "sam_adaptive": adaptive})

    def link_to_base(self) -> None:
        r"""SAM keeps no state of its own between steps, so it shares the base's `state` as well."""
        super().link_to_base()
        self.state = self.base_optimizer.state

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The state is shared, so a parameter's state starts as the base's does: the first pass may be the
        first to see a parameter (and, with master weights, creates its `float32` master there), and the
        base must then find its own state complete, in the master's precision. A `torch.optim` base
        creates its state itself, when it first steps.
        """
        if isinstance(self.base_optimizer, GenericAdaptiveOptimizer):
            self.base_optimizer.init_state(state, group, param)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> bool:
        r"""
        ### First pass: climb to $w + \hat\epsilon(w)$

        Uses the gradients already in `param.grad`. They go through `params_with_grads`, like every
        optimizer's: parameters without a gradient are left alone, sparse gradients are refused, and a
        group with `maximize=True` hands over $-g$. A non-finite gradient raises or skips the step here,
        before any weight moves. In a group with master weights, $w$ is the `float32` master (the model's
        second pass sees its rounding). Returns whether any weight was moved (`False` when no parameter
        has a gradient, or the step is skipped).
        """
        self.check_master_weights_supported()
        # Parameters taking their first step: if the step is not taken after all, the state the walks
        # below create for them is dropped again (see `restore`).
        first_steps = [param for group in self.param_groups for param in group["params"]
                       if param.grad is not None and not self.state.get(param)]

        # One norm over every parameter of every group,
        # $$N = \Big(\sum_i \lVert \textcolor{orange}{T_{w_i}}\, g_i \rVert_2^2\Big)^{1/2}$$
        # with $T_w = \lvert w\rvert$ for ASAM and $1$ for SAM. The per-tensor norms are gathered on one
        # device, in case the model is spread over several.
        norms = [torch.linalg.vector_norm(param.abs() * grad if group["sam_adaptive"] else grad)
                 for group in self.param_groups
                 for param, grad, _ in self.params_with_grads(group)]
        if not norms:
            return False
        device = norms[0].device
        norm = torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))

        # The second walk moves each parameter as it is reached (an ordinary `for` loop), so every
        # parameter is at $w + \hat\epsilon$ when the loop ends.
        for group in self.param_groups:
            for param, grad, state in self.params_with_grads(group):
                # Save $w$ exactly (the master itself, with master weights), to be copied back in
                # `second_step`.
                state[SAVED] = param.clone()
                # $$\hat\epsilon = \rho\,\frac{\textcolor{orange}{T_w^2}\, g}{N + 10^{-12}}$$
                # The $10^{-12}$ keeps a zero gradient from dividing by zero.
                perturbation = grad * (group["sam_rho"] / (norm + PERTURBATION_EPS)).to(param)
                if group["sam_adaptive"]:
                    perturbation.mul_(param).mul_(param)
                # $$w \leftarrow w + \hat\epsilon$$
                param.add_(perturbation)
        for param in first_steps:
            if SAVED in self.state.get(param, {}):
                self.state[param][FIRST_STEP] = True

        if zero_grad:
            self.zero_grad(set_to_none=True)
        return True

    def perturbed(self) -> list[torch.Tensor]:
        r"""The parameters moved by `first_step` and not yet restored."""
        return [param for group in self.param_groups for param in group["params"]
                if SAVED in self.state.get(param, {})]

    @torch.no_grad()
    def restore(self, taken: bool = True) -> None:
        r"""
        ### Back to $w$

        Copy every saved weight back and drop the copy. With `taken=False` the step will not be taken (it
        is skipped, or it failed), and nothing may be left of it: a parameter that was taking its first
        step also loses the state the first pass created for it.
        """
        if not self.perturbed():
            raise RuntimeError("SAM.second_step called without a first_step that moved the weights")
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param)
                if state is None or SAVED not in state:
                    continue
                saved = state.pop(SAVED)
                first_step = state.pop(FIRST_STEP, False)
                # A complex parameter perturbed through its real view is restored through it.
                target = torch.view_as_real(param) if param.is_complex() and not saved.is_complex() else param
                # With master weights the saved $w$ is the `float32` master: it goes back into the master
                # exactly, and the parameter gets its rounding,
                # $$w^{32} \leftarrow w^{32}_{\text{saved}} \qquad w \leftarrow \mathrm{round}\big(w^{32}\big).$$
                # Copied into the parameter alone, it would be rounded, and the base would re-seed its
                # master from the rounded value. The master is then the base's to write back.
                master = state.get(precision.MASTER_KEY) if precision.uses_master(group, target) else None
                precision.assign(target, master, saved)
                self._master_weights.hand_back(param)
                if first_step and not taken:
                    del self.state[param]

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        r"""
        ### Restore $w$, then the base step with $g^{\mathrm{SAM}}$

        A base optimizer must never step on gradients the second pass did not compute: if no restored
        parameter has a gradient, the closure did not call `backward()`, and stepping would feed the
        base zeros (or nothing). That is an error, raised after the weights are back at $w$.

        The second pass's gradients are checked for `inf`/`NaN` here, before the base sees them, and
        whatever the verdict the weights go back to $w$ first: under `"raise"` the error leaves $w$ as
        it was, under `"skip"` the base does not step. SAM checks them itself, so its policy holds over
        any base, a `torch.optim` one included.
        """
        second_pass = any(param.grad is not None for param in self.perturbed())
        try:
            usable = self._gradients_are_usable()
        except BaseException:
            self.restore(taken=False)
            raise
        self.restore(taken=second_pass and usable)
        if not second_pass:
            raise RuntimeError(
                "SAM's second pass produced no gradients: the closure must compute the loss and call "
                "backward() at the perturbed weights"
            )
        # $$w_t = \begin{cases} \mathrm{BaseStep}\big(w_{t-1},\; \nabla L(w_{t-1} + \hat\epsilon)\big)
        #   & g \text{ and } g^{\mathrm{SAM}} \text{ finite} \\ w_{t-1} & \text{otherwise (skipped)} \end{cases}$$
        if usable:
            self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def has_gradients(self) -> bool:
        return bool(self.gradients())

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        r"""
        ### One SAM step

        The template `step` of the base class cannot serve here: the two passes need every gradient
        before any weight moves, and a second evaluation in between. So SAM overrides it.
        If the closure raises, the weights are restored before the error propagates, so a training loop
        that skips a failing batch does not carry on from the perturbed point.
        """
        if closure is None:
            return self.step_without_closure()
        try:
            loss = None
            if not self.has_gradients():
                with torch.enable_grad():
                    loss = closure()
            if not self.first_step(zero_grad=True):
                return loss
            try:
                with torch.enable_grad():
                    loss = closure()
            except BaseException:
                self.restore(taken=False)
                raise
            self.second_step()
            return loss
        finally:
            # Whatever happened (a step, a skipped step, an error), the gradients left are spent.
            self.zero_grad(set_to_none=True)

    def step_without_closure(self) -> None:
        r"""
        ### A step without a closure

        Training loops that own the backward pass (the Hugging Face `Trainer`, accelerate) call `step()`
        with no closure, and so does `torch.distributed.checkpoint` when it creates the state of a fresh
        optimizer. Two cases are still a SAM step:

        * after `first_step`, the gradients present are $g^{\mathrm{SAM}}$, those of the second pass
          at $w + \hat\epsilon$: `step()` is `second_step()`;
        * when every gradient is zero (what the checkpoint code sets), $\hat\epsilon = 0$, the second pass
          would see the same zero gradients, and the SAM step is the base's step.

        Anything else would silently be the base optimizer without SAM, so it raises.
        """
        try:
            if self.perturbed():
                self.second_step()
            elif all(not grad.any() for grad in self.gradients()):
                if self._gradients_are_usable():
                    self.base_optimizer.step()
            else:
                raise RuntimeError(
                    "SAM.step() without a closure must follow first_step(): compute the gradients at w, call "
                    "first_step(), compute them again at the perturbed weights, then step() (or pass a closure "
                    "that computes the loss and its gradients)"
                )
        finally:
            self.zero_grad(set_to_none=True)

    def gradients(self) -> list[torch.Tensor]:
        return [param.grad for group in self.param_groups for param in group["params"] if param.grad is not None]

    def wrapped_state_dict(self) -> dict[str, Any]:
        r"""The base's checkpoint: it holds the shared groups, with `sam_rho` and `sam_adaptive`."""
        return self.base_optimizer.state_dict()

    def load_wrapped_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.load_base_state_dict(state_dict)


BACKUP = "_sam_track_running_stats"


def disable_running_stats(model: nn.Module) -> None:
    r"""
    ### BatchNorm: stop updating the running statistics

    In training mode a BatchNorm layer with `track_running_stats=False` normalises with the batch's
    statistics and passes no running buffers to the kernel, so nothing is updated, not even
    `num_batches_tracked`. In evaluation mode it still normalises with its running buffers. The previous
    setting is kept on the layer for `enable_running_stats`.
    """
    for module in model.modules():
        if isinstance(module, _BatchNorm) and not hasattr(module, BACKUP):
            setattr(module, BACKUP, module.track_running_stats)
            module.track_running_stats = False


def enable_running_stats(model: nn.Module) -> None:
    r"""Undo `disable_running_stats`: every layer gets back the setting it had."""
    for module in model.modules():
        if isinstance(module, _BatchNorm) and hasattr(module, BACKUP):
            module.track_running_stats = getattr(module, BACKUP)
            delattr(module, BACKUP)


@contextlib.contextmanager
def running_stats_frozen(model: nn.Module) -> Iterator[nn.Module]:
    r"""`with running_stats_frozen(model): optimizer.step(closure)`, restored even on an error."""
    disable_running_stats(model)
    try:
        yield model
    finally:
        enable_running_stats(model)


def second_pass_frozen(optimizer: SAM, model: nn.Module, closure: Callable[[], Any]) -> Callable[[], Any]:
    r"""
    ### BatchNorm when the closure is not yours (Lightning)

    A closure for `optimizer.step` that runs `closure` as it is at $w$, and with the running statistics
    frozen at the perturbed weights, whichever pass `step` is in. For a training loop that builds the
    closure itself, as Lightning's automatic optimisation does (the closure runs `training_step` and
    `backward`):

    ```python
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
        optimizer.step(closure=second_pass_frozen(optimizer.optimizer, self, optimizer_closure))
    ```

    in the `LightningModule` (`optimizer.optimizer` is the SAM inside Lightning's wrapper).
    """

    def closure_at_either_point() -> Any:
        if not optimizer.perturbed():
            return closure()
        with running_stats_frozen(model):
            return closure()

    return closure_at_either_point
