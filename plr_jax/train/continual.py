"""The task loop: `run` and `run_seeds` over a class-incremental sequence.

For each task the iterations run as compiled chunks (`chunks`), the task's
data resident on the device (`tasks`); the host touches the loop only
between chunks and at task boundaries (evaluation, snapshots of the previous
networks). The configuration is `continual_config.ContinualConfig`; the
class order, initialisation, task data and chunk runner live in their own
modules and are re-exported here, the names users of the loop reach for.
"""

import dataclasses
import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.io import checkpoint as checkpoint_lib
from plr_jax.io import interrupts
from plr_jax.models import inference
from plr_jax.train import frozen_inputs
from plr_jax.train import run_progress
from plr_jax.train import sharding
from plr_jax.train import steps
# Re-exported: the loop's public names.
from plr_jax.train.chunks import HOST_LOOP_CHUNK, ChunkRunner, make_chunk_runner  # pylint: disable=unused-import,line-too-long
from plr_jax.train.class_order import CLASS_ORDER_RULES, check_class_order_rule, class_order, task_of_class  # pylint: disable=unused-import,line-too-long
from plr_jax.train.continual_config import ContinualConfig
from plr_jax.models.init import init_classifier, init_generator, init_image_generator  # pylint: disable=unused-import,line-too-long
from plr_jax.train.init import init_state  # pylint: disable=unused-import
from plr_jax.train.tasks import TaskData, TaskSplit, stack_seeds, task_data, task_split  # pylint: disable=unused-import,line-too-long


@dataclasses.dataclass
class Result:
  """What a run produced.

  Attributes:
    accuracy: [T, T]; row i: after task i+1, column j: accuracy on task j+1.
    state: the final `PLRState`.
    losses: per task, the metrics of every iteration (host arrays).
    class_order: the class permutation that defined the tasks.
    seconds: the run's training time over every process that trained it
      (each earlier one counted up to its last checkpoint; NaN if one of
      them did not record it), shared by the seeds of a vmapped group.
    processes: how many processes trained it (1: never resumed).
  """
  accuracy: np.ndarray
  state: steps.PLRState
  losses: list[dict[str, np.ndarray]]
  class_order: np.ndarray
  seconds: float = math.nan
  processes: int = 1

  @property
  def average_accuracy(self) -> float:
    """Accuracy after the last task, averaged over tasks."""
    return float(np.mean(self.accuracy[-1]))


# How the class permutation that defines the tasks is chosen:
#   authors:  the reference code's rule (its `data/load.py`, the default):
#             the labels are remapped by `np.random.seed(seed);
#             np.random.permutation(num_classes)` (CIFAR-10 and CIFAR-100
#             for every seed; Fashion-MNIST for seeds >= 10) and the tasks
#             are consecutive groups of the new labels; Fashion-MNIST keeps
#             the dataset's order for seeds below 10;
#   seeded:   a permutation drawn with JAX from the run's seed;
#   identity: classes in their dataset order for every seed.
@dataclasses.dataclass
class Hooks:
  """What a run reports as it goes; every hook is optional.

  Attributes:
    on_chunk: `(task, done)` after every chunk: the 1-based task and the
      iterations done in it (progress reports).
    on_metrics: `(task, done_before, metrics)` after every chunk, with its
      per-iteration metrics on the host (`{name: [iterations, seeds]}` when
      batched, else `[iterations]`).
    on_evaluated: `(task, rows)` after each task: the seeds' rows of the
      accuracy matrix for it ([seeds, tasks]; later tasks 0).
    on_task_end: `(task, state)` after each task. The next task donates
      (reuses) the state's buffers: copy what you keep, e.g. with
      `jax.device_get`. With seeds batched, the state has the seed axis.
    on_resume: `(task, done)` where a run resumes from a checkpoint.
    should_stop: polled after every chunk and task; when it returns True
      the run checkpoints (if it has checkpoints) and raises
      `interrupts.Interrupted` naming the task and iteration.
  """
  on_chunk: Callable[[int, int], None] | None = None
  on_metrics: Callable[[int, int, dict], None] | None = None
  on_evaluated: Callable[[int, np.ndarray], None] | None = None
  on_task_end: Callable[[int, steps.PLRState], None] | None = None
  on_resume: Callable[[int, int], None] | None = None
  should_stop: interrupts.StopCheck | None = None

  def call(self, name: str, *args) -> None:
    hook = getattr(self, name)
    if hook is not None:
      hook(*args)


def run(config: ContinualConfig, train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray], seed: int, *,
        classifier_params=None, hooks: Hooks | None = None,
        mesh: jax.sharding.Mesh | None = None) -> Result:
  """Trains generative PLR over all tasks and evaluates after each.

  Args:
    config: the run's configuration.
    train: level-0 features [N, D_0] (normalised images [N, H, W, C] if
      `config.inputs` is "images") and labels [N] of the training set.
    test: the same for the test set.
    seed: fixes the class order, initialisation, batches and replay.
    classifier_params: pretrained classifier parameters (their extractor
      produced the features); fresh ones if None.
    hooks: progress and results as they happen (`Hooks`).
    mesh: run data-parallel over this mesh (see `sharding.data_mesh`).

  Returns:
    The accuracy matrix, final state and per-iteration losses.
  """
  return run_seeds(config, train, test, [seed], batched=False,
                   classifier_params=classifier_params, hooks=hooks,
                   mesh=mesh)[0]


def run_seeds(config: ContinualConfig, train: tuple[np.ndarray, np.ndarray],
              test: tuple[np.ndarray, np.ndarray], seeds: Sequence[int], *,
              batched: bool = True, classifier_params=None,
              hooks: Hooks | None = None,
              mesh: jax.sharding.Mesh | None = None,
              checkpoints: checkpoint_lib.RunCheckpointer | None = None,
              ) -> list[Result]:
  """Runs independent seeds as one `vmap`ped program (or one after another).

  Nine parameters: the run, its data and seeds, then keyword-only options
  that default to a plain run on one device without checkpoints.

  Each seed has its own class order, initialisation, batches and replay; the
  training data is shared. A seed's result equals that of `run` with that
  seed alone, to float tolerance.

  Args:
    seeds: the runs' seeds.
    batched: one program over all seeds (a leading seed axis on the state);
      False runs them one after another.
    checkpoints: save the whole run at task boundaries and every
      `checkpoints.every` iterations, and resume from its latest checkpoint
      if there is one (only for a single batched group: `batched` or one
      seed). A resumed run gives the same results as an uninterrupted one.
    Other arguments: as for `run`.

  Raises:
    NonFiniteLossError: a loss became NaN or infinite (the last checkpoint,
      from before that chunk, is kept).

  Returns:
    One `Result` per seed, in the order of `seeds`.
  """
  seeds = [int(s) for s in seeds]
  hooks = hooks or Hooks()
  if not seeds:
    raise ValueError('no seeds to run')
  if not batched and len(seeds) > 1:
    if checkpoints is not None:
      raise ValueError('checkpoints need one group: batched=True or one seed')
    return [run_seeds(config, train, test, [s], batched=False,
                      classifier_params=classifier_params, hooks=hooks,
                      mesh=mesh)[0] for s in seeds]
  check_data(config, train, 'training')
  check_data(config, test, 'test')
  splits = [task_split(config, s, train[1], test[1]) for s in seeds]
  place = functools.partial(sharding.replicate, mesh)
  features = place(jnp.asarray(train[0]))
  labels = place(jnp.asarray(train[1], jnp.int32))
  state = place(stack_seeds([init_state(config, jax.random.key(seed),
                                        classifier_params) for seed in seeds],
                            batched))
  run_chunk = make_chunk_runner(config, batched, mesh)
  progress = run_progress.RunProgress(
      accuracy=np.zeros((len(seeds), config.num_tasks, config.num_tasks)),
      histories=[[] for _ in seeds])
  first_task, first_done = 1, 0
  if checkpoints is not None:
    restored = checkpoints.restore(state)
    if restored is not None:
      state, first_task, first_done, arrays = restored
      progress = run_progress.RunProgress.unpack(arrays, len(seeds), first_task)
      hooks.call('on_resume', first_task, first_done)
  loop = _TaskLoop(config=config, run_chunk=run_chunk, features=features,
                   labels=labels, host_data=train, mesh=mesh, seeds=seeds,
                   batched=batched, checkpoints=checkpoints, hooks=hooks,
                   progress=progress)
  for t in range(first_task, config.num_tasks + 1):
    data = task_data(config, splits, seeds, t, batched)
    state = loop.train(state, data, t, first_done if t == first_task else 0)
    progress.end_task(batched)
    for i, split in enumerate(splits):
      params = jax.tree.map((lambda x: x[i]) if batched else (lambda x: x),
                            state.classifier.params)
      if sharding.spans_processes(mesh):
        params = sharding.to_host(params)
      progress.accuracy[i, t - 1] = _evaluate(config, params, test, split, t)
    hooks.call('on_evaluated', t, progress.accuracy[:, t - 1].copy())
    state = steps.end_task(state)
    if checkpoints is not None:
      checkpoints.save(state, t + 1, 0, progress.pack())
    hooks.call('on_task_end', t, state)
    if t < config.num_tasks:
      interrupts.check(hooks.should_stop,
                       lambda t=t: _where(t + 1, 0, seeds))
  results = []
  for i, split in enumerate(splits):
    seed_state = (jax.tree.map(lambda x: x[i], state) if batched else state)
    results.append(Result(accuracy=progress.accuracy[i], state=seed_state,
                          losses=progress.histories[i],
                          class_order=split.order,
                          seconds=progress.seconds(),
                          processes=progress.processes))
  return results


def check_data(config: ContinualConfig, data: tuple[np.ndarray, np.ndarray],
               split: str) -> None:
  """ValueError unless `data` is (rows, labels) the run can take: images of
  the architecture's shape (`config.inputs == "images"`) or its level-0
  features, one integer label in [0, classes) per row."""
  arch = config.arch
  x, y = data
  if config.inputs == 'images':
    want, what = tuple(arch.image_shape), 'images'
  else:
    want, what = (arch.feature_dim,), 'level-0 features'
  if tuple(np.shape(x)[1:]) != want:
    raise ValueError(f'{split} {what} for {arch.name} must have shape '
                     f'[rows, {", ".join(map(str, want))}], got '
                     f'{list(np.shape(x))}')
  y = np.asarray(y)
  if y.shape != (np.shape(x)[0],):
    raise ValueError(f'{split} labels must have shape [{np.shape(x)[0]}] '
                     f'(one per row), got {list(y.shape)}')
  if not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{split} labels must be integers, got {y.dtype}')
  if len(y) and (y.min() < 0 or y.max() >= arch.num_classes):
    raise ValueError(f'{split} labels must be in [0, {arch.num_classes}) '
                     f'for {arch.name}, got {y.min()} .. {y.max()}')


@dataclasses.dataclass(frozen=True)
class _TaskLoop:
  """What every task of a `run_seeds` call shares: its configuration, the
  compiled chunk, the data on the device (and on the host), the mesh, the
  seeds, checkpoints, hooks and the results so far."""
  config: ContinualConfig
  run_chunk: ChunkRunner
  features: jax.Array
  labels: jax.Array
  host_data: tuple[np.ndarray, np.ndarray]
  mesh: jax.sharding.Mesh | None
  seeds: list[int]
  batched: bool
  checkpoints: checkpoint_lib.RunCheckpointer | None
  hooks: Hooks
  progress: run_progress.RunProgress

  def train(self, state, data: TaskData, task: int, done: int):
    """Task `task`'s iterations from `done` on, chunk by chunk: metrics
    checked and kept in `progress`, hooks called, checkpoints saved when
    due."""
    config, checkpoints, hooks = self.config, self.checkpoints, self.hooks
    every = checkpoints.every if checkpoints is not None else 0
    run_chunk, features, labels = self.run_chunk, self.features, self.labels
    cached = (done < config.iters_per_task and frozen_inputs.cached_task(
        config, task, state.classifier.params, *self.host_data, data,
        self.batched, self.mesh))
    if cached:
      run_chunk, features, labels, data = cached
    while done < config.iters_per_task:
      length = min(run_chunk.chunk_size, config.iters_per_task - done)
      if every:
        length = min(length, every - done % every)
      state, metrics = run_chunk(state, features, labels, data, length)
      metrics = sharding.to_host(metrics)
      _check_finite(metrics, task, done, self.seeds, self.batched,
                    checkpoints)
      self.progress.chunks.append(metrics)
      hooks.call('on_metrics', task, done, metrics)
      done += length
      hooks.call('on_chunk', task, done)
      saved = False
      if every and done < config.iters_per_task and checkpoints.due(done):
        checkpoints.save(state, task, done, self.progress.pack())
        saved = True
      if (done < config.iters_per_task and hooks.should_stop is not None
          and hooks.should_stop()):
        # A chunk boundary is a resume point like any other: the rerun's
        # chunks end where this run's would have.
        if checkpoints is not None and not saved:
          checkpoints.save(state, task, done, self.progress.pack())
        raise interrupts.Interrupted(_where(task, done, self.seeds))
    return state


def _where(task, done, seeds) -> str:
  names = ','.join(str(s) for s in seeds)
  return (f'task {task}, iteration {done} '
          f'(seed{"s" if len(seeds) > 1 else ""} {names})')


def _evaluate(config, params, test, split, task) -> np.ndarray:
  """One seed's accuracy on every task's test classes after `task`."""
  test_features = test[0]
  if config.inputs == 'images':
    test_features = inference.extract_features(config.arch,
                                                {'params': params}, test[0])
  seen = task_of_class(split.order, config.num_tasks) < task
  return inference.task_accuracies(
      config.arch, params, test_features, test[1], split.test_tasks,
      config.num_tasks, seen=seen)


class NonFiniteLossError(RuntimeError):
  """A loss became NaN or infinite."""


def _check_finite(metrics, task, done, seeds, batched, checkpoints) -> None:
  """Raises `NonFiniteLossError` naming the first bad task and iteration."""
  for name, values in metrics.items():
    bad = ~np.isfinite(values)
    if bad.any():
      row = int(np.argmax(bad.reshape(len(values), -1).any(axis=1)))
      which = ''
      if batched:
        which = f' (seed {seeds[int(np.argmax(bad[row]))]})'
      kept = ('; the last good checkpoint is kept in '
              f'{checkpoints.directory}' if checkpoints is not None else '')
      raise NonFiniteLossError(
          f'{name} became {values[bad][0]} at task {task}, iteration '
          f'{done + row + 1}{which}{kept}')


