r"""
# The generic adaptive optimizer

Every optimizer in this library is written against one small contract. An optimizer is two things:

1. the **state** it keeps for each parameter (a momentum buffer, running moments, a step count), and
2. the **update** of one parameter from its gradient and that state.

So each optimizer answers two questions, as two methods:

* `init_state(state, group, param)` creates the per-parameter state, the first time a parameter gets
  a gradient;
* `step_param(state, group, grad, param)` updates one parameter in place, written so that it reads
  like the equations in the paper.

Everything else is the same for all of them and lives here, once: running the closure, walking the
parameter groups, skipping parameters without a gradient, refusing sparse gradients (unless the algorithm
has a sparse form), `maximize`, torch's [implementation flags](implementation.md), and
four things that are easy to get wrong in every optimizer separately:

* **bad gradients**: an `inf` or `NaN` anywhere is caught before anything changes, and then raises or
  skips the step ([non-finite gradients](nonfinite.md), the option `nonfinite`);
* **complex parameters** are optimised as their real views, as `torch.optim` does;
* **low-precision parameters** can keep `float32` master weights
  ([master weights](precision.md), the option `master_weights`);
* **checkpoints** round-trip exactly: loading never aliases the source, keeps `float32` master state,
  and accepts an older checkpoint that lacks an option added since.

Because the class extends `torch.optim.Optimizer`, everything torch builds on top of that class keeps
working unchanged: `state_dict`/`load_state_dict`, `add_param_group`, `zero_grad`, step hooks, and every
scheduler in `torch.optim.lr_scheduler`.

An optimizer that needs one number per group at each step (the weight of
[Schedule-Free](../schedule_free_sgd.md)'s average) computes it in `group_arguments`, which the template
step calls before any parameter moves. An optimizer that truly needs a whole group at once (layer-wise
trust ratios computed together, the two passes of SAM, the slow weights of Lookahead) may override
`step`; its page says so. It still gets its parameters from `params_with_grads`, so it inherits all of
the above, but not the [fast path](fastpath.md), which compiles the template step's `step_param`.

## Options every optimizer has

Besides its own hyper-parameters, every parameter group has two options with these defaults. Set them
in a parameter group, `Adam([{"params": model.parameters(), "master_weights": True}])`, give them to
any constructor as keywords, `Lion(params, nonfinite="skip")`, or set them on all groups after
construction. (A wrapper, [SAM](../sam.md) or [Lookahead](../lookahead.md), shares its base
optimizer's groups: the options go to the base.)

| option | default | meaning |
|---|---|---|
| `nonfinite` | `"raise"` | what a step does with an `inf`/`NaN` gradient: `"raise"`, `"skip"` or `"ignore"` |
| `master_weights` | `False` | keep a `float32` master copy of `float16`/`bfloat16` parameters |
"""

import copy
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

import torch
from torch.distributed.tensor import DTensor

from . import distributed, fastpath, implementation, nonfinite, precision
from .options import OPTION_ATTRIBUTE
from .scalars import restore_step_count
from .validation import UnsupportedParameterError, check_non_negative

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, torch.Tensor]]

BASE_DEFAULTS: dict[str, Any] = {"nonfinite": "raise", "master_weights": False}


def check_learning_rate(lr: Any) -> None:
    r"""
    A learning rate is a number $\ge 0$, or a one-element tensor holding one (which a scheduler may
    update in place; it is read at every step).
    """
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1:
            raise ValueError(f"Invalid lr: a tensor learning rate must hold one value, got shape {tuple(lr.shape)}")
        if lr.is_complex():
            raise ValueError(f"Invalid lr: {lr} (must be real)")
        lr = lr.item()
    check_non_negative("lr", lr)


def _step_scope(step: Callable[..., Any]) -> Callable[..., Any]:
    r"""
    ### The scope of one step

    A few things must happen once per step whatever the step does: the memory of checked gradients is
    wiped when it starts; master weights are written back and a skipped step is counted when it ends.
    Every `step` of this class and of its subclasses is wrapped in this scope (automatically, by
    `__init_subclass__`), so an optimizer that overrides `step` gets it without doing anything. A
    `step` that calls `super().step()` is one step, not two: only the outermost call opens and closes
    the scope.
    """

    @functools.wraps(step)
    def scoped(self: "GenericAdaptiveOptimizer", *args: Any, **kwargs: Any) -> Any:
        outermost = self._step_depth == 0
        if outermost:
            self._gradient_check.forget()
            self._skipped_this_step = []
        self._step_depth += 1
        try:
            return step(self, *args, **kwargs)
        finally:
            self._step_depth -= 1
            if outermost:
                self._master_weights.end_step()
                self._whole_tensors.end_step()
                if self._skipped_this_step:
                    self._report_skip(self._skipped_this_step)

    scoped._annotated_opt_step_scope = True  # type: ignore[attr-defined]
    return scoped


def _step_signature(optimizer_class: type) -> inspect.Signature:
    r"""
    The arguments of `step` after `closure`: those of `group_arguments` after `group`. Read once per
    class, when it is defined (`__init_subclass__`).
    """
    parameters = list(inspect.signature(optimizer_class.group_arguments).parameters.values())
    return inspect.Signature(parameters[2:])


def _step_arguments(optimizer_class: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    r"""The arguments given to `step` after `closure`, bound to `group_arguments`'s, or Python's `TypeError`."""
    try:
        bound = optimizer_class.step_signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{optimizer_class.__name__}.step(): {error}") from None
    return bound.arguments


def _taking_base_options(init: Callable[..., None]) -> Callable[..., None]:
    r"""
    ### The options every constructor takes

    A subclass's constructor lists its own hyper-parameters; `nonfinite` and `master_weights` are
    every optimizer's, and no subclass should have to list them. Every `__init__` of a subclass is
    wrapped (by `__init_subclass__`) so that these keywords are taken out before it runs and put into
    the defaults by the base class's constructor. The outermost constructor takes them; a subclass
    calling its parent's constructor passes none.
    """

    @functools.wraps(init)
    def taking(self: "GenericAdaptiveOptimizer", *args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in BASE_DEFAULTS if name in kwargs}
        if given:
            self._constructor_options = given
        init(self, *args, **kwargs)

    taking._annotated_opt_base_options = True  # type: ignore[attr-defined]
    return taking


class GenericAdaptiveOptimizer(torch.optim.Optimizer):
    r"""
    ## Base class

    `params` are the parameters (or parameter groups) to optimise, exactly as for any
    `torch.optim.Optimizer`; `defaults` holds the hyper-parameters every group starts from, to which
    the options above are added. Every optimizer has a learning rate, so it is checked here; the
    subclasses check the rest.

    `supports_complex` says whether the algorithm is defined for complex parameters (as their real
    views). A subclass for which it is not sets it to `False`, and a complex parameter is then refused
    when it is added, with a clear error. `sparse_gradients` says that `step_param` takes sparse
    gradients, and only those ([SparseAdam](../sparse_adam.md)); every other optimizer refuses them.

    `supports_sparse` says whether `step_param` accepts a sparse gradient (SGD and Adagrad do, as in
    torch); for the others a sparse gradient is refused with a clear error.

    `tensor_step_count` says that the step count in `state["step"]` is kept as torch keeps it, a 0-d
    tensor ([step counts](scalars.md)); a checkpoint that holds it as a number (saved by an older
    version) then loads as the tensor. Optimizers without a `torch.optim` twin may keep a plain number.

    `skipped_steps` counts the steps skipped for non-finite gradients.
    """

    supports_complex = True
    supports_sparse = False
    # Whether the update is element-wise, so that the fast path may compile it over a group's tensors;
    # an optimizer of matrices (factored statistics, orthogonalisation, Kronecker factors) is not.
    elementwise = True
    # Whether `step_param` is written for sparse gradients, and only for them.
    sparse_gradients = False
    # Whether `step_param` must see a parameter whole (a matrix's statistics, its orthogonalisation):
    # under FSDP2 a sharded parameter is then gathered for it ([distributed](distributed.md)).
    whole_tensors = False
    tensor_step_count = False
    # Whether the constructor takes the options every optimizer has as keywords (a wrapper's keywords
    # go to the base optimizer it builds).
    takes_base_options = True

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        check_learning_rate(defaults["lr"])
        defaults = {**BASE_DEFAULTS, **defaults, **self.__dict__.pop("_constructor_options", {})}
        # torch adds `differentiable` to any optimizer's defaults when it unpickles one; remember whether
        # this optimizer's constructor has the option, so that only then do its groups take it.
        self.has_differentiable_option = "differentiable" in defaults
        self.skipped_steps = 0
        self._start_bookkeeping()
        super().__init__(params, defaults)
        implementation.check_flags(defaults)
        self._hold_found_inf()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.step_signature = _step_signature(cls)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_annotated_opt_step_scope", False):
            cls.step = _step_scope(step)
        init = cls.__dict__.get("__init__")
        if cls.takes_base_options and init is not None and not getattr(init, "_annotated_opt_base_options", False):
            cls.__init__ = _taking_base_options(init)

    def _start_bookkeeping(self) -> None:
        r"""The per-step bookkeeping; it is never saved, and starts afresh after a copy or a load."""
        self._step_depth = 0
        self._gradient_check = nonfinite.GradientCheck()
        self._master_weights = precision.MasterWeights()
        self._whole_tensors = distributed.WholeTensors()
        self._skipped_this_step: list[nonfinite.BadGradient] = []
        self._fast_path = fastpath.FastPath()
        # Set while the template step runs its groups, whose gradients it has already judged.
        self._gradients_judged = False
        # The groups (by identity) whose parameters have all passed `check_param` once.
        self._groups_checked: set[int] = set()

    def _hold_found_inf(self) -> None:
        r"""
        `found_inf`: the verdict of the last compiled step, `True` when it skipped for a bad gradient.
        It is one tensor, made here and written in place by the compiled step (a graph cannot hand a
        new Python attribute back), on the device of the first parameter.
        """
        devices = [p.device for group in self.param_groups for p in group["params"]]
        self.found_inf = torch.zeros((), dtype=torch.bool, device=devices[0] if devices else None)

    def init_state(self, state: dict[str, Any], group: dict[str, Any], param: torch.Tensor) -> None:
        r"""
        ### Initialise the state of one parameter

        Called once per parameter, the first time it has a gradient. The default keeps no state
        (plain gradient descent needs none). Create state tensors like `param` (`zeros_like`): `param`
        is the tensor `step_param` will update, so the state gets its shape and dtype.
        """

    def step_param(
        self, state: dict[str, Any], group: dict[str, Any], grad: torch.Tensor, param: torch.Tensor
    ) -> None:
        r"""
        ### Update one parameter

        `grad` is the gradient to descend (already negated when the group maximises); `param` is
        updated in place. Implementations must never modify `param.grad` itself.
        """
        raise NotImplementedError

    def group_arguments(self, group: dict[str, Any]) -> dict[str, Any]:
        r"""
        ### Numbers computed once per group and step

        Some optimizers compute a number once per group at each step and use it for every parameter
        of the group: [Schedule-Free](../schedule_free_sgd.md) advances the weight of its average.
        The template step calls this for each group that takes part in the step (it has gradients,
        and they passed the [check](nonfinite.md)), for every group before the first parameter moves,
        and hands what it returns to each `step_param` of the group as keyword arguments. The default
        computes nothing.

        Keyword arguments that this method declares after `group` are arguments of `step` too, as
        [Sophia](../sophia.md)'s `step(bs=...)`: `step` binds what it is given to them, and refuses
        anything else as a Python call would.
        """
        return {}

    @_step_scope
    def step(self, closure: Callable[[], torch.Tensor] | None = None, *args: Any, **kwargs: Any) -> torch.Tensor | None:
        r"""
        ### The template step

        First the closure, when one is given: it re-evaluates the model and returns the loss, so it
        needs gradients switched back on. The step itself runs under `no_grad`, or, for an optimizer
        built with `differentiable=True`, with autograd recording it, as torch's does. Any other
        argument is one that `group_arguments` declares.
        """
        step_arguments = _step_arguments(type(self), args, kwargs) if args or kwargs else {}
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # The gradients of every group are judged once, before the first group is updated. On the
        # host: nothing to remember for a later call, since nothing here changes a gradient between
        # the groups. Under `torch.compile` the verdict stays on the device (see the
        # [fast path](fastpath.md)), and every group goes through the traceable group update.
        compiling = torch.compiler.is_compiling()
        finite = None
        if compiling:
            finite = self._gradient_verdict_on_device()
        elif not self._gradients_are_usable(remember=False):
            return loss
        self._gradients_judged = True
        try:
            if compiling:
                self._init_group()
            with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
                # Every group's parameters and numbers first, then the updates: a group whose numbers
                # cannot be computed (an error) leaves every parameter as it was.
                taking_part = []
                for index, group in enumerate(self.param_groups):
                    items = list(self.params_with_grads(group))
                    if items:
                        taking_part.append((index, group, items, self.group_arguments(group, **step_arguments)))
                for index, group, items, arguments in taking_part:
                    self._step_group(index, group, items, arguments, compiling, finite)
        finally:
            self._gradients_judged = False
        self._drop_empty_state()
        return loss

    def _drop_empty_state(self) -> None:
        r"""
        A parameter whose optimizer keeps nothing for it (SGD without momentum) gets no empty entry in
        the state, as in torch. (Found by walking the state, which hashes no tensor.)
        """
        state = self.state
        for param in [param for param, entry in state.items() if not entry]:
            del state[param]

    def _init_group(self) -> None:
        r"""
        ### The state of a compiled step, created before it is traced

        Creates the state of every parameter that has a gradient and no state yet, in every group, as
        the step would. The template step calls it only inside `torch.compile(opt.step)`, where dynamo
        runs a method of this name as ordinary Python instead of tracing it, as it does for torch's
        optimizers (whose `_init_group` gathers one group's state): the first step's graph then finds
        the state that every later step finds, and one graph serves them all, instead of a first graph
        that creates the state and a second for the steps after it. All the groups in one call: the
        traced step reads the state as dynamo saw it after the first such call.
        """
        # The step has judged the gradients already, on the device; but what it sets while it is traced
        # reaches this object only when the graph runs, so the flag is set here too, for this call.
        judged, self._gradients_judged = self._gradients_judged, True
        try:
            for group in self.param_groups:
                for _ in self.params_with_grads(group):
                    pass
        finally:
            self._gradients_judged = judged
        # Nothing handed out is left behind for the traced step to find (and for its guards to expect).
        self._master_weights.end_step()
        self._whole_tensors.end_step()
        self._drop_empty_state()

    def _step_group(
        self,
        index: int,
        group: dict[str, Any],
        items: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]],
        arguments: dict[str, Any],
        compiling: bool,
        finite: torch.Tensor | None,
    ) -> None:
        r"""One group of the template step: the fast path when the group asks for it, else the readable loop."""
        if compiling or fastpath.selected(group):
            self._fast_path.step_group(self, index, group, items, arguments, finite)
        else:
            for param, grad, state in items:
                self.step_param(state, group, grad, param, **arguments)

    def _gradient_verdict_on_device(self) -> torch.Tensor | None:
        r"""
        The non-finite verdict of a compiled step, as a tensor, kept in `found_inf` (as
        `torch.amp.GradScaler` keeps its own) for the caller to read; `None` when no group checks.
        """
        screened = nonfinite.screened_gradients(self.param_groups)
        if not screened:
            return None
        finite = nonfinite.finite_verdict(screened)
        self.found_inf.copy_(~finite)
        return finite

    def params_with_grads(
        self, group: dict[str, Any]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
        r"""
        ### The parameters of a group that take part in this step

        Yields `(param, grad, state)` for every parameter of `group` that has a gradient, with the
        state initialised. Optimizers that override `step` to see a whole group at once iterate
        through here too, so every optimizer treats gradients the same way. What they must know:

        * the yielded `param` is the tensor to update in place. It is the parameter itself, or its
          real view (a complex parameter), or its `float32` master copy (`master_weights`). Per-parameter
          options (`opt_args`) are carried over to it, so `param_option` works on it as usual;
        * use the yielded `state`: never look state up with `self.state[param]`, since the yielded
          tensor may not be the parameter;
        * updates reach a master-weighted parameter when the loop moves on, and at the latest when
          `step` returns; a step that reads the parameters between its own passes (SAM's perturbed
          forward pass) must iterate lazily, as a `for` loop does.
        """
        # Before any parameter of any group changes: are all the gradients finite? This looks at every
        # group, so that a bad gradient in the last group stops the step before the first is updated.
        if not self._gradients_judged and not self._gradients_are_usable():
            return
        # Masters handed out by an earlier call and changed since (by an optimizer that collected a
        # whole group before updating it) are written back now, before anything reads the parameters.
        master_weights = self._master_weights
        master_weights.flush()
        whole_tensors = self._whole_tensors
        whole_tensors.flush()
        # What the group asks of each parameter, looked up once (this loop runs for every parameter
        # at every step: on a thousand small tensors its cost is a tenth of the step's).
        sparse_only = self.sparse_gradients
        refuses_sparse = not (self.supports_sparse or sparse_only)
        gathers_shards = self.whole_tensors
        maximize = group.get("maximize", False)
        masters_wanted = group.get("master_weights", False)
        # torch checks the parameters of a fused step when it creates their state, or all at the first
        # step (where the state may exist before it), and those of a capturable step at every step:
        # here, all of a group's at its first step, each new one, and all at every capturable step.
        checks_params = implementation.checks_params(group)
        checks_all = checks_params and (group.get("capturable") or id(group) not in self._groups_checked)

        for param in group["params"]:
            # A parameter without a gradient (frozen, or unused in this forward pass) is left
            # exactly as it is: its state does not advance either.
            grad = param.grad
            if grad is None:
                continue
            # A sparse gradient would silently be treated as dense by the arithmetic below;
            # refuse it instead, unless the optimizer has a sparse form. An optimizer written for sparse
            # gradients only ([SparseAdam](../sparse_adam.md)) refuses dense ones, as torch's does.
            if grad.is_sparse and refuses_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients "
                    "(use torch.optim.SparseAdam or a dense gradient)"
                )
            if sparse_only and not grad.is_sparse:
                # A dense gradient of zeros names no rows: it is taken as the sparse gradient without any.
                # (`torch.distributed.checkpoint` gives one to every parameter of a fresh optimizer, for
                # the bare step that creates its state.)
                if grad.any():
                    raise RuntimeError(
                        f"{type(self).__name__} does not support dense gradients, please consider Adam instead"
                    )
                grad = grad.to_sparse()
            # Under FSDP2 a parameter is a shard of rows (a `DTensor`). An optimizer that needs it whole
            # gets it whole, with its whole gradient: gathered here, its shard written back below.
            target = param
            gathered = gathers_shards and isinstance(param, DTensor)
            if gathered:
                target, grad = whole_tensors.gather(param), grad.full_tensor()
            # A complex number $z = a + ib$ is optimised as the pair $(a, b)$: `view_as_real` shows the
            # same memory as a real tensor with a last dimension of 2, so the update written for real
            # numbers applies unchanged and lands in the complex parameter. This is what `torch.optim`
            # does; note that Adam's $g^2$ then means $(a^2, b^2)$ per part, not $|z|^2$.
            if target.is_complex():
                target, grad = torch.view_as_real(target), torch.view_as_real(grad)
            # To maximise $f$ we descend $-f$, whose gradient is $-g$. This makes a new tensor,
            # so `param.grad` is never touched.
            if maximize:
                grad = -grad

            state = self.state[param]
            fresh = len(state) == 0
            if checks_all or (fresh and checks_params):
                implementation.check_param(group, param)
            # A low-precision parameter with master weights is updated through its `float32` master,
            # with a `float32` gradient.
            use_master = masters_wanted and precision.uses_master(group, target)
            if use_master:
                target = master_weights.master(param, target, state)
                grad = grad.float()
            elif precision.MASTER_KEY in state:
                precision.MasterWeights.release(state, target.dtype)
            if target is not param:
                target = self._carry_options(param, target)

            if fresh:
                self.init_state(state, group, target)
            try:
                yield target, grad, state
            finally:
                # The caller is done with this parameter (it asked for the next one, or stopped): the
                # parameter gets its rounded master now, so a forward pass later in the same step sees
                # the update.
                if use_master:
                    master_weights.write_back(param)
                if gathered:
                    whole_tensors.write_back(param)
        # (Under `torch.compile` the check is part of tracing, which dynamo repeats only for a new graph,
        # and where every group counts as capturable: nothing to remember, and no set for a guard to watch.)
        if checks_params and not torch.compiler.is_compiling():
            self._groups_checked.add(id(group))

    @staticmethod
    def _carry_options(param: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        r"""
        Per-parameter options live as an attribute of the parameter. When the tensor handed to
        `step_param` is another one (a view, a master), a fresh alias of it carries them, so they are
        never stored on a tensor that is saved in a checkpoint.
        """
        if target is param:
            return target
        options = getattr(param, OPTION_ATTRIBUTE, None)
        if options is None:
            return target
        alias = target.view_as(target)
        setattr(alias, OPTION_ATTRIBUTE, options)
        return alias

    def _gradients_are_usable(self, remember: bool = True) -> bool:
        r"""
        ### Applying the non-finite policy

        `False` means: skip. Each set of gradients is checked once (see `GradientCheck`; `remember`
        is `False` when no later call in this step can ask again), and a skipped step is reported
        once, when its scope ends.
        """
        if all(group.get("nonfinite", "raise") == "ignore" for group in self.param_groups):
            return True  # nothing to check (and no record of gradients to keep)
        bad, fresh = self._gradient_check(self.param_groups, remember)
        if fresh:
            # Under FSDP each process checked its own shards: every process must take the same decision.
            bad = self._gradient_check.verdict = distributed.agree(self, bad)
        if not bad:
            return True
        if any(self.param_groups[b.group].get("nonfinite", "raise") == "raise" for b in bad):
            raise nonfinite.NonFiniteGradientError(nonfinite.error_message(type(self).__name__, bad))
        if fresh:
            if self._step_depth > 0:
                self._skipped_this_step = bad
            else:
                self._report_skip(bad)
        return False

    def _report_skip(self, bad: list[nonfinite.BadGradient]) -> None:
        self.skipped_steps += 1
        warnings.warn(
            f"{type(self).__name__} skipped a step (skipped so far: {self.skipped_steps}): non-finite "
            f"gradient in {bad[0].describe()}",
            RuntimeWarning,
            stacklevel=4,
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""
        ### Checking every group, not just the defaults

        `torch.optim` checks the constructor's arguments only; a group added with `lr=-1` is accepted.
        Here every group is checked before it is added: its learning rate, the two options above, and
        complex parameters for an optimizer that does not support them. (A parameter given twice in one
        group gets torch's warning and, as in torch, is updated twice; a parameter in two groups is
        torch's error.)
        """
        settings = {**BASE_DEFAULTS, **self.defaults, **param_group}
        if "lr" in settings:
            check_learning_rate(settings["lr"])
        nonfinite.check_policy(settings["nonfinite"])
        precision.check_master_weights(settings["master_weights"])
        if not self.supports_complex:
            params = param_group["params"]
            params = [params] if isinstance(params, torch.Tensor) else list(params)
            param_group["params"] = params
            for p in params:
                tensor = p[1] if isinstance(p, tuple) else p
                if isinstance(tensor, torch.Tensor) and torch.is_complex(tensor):
                    raise UnsupportedParameterError(f"{type(self).__name__} does not support complex parameters")
        super().add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        r"""torch's state dict, plus the count of skipped steps (also in each group: see distributed)."""
        return distributed.with_count(super().state_dict(), self.skipped_steps)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        ### Loading a checkpoint

        Three things differ from `torch.optim.Optimizer.load_state_dict`:

        * it keeps the very tensors of an in-memory state dict when their dtype and device already
          fit, so the loaded optimizer and the one the dict came from would silently update the same
          buffers. We load a deep copy instead;
        * it casts floating-point state to the parameter's dtype, which would round `float32` master
          weights to half precision. That state is set aside before, and put back after;
        * a group option missing from the checkpoint (saved before the option existed) takes its
          default, in `__setstate__` below.
        """
        state_dict, skipped_steps = distributed.read_count(copy.deepcopy(state_dict))
        kept = precision.float32_state(state_dict)
        super().load_state_dict(state_dict)
        saved_ids = chain.from_iterable(g["params"] for g in state_dict["param_groups"])
        params = chain.from_iterable(g["params"] for g in self.param_groups)
        for saved_id, param in zip(saved_ids, params):
            for key, value in kept.get(saved_id, {}).items():
                self.state[param][key] = value.to(device=param.device)
        self.skipped_steps = skipped_steps

    def __getstate__(self) -> dict[str, Any]:
        r"""
        ### Copies and pickles

        torch saves only `defaults`, `state` and `param_groups`, so a `deepcopy` of an optimizer that
        keeps anything else (our `WeightDecay` object, a wrapper's base optimizer) would come back
        without it and fail at its next step. Everything is kept except the hooks (which may not be
        picklable; torch drops them too) and the per-step bookkeeping.
        """
        transient = {"_step_depth", "_gradient_check", "_master_weights", "_whole_tensors", "_skipped_this_step",
                     "_fast_path", "_gradients_judged", "_groups_checked", "found_inf"}
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_optimizer_") and k not in transient}

    def __setstate__(self, state: dict[str, Any]) -> None:
        r"""
        Called by unpickling and by `load_state_dict`. A group that lacks an option fills it from the
        defaults, which is how an older checkpoint loads into a newer optimizer (torch's own optimizers
        do the same for each option they added over the years); a step count saved as a plain number
        becomes the tensor torch keeps ([step counts](scalars.md)).
        """
        super().__setstate__(state)
        self._start_bookkeeping()
        self._hold_found_inf()
        if not hasattr(self, "skipped_steps"):
            self.skipped_steps = 0
        has_differentiable = getattr(self, "has_differentiable_option", False)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                if key != "differentiable" or has_differentiable:
                    group.setdefault(key, value)
            if not self.tensor_step_count:
                continue
            for param in group["params"]:
                param_state = self.state.get(param)
                if isinstance(param_state, dict):
                    restore_step_count(param_state, group, param)


# The base class is not its own subclass: its `step` takes only the closure, as `group_arguments` says.
GenericAdaptiveOptimizer.step_signature = _step_signature(GenericAdaptiveOptimizer)
