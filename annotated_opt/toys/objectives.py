r"""
# Toy objectives: five surfaces that each test one thing

A two-parameter objective can be drawn, so the whole path of an optimizer can be seen at once. Each
surface below was chosen because it breaks a different naive method:

| objective | what it tests | minimum |
|---|---|---|
| Rosenbrock | a long, curved, flat-bottomed valley: progress needs steps where the gradient is tiny | $(1, 1)$ |
| Rastrigin | a bowl covered in local minima: a small step is trapped in the first dimple | $(0, 0)$ |
| Beale | plateaus and a steep rim: gradients differ by orders of magnitude between regions | $(3, \tfrac12)$ |
| quadratic | an ill-conditioned bowl, rotated: one learning rate is too large across and too small along | $(0, 0)$ |
| saddle | a start on the ridge of a saddle point: the gradient that leads away is almost zero | $(0, \pm 1)$ |

Every objective is written as a function of $x$ and $y$ that accepts floats or tensors (so the same
lines evaluate the optimizer's one point and a whole grid for the contour plot), and its gradient is
written out **by hand** rather than taken from autograd. The tests check both against autograd and
check that the gradient vanishes at the minima. Hand-written gradients also make a toy step cheap:
the tuning script runs a few hundred thousand of them.

Each objective also fixes the *start* of every trajectory and the *region* that the plots show. A
trajectory that leaves the region is penalised by the tuning search (`annotated_opt/tuned.py`).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
Number = float | Tensor


# The formulas below are written once and evaluated on two kinds of numbers: plain Python floats for
# the optimizer's single point (a hundred times cheaper than a tensor operation on one number) and
# tensors for the grid of a contour plot. Only the cosine and sine need to know which.
def cos(u: Number) -> Number:
    return torch.cos(u) if isinstance(u, Tensor) else math.cos(u)


def sin(u: Number) -> Number:
    return torch.sin(u) if isinstance(u, Tensor) else math.sin(u)


@dataclass(frozen=True)
class Objective:
    r"""
    A surface $f(x, y)$ with its hand-written gradient.

    * `value(x, y)` and `gradient(x, y)` take two floats, or two tensors of any (equal) shape
      element-wise; `gradient` returns the pair $(\partial f/\partial x, \partial f/\partial y)$.
    * `minima` are the global minimisers (the distance to the nearest one measures progress),
      `minimum_value` is $f$ there.
    * `start` is where every trajectory begins, `region` is $((x_{\min}, x_{\max}), (y_{\min}, y_{\max}))$,
      the rectangle the plots show, and `steps` is how many optimizer steps a trajectory takes.
    * `log_levels` draws the contours of $\log(f - f^\star + 1)$, for surfaces whose values span
      many orders of magnitude.
    * `summary` says in one sentence what the surface tests.
    """

    name: str
    title: str
    value: Callable[[Number, Number], Number]
    gradient: Callable[[Number, Number], tuple[Number, Number]]
    minima: tuple[tuple[float, float], ...]
    minimum_value: float
    start: tuple[float, float]
    region: tuple[tuple[float, float], tuple[float, float]]
    steps: int
    log_levels: bool = True
    summary: str = ""

    def value_and_gradient(self, point: Tensor) -> tuple[Tensor, Tensor]:
        r"""$f$ (0-d) and $\nabla f$ (shape `(2,)`) at `point`, a tensor of shape `(2,)`."""
        x, y = point.tolist()
        dx, dy = self.gradient(x, y)
        return (torch.tensor(self.value(x, y), dtype=point.dtype),
                torch.tensor((dx, dy), dtype=point.dtype))

    def distance_to_minimum(self, points: Tensor) -> Tensor:
        r"""The Euclidean distance from each point (`points` has shape `(..., 2)`) to its nearest minimum."""
        minima = torch.tensor(self.minima, dtype=points.dtype)
        return torch.cdist(points.reshape(-1, 2), minima).min(dim=1).values.reshape(points.shape[:-1])

    @property
    def diagonal(self) -> float:
        """The length of the region's diagonal: the scale for distances."""
        (x0, x1), (y0, y1) = self.region
        return math.hypot(x1 - x0, y1 - y0)

    def contains(self, points: Tensor) -> Tensor:
        """Whether each point lies inside the plotted region (and is finite)."""
        (x0, x1), (y0, y1) = self.region
        x, y = points[..., 0], points[..., 1]
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


# ## Rosenbrock
#
# [Rosenbrock, 1960](https://doi.org/10.1093/comjnl/3.3.175): the classic banana valley,
# $$f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2,$$
# with the gradient
# $$\frac{\partial f}{\partial x} = -2(1 - x) - 400\,x\,(y - x^2) \qquad
#   \frac{\partial f}{\partial y} = 200\,(y - x^2).$$
# Across the valley the curvature is about $200(1 + 4x^2)$, along its floor about $2$: the condition
# number is in the hundreds and changes as the valley bends. The start $(-1.2, 1)$ is the standard one
# of [Moré, Garbow & Hillstrom, 1981](https://doi.org/10.1145/355934.355936).
def rosenbrock_value(x: Number, y: Number) -> Number:
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    across = y - x**2
    return -2 * (1 - x) - 400 * x * across, 200 * across


# ## Rastrigin
#
# [Rastrigin, 1974](https://en.wikipedia.org/wiki/Rastrigin_function): a parabola with a cosine egg
# box added,
# $$f(x, y) = 20 + \sum_{u \in \{x, y\}} \big(u^2 - 10\cos 2\pi u\big) \qquad
#   \frac{\partial f}{\partial u} = 2u + 20\pi \sin 2\pi u.$$
# There is a local minimum near every point of the integer grid. An optimizer with a small step stops
# in the nearest one; reaching the global minimum at the origin takes steps large enough to jump
# between dimples, or momentum.
def rastrigin_value(x: Number, y: Number) -> Number:
    return 20 + x**2 - 10 * cos(2 * math.pi * x) + y**2 - 10 * cos(2 * math.pi * y)


def rastrigin_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    return 2 * x + 20 * math.pi * sin(2 * math.pi * x), 2 * y + 20 * math.pi * sin(2 * math.pi * y)


# ## Beale
#
# [Beale, 1958](https://en.wikipedia.org/wiki/Test_functions_for_optimization): a sum of three squares,
# $$f(x, y) = \sum_{i=1}^{3} r_i^2 \qquad r_i = c_i - x + x y^i \qquad (c_1, c_2, c_3) = (1.5, 2.25, 2.625),$$
# so by the chain rule
# $$\frac{\partial f}{\partial x} = \sum_i 2 r_i\,(y^i - 1) \qquad
#   \frac{\partial f}{\partial y} = \sum_i 2 r_i\, i\,x\,y^{i-1}.$$
# Near the minimum it is flat; towards the corners of the region it climbs past $10^5$. A fixed
# learning rate that is safe at the rim crawls on the plateau.
BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def beale_value(x: Number, y: Number) -> Number:
    return sum((c - x + x * y**i) ** 2 for i, c in enumerate(BEALE_CONSTANTS, start=1))


def beale_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    residuals = [c - x + x * y**i for i, c in enumerate(BEALE_CONSTANTS, start=1)]
    dx = sum(2 * r * (y**i - 1) for i, r in enumerate(residuals, start=1))
    dy = sum(2 * r * i * x * y ** (i - 1) for i, r in enumerate(residuals, start=1))
    return dx, dy


# ## An ill-conditioned quadratic
#
# A bowl whose curvature is $1$ along the diagonal $x = y$ and $\kappa = 50$ across it:
# $$f(x, y) = \tfrac12\big(u^2 + \kappa\, w^2\big) \qquad u = \frac{x + y}{\sqrt 2} \quad w = \frac{x - y}{\sqrt 2},$$
# $$\frac{\partial f}{\partial x} = \frac{u + \kappa w}{\sqrt 2} \qquad
#   \frac{\partial f}{\partial y} = \frac{u - \kappa w}{\sqrt 2}.$$
# Gradient descent is stable only for $\eta < 2/\kappa$, and then moves along the valley by a factor
# $1 - \eta$ per step at best: about $\kappa$ steps per e-fold. The bowl is rotated by $45°$ on purpose:
# along the axes, a per-coordinate method such as Adam would undo the conditioning for
# free; rotated, each coordinate sees both curvatures.
CONDITION = 50.0


def quadratic_value(x: Number, y: Number) -> Number:
    along, across = (x + y) / math.sqrt(2), (x - y) / math.sqrt(2)
    return 0.5 * (along**2 + CONDITION * across**2)


def quadratic_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    along, across = (x + y) / math.sqrt(2), (x - y) / math.sqrt(2)
    return (along + CONDITION * across) / math.sqrt(2), (along - CONDITION * across) / math.sqrt(2)


# ## A saddle
#
# $$f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2 \qquad
#   \nabla f = \big(x,\; y^3 - y\big)$$
# has a saddle point at the origin and two minima at $(0, \pm 1)$, where $f = -\tfrac14$. The start
# lies almost on the ridge, $y_0 = 10^{-3}$: the gradient first pulls straight towards the saddle,
# and the push away from it, $-y$, starts a thousand times weaker than the pull. Plain gradient
# descent needs about $\ln(1000)/\eta$ steps to escape; a method that normalises the gradient
# coordinate by coordinate escapes at once.
def saddle_value(x: Number, y: Number) -> Number:
    return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2


def saddle_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    return x, y**3 - y


OBJECTIVES: dict[str, Objective] = {
    objective.name: objective
    for objective in (
        Objective("rosenbrock", "Rosenbrock", rosenbrock_value, rosenbrock_gradient,
                  minima=((1.0, 1.0),), minimum_value=0.0, start=(-1.2, 1.0),
                  region=((-2.0, 2.0), (-1.0, 3.0)), steps=500,
                  summary="A long, curved valley with a flat floor: progress needs steps along a direction "
                          "whose gradient is tiny."),
        Objective("rastrigin", "Rastrigin", rastrigin_value, rastrigin_gradient,
                  minima=((0.0, 0.0),), minimum_value=0.0, start=(-2.2, 1.6),
                  region=((-4.0, 4.0), (-4.0, 4.0)), steps=300, log_levels=False,
                  summary="A bowl covered in local minima: small steps stop in the nearest dimple."),
        Objective("beale", "Beale", beale_value, beale_gradient,
                  minima=((3.0, 0.5),), minimum_value=0.0, start=(1.0, 1.5),
                  region=((-4.5, 4.5), (-4.5, 4.5)), steps=400,
                  summary="Plateaus and steep walls: the gradient's size changes by orders of magnitude."),
        Objective("quadratic", "Ill-conditioned quadratic", quadratic_value, quadratic_gradient,
                  minima=((0.0, 0.0),), minimum_value=0.0, start=(-4.0, -2.0),
                  region=((-5.0, 5.0), (-5.0, 5.0)), steps=200,
                  summary="A rotated bowl whose curvature across its diagonal is 50 times that along it."),
        Objective("saddle", "Saddle", saddle_value, saddle_gradient,
                  minima=((0.0, 1.0), (0.0, -1.0)), minimum_value=-0.25, start=(1.8, 1e-3),
                  region=((-2.0, 2.0), (-2.0, 2.0)), steps=200, log_levels=False,
                  summary="A start almost on the ridge of a saddle point: the way out begins with a "
                          "gradient a thousand times weaker than the pull towards the saddle."),
    )
}
