"""Training: objectives, the loop, interrupts, checkpoints and warm starts.

``objectives``  :class:`Objective`: what training minimises, over the steps each output can reach in time
``loop``        :func:`train`: fresh batches and noise from (seed, step), checkpoints, resuming
``interrupts``  Ctrl-C and SIGTERM end the current step and write a checkpoint there
``checkpoint``  checkpoints written atomically and read without running code
``warmstart``   a circuit's parameters initialised from another run's checkpoint
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .interrupts import cancel_stop, request_stop
from .loop import TrainResult, step_seeds, train
from .objectives import Objective, Supervision, check_objective, compute_losses, first_scored_steps, scored_steps
from .warmstart import warm_start

__all__ = ["train", "TrainResult", "step_seeds", "request_stop", "cancel_stop", "Objective",
           "Supervision", "check_objective", "compute_losses", "first_scored_steps", "scored_steps",
           "load_checkpoint", "save_checkpoint", "warm_start"]
