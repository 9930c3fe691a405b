r"""
# Toy experiments

Every optimizer of the registry can be run, compared and plotted here, with one
command:

```bash
python -m annotated_opt.toys --optimizer adabelief --objective rosenbrock
python -m annotated_opt.toys --optimizer adam,sgd,rmsprop --objective all
python -m annotated_opt.toys --task digits --model cnn
python -m annotated_opt.toys --help          # lists every optimizer and objective
```

The pieces, one module each:

* `objectives`: Rosenbrock, Rastrigin, Beale, an ill-conditioned quadratic and a saddle, with
  hand-written gradients;
* `runner`: records the trajectory of any registered optimizer from the objective's fixed start;
* `tasks` and `charlm`: the small real tasks (digits with an MLP and a CNN, a character-level
  language model on Python's own source) with one training loop for every optimizer;
* `tuning`: the seeded search behind `annotated_opt/core/tuned_hparams.json`;
* `drawing`: the figures, shared by the command line and the site.
"""

from .objectives import OBJECTIVES, Objective
from .runner import SKIPPABLE, Trajectory, run_trajectory, toy_score
from .tasks import TASKS, Task, TaskResult, run_task

__all__ = [
    "OBJECTIVES",
    "SKIPPABLE",
    "TASKS",
    "Objective",
    "Task",
    "TaskResult",
    "Trajectory",
    "run_task",
    "run_trajectory",
    "toy_score",
]
