r"""
# L-BFGS: a quasi-Newton method in $O(mn)$ memory

Newton's method steps to the minimum of the local quadratic model, $\theta - H^{-1}g$, and converges
in a handful of steps near a minimum, but needs the Hessian $H$: $n^2$ numbers and an $O(n^3)$ solve.
Quasi-Newton methods build an approximation of $H^{-1}$ from what the gradients reveal as the
parameters move. After a step $s_k = \theta_{k+1} - \theta_k$ the gradient changed by
$y_k = g_{k+1} - g_k$, and for a quadratic $y_k = H s_k$ exactly: the *secant condition*
$B_{k+1}^{-1} y_k = s_k$ is what any new approximation must satisfy. BFGS picks the one closest to the
previous $H_k \approx H^{-1}$:

$$H_{k+1} = V_k^\top H_k V_k + \rho_k s_k s_k^\top \qquad V_k = I - \rho_k y_k s_k^\top \qquad
\rho_k = \frac{1}{y_k^\top s_k}.$$

[Liu & Nocedal, 1989](https://doi.org/10.1007/BF01589116) (L-BFGS, *limited memory*) never form
$H_k$: they keep the last $m$ pairs $(s_i, y_i)$, $2mn$ numbers, and apply $H_k$ to a vector with
$4mn$ multiply-adds, the *two-loop recursion* below. Per iteration, with $H^0_k = \gamma_k I$ as the
initial inverse Hessian:

```algorithm
q \leftarrow -g_k;\ \text{for } i = k-1, \dots, k-m:\ \ \alpha_i = \rho_i s_i^\top q,\ \ q \leftarrow q - \alpha_i y_i
    @ alphas[i] = steps[i].dot(q) * inverse_curvatures[i]
r \leftarrow \gamma_k\, q  @ direction = torch.mul(q, scale)
\text{for } i = k-m, \dots, k-1:\ \ \beta_i = \rho_i y_i^\top r,\ \ r \leftarrow r + (\alpha_i - \beta_i)\, s_i;
    \quad d_k = r = -H_k g_k
    @ direction.add_(steps[i], alpha=alphas[i] - beta)
t_k = \eta \ \text{(the very first: } \min(1, 1/\lVert g_k\rVert_1)\,\eta\text{), or a strong-Wolfe line search from it}
    @ step_length = min(1.0, 1.0 / grad.abs().sum()) * lr
\theta_{k+1} = \theta_k + t_k d_k  @ p.add_(piece, alpha=step_length)
s_k = t_k d_k, \quad y_k = g_{k+1} - g_k  @ grad_change = grad.sub(previous_grad)
\text{if } y_k^\top s_k > 10^{-10}:\ \text{keep } (s_k, y_k),\ \ \rho_k = 1 / y_k^\top s_k,\ \
    \gamma_{k+1} = s_k^\top y_k / y_k^\top y_k
    @ inverse_curvatures.append(1.0 / curvature)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `p` | the parameters, one tensor at a time |
| $g_k$ | `grad`, `previous_grad`, `prev_flat_grad` | all gradients, flattened; the state keeps the last one |
| $d_k$ | `direction`, `d` | the direction $-H_k g_k$ |
| $r$ | `direction` | the direction while the second loop builds it |
| $q$ | `q` | the vector the first loop changes |
| $t_k$ | `step_length`, `t` | the step length along $d_k$ |
| $y_i$ | `grad_changes`, `grad_change`, `old_dirs` | gradient differences (torch's key says *dirs*) |
| $s_i$ | `steps`, `last_step`, `old_stps` | the steps |
| $\rho_i$ | `inverse_curvatures`, `ro` | $1/y_i^\top s_i$ |
| $\alpha_i$ | `alphas`, `al` | the first loop's coefficients |
| $\beta_i$ | `beta` | the second loop's coefficient |
| $\gamma$ | `scale`, `H_diag` | the scale of $H^0 = \gamma I$ |
| $\eta$ | `lr` | the learning rate: the step length tried first |
| $m$ | `history_size` | the number of pairs kept |
| $c_1, c_2$ | `c1`, `c2` | the constants of the strong Wolfe conditions |
| $d_1, d_2$ | `d1`, `d2` | the terms of the cubic interpolation |

All parameters are one vector $\theta$ here. The state is torch's, under its keys (`d`, `t`,
`prev_flat_grad`, `old_dirs`, `old_stps`, `ro`, `al`, `H_diag`), and also counts the evaluations of the
closure and the iterations over all steps (`func_evals`, `n_iter`).

## The two-loop recursion, derived

Apply the update to a vector $q$: $H_{k+1} q = V_k^\top\big(H_k (V_k q)\big) + \rho_k s_k (s_k^\top q)$.
The inner product $\alpha_k = \rho_k s_k^\top q$ appears twice: $V_k q = q - \alpha_k y_k$, and the
last term is $\alpha_k s_k$. Call $r = H_k(V_k q)$; then

$$H_{k+1} q = r - \rho_k s_k (y_k^\top r) + \alpha_k s_k = r + (\alpha_k - \beta_k)\, s_k
\qquad \beta_k = \rho_k\, y_k^\top r.$$

$r$ is $H_k$ applied to a vector, the same problem one pair further back. Unrolled over the $m$ stored
pairs, the $\alpha$'s are computed on the way down (newest pair first, each changing $q$), then
$H^0 = \gamma I$ is applied once, then the $\beta$'s on the way back up (oldest first, each changing $r$):

$$\begin{aligned}
&q \leftarrow -g;\quad \text{for } i = k-1, \dots, k-m:
  \quad \alpha_i = \rho_i s_i^\top q,\ \ q \leftarrow q - \alpha_i y_i\\
&r \leftarrow \gamma\, q;\quad \text{for } i = k-m, \dots, k-1:
  \quad \beta_i = \rho_i y_i^\top r,\ \ r \leftarrow r + (\alpha_i - \beta_i)\, s_i
\end{aligned}$$

and $r = -H_k g = d_k$. The initial scale $\gamma = s^\top y / y^\top y$ is the inverse of the curvature
along the last step, a Rayleigh quotient of $H^{-1}$ (Nocedal & Wright, eq. 7.20): it makes $d_k$ the
right *length*, so that $t = 1$ is usually accepted.

## The curvature check

$H_{k+1}$ is positive definite if $H_k$ is *and* $y_k^\top s_k > 0$; only then is $d_{k+1}$ a descent
direction. On a convex function $y^\top s \ge 0$ always; elsewhere it can fail. A pair with
$y^\top s \le 10^{-10}$ is not stored (the history and $\gamma$ stay as they were). The strong-Wolfe line
search guarantees the condition: its second inequality, $|g_{k+1}^\top d| \le c_2|g_k^\top d|$, gives
$y^\top s \ge (1 - c_2)\, t\,|g_k^\top d| > 0$.

## The strong-Wolfe line search

With `line_search_fn="strong_wolfe"`, the step $t$ along $d$ must satisfy, for $\phi(t) = f(\theta + t d)$,

$$\phi(t) \le \phi(0) + c_1 t\,\phi'(0) \quad\text{(enough decrease)} \qquad
|\phi'(t)| \le c_2 |\phi'(0)| \quad\text{(flat enough)}$$

with $c_1 = 10^{-4}$, $c_2 = 0.9$ (Nocedal & Wright, Algorithm 3.5 and 3.6, as in Mark Schmidt's
`minFunc`, which torch follows). The search first *brackets*: from $t = \eta$ it extrapolates (up to ten
times further each time) until a step fails the first condition, or rises again, or has
$\phi' \ge 0$: then a minimiser lies between the last two steps. Then it *zooms*, shrinking the
bracket until a step satisfies both conditions. Each new trial step is the minimiser of the cubic
that matches $\phi$ and $\phi'$ at the two ends; with $d_1 = \phi'_1 + \phi'_2 - 3\frac{\phi_1-\phi_2}{t_1-t_2}$
and $d_2 = \sqrt{d_1^2 - \phi'_1\phi'_2}$, for $t_1 < t_2$,

$$t^\ast = t_2 - (t_2 - t_1)\,\frac{\phi'_2 + d_2 - d_1}{\phi'_2 - \phi'_1 + 2 d_2},$$

clamped to the bracket (bisection when $d_2^2 < 0$: the cubic has no minimum), and kept at least a
tenth of the bracket away from either end. Each trial costs one evaluation of the closure.

## Why this class overrides `step`

Every other optimizer here is a rule for one parameter at a time (`step_param`). L-BFGS is not: it sees
all parameters as one vector $\theta$ (the dot products $s^\top q$ run over every parameter), it keeps
one state for all of them (stored, as torch stores it, on the first parameter), and one call of `step`
runs up to `max_iter` iterations, each of which calls the closure once or, with the line search,
several times. So `step` is the algorithm here, and a closure is required.

## Stopping, and memory

One `step` stops after `max_iter` iterations or `max_eval` evaluations (default $\lfloor 1.25\cdot$
`max_iter`$\rfloor$), or when $\max|g| \le$ `tolerance_grad` (a stationary point), or when a step
$\max|t d|$ or the change of the loss falls below `tolerance_change`, or when $d$ is not a descent
direction ($g^\top d > -$`tolerance_change`). The state is $2m + 2$ vectors the size of the model
($y$, $s$, $d$ and the last gradient): with torch's default $m = 100$, 808 bytes per `float32`
parameter, a hundred times Adam's. For full-batch problems of modest size (a logistic regression,
style transfer, fitting a physical model) that is cheap, and the convergence is superlinear; for
mini-batch deep learning it is not the tool: a noisy gradient makes $y_k$ mostly noise.

## What differs from torch

Nothing in the arithmetic: the same operations in the same order, on scalars of the same types (see
`Trial`), equal in `float64` to the last bit in our tests. Three things around it:

* torch refuses more than one parameter group. Here several groups are accepted when they agree on
  every option (they are then one vector, as a model's parameters split by a helper are); groups that
  differ are refused, as a per-group learning rate has no meaning for one line search.
* torch gathers gradients with `view(-1)`, which raises for a non-contiguous gradient (a transposed
  weight's); here they are flattened with `reshape`, which copies only when it must.
* the non-finite policy (`nonfinite`) is applied to the gradient the step starts from, before anything
  is counted or changed. Values met later inside the step, at a trial point of the line search, are
  handled as torch handles them.
* on many processes ([distributed](../guides/distributed.md)): under FSDP2 the vectors are the whole
  model's on every process (`_flat_grad`) and the loss is averaged over the processes, so that every
  process decides alike; under DDP the closure must return the loss of the whole batch. A bare `step()`
  on zero gradients, which `torch.distributed.checkpoint` takes to create a fresh optimizer's state,
  does nothing, where torch's fails for want of a closure.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.distributed.tensor import DTensor

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.distributed import local_part, mean_over_processes
from .core.validation import check, check_real

LINE_SEARCHES = (None, "strong_wolfe")


class Trial(NamedTuple):
    r"""
    One evaluation along the direction: the step $t$, $\phi(t)$, the gradient there and $\phi'(t) = g^\top d$.

    The slope is a 0-d tensor, as torch keeps it, and so is every step that comes out of the cubic formula
    (the first step tried is a number). This is not cosmetic: torch computes `number / tensor` as a
    multiplication by the reciprocal (two roundings, `Tensor.__rtruediv__`), `number / number` as one
    division, so the types decide the last bit of $d_1$ below, and a last bit is enough to flip a later
    comparison of the line search. With the same types the two implementations agree to the bit.
    """

    step: Any
    loss: float
    grad: torch.Tensor
    slope: torch.Tensor


def cubic_minimiser(a: Trial, b: Trial, bounds: tuple[float, float] | None = None) -> float:
    r"""
    ### The minimiser of the cubic through two trials

    The cubic with the values and slopes of `a` and `b` (formula above), clamped to `bounds` (by default
    the interval between them). Written from the larger step, $t_2$; the two ends are sorted first.
    """
    low, high = (a, b) if a.step <= b.step else (b, a)
    lower, upper = bounds if bounds is not None else (low.step, high.step)
    # $$d_1 = \phi'_1 + \phi'_2 - 3\,\frac{\phi_1 - \phi_2}{t_1 - t_2}$$
    d1 = low.slope + high.slope - 3 * (low.loss - high.loss) / (low.step - high.step)
    d2_square = d1**2 - low.slope * high.slope
    # No real minimum (or a NaN): bisect.
    if not d2_square >= 0:
        return (lower + upper) / 2.0
    d2 = d2_square.sqrt()
    # $$t^\ast = t_2 - (t_2 - t_1)\,\frac{\phi'_2 + d_2 - d_1}{\phi'_2 - \phi'_1 + 2 d_2}$$
    minimiser = high.step - (high.step - low.step) * ((high.slope + d2 - d1) / (high.slope - low.slope + 2 * d2))
    return min(max(minimiser, lower), upper)


def strong_wolfe(evaluate: Callable[[Any], Trial], start: Trial, step: Any, direction_size: torch.Tensor,
                 max_evals: int, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9
                 ) -> tuple[Trial, int]:
    r"""
    ### Bracket, then zoom

    `evaluate(t)` returns the trial at step `t`; `start` is the trial at $t = 0$; `direction_size` is
    $\max|d|$, which turns a bracket's width into a change of the parameters. Returns the accepted
    trial and the number of evaluations made.
    """

    def sufficient_decrease(trial: Trial) -> bool:
        # $$\phi(t) \le \phi(0) + c_1\, t\, \phi'(0)$$
        return not trial.loss > start.loss + c1 * trial.step * start.slope

    def flat_enough(trial: Trial) -> bool:
        # $$|\phi'(t)| \le c_2\, |\phi'(0)|$$
        return abs(trial.slope) <= -c2 * start.slope

    previous, trial = start, evaluate(step)
    evals, iteration, done = 1, 0, False
    # Bracketing: extrapolate until a minimiser is known to lie between `previous` and `trial`.
    while iteration < max_evals:
        if not sufficient_decrease(trial) or (iteration > 1 and trial.loss >= previous.loss):
            bracket = [previous, trial]
            break
        if flat_enough(trial):
            bracket, done = [trial], True
            break
        if trial.slope >= 0:
            bracket = [previous, trial]
            break
        # Further along: at least 1% beyond the last step, at most ten times as far.
        bounds = (trial.step + 0.01 * (trial.step - previous.step), trial.step * 10)
        previous, trial = trial, evaluate(cubic_minimiser(previous, trial, bounds))
        evals += 1
        iteration += 1
    # Out of evaluations while still extrapolating: choose between the start and the last step.
    if iteration == max_evals:
        bracket = [start, trial]

    # Zoom: shrink the bracket until a trial satisfies both conditions. `low` is the end with the lower loss.
    low, high = (0, 1) if bracket[0].loss <= bracket[-1].loss else (1, 0)
    insufficient_progress = False
    while not done and iteration < max_evals:
        left, right = min(bracket[0].step, bracket[1].step), max(bracket[0].step, bracket[1].step)
        if (right - left) * direction_size < tolerance_change:
            break
        step = cubic_minimiser(bracket[0], bracket[1])
        # A trial too close to an end of the bracket shrinks it too little. The first time, accept it;
        # the second time in a row (or when it is at an end), move it a tenth of the width inside.
        margin = 0.1 * (right - left)
        if min(right - step, step - left) < margin:
            if insufficient_progress or step >= right or step <= left:
                step = right - margin if abs(step - right) < abs(step - left) else left + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        trial = evaluate(step)
        evals += 1
        iteration += 1
        if not sufficient_decrease(trial) or trial.loss >= bracket[low].loss:
            # The new trial is the high end: the minimiser is between it and the low end.
            bracket[high] = trial
            low, high = (0, 1) if bracket[0].loss <= bracket[1].loss else (1, 0)
        else:
            if flat_enough(trial):
                done = True
            elif trial.slope * (bracket[high].step - bracket[low].step) >= 0:
                # The slope points away from the high end: the old low end becomes the high end.
                bracket[high] = bracket[low]
            bracket[low] = trial
    return bracket[low], evals


def two_loop_direction(grad: torch.Tensor, grad_changes: list[torch.Tensor], steps: list[torch.Tensor],
                       inverse_curvatures: list[torch.Tensor], scale: Any, alphas: list[Any]) -> torch.Tensor:
    r"""
    ### $d = -H g$ by the two-loop recursion

    `alphas` is torch's scratch list `al` (kept in the state); its first `len(steps)` entries are
    overwritten.
    """
    q = grad.neg()
    # Newest pair first: $\alpha_i = \rho_i s_i^\top q$, $q \leftarrow q - \alpha_i y_i$
    for i in range(len(steps) - 1, -1, -1):
        alphas[i] = steps[i].dot(q) * inverse_curvatures[i]
        q.add_(grad_changes[i], alpha=-alphas[i])
    # $r = \gamma q$: the initial inverse Hessian, a multiple of the identity.
    direction = torch.mul(q, scale)
    # Oldest pair first: $\beta_i = \rho_i y_i^\top r$, $r \leftarrow r + (\alpha_i - \beta_i)\, s_i$
    for i in range(len(steps)):
        beta = grad_changes[i].dot(direction) * inverse_curvatures[i]
        direction.add_(steps[i], alpha=alphas[i] - beta)
    return direction


def as_number(loss: Any) -> float:
    r"""The loss as a Python number; a tensor is detached first (its graph is not needed here)."""
    return float(loss.detach() if isinstance(loss, torch.Tensor) else loss)


class LBFGS(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments and defaults are `torch.optim.LBFGS`'s.

    * `lr` is $\eta$ (default $1$), the step length tried first. With $H^0 = \gamma I$ scaled as above,
      $1$ is the natural step of a quasi-Newton method: keep it, and use the line search rather than a
      smaller `lr` when steps overshoot. The very first step is $\min(1, 1/\lVert g\rVert_1)\,\eta$,
      since $-g$ carries no curvature information yet.
    * `max_iter` (default $20$) iterations per call of `step`; `max_eval` (default $\lfloor 1.25\,$
      `max_iter`$\rfloor$) evaluations of the closure per call. `LBFGS(..., max_iter=500)` with one
      `step` is a complete full-batch solve; `max_iter=1` makes one `step` one iteration, but then give
      `max_eval` too: its default, $\lfloor 1.25\rfloor = 1$, leaves the line search no evaluation, and it
      returns the start of the bracket, $t = 0$, or its first trial, whichever is lower (torch's rule).
    * `tolerance_grad` (default $10^{-7}$): stop when $\max|g| \le$ it; `tolerance_change` (default
      $10^{-9}$): stop when the step or the change of the loss is smaller.
    * `history_size` is $m$ (default $100$). $5$ to $20$ pairs give most of the benefit on most problems,
      at a fraction of the memory.
    * `line_search_fn`: `None` (fixed steps of $\eta$; cheap, but can diverge on non-convex problems)
      or `"strong_wolfe"` (robust; a few more evaluations per iteration).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | torch.Tensor = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        # torch checks none of these. A count below 1 is refused here: torch's loop compares it for
        # equality only, so `max_iter=0` runs without that limit and `history_size=0` keeps every pair.
        check("max_iter", max_iter, lambda n: 1 <= n < math.inf, "must be a finite number >= 1")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        check("max_eval", max_eval, lambda n: 1 <= n < math.inf, "must be a finite number >= 1")
        # A negative tolerance switches its test off, as in torch.
        check_real("tolerance_grad", tolerance_grad)
        check_real("tolerance_change", tolerance_change)
        check("history_size", history_size, lambda n: 1 <= n < math.inf, "must be a finite number >= 1")
        # torch finds out at the first step, with a `RuntimeError`; a wrong name is refused here, when it
        # is written, with the same type.
        if line_search_fn not in LINE_SEARCHES:
            raise RuntimeError(f"Invalid line_search_fn: {line_search_fn!r} (only 'strong_wolfe' or None)")
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""A group is accepted only if it has the same options as the first: all groups are one vector."""
        super().add_param_group(param_group)
        if self._groups_differ():
            self.param_groups.pop()
            raise ValueError("LBFGS doesn't support per-parameter options: every parameter group must have "
                             "the same options (they are optimised as one vector)")

    def _groups_differ(self) -> bool:
        def options(group: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in group.items() if k not in ("params", "param_names")}

        first = options(self.param_groups[0])
        return any(options(group) != first for group in self.param_groups[1:])

    def _params(self) -> list[torch.Tensor]:
        r"""Every parameter, in order; a complex one as its real view (as torch does)."""
        return [torch.view_as_real(p) if p.is_complex() else p for g in self.param_groups for p in g["params"]]

    def _flat_grad(self) -> torch.Tensor:
        r"""
        All gradients as one vector. A parameter without a gradient contributes zeros, as in torch: the
        vector keeps its length, so the stored pairs stay comparable from step to step.

        Under FSDP2 a gradient is a shard (a `DTensor`), and the vector must be the whole one: its
        inner products run over every coordinate of the model. Each process gathers every gradient
        (`full_tensor`, one all-gather each), so every process holds the same whole vector, and keeps
        the same whole history: the state of one process, as under DDP. Only the moves are sharded.
        """
        pieces = []
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    grad = torch.zeros(p.shape, dtype=p.dtype, device=p.device)
                elif isinstance(grad, DTensor):
                    grad = grad.full_tensor()
                elif grad.is_sparse:
                    grad = grad.to_dense()
                if grad.is_complex():
                    grad = torch.view_as_real(grad)
                pieces.append(grad.reshape(-1))
        return torch.cat(pieces)

    def _move(self, step_length: Any, direction: torch.Tensor) -> None:
        r"""
        $\theta \leftarrow \theta + t\,d$, slice by slice of the flat direction; a parameter sharded by
        FSDP2 takes the part of its slice that this process holds.
        """
        offset = 0
        for p in self._params():
            piece = direction[offset:offset + p.numel()].view(p.shape)
            if isinstance(p, DTensor):
                p.to_local().add_(local_part(piece, p), alpha=step_length)
            else:
                p.add_(piece, alpha=step_length)
            offset += p.numel()

    def _loss(self, loss: Any) -> float:
        r"""
        The loss the decisions are taken on: the closure's, as a number, and under FSDP2 its mean over
        the processes. Each process's closure sees its own slice of the batch, and the stopping test and
        the line search compare losses: on different numbers the processes would decide differently,
        evaluate the closure a different number of times, and their collectives would no longer pair up.
        The mean is the loss of the whole batch, whose gradient the processes hold.
        """
        return mean_over_processes(self, as_number(loss))

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[float, torch.Tensor]:
        with torch.enable_grad():
            loss = closure()
        return self._loss(loss), self._flat_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        r"""
        ### One call: up to `max_iter` iterations

        The state is restored from the first parameter's entry, advanced, and written back at the end.
        """
        if closure is None:
            # `torch.distributed.checkpoint` creates a fresh optimizer's state with a bare `step()` on zero
            # gradients. From a point where the gradient is zero L-BFGS takes no step (the stationary case
            # below), and needs no closure to know it. Any other bare step has nothing to evaluate.
            if all(p.grad is not None for g in self.param_groups for p in g["params"]) and not self._flat_grad().any():
                return None
            raise RuntimeError("LBFGS requires a closure that re-evaluates the model and returns the loss")
        if self._groups_differ():
            raise ValueError("LBFGS doesn't support per-parameter options: the parameter groups' options differ")
        group = self.param_groups[0]
        lr = group["lr"].item() if isinstance(group["lr"], torch.Tensor) else group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]

        with torch.enable_grad():
            first_loss = closure()
        # The non-finite policy, on the gradients the step starts from: raise, or skip the whole step.
        if not self._gradients_are_usable():
            return first_loss
        state = self.state[self.param_groups[0]["params"][0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        loss, grad = self._loss(first_loss), self._flat_grad()
        evals = 1
        state["func_evals"] += 1
        # Already stationary (or nothing to optimise: every parameter is empty): nothing to do.
        if grad.numel() == 0 or grad.abs().max() <= tolerance_grad:
            return first_loss

        direction, step_length = state.get("d"), state.get("t")
        grad_changes, steps = state.get("old_dirs"), state.get("old_stps")
        inverse_curvatures, scale = state.get("ro"), state.get("H_diag")
        previous_grad, previous_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        iteration, stationary = 0, False
        while iteration < max_iter:
            iteration += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                # No curvature known yet: steepest descent, $H^0 = I$.
                direction = grad.neg()
                grad_changes, steps, inverse_curvatures, scale = [], [], [], 1
            else:
                # $$y = g_{k} - g_{k-1} \qquad s = t_{k-1} d_{k-1}$$
                grad_change = grad.sub(previous_grad)
                last_step = direction.mul(step_length)
                curvature = grad_change.dot(last_step)
                # The curvature check: only a pair with $y^\top s > 0$ keeps $H$ positive definite.
                if curvature > 1e-10:
                    if len(grad_changes) == group["history_size"]:
                        grad_changes.pop(0)
                        steps.pop(0)
                        inverse_curvatures.pop(0)
                    grad_changes.append(grad_change)
                    steps.append(last_step)
                    # $$\rho = 1 / y^\top s \qquad \gamma = y^\top s / y^\top y$$
                    inverse_curvatures.append(1.0 / curvature)
                    scale = curvature / grad_change.dot(grad_change)
                alphas = state.setdefault("al", [None] * group["history_size"])
                direction = two_loop_direction(grad, grad_changes, steps, inverse_curvatures, scale, alphas)

            if previous_grad is None:
                previous_grad = grad.clone(memory_format=torch.contiguous_format)
            else:
                previous_grad.copy_(grad)
            previous_loss = loss

            # The first step ever is limited to $\lVert t d\rVert_1 \le \eta$; later ones try $t = \eta$.
            step_length = min(1.0, 1.0 / grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            # $\phi'(0) = g^\top d$; not negative enough means $d$ does not descend.
            slope = grad.dot(direction)
            if slope > -tolerance_change:
                break

            if group["line_search_fn"] == "strong_wolfe":
                start_point = [p.clone(memory_format=torch.contiguous_format) for p in self._params()]

                def evaluate(trial_step: Any, direction: torch.Tensor = direction,
                             start_point: list[torch.Tensor] = start_point) -> Trial:
                    # $\phi(t)$ and $\phi'(t)$ at $\theta + t d$; the parameters go back to $\theta$ after.
                    self._move(trial_step, direction)
                    trial_loss, trial_grad = self._evaluate(closure)
                    for p, saved in zip(self._params(), start_point):
                        p.copy_(saved)
                    return Trial(trial_step, trial_loss, trial_grad, trial_grad.dot(direction))

                start = Trial(0, loss, grad, slope)
                accepted, trial_evals = strong_wolfe(
                    evaluate, start, step_length, direction.abs().max(), max_evals=max_eval - evals,
                    tolerance_change=tolerance_change,
                )
                loss, grad, step_length = accepted.loss, accepted.grad, accepted.step
                self._move(step_length, direction)
                stationary = grad.abs().max() <= tolerance_grad
            else:
                # A fixed step of $\eta$; the gradient there is the next iteration's (not needed after the last).
                self._move(step_length, direction)
                trial_evals = 0
                if iteration != max_iter:
                    loss, grad = self._evaluate(closure)
                    stationary = grad.abs().max() <= tolerance_grad
                    trial_evals = 1
            evals += trial_evals
            state["func_evals"] += trial_evals

            if iteration == max_iter or evals >= max_eval or stationary:
                break
            # The parameters or the loss no longer change.
            if direction.mul(step_length).abs().max() <= tolerance_change:
                break
            if abs(loss - previous_loss) < tolerance_change:
                break

        state.update(d=direction, t=step_length, old_dirs=grad_changes, old_stps=steps, ro=inverse_curvatures,
                     H_diag=scale, prev_flat_grad=previous_grad, prev_loss=previous_loss)
        return first_loss
