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

The numbers in the last column are the *global* minimisers; Rastrigin also has a local minimum
near every integer point, and the saddle's origin is a stationary point that is not a minimum. Each
difficulty is one that real training meets in many dimensions: curved valleys of very different
curvature along and across, many poor local minima, gradients whose size changes by orders of
magnitude from one region to the next, ill-conditioning that is not aligned with the coordinates,
and saddle points whose way out is nearly flat.

How hard a surface is for plain gradient descent is told by its Hessian $H$ at the minimum. A step
$\eta$ is stable only if $\eta < 2/\lambda_{\max}(H)$, and then the slowest direction shrinks by a
factor $1 - \eta\lambda_{\min}(H)$ per step, so the *condition number*
$\kappa = \lambda_{\max}/\lambda_{\min}$ is roughly the number of steps per e-fold of progress:

| objective | $f$ at the start | $\lambda_{\min}, \lambda_{\max}$ of $H$ at the minimum | $\kappa$ |
|---|---|---|---|
| Rosenbrock | $24.2$ | $0.40,\ 1001.6$ | $\approx 2508$ |
| Rastrigin | $32.4$ | $396.8,\ 396.8$ | $1$ (but a dimple every unit) |
| Beale | $41.25$ | $0.30,\ 49.0$ | $\approx 162$ |
| quadratic | $59$ | $1,\ 50$ | $50$ |
| saddle | $1.62$ | $1,\ 2$ | $2$ (but $-1$ at the saddle) |

## Written once, for floats and tensors

Every objective is written as a function of $x$ and $y$ that accepts floats or tensors (so the same
lines evaluate the optimizer's one point and a whole grid for the contour plot), and its gradient is
written out **by hand** rather than taken from autograd. The tests check both against autograd and
check that the gradient vanishes at the minima, with the stated value there. Hand-written gradients
also make a toy step cheap: the tuning script runs a few hundred thousand of them, and a closure that
builds an autograd graph for two numbers would spend most of its time in bookkeeping.

Each objective also fixes the *start* of every trajectory and the *region* that the plots show. A
trajectory that leaves the region is penalised by the tuning search ([tuned](tuned.md)), so the path
that is scored is the path that is drawn. The [runner](runner.md) records the trajectories; the
[drawing](drawing.md) module draws them.
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
    r"""$\cos u$, with `math` for a float and `torch` for a tensor."""
    return torch.cos(u) if isinstance(u, Tensor) else math.cos(u)


def sin(u: Number) -> Number:
    r"""$\sin u$, with `math` for a float and `torch` for a tensor."""
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

    To add a surface, write its value and gradient as two functions of `(x, y)` using only arithmetic
    and the `cos`/`sin` above (so both floats and tensors work), and add an entry to `OBJECTIVES`.
    Choose a start from which the difficulty shows within `steps` steps, and a region that contains
    the start, the minima and the path a reasonable optimizer takes between them: the tuning score
    penalises a path that leaves it, so a region drawn too tight punishes honest exploration.
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
        r"""
        $f$ (0-d) and $\nabla f$ (shape `(2,)`) at `point`, a tensor of shape `(2,)`.

        The point is read as two Python floats and both results are computed in float arithmetic
        (double precision), then wrapped in tensors of the point's dtype: no autograd graph, and a
        few scalar operations instead of a few tensor launches.
        """
        # $(x, y) \leftarrow$ `point`, as floats
        x, y = point.tolist()
        dx, dy = self.gradient(x, y)
        return (torch.tensor(self.value(x, y), dtype=point.dtype),
                torch.tensor((dx, dy), dtype=point.dtype))

    def distance_to_minimum(self, points: Tensor) -> Tensor:
        r"""
        The Euclidean distance from each point (`points` has shape `(..., 2)`) to its nearest minimum,
        $$\min_{m \in \text{minima}} \lVert p - m\rVert_2.$$
        Reported by the command line's summary; the tuning score measures the value instead (see
        [tuned](tuned.md) for why).
        """
        minima = torch.tensor(self.minima, dtype=points.dtype)
        return torch.cdist(points.reshape(-1, 2), minima).min(dim=1).values.reshape(points.shape[:-1])

    @property
    def diagonal(self) -> float:
        r"""
        The length of the region's diagonal,
        $\sqrt{(x_{\max} - x_{\min})^2 + (y_{\max} - y_{\min})^2}$: the scale for distances.
        """
        (x0, x1), (y0, y1) = self.region
        return math.hypot(x1 - x0, y1 - y0)

    def contains(self, points: Tensor) -> Tensor:
        r"""
        Whether each point lies inside the plotted region (and is finite):
        $x_{\min} \le x \le x_{\max}$ and $y_{\min} \le y \le y_{\max}$. A `NaN` coordinate fails
        every comparison, so a non-finite point is outside without a separate test.
        """
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
#
# **Minimum**: $f(1, 1) = 0$, the only stationary point.
#
# **The difficulty.** The second term is a wall: it is zero on the parabola $y = x^2$ and grows a
# hundredfold faster than the first term away from it. So the surface is a narrow valley that follows
# the parabola, with a floor that falls only gently, by $(1 - x)^2$, towards the minimum. Across the
# valley the curvature is about $200(1 + 4x^2)$; along its floor, about $2/(1 + 4x^2)$. At the
# minimum the Hessian
# $$H = \begin{pmatrix} 802 & -400 \\ -400 & 200 \end{pmatrix}$$
# has eigenvalues $0.40$ and $1001.6$: a condition number of about $2500$, whose directions turn as
# the valley bends. Gradient descent must keep $\eta < 2/1001.6 \approx 0.002$ not to bounce off the
# walls, and then creeps along the floor. Momentum helps by accumulating the small, consistent
# component along the floor; per-coordinate scaling helps less than one might hope, because the
# valley is not aligned with the axes: for $x$ near $\tfrac12$ it runs along the diagonal.
#
# The start $(-1.2, 1)$, where $f = 24.2$, is the standard one of
# [Moré, Garbow & Hillstrom, 1981](https://doi.org/10.1145/355934.355936): on the far side of the
# valley's bend, so the path must go round it.
def rosenbrock_value(x: Number, y: Number) -> Number:
    r"""$$f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2$$"""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    r"""
    With the distance from the valley's floor $a = y - x^2$ (whose own gradient is $(-2x, 1)$),
    $f = (1 - x)^2 + 100\,a^2$ and the chain rule gives the two partial derivatives.
    """
    # $$a = y - x^2$$
    across = y - x**2
    # $$\frac{\partial f}{\partial x} = -2(1 - x) - 400\,x\,a \qquad \frac{\partial f}{\partial y} = 200\,a$$
    return -2 * (1 - x) - 400 * x * across, 200 * across


# ## Rastrigin
#
# [Rastrigin, 1974](https://en.wikipedia.org/wiki/Rastrigin_function): a parabola with a cosine egg
# box added,
# $$f(x, y) = 20 + \sum_{u \in \{x, y\}} \big(u^2 - 10\cos 2\pi u\big) \qquad
#   \frac{\partial f}{\partial u} = 2u + 20\pi \sin 2\pi u.$$
#
# **Minimum**: $f(0, 0) = 0$. At every other point $(k, l)$ of the integer grid the cosines are at
# their lowest too, so $f(k, l) = k^2 + l^2$, and a local minimum sits close by (slightly pulled
# towards the origin by the parabola): about $8$ near $(-2, 2)$, the dimple nearest the start.
#
# **The difficulty.** The egg box dominates the bowl. The cosine's part of the gradient, up to
# $20\pi \approx 63$, outweighs the parabola's $2u$ everywhere in the plotted region, so the gradient
# points to the bottom of the *nearest dimple*, not to the origin. The curvature in a dimple is
# $2 + 40\pi^2 \approx 397$ per coordinate (a perfectly conditioned bowl, but a tiny one): gradient
# descent with $\eta < 2/397 \approx 0.005$ is stable there and stays there. Reaching the origin
# takes steps too large to settle in a dimple, or momentum that carries the point over the ridges
# between them. The value, not the distance, is what the tuning scores: the dimple near $(-2, 2)$ is
# about as far from the origin as the start ($2.8$ against $2.7$), yet its value, about $8$, is a
# quarter of the start's $32.4$.
def rastrigin_value(x: Number, y: Number) -> Number:
    r"""$$f(x, y) = 20 + x^2 - 10\cos 2\pi x + y^2 - 10\cos 2\pi y$$"""
    return 20 + x**2 - 10 * cos(2 * math.pi * x) + y**2 - 10 * cos(2 * math.pi * y)


def rastrigin_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    r"""
    The two coordinates do not interact, so each partial derivative is that of its own term,
    $$\frac{\partial}{\partial u}\left(u^2 - 10\cos 2\pi u\right) = 2u + 20\pi\sin 2\pi u.$$
    """
    return 2 * x + 20 * math.pi * sin(2 * math.pi * x), 2 * y + 20 * math.pi * sin(2 * math.pi * y)


# ## Beale
#
# [Beale, 1958](https://en.wikipedia.org/wiki/Test_functions_for_optimization): a sum of three squares,
# $$f(x, y) = \sum_{i=1}^{3} r_i^2 \qquad r_i = c_i - x + x y^i \qquad (c_1, c_2, c_3) = (1.5, 2.25, 2.625),$$
# so by the chain rule
# $$\frac{\partial f}{\partial x} = \sum_i 2 r_i\,(y^i - 1) \qquad
#   \frac{\partial f}{\partial y} = \sum_i 2 r_i\, i\,x\,y^{i-1}.$$
#
# **Minimum**: $f(3, \tfrac12) = 0$, where all three residuals vanish ($1.5 - 3 + 1.5 = 0$,
# $2.25 - 3 + 0.75 = 0$, $2.625 - 3 + 0.375 = 0$).
#
# **The difficulty.** The range. Near the minimum the surface is a shallow, bent trough (Hessian
# eigenvalues $0.30$ and $49$); towards the corners of the region the term $x y^3$ makes it climb
# past $1.6 \times 10^5$ (nearly $2 \times 10^5$ at the worst corner). Gradients therefore differ by
# five orders of magnitude between regions, and a fixed learning rate that is safe at the rim crawls
# near the minimum, while one that suits the trough is thrown out of the picture by the first step
# taken on a wall. There are also two flat
# lines: on $y = 1$ and on $x = 0$ every residual equals its constant, so $f = 14.2$ along both and
# the gradient along each line is zero; they cross at a saddle, $(0, 1)$. The start $(1, 1.5)$,
# where $f = 41.25$, lies above the line $y = 1$, which the path must cross to reach $y = \tfrac12$.
BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def beale_value(x: Number, y: Number) -> Number:
    r"""$$f(x, y) = \sum_{i=1}^{3} \left(c_i - x + x\,y^i\right)^2$$"""
    return sum((c - x + x * y**i) ** 2 for i, c in enumerate(BEALE_CONSTANTS, start=1))


def beale_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    r"""
    Each residual $r_i$ is linear in $x$ and a polynomial in $y$, with
    $\partial r_i/\partial x = y^i - 1$ and $\partial r_i/\partial y = i\,x\,y^{i-1}$;
    the derivative of $r_i^2$ is $2 r_i$ times those.
    """
    # $$r_i = c_i - x + x\,y^i$$
    residuals = [c - x + x * y**i for i, c in enumerate(BEALE_CONSTANTS, start=1)]
    # $$\frac{\partial f}{\partial x} = \sum_i 2 r_i\,(y^i - 1)$$
    dx = sum(2 * r * (y**i - 1) for i, r in enumerate(residuals, start=1))
    # $$\frac{\partial f}{\partial y} = \sum_i 2 r_i\, i\,x\,y^{i-1}$$
    dy = sum(2 * r * i * x * y ** (i - 1) for i, r in enumerate(residuals, start=1))
    return dx, dy


# ## An ill-conditioned quadratic
#
# A bowl whose curvature is $1$ along the diagonal $x = y$ and $\kappa = 50$ across it:
# $$f(x, y) = \tfrac12\big(u^2 + \kappa\, w^2\big) \qquad u = \frac{x + y}{\sqrt 2} \quad w = \frac{x - y}{\sqrt 2},$$
# $$\frac{\partial f}{\partial x} = \frac{u + \kappa w}{\sqrt 2} \qquad
#   \frac{\partial f}{\partial y} = \frac{u - \kappa w}{\sqrt 2}.$$
# Gradient descent is stable only for $\eta < 2/\kappa$, and then moves along the valley by a factor
# $1 - \eta > 1 - 2/\kappa$ per step: at least $\kappa/2 = 25$ steps per e-fold. The bowl is rotated
# by $45°$ on purpose: along the axes, a per-coordinate method such as Adam would undo the
# conditioning for free; rotated, each coordinate sees both curvatures.
#
# **Minimum**: $f(0, 0) = 0$, the only stationary point; the start $(-4, -2)$ has $f = 59$, most of it
# ($50$) from the steep direction.
#
# **The difficulty.** Pure ill-conditioning, with nothing else in the way: the surface every
# convergence theorem is stated for. Plain gradient descent zigzags across the narrow axis while it
# creeps along the long one. Heavy-ball momentum, well tuned, contracts by
# $(\sqrt\kappa - 1)/(\sqrt\kappa + 1)$ per step, about $\sqrt\kappa/2 \approx 3.5$ steps per e-fold:
# the cleanest picture of what momentum is for.
CONDITION = 50.0


def quadratic_value(x: Number, y: Number) -> Number:
    r"""$$f(x, y) = \tfrac12\big(u^2 + \kappa\, w^2\big)$$ in the rotated coordinates $u$ (along) and $w$ (across)."""
    along, across = (x + y) / math.sqrt(2), (x - y) / math.sqrt(2)
    return 0.5 * (along**2 + CONDITION * across**2)


def quadratic_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    r"""
    In the rotated coordinates the gradient is $(u, \kappa w)$; rotating it back, with
    $\partial u/\partial x = \partial u/\partial y = 1/\sqrt2$ and
    $\partial w/\partial x = -\partial w/\partial y = 1/\sqrt2$, gives the partial derivatives.
    """
    # $$u = \frac{x + y}{\sqrt 2} \qquad w = \frac{x - y}{\sqrt 2}$$
    along, across = (x + y) / math.sqrt(2), (x - y) / math.sqrt(2)
    # $$\frac{\partial f}{\partial x} = \frac{u + \kappa w}{\sqrt 2} \qquad
    #   \frac{\partial f}{\partial y} = \frac{u - \kappa w}{\sqrt 2}$$
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
#
# **Minima**: $f(0, \pm 1) = -\tfrac14$, each with Hessian $\mathrm{diag}(1, 2)$; the origin is a
# saddle, Hessian $\mathrm{diag}(1, -1)$.
#
# **The difficulty.** Near the saddle, $y$ grows by a factor $1 + \eta$ per step of gradient
# descent: $y_t \approx (1 + \eta)^t y_0$, so leaving the ridge costs $\ln(1000)/\ln(1 + \eta)$ steps
# however good the rest of the method is. High-dimensional losses have many such saddles, and
# escaping them quickly is one of the arguments for adaptive methods: dividing by
# $\sqrt{v_t} \approx |g_t|$ turns a gradient of $10^{-3}$ into a step of the full learning rate.
# The start is placed slightly off the ridge ($y_0 > 0$) so that the escape is deterministic and
# always towards $(0, 1)$; exactly on the ridge, no gradient method would leave it.
def saddle_value(x: Number, y: Number) -> Number:
    r"""$$f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2$$"""
    return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2


def saddle_gradient(x: Number, y: Number) -> tuple[Number, Number]:
    r"""
    $$\frac{\partial f}{\partial x} = x \qquad \frac{\partial f}{\partial y} = y^3 - y$$
    The $-y$ pushes away from the ridge $y = 0$; the $y^3$ stops the push at $|y| = 1$.
    """
    return x, y**3 - y


# ## The table of objectives
#
# Each entry fixes the start, the region and the number of steps. The step counts are the smallest
# that let a well-tuned optimizer show its whole behaviour: the quadratic and the saddle are decided
# in 200 steps, Rosenbrock's valley needs more. The regions are drawn around the start and the
# minima with room for an overshoot; Beale's and Rastrigin's are symmetric about the origin, as
# those functions are usually plotted.
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
