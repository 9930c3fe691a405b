r"""
# Shared machinery: what every optimizer stands on

The optimizers of this library are the flat modules beside this folder, one algorithm each. What they
have in common lives here, once, so that an optimizer's page shows only its algorithm:

* [The generic adaptive optimizer](base.md), the base class: `init_state` and `step_param` for each
  optimizer to write, and the template `step` that runs the closure, walks the groups, skips
  parameters without gradients, treats complex parameters as real ones and saves checkpoints.
* [Weight decay](weight_decay.md): decoupled, L2 or absolute, as one immutable object.
* [Per-parameter options](options.md): settings carried by a parameter (`opt_args`), and parameter
  groups built from names (no decay on biases and norm layers).
* [Non-finite gradients](nonfinite.md) (raise, skip or ignore) and
  [master weights](precision.md) for half-precision parameters: the two options of every group.
* [Scalar state](scalars.md): the step count $t$ behind every bias correction, and the other per-parameter
  numbers torch keeps as 0-d tensors, kept as torch keeps them.
* [Checking hyper-parameters](validation.md): one set of argument checks with torch's messages.
* [Wrappers](wrapper.md): optimizers built around another one ([SAM](../sam.md),
  [Lookahead](../lookahead.md)).
* [The registry](registry.md): the list of every optimizer with its paper, family, state and reference;
  the tests, the site and the toys iterate over it. [Tuned hyper-parameters](tuned.md) are the toys'
  learning rates that belong to each entry.
* [Verification](verification.md): the float64 comparison of an optimizer with its independent
  reference, run by the tests and by the site's build.
"""
