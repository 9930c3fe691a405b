r"""
# Adam

[Kingma & Ba, 2015](https://arxiv.org/abs/1412.6980) combined the two ideas before it:
[momentum](sgd.md), a moving average of the gradient, and [RMSprop](rmsprop.md), a moving average of
its square. Adam keeps both,

$$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,$$

and steps along the first, divided coordinate-wise by the root of the second:

$$\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$

$m_t$ estimates the mean of the gradient, $\mathbb{E}[g]$, over the last $1/(1-\beta_1) = 10$ steps;
$v_t$ estimates its uncentred second moment, $\mathbb{E}[g^2]$, over the last $1/(1-\beta_2) = 1000$.
The ratio $\hat m_t / \sqrt{\hat v_t}$ has no units: scaling the loss by 100 scales both by 100 and
leaves the step unchanged. That is why one learning rate works across layers whose gradients differ
by orders of magnitude, and why $\eta$ is, to a first approximation, the distance each coordinate
moves per step.

```algorithm
g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad \text{(L2 decay, when } \lambda > 0\text{)}
    @ grad = self.weight_decay(param, grad, group)
m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t  @ exp_avg.lerp_(grad, 1 - beta1)
v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2  @ exp_avg_sq.mul_(beta2)
c_1 = 1 - \beta_1^t, \quad \sqrt{c_2} = \sqrt{1 - \beta_2^t}  @ bias_correction1 =
\theta_t = \theta_{t-1} - \frac{\eta}{c_1}\cdot\frac{m_t}{\sqrt{v_t}/\sqrt{c_2} + \epsilon}
    @ param.addcdiv_
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter, updated in place |
| $g_t$ | `grad` | the gradient at step $t$ |
| $m_t$ | `exp_avg` | the first moment, a moving average of $g$ |
| $v_t$ | `exp_avg_sq` | the second moment, a moving average of $g^2$ |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | their decay rates (`betas`) |
| $\eta$ | `lr` | the learning rate |
| $\epsilon$ | `eps` | keeps the denominator away from zero |
| $\lambda$ | `weight_decay` | the weight decay |
| $c_1, c_2$ | `bias_correction1`, `bias_correction2_sqrt` | the bias corrections ($\sqrt{c_2}$ in the code) |
| $t$ | `step` | the step count, from 1 |

## The effective step: $|\Delta\theta| \lesssim \eta$, and when it is not

Think of the gradient of one coordinate as a signal $\bar g$ plus noise of standard deviation
$\sigma$. Then $\hat m_t \approx \bar g$ and $\hat v_t \approx \bar g^2 + \sigma^2$, and the step is
about

$$|\Delta\theta_t| \approx \eta\,\frac{|\bar g|}{\sqrt{\bar g^2 + \sigma^2}} \le \eta,$$

$\eta$ times a signal-to-noise ratio. A steady gradient ($\sigma = 0$) moves the coordinate by
$\eta$ per step, like the sign of the gradient; pure noise ($\bar g = 0$) moves it by the noise left
in $\hat m_t$, about $0.18\,\eta$ on average for $\beta_1 = 0.9$; a signal of a tenth of the noise
moves it by about $0.1\,\eta$. The very first step is exactly the sign case: $\hat m_1 = g_1$ and
$\hat v_1 = g_1^2$, so every coordinate moves by $\eta$, however small or noisy its gradient. That is
one reason for a learning-rate warmup, and the starting point of [RAdam](radam.md).

The bound would be exact if both averages used the same weights (then $\hat m_t^2 \le \hat v_t$ by
Cauchy-Schwarz). They do not: $m_t$ forgets ten times faster than $v_t$, so when the recent gradients
are much larger than the ones $v_t$ still remembers, the step exceeds $\eta$:

* **A spike after silence.** After a long run of zero gradients, one gradient $g$ gives
  $m_t = (1-\beta_1)\,g$ and $v_t = (1-\beta_2)\,g^2$, a step of
  $\eta\,(1-\beta_1)/\sqrt{1-\beta_2} = 3.16\,\eta$ for the defaults. The paper names this case.
* **A growing gradient.** Cauchy-Schwarz with the two sets of weights bounds the ratio by
  $\frac{1-\beta_1}{\sqrt{(1-\beta_2)(1-\beta_1^2/\beta_2)}} = 7.27$ for the defaults, and a gradient
  that grows by $\beta_2/\beta_1 \approx 11\%$ a step after a quiet period reaches $7.25\,\eta$.
  With $\beta_1^2 \ge \beta_2$ the sum diverges and there is no bound at all.
* **A tiny second moment.** Where $\sqrt{\hat v_t} \ll \epsilon$, the step is $\eta\,\hat m_t/\epsilon$:
  SGD with momentum and learning rate $\eta/\epsilon$, small for small gradients, as intended.

A layer that sits unused for a while and then receives a gradient (a rarely used embedding, an
expert in a mixture that is rarely chosen) is the practical form of the first two cases.

## Bias correction

Both averages start at zero, so early on they are too small: after one step $m_1 = (1-\beta_1)\,g_1$,
a tenth of the gradient for $\beta_1 = 0.9$. Unrolling the average,
$m_t = (1-\beta_1)\sum_{i=1}^{t} \beta_1^{t-i} g_i$, whose weights sum to $1 - \beta_1^t$. Dividing by
that sum makes the estimate unbiased when the gradients are stationary:

$$\hat m_t = \frac{m_t}{1-\beta_1^t} \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}.$$

The correction of $v_t$ matters far longer than that of $m_t$: $1-\beta_1^t$ is within 1% of one
after 44 steps, $1-\beta_2^t$ only after 4603. Correcting $m_t$ alone would make the first step
$1/\sqrt{1-\beta_2} \approx 32$ times too long; correcting neither (RMSprop's choice, see
[RMSprop](rmsprop.md) for the numbers) makes it $(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2$ times
too long, the spike case above, with an excess that takes thousands of steps to fade.

## The same step with fewer operations

The corrections are scalars, so they can be folded into the step size. Writing
$c_1 = 1-\beta_1^t$ and $c_2 = 1-\beta_2^t$,

$$\eta\,\frac{m_t / c_1}{\sqrt{v_t / c_2} + \epsilon}
 = \eta\,\frac{\sqrt{c_2}}{c_1}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon}
 \qquad\text{with}\quad \hat\epsilon = \epsilon\sqrt{c_2}.$$

The two forms are equal exactly, not approximately, provided $\epsilon$ is rescaled to
$\hat\epsilon$; the folded form saves a full pass over $v_t$. Both are here (`fold_bias_correction`),
and the tests check both against `torch.optim.Adam`. The paper's Algorithm 1 uses the first; its
Section 2 suggests the second but keeps $\epsilon$ unscaled, which is *not* the same optimizer: its
$\epsilon$ is effectively $\epsilon/\sqrt{c_2}$, about 32 times larger at the first step for
$\beta_2 = 0.999$.

## Weight decay

`Adam`'s `weight_decay` is L2 regularisation, as in torch: $\lambda\theta$ is added to the gradient and
then divided by $\sqrt{\hat v_t}$ like the rest of it. [AdamW](adamw.md) decouples it.
[AMSGrad](amsgrad.md), [AdamW](adamw.md) and the rest of the family extend this class and override
one of its three steps: `update_moments` ([AdaBelief](adabelief.md)), `second_moment`
([AdaBelief](adabelief.md)) or `adam_update` ([RAdam](radam.md), [LAMB](lamb.md)). AMSGrad's running
maximum is here, in `second_moment`, because torch's Adam reads its flag per parameter group.
[NAdam](nadam.md) rewrites the step as a whole.
"""

import inspect
from typing import Any

import torch

from .core.base import GenericAdaptiveOptimizer, ParamsT
from .core.implementation import maximum_into
from .core.options import learning_rate
from .core.scalars import advance, new_step_count
from .core.validation import check_betas, check_non_negative, torch_adam_betas
from .core.weight_decay import WeightDecay


def constructor_arguments(cls: type) -> set[str]:
    r"""
    The names any constructor in `cls`'s family tree declares: the hyper-parameters it may hold.

    Children pass their own options up to `Adam.__init__` as keywords, so Adam cannot list the
    legal names itself. It reads them from the signatures instead: [RAdam](radam.md)'s
    `rectify_threshold` is legal for RAdam and its children, and a typo is legal for none.
    """
    names: set[str] = set()
    # Walk the method resolution order, child first, and collect each class's own `__init__`
    # arguments (positional-or-keyword and keyword-only; `**kwargs` itself is not a name).
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and klass is not object:
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    # `params` and the base's `defaults` are not hyper-parameters.
    return names - {"self", "params", "defaults"}


class Adam(GenericAdaptiveOptimizer):
    r"""
    ## Hyper-parameters

    The arguments, their order and their defaults are those of `torch.optim.Adam`.

    * `lr` is $\eta$ (default $10^{-3}$), roughly the distance a coordinate moves per step. $10^{-3}$
      is a good start for small networks; transformers are usually trained with $10^{-4}$ to
      $6\times 10^{-4}$ and a warmup, the largest models with less. A divergent loss at the start of
      training usually means $\eta$ is too large for the first steps, which are sign-like (above):
      warm up, or try [RAdam](radam.md).
    * `betas` are $(\beta_1, \beta_2)$ (default $(0.9, 0.999)$): memories of about 10 and 1000 steps.
      A lower $\beta_2$ lets the denominator follow a changing gradient scale faster and makes the
      spikes above smaller: the Transformer was trained with $\beta_2 = 0.98$, GPT-3 with $0.95$.
      Keep $\beta_1^2 < \beta_2$.
    * `eps` is $\epsilon$ (default $10^{-8}$), added to $\sqrt{\hat v_t}$; it bounds the step of a
      coordinate whose gradient has been zero, and below $\sqrt{\hat v_t} \approx \epsilon$ turns Adam
      into SGD with momentum. It is a real hyper-parameter when gradients are small: TensorFlow's
      documentation suggests $1.0$ or $0.1$ for an Inception network on ImageNet. In `float16`,
      $10^{-8}$ is below the smallest positive number and rounds to zero; keep the state in
      `float32` (`master_weights`).
    * `weight_decay` is $\lambda$; L2 unless `decoupled_weight_decay=True` (which is AdamW). With
      Adam, prefer [AdamW](adamw.md): L2 decay is divided by $\sqrt{\hat v_t}$ like the gradient.
    * `fold_bias_correction` uses the folded form derived above: the same steps, one pass fewer.
    * `amsgrad=True` divides by the running maximum of $v_t$, as `torch.optim.Adam(amsgrad=True)`
      ([AMSGrad](amsgrad.md) explains it, and the flag builds an `AMSGrad`). As in torch it is a group
      option: a group may set it (`{"params": ..., "amsgrad": True}`) and only that group keeps the
      maximum.
    * `maximize` ascends the objective instead.
    * `foreach`, `fused`, `capturable`, `differentiable`: torch's [implementation flags](implementation.md),
      with torch's defaults; they do not change a result.
    """

    # `state["step"]` is torch's 0-d tensor ([step counts](core/scalars.md)).
    tensor_step_count = True

    # Whether the constructor takes `amsgrad=True`. `Adam(amsgrad=True)` builds an [AMSGrad](amsgrad.md),
    # which sets this to `True` for itself and its children; children that replace the step
    # (LAMB, Adan, ...) keep `False`.
    supports_amsgrad = False
    # Group options a child computes from its arguments rather than takes as one (LAMB's decay mode).
    derived_options: tuple[str, ...] = ()
    # How many decay rates `betas` holds: $\beta_1, \beta_2$ here; children with a third moment
    # ([Adan](adan.md), [AdEMAMix](ademamix.md)) append theirs, and the first two keep Adam's meaning.
    beta_count = 2

    # torch's [implementation flags](implementation.md) this class's torch twin accepts.
    torch_flags: tuple[str, ...] = ("foreach", "capturable", "differentiable", "fused")
    # Whether `betas` follows torch's Adam and AdamW: two floats or two one-element tensors, never a mix
    # ([checks](core/validation.md)). torch's NAdam and RAdam take any two numbers, and so do ours.
    torch_adam_betas = True

    def __new__(cls, *args: Any, **kwargs: Any) -> "Adam":
        r"""
        `torch.optim.Adam(amsgrad=True)` is [AMSGrad](amsgrad.md), so the flag builds an `AMSGrad`
        (which is an `Adam`, and equals `torch.optim.Adam` with the flag bit for bit).
        """
        amsgrad = kwargs.get("amsgrad", args[5] if len(args) > 5 else False)
        if cls is Adam and amsgrad:
            from .amsgrad import AMSGrad

            cls = AMSGrad
        return super().__new__(cls)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | WeightDecay = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        fold_bias_correction: bool = False,
        **extra_defaults: Any,
    ) -> None:
        r"""
        Check the arguments, choose the weight decay's mode, and store every hyper-parameter in
        `defaults`, so that each param group carries its own copy. The whole family goes through
        here: a child passes its own options as keywords, and they become group options like
        `lr`.
        """
        # $0 \le \beta < 1$ for both: $\beta = 1$ would freeze an average at its initial zero (and
        # make its bias correction $1 - 1^t$ a division by zero).
        check_betas(betas, self.beta_count)
        check_non_negative("eps", eps)
        if self.torch_adam_betas:
            betas = torch_adam_betas(betas, foreach, capturable)
        # Children pass their own hyper-parameters up through `extra_defaults`; anything else is a typo
        # (`momentum=0.9` given to Adam) and must not be stored silently.
        known = constructor_arguments(type(self)) | set(self.derived_options)
        unknown = sorted(set(extra_defaults) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        # Torch's `Adam(amsgrad=True)` is our `AMSGrad`: rather than ignore the flag, say where it is.
        if amsgrad and not self.supports_amsgrad:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument 'amsgrad'")
        flags = dict(foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
        refused = [name for name in flags if name not in self.torch_flags and flags[name] not in (None, False)]
        if refused:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {refused[0]!r}")
        # A tensor learning rate needs capturable with foreach, in torch.
        if torch.is_tensor(lr) and foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
        # A plain number takes this optimizer's mode: L2 for Adam, decoupled for AdamW.
        self.weight_decay = WeightDecay.coerce(weight_decay, weight_decouple=decoupled_weight_decay)
        # `betas` is stored as a tuple, so a list given by the caller is not shared with the group.
        # The mode of the decay is stored too, as torch stores it: a group may change it.
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            amsgrad=amsgrad,
            maximize=maximize,
            fold_bias_correction=fold_bias_correction,
            **self.weight_decay.defaults(),
            decoupled_weight_decay=self.weight_decay.weight_decouple,
            **{name: value for name, value in flags.items() if name in self.torch_flags},
            **extra_defaults,
        )
        super().__init__(params, defaults)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        The step count $t$ (a tensor, as torch keeps it: [step counts](core/scalars.md)) and the two
        moments $m_0 = v_0 = 0$, under torch's names, with the parameter's shape and memory layout. Two
        tensors the size of the parameter: with the parameters and their gradients, training with Adam
        holds four copies of the model.
        """
        state["step"] = new_step_count(group, param)
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["amsgrad"]:
            # [AMSGrad](amsgrad.md)'s running maximum, for a group that asks for it: a third tensor.
            # $v^{\max}_0 = 0$; since $v_t \ge 0$, the first maximum is $v_1$ itself.
            state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### One Adam step

        Weight decay first (it may change the gradient), then the moments, then the update. The
        three stages are separate methods so that a child overrides only the one it changes; the
        step count is advanced before the moments, so the update of step $t$ sees $t$ (from 1) in its
        bias corrections.
        """
        grad = self.weight_decay(param, grad, group)
        advance(state)
        exp_avg = self.update_moments(state, group, grad)
        self.adam_update(state, group, param, exp_avg, self.second_moment(state, group))

    def update_moments(self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor) -> torch.Tensor:
        r"""
        ### The moving averages

        Returns $m_t$; $v_t$ stays in the state for `second_moment`. Both are updated in place, so
        the state always holds the latest averages.
        """
        beta1, beta2 = group["betas"][:2]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t$$
        # `lerp_` computes $m + (1-\beta_1)(g - m)$, the same average in one operation: one pass that
        # reads $m$ and $g$ and writes $m$, where `mul_` and `add_` would take two. It is also what
        # `torch.optim.Adam` calls, so the two round identically, even in `bfloat16`.
        if torch.is_tensor(beta1):
            # A tensor $\beta_1$ (torch's Adam takes one) is cast to the moment's dtype first, as torch does.
            beta1 = beta1.to(exp_avg)
        exp_avg.lerp_(grad, 1 - beta1)
        # The square needs no temporary: `addcmul_` multiplies $g$ by itself, scales and adds in
        # the same pass (`lerp_` would need $g_t^2$ as a tensor first).
        # $$v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2$$
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        return exp_avg

    def second_moment(self, state: dict[str, Any], group: dict[str, Any]) -> torch.Tensor:
        r"""
        ### The second moment used in the denominator

        $v_t$, or, in a group with `amsgrad`, its running maximum ([AMSGrad](amsgrad.md) explains
        why); [AdaBelief](adabelief.md) replaces it with the variance of the gradient around $m_t$.
        The flag is read per group, as torch reads it: one group may keep the maximum and another not.
        """
        exp_avg_sq = state["exp_avg_sq"]
        if not group["amsgrad"]:
            return exp_avg_sq
        # An element-wise maximum, written into the state tensor itself (`out=`): no new tensor, and
        # the same call `torch.optim.Adam` makes, so the two agree bit for bit.
        # $$\textcolor{orange}{v^{\max}_t = \max\left(v^{\max}_{t-1},\, v_t\right)}$$
        return maximum_into(state["max_exp_avg_sq"], exp_avg_sq, group["differentiable"])

    def adam_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The bias-corrected update

        `exp_avg_sq` is whatever `second_moment` returned. The bias corrections are Python
        numbers, computed once per parameter in double precision; only the tensors pay for
        passes over memory.
        """
        if group["capturable"] or group["differentiable"]:
            self.tensor_count_update(state, group, param, exp_avg, exp_avg_sq)
            return
        beta1, beta2 = group["betas"][:2]
        step = state["step"].item()
        # The learning rate in force now: the group's, after any scheduler, times a parameter's own
        # `lr_scale` ([options](options.md)).
        lr = learning_rate(group, param)
        # $c_1 = 1 - \beta_1^t$ and $\sqrt{c_2} = \sqrt{1 - \beta_2^t}$, the root taken as torch takes it
        # (`** 0.5`, which may round differently from `math.sqrt` in the last bit)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5

        if group["fold_bias_correction"]:
            # Both corrections move into the scalar step size, and $\epsilon$ is rescaled so that the
            # step is exactly the unfolded one; the denominator costs one pass fewer.
            # $$\theta_t = \theta_{t-1} - \eta\frac{\sqrt{c_2}}{c_1}\cdot\frac{m_t}{\sqrt{v_t} + \hat\epsilon}
            #   \qquad \hat\epsilon = \epsilon\sqrt{c_2}$$
            step_size = lr * bias_correction2_sqrt / bias_correction1
            denominator = exp_avg_sq.sqrt().add_(group["eps"] * bias_correction2_sqrt)
        else:
            # Torch's form, operation for operation: $\hat v_t$ is never stored, $\sqrt{v_t}$ is divided
            # by $\sqrt{c_2}$ (a new tensor, $v_t$ stays intact), and $\epsilon$ is added in place.
            # $$\theta_t = \theta_{t-1} - \frac{\eta}{c_1}\cdot\frac{m_t}{\sqrt{v_t}/\sqrt{c_2} + \epsilon}
            #   = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}$$
            step_size = lr / bias_correction1
            denominator = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        # One fused pass: divide, scale by the (negative) step size, add.
        param.addcdiv_(exp_avg, denominator, value=-step_size)

    def tensor_count_update(
        self,
        state: dict[str, Any],
        group: dict[str, Any],
        param: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> None:
        r"""
        ### The same update with the count as a tensor (`capturable`, `differentiable`)

        A captured step cannot read the count back to the host, and a differentiable one keeps every
        scalar in the graph; so the corrections are computed from the count *tensor*, in its dtype, and
        the step size moves into the denominator (`addcdiv_` takes its scale as a number only):
        $$\theta_t = \theta_{t-1} + \frac{m_t}{\sqrt{v_t} / (\sqrt{c_2}\,s) + \epsilon / s}
          \qquad s = -\eta / c_1,$$
        the same step, rounded as torch rounds it in these two modes.
        """
        beta1, beta2 = group["betas"]
        count = state["step"]
        # $s = -\eta / (1-\beta_1^t)$ and $\sqrt{c_2} = \sqrt{1-\beta_2^t}$, 0-d tensors
        step_size_neg = (learning_rate(group, param) / (1 - beta1**count)).neg()
        bias_correction2_sqrt = (1 - beta2**count).sqrt()
        denominator = (exp_avg_sq.sqrt() / (bias_correction2_sqrt * step_size_neg)).add_(group["eps"] / step_size_neg)
        # A differentiable step must not save a tensor the next step changes in place.
        param.addcdiv_(exp_avg.clone() if group["differentiable"] else exp_avg, denominator)
