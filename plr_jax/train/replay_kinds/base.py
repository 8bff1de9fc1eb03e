"""The interface every replay kind implements (`ReplayKind`)."""

from typing import Any, Callable

import jax
import numpy as np
import optax

from plr_jax.train import steps

Step = Callable[[steps.PLRState, steps.Batch, steps.TaskInfo],
                tuple[steps.PLRState, steps.Metrics]]


class ReplayKind:
  """What one way of replaying earlier tasks contributes to a run.

  A kind is one module of `plr_jax.train.replay_kinds`, named as
  `ContinualConfig.replay` names it, holding one instance (`KIND`) of a
  subclass. The task loop asks the kind, never the name, for everything that
  differs between kinds. Every method gets the run's `ContinualConfig`.

  Attributes:
    name: the value of `ContinualConfig.replay` that selects the kind.
    description: one line for `--help` and docs.
    generates_features: the kind has a feature generator (the generator
      mFID scores, whose reconstruction levels `recon_levels` chooses).
    replays: the kind replays anything (a run that replays nothing costs no
      replay: its R is 0).
    frozen_extractor_cacheable: the step sees the training images only
      through the classifier's extractor and keeps no rows, so once the
      extractor is frozen a task can run on its rows' features computed
      once (`train.frozen_inputs`).
  """
  name: str = ''
  description: str = ''
  generates_features: bool = False
  replays: bool = True
  frozen_extractor_cacheable: bool = False

  def validate(self, config) -> None:
    """Raises ValueError where `config` does not suit the kind."""

  def strategy_in_first_task(self, config) -> bool:
    """Whether the strategy changes what task 1 computes (before anything
    is replayed). False lets runs that differ only in their strategy share
    task 1 (`io.first_task`); `tests/test_search.py` checks it per kind."""
    del config
    return False

  def init_generator(self, config, key: jax.Array) -> Any | None:
    """The generator's fresh parameters, or None for a kind without one."""
    del config, key
    return None

  def make_step(self, config, tx: optax.GradientTransformation,
                shard: Callable[[Any], Any] | None) -> Step:
    """One iteration, pure and not jitted: `step(state, batch, info)`.

    `info.memory` holds the inputs of the training rows `memory_rows` chose
    for the task (None where it chose none). `shard` constrains a replay
    batch's placement (data parallelism), or is None.
    """
    raise NotImplementedError

  def memory_rows(self, config, key: jax.Array, earlier_rows: np.ndarray,
                  task: int) -> np.ndarray | None:
    """Training rows kept from the earlier tasks for 1-based `task`, int32
    [M] with M fixed for the run (every task shares one compilation), or
    None for a kind that keeps no data.

    Args:
      config: the run's configuration.
      key: this seed's key for the task's draw.
      earlier_rows: the rows of the tasks before `task` (empty in task 1).
      task: the 1-based task.
    """
    del config, key, earlier_rows, task
    return None
