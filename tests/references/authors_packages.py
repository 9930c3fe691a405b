r"""
Thin adapters over the authors' own packages, so that the verification harness can build them like any
optimizer, `cls(groups, **config)`. Nothing of the algorithms is rewritten here; each adapter changes
only how the package is called.

* `schedulefree==1.4.1` (facebookresearch/schedule_free): its optimizers start in eval mode and refuse
  to step until `train()` is called, so the adapters call it once built. The single-tensor path
  (`foreach=False`) is used: the same arithmetic as the default multi-tensor one, one tensor at a time.
* `sophia-opt==0.2.2`: a packaging of `sophia.py` of Liuhong99/Sophia at commit
  195a78656248d6a7ae97bf895ccf95dac5488002 (the file is identical apart from packaging). `SophiaG` takes
  the batch size as an argument of `step(bs=...)`; the adapter takes it at construction, as ours does,
  and passes it to every step.
* `dadaptation==3.2`: `layer_scale` is a group option there, not a constructor argument; the adapter
  takes it at construction, as ours does, and sets it in every group.
* `prodigyopt==1.1.2` is used directly from the registry.
"""

import dadaptation
import schedulefree
import sophia_opt


class AdamWScheduleFree(schedulefree.AdamWScheduleFree):
    def __init__(self, params, **kwargs):
        super().__init__(params, foreach=False, **kwargs)
        self.train()


class SGDScheduleFree(schedulefree.SGDScheduleFree):
    def __init__(self, params, **kwargs):
        super().__init__(params, foreach=False, **kwargs)
        self.train()


class SophiaG(sophia_opt.SophiaG):
    def __init__(self, params, bs=5120, **kwargs):
        super().__init__(params, **kwargs)
        self.bs = bs

    def step(self, closure=None):
        return super().step(closure, bs=self.bs)


class DAdaptAdam(dadaptation.DAdaptAdam):
    def __init__(self, params, layer_scale=1.0, **kwargs):
        super().__init__(params, **kwargs)
        self.defaults["layer_scale"] = layer_scale
        for group in self.param_groups:
            group["layer_scale"] = layer_scale
