r"""
# Where Adam fails: the AMSGrad counter-example

[Reddi, Kale & Kumar, 2018](https://openreview.net/forum?id=ryQu7f-RZ) built a problem on which
[Adam](adam.md) provably goes the wrong way, and showed that [AMSGrad](amsgrad.md) does not. It is
online convex optimisation in one dimension: at step $t$ the loss is linear,

$$f_t(x) = \begin{cases} 1010\,x & t \bmod 101 = 1 \\ -10\,x & \text{otherwise,} \end{cases}
  \qquad x \in [-1, 1].$$

Over one period of 101 steps the gradients add up to $1010 - 100 \cdot 10 = +10$, so the total loss
falls as $x$ falls: the best point is $x = -1$. But 100 of every 101 gradients push $x$ *up*.

## Why Adam goes up

The rare gradient is large, $1010$, and it drives $v_t$ up: with $\beta_2 = 0.99$ it adds about
$0.01 \cdot 1010^2 \approx 10^4$. Dividing by $\sqrt{v_t}$ turns that big gradient into a step of
ordinary size. Then $v_t$ forgets it, by a factor $0.99$ a step, and within the period it has shrunk
almost threefold: the small gradients, $-10$, are divided by an ever smaller $\sqrt{v_t}$ and their
steps grow. The hundred steps up outweigh the one step down, and Adam drifts to $x = +1$, the *worst*
point, where its average regret stays bounded away from zero.

AMSGrad divides by the largest $v$ seen so far instead. After the first large gradient the
denominator stays at its peak, every small step stays small, and the sum of the steps follows the
sum of the gradients: AMSGrad heads down, towards $x = -1$.

## The experiment

`run` plays the game with one of our optimizers: the gradient of $f_t$, an optimizer step, then the
projection onto $[-1, 1]$ (a clamp). As in the paper, $\beta_1 = 0.9$, $\beta_2 = 0.99$, and the
learning rate decays as $\alpha/\sqrt{t}$; that decay is the [Noam schedule](lr_schedules.md) with
$d = 1$ and no warmup. The plot on the AMSGrad page shows both trajectories; from the command line,

```
python -m annotated_opt.toys.counterexample
```

prints where each optimizer ends.

## ADOPT on the same game

[ADOPT](adopt.md) divides $g_t$ by $\sqrt{v_{t-1}}$, which does not contain it, so the rare gradient
counts in full: without clipping (`clip_lambda=None`), ADOPT heads to $x = -1$ for $\beta_2 = 0.99$,
and also for $\beta_2 = 0.5$, where Adam is just as wrong. The official default clips each
normalised gradient to $c_t = t^{1/4}$, and the rare one is what it cuts. Its normalised size is
about $13$ for $\beta_2 = 0.99$ (the denominator still remembers the previous rare gradient) against
a hundred small ones of about $-0.1$; $c_t$ passes $13$ after some $29\,000$ steps, and only then
does clipped ADOPT turn round (it is at $+0.67$ after $20\,000$ steps, at $-0.995$ after $50\,000$).
For $\beta_2 = 0.5$ the denominator has forgotten it, the rare gradient normalises to about $101$
against a hundred of $-1$, and $c_t$ reaches $101$ only after $10^8$ steps. The bound grows without
limit, so the guarantee survives; on this game it arrives late. The plot on the ADOPT page shows the
four trajectories.
"""

import functools
import sys
from collections.abc import Callable

import torch

from ..adam import Adam
from ..adopt import ADOPT
from ..amsgrad import AMSGrad
from ..schedules.lr_schedules import Noam, attach

PERIOD = 101
LARGE_GRADIENT = 1010.0
SMALL_GRADIENT = -10.0


def gradient(step: int) -> float:
    r"""
    The gradient of $f_t$ at step $t$ (counting from 1): $1010$ once every 101 steps, $-10$ otherwise.
    """
    return LARGE_GRADIENT if step % PERIOD == 1 else SMALL_GRADIENT


def run(optimizer_class: Callable[..., torch.optim.Optimizer] = Adam, steps: int = 20_000, lr: float = 0.5,
        betas: tuple[float, float] = (0.9, 0.99), start: float = 0.0) -> list[float]:
    r"""
    Play the game for `steps` steps from $x_0 =$ `start` and return $x_1, \dots, x_T$.
    `lr` is $\alpha$ in the learning rate $\alpha/\sqrt t$. `optimizer_class` is called as
    `optimizer_class([x], lr=..., betas=...)`: a class, or a `functools.partial` fixing more options.
    """
    x = torch.tensor([start], dtype=torch.float64, requires_grad=True)
    optimizer = attach(optimizer_class([x], lr=lr, betas=betas), Noam(d_model=1, warmup=0))
    trajectory = []
    for step in range(1, steps + 1):
        x.grad = torch.full_like(x, gradient(step))
        optimizer.step()
        # The projection onto the feasible set, $x_t \leftarrow \min(1, \max(-1, x_t))$
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
        trajectory.append(x.item())
    return trajectory


# The contenders of the command line and of the ADOPT page's plot, by the name they are printed with.
CONTENDERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "Adam": Adam,
    "AMSGrad": AMSGrad,
    "ADOPT": ADOPT,
    "ADOPT, no clipping": functools.partial(ADOPT, clip_lambda=None),
}


def main(argv: list[str]) -> int:
    steps = int(argv[0]) if argv else 20_000
    for name, optimizer_class in CONTENDERS.items():
        final = run(optimizer_class, steps)[-1]
        print(f"{name:>18}: x = {final:+.3f} after {steps} steps (the optimum is -1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
