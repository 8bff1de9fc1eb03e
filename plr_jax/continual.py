"""Class-incremental task sequences: splits, initialisation, the task loop.

`run` trains generative PLR on cached level-0 features: for each task the
iterations run inside one jit-compiled `lax.scan` per chunk, the task's data
resident on the device; the host touches the loop only between chunks and at
task boundaries (evaluation, snapshots of the previous networks).
"""

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax import classifier as classifier_lib
from plr_jax import config as config_lib
from plr_jax import evaluation
from plr_jax import generator as generator_lib
from plr_jax import image_generator
from plr_jax import loops
from plr_jax import optim
from plr_jax import steps
from plr_jax import strategy as strategy_lib


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
  """A generative PLR run (DESIGN.md section 4)."""
  arch: config_lib.ArchConfig
  strategy: strategy_lib.Strategy
  num_tasks: int
  iters_per_task: int = 5000
  batch_size: int = 256
  replay_size: int = 256
  learning_rate: float = 1e-4
  chunk_size: int = 500
  replay: str = 'generative'
  buffer_size: int = 512
  inputs: str = 'features'
  extractor_trainable_until: int | None = None

  def __post_init__(self):
    strategy_lib.check_strategy(self.strategy, self.arch)
    if self.inputs not in ('features', 'images'):
      raise ValueError(f'inputs must be "features" or "images", got '
                       f'{self.inputs!r}')
    if self.replay not in ('generative', 'buffer', 'images'):
      raise ValueError(f'replay must be "generative", "buffer" or "images", '
                       f'got {self.replay!r}')
    if self.inputs == 'images' and self.replay == 'buffer':
      raise ValueError('training on images needs generative replay')
    if self.replay == 'images' and self.inputs != 'images':
      raise ValueError('replaying images needs inputs="images"')
    if self.arch.num_classes % self.num_tasks:
      raise ValueError(f'{self.arch.num_classes} classes do not split into '
                       f'{self.num_tasks} equal tasks')
    for name in ('num_tasks', 'iters_per_task', 'batch_size', 'replay_size',
                 'chunk_size', 'buffer_size'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be positive, got {getattr(self, name)}')


@dataclasses.dataclass
class Result:
  """What a run produced.

  Attributes:
    accuracy: [T, T]; row i: after task i+1, column j: accuracy on task j+1.
    state: the final `PLRState`.
    losses: per task, the metrics of every iteration (host arrays).
    class_order: the class permutation that defined the tasks.
  """
  accuracy: np.ndarray
  state: steps.PLRState
  losses: list[dict[str, np.ndarray]]
  class_order: np.ndarray

  @property
  def average_accuracy(self) -> float:
    """Accuracy after the last task, averaged over tasks."""
    return float(np.mean(self.accuracy[-1]))


def class_order(seed: int, num_classes: int) -> np.ndarray:
  """The run's class permutation, drawn from its seed."""
  key = jax.random.fold_in(jax.random.key(seed), 0x0C1A55)
  return np.asarray(jax.random.permutation(key, num_classes))


def task_of_class(order: np.ndarray, num_tasks: int) -> np.ndarray:
  """int [C]: the 0-based task each class belongs to."""
  per_task = len(order) // num_tasks
  tasks = np.empty(len(order), np.int32)
  tasks[order] = np.arange(len(order)) // per_task
  return tasks


@functools.partial(jax.jit, static_argnums=0)
def init_classifier(arch: config_lib.ArchConfig, key: jax.Array):
  """Classifier variables (`params`, and `batch_stats` with batch norm)."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return classifier_lib.Classifier(arch).init(key, images)


@functools.partial(jax.jit, static_argnums=0)
def init_generator(arch: config_lib.ArchConfig, key: jax.Array):
  """Generator parameters."""
  features = jnp.zeros((1, arch.feature_dim), jnp.float32)
  return generator_lib.Generator(arch).init(
      {'params': key}, features, jax.random.key(0))['params']


@functools.partial(jax.jit, static_argnums=0)
def init_image_generator(arch: config_lib.ArchConfig, key: jax.Array):
  """Parameters of the image VAE used by standard generative replay."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return image_generator.ImageGenerator(arch).init(
      {'params': key}, images, jax.random.key(0))['params']


def init_state(config: ContinualConfig, key: jax.Array,
               classifier_params=None) -> steps.PLRState:
  """A fresh PLR state; on cached features the extractor is left out."""
  cls_key, gen_key, run_key = jax.random.split(key, 3)
  if classifier_params is None:
    classifier_params = init_classifier(config.arch, cls_key)['params']
  # Own buffers: the steps donate the state, which must not delete the
  # caller's arrays.
  top = steps.copy_tree(
      {k: v for k, v in classifier_params.items()
       if k != 'extractor' or config.inputs == 'images'})
  tx = optim.adam(config.learning_rate)
  generator = prev_generator = None
  if config.replay != 'buffer':
    gen = (init_image_generator(config.arch, gen_key)
           if config.replay == 'images' else
           init_generator(config.arch, gen_key))
    generator = steps.TrainState.create(gen, tx)
    prev_generator = steps.copy_tree(gen)
  return steps.PLRState(
      classifier=steps.TrainState.create(top, tx), generator=generator,
      prev_classifier=steps.copy_tree(top), prev_generator=prev_generator,
      key=run_key, step=jnp.zeros((), jnp.int32))


@functools.lru_cache(maxsize=None)
def make_chunk_runner(config: ContinualConfig, jit: bool = True):
  """`run_chunk(state, features, labels, rows, num_rows, buffer_rows, info,
  length)`.

  Runs `length` iterations (static) in one `lax.scan`. Each iteration draws
  `batch_size` rows uniformly from `rows[:num_rows]` (padded to a fixed size,
  so tasks of different sizes share one compilation) with a key folded from
  the state's key and step. With buffer replay, `buffer_rows` index the stored
  samples. Cached per config, so every seed and every run of the same config
  reuses one compilation.
  """
  tx = optim.adam(config.learning_rate)
  if config.replay == 'generative':
    plr_step = steps.make_plr_step(
        config.arch, config.strategy, config.replay_size, tx, tx,
        inputs=config.inputs,
        extractor_trainable_until=config.extractor_trainable_until, jit=False)
  elif config.replay == 'images':
    plr_step = steps.make_gr_step(
        config.arch, config.replay_size, tx, tx,
        frozen_after=config.extractor_trainable_until, jit=False)
  else:
    buffer_step = steps.make_buffer_step(config.arch, config.strategy,
                                         config.replay_size, tx, jit=False)

  def iteration(state, _, features, labels, rows, num_rows, buffer, info):
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), 1)
    pick = rows[jax.random.randint(key, (config.batch_size,), 0, num_rows)]
    batch = steps.Batch(x=features[pick], y=labels[pick])
    if config.replay == 'buffer':
      return buffer_step(state, batch, buffer, info)
    return plr_step(state, batch, info)

  loop = loops.make_loop(
      iteration, loops.scan_is_slow(config.inputs == 'images'), jit=jit)

  def run_chunk(state, features, labels, rows, num_rows, buffer_rows, info,
                length):
    return loop(state, features, labels, rows, num_rows, features[buffer_rows],
                info, length=length)
  run_chunk.loop = loop
  return run_chunk


def run(config: ContinualConfig, train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray], seed: int, *,
        classifier_params=None,
        on_task_end: Callable[[int, steps.PLRState], None] | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
        ) -> Result:
  """Trains generative PLR over all tasks and evaluates after each.

  Args:
    config: the run's configuration.
    train: level-0 features [N, D_0] (normalised images [N, H, W, C] if
      `config.inputs` is "images") and labels [N] of the training set.
    test: the same for the test set.
    seed: fixes the class order, initialisation, batches and replay.
    classifier_params: pretrained classifier parameters (their extractor
      produced the features); fresh ones if None.
    on_task_end: called with the 1-based task and the state after each task.
      The next task donates (reuses) the state's buffers: copy what you keep,
      e.g. with `jax.device_get`.
    on_chunk: called with the 1-based task and the iterations done in it
      after every chunk (progress reports).

  Returns:
    The accuracy matrix, final state and per-iteration losses.
  """
  arch = config.arch
  order = class_order(seed, arch.num_classes)
  tasks_train = task_of_class(order, config.num_tasks)[train[1]]
  tasks_test = task_of_class(order, config.num_tasks)[test[1]]
  features = jnp.asarray(train[0])
  labels = jnp.asarray(train[1], jnp.int32)
  max_rows = int(np.bincount(tasks_train, minlength=config.num_tasks).max())
  state = init_state(config, jax.random.key(seed), classifier_params)
  run_chunk = make_chunk_runner(config)
  buffer_key = jax.random.fold_in(jax.random.key(seed), 0xB0F)
  # Fixed shape from the start, so task 1 and later tasks share a compilation.
  buffer_rows = jnp.zeros(
      (config.buffer_size if config.replay == 'buffer' else 1,), jnp.int32)

  accuracy = np.zeros((config.num_tasks, config.num_tasks))
  history = []
  for t in range(1, config.num_tasks + 1):
    info = steps.task_info(t, order, config.num_tasks)
    task_rows = np.flatnonzero(tasks_train == t - 1)
    if not len(task_rows):
      raise ValueError(f'task {t} has no training data')
    rows = np.zeros(max_rows, np.int32)
    rows[:len(task_rows)] = task_rows
    rows, num_rows = jnp.asarray(rows), jnp.asarray(len(task_rows), jnp.int32)
    chunks = []
    done = 0
    while done < config.iters_per_task:
      length = min(config.chunk_size, config.iters_per_task - done)
      state, metrics = run_chunk(state, features, labels, rows, num_rows,
                                 buffer_rows, info, length)
      chunks.append(jax.device_get(metrics))
      done += length
      if on_chunk is not None:
        on_chunk(t, done)
    history.append({k: np.concatenate([c[k] for c in chunks])
                    for k in chunks[0]})
    test_features = test[0]
    if config.inputs == 'images':
      test_features = evaluation.extract_features(
          arch, {'params': state.classifier.params}, test[0])
    accuracy[t - 1] = evaluation.task_accuracies(
        arch, state.classifier.params, test_features, test[1], tasks_test,
        config.num_tasks)
    state = steps.end_task(state)
    if config.replay == 'buffer':
      buffer_rows = _fill_buffer(jax.random.fold_in(buffer_key, t),
                                 np.flatnonzero(tasks_train < t),
                                 config.buffer_size)
    if on_task_end is not None:
      on_task_end(t, state)
  return Result(accuracy=accuracy, state=state, losses=history,
                class_order=order)


def _fill_buffer(key: jax.Array, seen_rows: np.ndarray,
                 size: int) -> jax.Array:
  """`size` training rows from the tasks seen, without replacement if enough."""
  pick = jax.random.choice(key, len(seen_rows), (size,),
                           replace=len(seen_rows) < size)
  return jnp.asarray(seen_rows[np.asarray(pick)], jnp.int32)
