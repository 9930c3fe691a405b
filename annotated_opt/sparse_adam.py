r"""
# SparseAdam: Adam that only touches the rows it sees

A language model's embedding table has one row per token, and a batch uses a few hundred of them.
With `nn.Embedding(sparse=True)` the backward pass returns a **sparse** gradient: only the indices of
the rows that were looked up, and their values. Dense [Adam](adam.md) cannot use it as it is: its
moments decay *every* coordinate at every step, so it would have to treat the absent rows as zero
gradients, and pay a pass over the whole table (and its two moments) per step. SparseAdam updates the
rows present in the gradient, and leaves every other row, and its moments, exactly as they were:

$$
\text{for each row } r \text{ present in } g_t:\quad
\begin{aligned}
m_{t,r} &= \beta_1 m_{t-1,r} + (1-\beta_1)\, g_{t,r} \\
v_{t,r} &= \beta_2 v_{t-1,r} + (1-\beta_2)\, g_{t,r}^2 \\
\theta_{t,r} &= \theta_{t-1,r}
  - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot\frac{m_{t,r}}{\sqrt{v_{t,r}} + \epsilon}
\end{aligned}
$$

and nothing at all for the other rows. The work per step is proportional to the rows in the batch,
not to the size of the table.

```algorithm
\textcolor{orange}{\text{for each row } r \text{ present in } g_t \text{ (duplicate indices summed):}}
    @ grad = grad.coalesce()
m_{t,r} = \beta_1 m_{t-1,r} + (1 - \beta_1)\, g_{t,r}  @ exp_avg.add_(at_rows(exp_avg_change))
v_{t,r} = \beta_2 v_{t-1,r} + (1 - \beta_2)\, g_{t,r}^2  @ exp_avg_sq.add_(at_rows(exp_avg_sq_change))
\theta_{t,r} = \theta_{t-1,r}
    - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot\frac{m_{t,r}}{\textcolor{orange}{\sqrt{v_{t,r}} + \epsilon}}
    @ param.add_(at_rows(-step_size * new_exp_avg.div_(denominator)))
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter, a dense table of rows |
| $g_t$ | `grad`, `values` | the sparse gradient, and its values at the rows present |
| $r$ | `rows` | a row present in the gradient (`rows` holds their indices) |
| $m_t$ | `exp_avg` | the first moment, dense, updated at the rows present |
| $v_t$ | `exp_avg_sq` | the second moment, likewise |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | the decay rates (`betas`) |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero, unscaled by the bias correction |
| $t$ | `step` | the parameter's step count, not the row's |

## What laziness changes: frozen moments

This is a different optimizer from dense Adam on the same gradients, not a faster implementation of
it. For a row absent from a step, dense Adam would still decay both moments, $m \leftarrow \beta_1 m$,
$v \leftarrow \beta_2 v$, and **still move the row** by $\eta\,\hat m/(\sqrt{\hat v}+\epsilon)$: momentum
carries it on, with a shrinking step. SparseAdam freezes the row's moments instead: they wait, unchanged,
until the row appears again, and the row does not move in between. Three consequences:

* a row seen once and never again takes one step, not a tail of momentum steps;
* when a row returns after $k$ absent steps, its old moments count as if they were one step old,
  not $k$ steps old: a rare token's history is remembered far longer than $1/(1-\beta)$ steps;
* the bias correction uses the *parameter's* step count $t$ (every step that had a gradient for the
  table), not the row's. A row seen for the first time at step 1000 has $m = (1-\beta_1)\,g$ and
  $v = (1-\beta_2)\,g^2$ but a correction of almost 1, so its first step is
  $\eta\,(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2\,\eta$ in size: the "spike after silence" of the
  [Adam](adam.md) page, for every new token.

Dense Adam equals SparseAdam only while every row is present at every step (see the tests).

## Matching `torch.optim.SparseAdam`

* Duplicate indices (a token twice in one batch) are summed before the update (`coalesce`): the
  update is non-linear, so two half-gradients are not two half-steps.
* The bias corrections are folded into the step size, **with $\epsilon$ unscaled**: the denominator is
  $\sqrt{v_t} + \epsilon$, where Adam's is $\sqrt{v_t/(1-\beta_2^t)} + \epsilon$. SparseAdam's
  $\epsilon$ therefore acts like Adam's $\epsilon/\sqrt{1-\beta_2^t}$, about 32 times larger at the first
  step for $\beta_2 = 0.999$ (the difference the [Adam](adam.md) page describes under "The same step
  with fewer operations"). It matters only where $\sqrt{v} \lesssim \epsilon$.
* The step count is a Python `int`, not a tensor (the other torch optimizers moved to tensors;
  this one did not), and a step whose sparse gradient holds no values still counts.
* Dense gradients are refused, and so are sparse or complex parameters; `lr` and `eps` must be
  strictly positive.

State: the two moments, as dense tensors the size of the parameter (8 bytes per `float32`
parameter, as Adam): lazy in time, not in memory.
"""

import math
from typing import Any

import torch
from torch.distributed.tensor import DTensor

from .core.base import GenericAdaptiveOptimizer, ParamsT, check_learning_rate
from .core.options import learning_rate
from .core.validation import check_betas, check_positive


class SparseAdam(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.SparseAdam`.

    * `lr` is $\eta$ (default $10^{-3}$); embeddings often take a larger one than the dense layers,
      since each row is updated only when its token appears.
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$), memories counted in the row's own
      appearances (above).
    * `eps` is $\epsilon$ (default $10^{-8}$), unscaled (above).
    * `maximize` ascends the objective instead.

    The usual recipe: `SparseAdam` for the sparse embedding's weight, [Adam](adam.md) or
    [AdamW](adamw.md) for the rest of the model, two optimizers stepped together.
    """

    supports_complex = False
    sparse_gradients = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        # Strictly positive, as torch requires: a zero learning rate would only count steps, and a zero
        # $\epsilon$ divides $0/0$ in a row whose gradient is zero. A tensor learning rate must hold one
        # value, as everywhere.
        check_learning_rate(lr)
        check_positive("lr", lr)
        check_positive("eps", eps)
        check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        The gradients are sparse, the parameters must be dense: a sparse parameter is refused. So is a
        parameter sharded by FSDP2 (a `DTensor`): FSDP2 reduce-scatters dense gradients only (a sparse
        one fails in its backward pass), so such a parameter never gets the sparse gradient this
        optimizer needs. DDP all-reduces sparse gradients: under DDP, SparseAdam works as on one process.
        """
        params = param_group["params"]
        param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        for p in param_group["params"]:
            tensor = p[1] if isinstance(p, tuple) else p
            if isinstance(tensor, torch.Tensor) and tensor.is_sparse:
                raise ValueError("SparseAdam requires dense parameter tensors")
            if isinstance(tensor, DTensor):
                raise ValueError("SparseAdam does not support parameters sharded by FSDP2 (DTensor): FSDP2 reduces "
                                 "dense gradients only, never sparse ones. Train under DistributedDataParallel, "
                                 "which all-reduces sparse gradients, or use Adam with a dense embedding "
                                 "(sparse=False)")
        super().add_param_group(param_group)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""The step count, an `int` as in torch, and dense moments $m_0 = v_0 = 0$."""
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One lazy step

        Everything below works on the *values* of the present rows, vectors of length
        (rows present) $\times$ (row size); the three dense tensors are only read at those rows and
        written back there, through sparse tensors with the gradient's indices.
        """
        beta1, beta2 = group["betas"]
        state["step"] += 1
        # One entry per index: duplicates summed (see the notes).
        grad = grad.coalesce()
        rows, values = grad.indices(), grad.values()
        if values.numel() == 0:
            return

        def at_rows(row_values: torch.Tensor) -> torch.Tensor:
            # A sparse tensor with the gradient's indices, to add into a dense tensor at those rows. The
            # indices come from a coalesced tensor: valid and unique, so checking them again is waste.
            return torch.sparse_coo_tensor(rows, row_values, grad.shape, check_invariants=False, is_coalesced=True)

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # The moments at the present rows, before this step (`sparse_mask` reads a dense tensor at
        # the indices of `grad`, in the same order as its values).
        old_exp_avg = exp_avg.sparse_mask(grad).values()
        old_exp_avg_sq = exp_avg_sq.sparse_mask(grad).values()
        # Each average as a change, $m + (1-\beta_1)(g - m)$, added at the present rows only; the
        # absent rows keep their moments (the notes' frozen moments).
        # $$m_{t,r} = \beta_1 m_{t-1,r} + (1-\beta_1)\, g_{t,r} \qquad
        #   v_{t,r} = \beta_2 v_{t-1,r} + (1-\beta_2)\, g_{t,r}^2$$
        exp_avg_change = values.sub(old_exp_avg).mul_(1 - beta1)
        exp_avg.add_(at_rows(exp_avg_change))
        exp_avg_sq_change = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
        exp_avg_sq.add_(at_rows(exp_avg_sq_change))
        # The new moments at those rows again, computed as old + change (the same operation, so the
        # same values, as the dense tensors now hold) instead of read back through another mask.
        new_exp_avg = exp_avg_change.add_(old_exp_avg)
        denominator = exp_avg_sq_change.add_(old_exp_avg_sq).sqrt_().add_(group["eps"])
        # Both corrections in the scalar step size, with $\epsilon$ unscaled (see the notes).
        # $$\theta_{t,r} = \theta_{t-1,r} - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot
        #   \frac{m_{t,r}}{\sqrt{v_{t,r}} + \epsilon}$$
        step = state["step"]
        step_size = learning_rate(group, param) * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        param.add_(at_rows(-step_size * new_exp_avg.div_(denominator)))
