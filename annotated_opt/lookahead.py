r"""
# Lookahead: k steps forward, one step back

[Zhang, Lucas, Hinton & Ba, 2019](https://arxiv.org/abs/1907.08610) wrap any optimizer in a second,
slower loop. The base optimizer moves the **fast weights** $\theta$ for $k$ steps, exploring ahead; then
the **slow weights** $\phi$ move only a fraction $\alpha$ of the way towards where the fast ones
ended, and the fast weights start again from there:

$$\theta_{t,0} = \phi_{t-1} \qquad
  \theta_{t,i} = \theta_{t,i-1} + \mathrm{BaseStep}(\theta_{t,i-1}),\; i = 1..k \qquad
  \phi_t = \phi_{t-1} + \alpha\,(\theta_{t,k} - \phi_{t-1}).$$

Two readings of the last line. It is an exponential moving average of the points the fast weights
reach at the end of each inner loop, so the noise of the inner steps is damped. And along a direction
where the fast weights oscillate (a high-curvature valley wall), the slow weights land near the middle,
where plain steps would keep bouncing; the figure on this page shows it for SGD with heavy momentum on
a narrow quadratic valley. The cost is one extra copy of the weights and one interpolation every $k$
steps; with $\alpha = 1$ the wrapper is the base optimizer again.

The base keeps its own state (momentum, moments) across the synchronisation, as in the paper: only the
weights are pulled back.

```algorithm
\phi_0 = \theta_0 \quad \text{(a parameter's weights before its first step)}
    @ self.state[param]["slow_param"] = before[param]
\theta_{t,i} = \theta_{t,i-1} + \mathrm{BaseStep}(\theta_{t,i-1}), \quad i = 1, \dots, k
    @ loss = self.base_optimizer.step()
i \leftarrow i + 1; \ \text{synchronise when } i = k\text{, then } i \leftarrow 0
    @ group["lookahead_step"] += 1
\phi_t = \phi_{t-1} + \alpha\,(\theta_{t,k} - \phi_{t-1})  @ slow.lerp_(fast, group["lookahead_alpha"])
\theta_{t+1,0} = \phi_t  @ precision.assign(self.weights(param), state.get(precision.MASTER_KEY), slow)
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param`, `fast` | the fast weights, which the base optimizer steps (its `float32` master if it keeps one) |
| $\phi$ | `slow`, `slow_param` | the slow weights |
| $\alpha$ | `alpha`, `lookahead_alpha` | how far the slow weights move towards the fast ones |
| $k$ | `k`, `lookahead_k` | the number of fast steps per synchronisation |
| $i$ | `lookahead_step` | the fast steps taken since the last synchronisation |

## Details

* The slow weights of a parameter start as its weights just before its **first step**, not when the
  wrapper is built, so a model whose weights are loaded after the optimizer is created is not pulled
  back to its random initialisation. A parameter that never gets a gradient keeps no slow copy.
* A step in which no parameter has a gradient is no step: nothing changes and it is not counted, as
  for every `torch.optim` optimizer.
* Every parameter with slow weights is synchronised, including one that happens to have no gradient
  on the synchronising step: it may well have moved during the other $k-1$. (`pytorch_optimizer`'s
  `Lookahead` skips such a parameter, leaving its fast and slow weights apart until its next
  synchronisation with a gradient; the tests show the difference.)
* A step the base **skips** for a non-finite gradient (`nonfinite="skip"`, see
  [non-finite gradients](nonfinite.md)) is no step for Lookahead either: the counter does not advance,
  no slow weights are created and nothing is synchronised, so the $k$ fast steps of an inner loop are
  $k$ steps that were taken. Lookahead learns of the skip from its base, and the skip is counted once,
  in the count it shares with the base. (The check is the base's: a `torch.optim` base does not look
  at its gradients, as `torch.optim` never does.)
* With **master weights** (`master_weights=True`, see [master weights](precision.md)) the base updates
  a `float32` master $\theta^{32}$ of each half-precision parameter. The slow weights are then kept in
  `float32` too, and the synchronisation reads and writes the master, the parameter getting its
  rounding:
  $$\phi_t = \phi_{t-1} + \alpha\,(\theta^{32}_{t,k} - \phi_{t-1}) \qquad
    \theta^{32}_{t+1,0} = \phi_t \qquad \theta_{t+1,0} = \mathrm{round}(\phi_t).$$
  Given the same gradients the run then follows `float32` training bit for bit. Synchronising the
  half-precision parameter instead would round $\phi$ at every synchronisation, and the base would
  re-seed its master from the rounded value.
* A closure given to `step` is handed to the base, so Lookahead wraps [SAM](sam.md) too.
* $k$, $\alpha$ and the step counter live in each parameter group (`lookahead_k`, `lookahead_alpha`,
  `lookahead_step`), so a checkpoint carries them and a group added later counts its own steps.
"""

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from .core import precision
from .core.wrapper import OptimizerWrapper


class Lookahead(OptimizerWrapper):
    r"""
    ## Hyper-parameters

    * `base_optimizer` is an optimizer already built over the parameters: `Lookahead(Adam(params), ...)`.
    * `k` is the number of fast steps per synchronisation (default $5$; the paper uses $5$ or $10$).
    * `alpha` is $\alpha \in (0, 1]$, how far the slow weights move (default $0.5$; the paper finds
      $0.5$ and $0.8$ both robust).

    `param_groups` are shared with the base (a scheduler on either drives both). `state` holds the slow
    weights (`slow_param`) and, for a parameter whose base keeps a `float32` master, that master
    (`master_param`: the base's tensor itself, which the synchronisation reads and writes, not a copy).
    `state_dict` is the base's checkpoint with the slow weights added to each entry.
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise ValueError(
                f"Invalid base_optimizer: {base_optimizer!r} (expected an optimizer instance, "
                "e.g. Lookahead(Adam(model.parameters()), k=5, alpha=0.5))"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Invalid k: {k} (must be an integer >= 1)")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"Invalid alpha: {alpha} (must be in (0, 1])")
        super().__init__(base_optimizer, {"lookahead_k": k, "lookahead_alpha": alpha, "lookahead_step": 0})

    @staticmethod
    def weights(param: torch.Tensor) -> torch.Tensor:
        r"""The weights as real numbers: a complex parameter is its real view, as for every optimizer here."""
        return torch.view_as_real(param) if param.is_complex() else param

    def link_master(self, group: dict[str, Any], param: torch.Tensor) -> None:
        r"""Show the base's `float32` master of `param` in Lookahead's entry, if the base keeps one in use."""
        state = self.state[param]
        master = self.base_optimizer.state.get(param, {}).get(precision.MASTER_KEY)
        if master is not None and precision.uses_master(group, self.weights(param)):
            state[precision.MASTER_KEY] = master
        else:
            state.pop(precision.MASTER_KEY, None)

    def fast_weights(
        self, group: dict[str, Any], param: torch.Tensor, state: dict[str, Any], reseed: bool = True
    ) -> torch.Tensor:
        r"""
        The fast weights $\theta$ as the synchronisation sees them: the `float32` master when `state`
        holds one in use, else the parameter (see `precision.current_master` for `reseed`).
        """
        weights = self.weights(param)
        master = precision.current_master(group, state, weights, reseed)
        return weights if master is None else master

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        r"""
        ### One fast step, and every $k$-th a synchronisation

        Lookahead overrides `step`: its work is the whole base step plus, now and then, an update of
        every parameter at once.
        """
        self.check_master_weights_supported()
        # $\phi_0 = \theta_0$: a parameter's slow weights are its weights before the first step it takes
        # part in (its master's, when the base keeps one). Its gradient may only appear inside the base's
        # step (from the closure), so every trainable parameter without slow weights is copied first, and
        # the copy kept if it took part.
        params = [param for group in self.param_groups for param in group["params"]]
        base_state = self.base_optimizer.state
        before = {param: self.fast_weights(group, param, base_state.get(param, {}), reseed=False).clone()
                  for group in self.param_groups for param in group["params"]
                  if param.requires_grad and param not in self.state}
        # Which parameters take part: those with a gradient now, or, when there is a closure, those the
        # closure gives one (it recomputes them; a base such as SAM may call it more than once).
        took_part = set()

        def observed_closure() -> Any:
            loss = closure()
            took_part.update(param for param in params if param.grad is not None)
            return loss

        # $$\theta_{t,i} = \theta_{t,i-1} + \mathrm{BaseStep}(\theta_{t,i-1})$$
        skipped_before = self.skipped_steps
        if closure is None:
            took_part.update(param for param in params if param.grad is not None)
            loss = self.base_optimizer.step()
        else:
            loss = self.base_optimizer.step(observed_closure)

        # Without a gradient anywhere the base did nothing, and neither does Lookahead; nor when the base
        # skipped the step for a non-finite gradient (it counted the skip, in the count we share).
        if not took_part or self.skipped_steps != skipped_before:
            return loss
        for group in self.param_groups:
            for param in group["params"]:
                if param in took_part and param in before and param not in self.state:
                    self.state[param]["slow_param"] = before[param]
                if param in self.state:
                    self.link_master(group, param)
                    # The slow weights are kept in the precision of the fast weights: `float32` while
                    # the base keeps a master. At a parameter's first step the base makes its master as
                    # a copy of the parameter, so the conversion is exact; master weights may also be
                    # switched on or off during training.
                    state = self.state[param]
                    fast = state.get(precision.MASTER_KEY, self.weights(param))
                    if state["slow_param"].dtype != fast.dtype:
                        state["slow_param"] = state["slow_param"].to(fast.dtype)

        for group in self.param_groups:
            group["lookahead_step"] += 1
            if group["lookahead_step"] < group["lookahead_k"]:
                continue
            group["lookahead_step"] = 0
            for param in group["params"]:
                if param not in self.state:
                    continue
                state = self.state[param]
                fast, slow = self.fast_weights(group, param, state), state["slow_param"]
                # $$\phi_t = \phi_{t-1} + \alpha\,(\theta_{t,k} - \phi_{t-1})$$
                slow.lerp_(fast, group["lookahead_alpha"])
                # $$\theta_{t+1,0} = \phi_t$$
                # through the master when there is one: $\theta^{32} \leftarrow \phi_t$,
                # $\theta \leftarrow \mathrm{round}(\theta^{32})$.
                precision.assign(self.weights(param), state.get(precision.MASTER_KEY), slow)
        return loss

    def wrapped_state_dict(self) -> dict[str, Any]:
        r"""
        ### Checkpoint

        The base's checkpoint, in torch's format (its groups carry $k$, $\alpha$ and the counter), with
        each parameter's slow weights added to its entry under `slow_param`. Plain tensors, numbers
        and dictionaries, so it loads with `torch.load(weights_only=True)`.
        """
        state_dict = self.base_optimizer.state_dict()
        entries = {**state_dict["state"]}
        params = [param for group in self.param_groups for param in group["params"]]
        for index, param in enumerate(params):
            if param in self.state:
                entries[index] = {**entries.get(index, {}), "slow_param": self.state[param]["slow_param"]}
        return {**state_dict, "state": entries}

    def load_wrapped_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""The slow weights are taken out of the entries; the rest is the base's checkpoint."""
        base_entries, slow = {}, {}
        for index, entry in state_dict["state"].items():
            entry = dict(entry)
            if "slow_param" in entry:
                slow[index] = entry.pop("slow_param")
            if entry:
                base_entries[index] = entry
        self.load_base_state_dict({**state_dict, "state": base_entries})
        # Entries are keyed as the saved groups list their parameters: by position in torch's format,
        # by name in `torch.distributed.checkpoint`'s. Either way the saved groups list them in the order
        # of ours, as `torch.optim.Optimizer.load_state_dict` assumes.
        saved_keys = [key for group in state_dict["param_groups"] for key in group["params"]]
        params = [(group, param) for group in self.param_groups for param in group["params"]]
        by_key = dict(zip(saved_keys, params))
        self.state = defaultdict(dict)
        for key, value in slow.items():
            group, param = by_key[key]
            self.link_master(group, param)
            # A copy, on the parameter's device, in the precision of the fast weights: the master's
            # (`float32`) when the base keeps one, else the parameter's. Nothing is compared with the
            # parameter here: the model's weights may well be loaded after the optimizer.
            fast = self.state[param].get(precision.MASTER_KEY, self.weights(param))
            self.state[param]["slow_param"] = value.detach().to(device=fast.device, dtype=fast.dtype, copy=True)
