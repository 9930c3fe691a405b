r"""
# ZeroRedundancyOptimizer with this library's optimizers

`torch.distributed.optim.ZeroRedundancyOptimizer` shards the optimizer's state: each process builds
its own copy of the optimizer over a share of the parameters, steps it, and broadcasts the updated
parameters. Two things it cannot know about our optimizers, added by this subclass (use it in place
of torch's, with the same arguments):

* each process's copy checks only its own share of the gradients for `inf`/`NaN`, so the verdicts are
  combined over the process group ([distributed](distributed.md)): every process raises, or skips,
  together;
* the consolidated checkpoint (`consolidate_state_dict`, then `state_dict`) is rebuilt from the
  copies' states and groups, which would lose `skipped_steps`: it is written into the groups of the
  checkpoint, and read back by `load_state_dict`.
"""

from typing import Any

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer as TorchZeroRedundancyOptimizer

from .distributed import COUNT_KEY, EXTRA_GROUPS, read_count, with_count


class ZeroRedundancyOptimizer(TorchZeroRedundancyOptimizer):
    r"""
    ### `ZeroRedundancyOptimizer`, with our optimizers' verdict and count

    torch's class, unchanged, but for two things it cannot know about our optimizers: each process's
    optimizer agrees on the non-finite verdict over the process group (it sees only its own share of
    the parameters), and the consolidated checkpoint carries `skipped_steps` (the same on every
    process, since they agree).
    """

    def __init__(self, params: Any, optimizer_class: type[torch.optim.Optimizer], **kwargs: Any) -> None:
        super().__init__(params, optimizer_class, **kwargs)
        EXTRA_GROUPS[self.optim] = self.process_group

    def state_dict(self) -> dict[str, Any]:
        return with_count(super().state_dict(), getattr(self.optim, COUNT_KEY, 0))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict, count = read_count(state_dict)
        super().load_state_dict(state_dict)
        if hasattr(self.optim, COUNT_KEY):
            self.optim.skipped_steps = count
