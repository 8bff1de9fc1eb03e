"""What the PLR train steps carry and what they know about a task.

`TrainState` (one network's parameters and optimizer state), `PLRState` (a
whole run's networks, the previous task's copies, the PRNG key and the step
counter), `Batch` (current data), and `TaskInfo`: the task number, class
masks and the replay kind's memory as arrays, and the task's `Phase` as
static structure, so a step compiles once per phase (task 1 without replay;
replaying; replaying with frozen layers) and computes only what that phase
needs.
"""

from typing import Any, Callable, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Parameters and optimizer state of one network."""
  params: Any
  opt_state: Any

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation) -> 'TrainState':
    return cls(params=params, opt_state=tx.init(params))


class Phase(NamedTuple):
  """What a step may know about its task when it is traced.

  Attributes:
    replaying: the task is not the first, so there are earlier classes to
      replay.
    frozen: the task comes after the one the step's layers freeze after
      (`extractor_trainable_until`, `frozen_after`); steps that freeze
      nothing ignore it.
  """
  replaying: bool
  frozen: bool

  @classmethod
  def of(cls, task: int, frozen_after: int | None = None) -> 'Phase':
    """The phase of 1-based `task` in a run that freezes after task K."""
    return cls(replaying=task > 1,
               frozen=frozen_after is not None and task > frozen_after)


@flax.struct.dataclass
class TaskInfo:
  """What changes between tasks, as arrays.

  Attributes:
    task: 1-based task number t, int32 scalar.
    active: bool [C], the classes seen so far (current task included).
    replayed: bool [C], the classes of earlier tasks.
    phase: the task's `Phase`, static (part of the tree's structure, so jit
      compiles once per phase): a step computes only what the phase needs,
      with no conditional on `task`.
    memory: what the run's replay kind kept of the earlier tasks' data, as
      its step reads it (buffer replay: the stored level-0 features
      [M, D_0]); None for kinds that keep nothing.
  """
  task: jax.Array
  active: jax.Array
  replayed: jax.Array
  phase: Phase = flax.struct.field(pytree_node=False)
  memory: Any = None


@flax.struct.dataclass
class Batch:
  """Current data: level-0 features [B, D_0] (or images) and labels [B]."""
  x: jax.Array
  y: jax.Array


@flax.struct.dataclass
class PLRState:
  """Everything a generative PLR run carries from one iteration to the next.

  Attributes:
    classifier: hidden stack and head (no extractor when trained on cached
      level-0 features).
    generator: the VAE; None for buffer replay.
    prev_classifier: parameters at the end of the previous task.
    prev_generator: likewise.
    key: the run's PRNG key; each iteration folds in `step`.
    step: iterations done so far, int32 scalar.
  """
  classifier: TrainState
  generator: TrainState
  prev_classifier: Any
  prev_generator: Any
  key: jax.Array
  step: jax.Array


def task_info(task: int, class_order: np.ndarray, num_tasks: int, *,
              frozen_after: int | None = None) -> TaskInfo:
  """`TaskInfo` for task `task` (1-based) of a class-incremental split.

  Args:
    task: 1-based task number.
    class_order: permutation of all classes; task t gets the t-th equal
      consecutive group.
    num_tasks: number of tasks the classes are split into.
    frozen_after: the task after which the steps' freezing layers freeze
      (their `extractor_trainable_until` or `frozen_after`; None: nothing
      freezes), for the task's `Phase`.
  """
  class_order = np.asarray(class_order)
  per_task = len(class_order) // num_tasks
  active = np.zeros(len(class_order), bool)
  active[class_order[:task * per_task]] = True
  replayed = np.zeros(len(class_order), bool)
  replayed[class_order[:(task - 1) * per_task]] = True
  return TaskInfo(task=jnp.asarray(task, jnp.int32),
                  active=jnp.asarray(active), replayed=jnp.asarray(replayed),
                  phase=Phase.of(task, frozen_after))


def when_replaying(info: TaskInfo, replay_fn: Callable[..., Any],
                   otherwise: Callable[..., Any], *operands):
  """`replay_fn(*operands)` from task 2 on, `otherwise(*operands)` in task 1;
  only the side the task's phase picks is traced."""
  return (replay_fn if info.phase.replaying else otherwise)(*operands)


def replays_in_one_pass(info: TaskInfo, replay) -> bool:
  """Whether a step runs its current and replayed rows through a network in
  one pass: the phase replays and there is a replay batch."""
  return replay is not None and info.phase.replaying


def end_task(state: PLRState) -> PLRState:
  """The current networks become the previous ones.

  The previous networks are plain parameter pytrees. They get buffers of their
  own (one device copy per task) because the steps donate the live state's
  buffers, which XLA then overwrites in place.
  """
  generator = state.generator
  return state.replace(
      prev_classifier=copy_tree(state.classifier.params),
      prev_generator=None if generator is None else copy_tree(generator.params))


def copy_tree(tree):
  """A copy of every array in `tree`, in buffers of its own."""
  return jax.tree.map(jnp.copy, tree)
