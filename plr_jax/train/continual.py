"""Class-incremental task sequences: splits, initialisation, the task loop.

`run` trains generative PLR on cached level-0 features: for each task the
iterations run inside one jit-compiled `lax.scan` per chunk, the task's data
resident on the device; the host touches the loop only between chunks and at
task boundaries (evaluation, snapshots of the previous networks).
"""

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.io import checkpoint as checkpoint_lib
from plr_jax.io import interrupts
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import inference
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator
from plr_jax.train import loops
from plr_jax.train import optim
from plr_jax.train import sharding
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib


@dataclasses.dataclass(frozen=True)
class ContinualConfig:
  """A generative PLR run (docs/design.md, "Training")."""
  arch: arch_lib.ArchConfig
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
  # Defaults follow the authors' code (see `steps.make_plr_step`,
  # `steps.make_gr_step` for what each option means).
  recon_levels: str = 'all'
  replay_targets: str = 'soft'
  targets_after_update: bool = True
  # With inputs="images": standardised per channel, or raw in [0, 1] (the
  # reference's Fashion-MNIST; GR's image VAE is then Bernoulli).
  standardise_images: bool = False
  # GR: the classifier trains on the image VAE's reconstructions.
  classifier_on_reconstructions: bool = True
  # Iterations unrolled per step of the task loop's scan (how it compiles,
  # not what it computes).
  scan_unroll: int = 1
  # Which class permutation defines the tasks (see `class_order`); the
  # dataset's name matters to the authors' rule.
  class_order_rule: str = 'authors'
  dataset: str | None = None

  # Fields that change how the loop executes, not what it computes.
  LOOP_FIELDS = ('chunk_size', 'scan_unroll')

  def __post_init__(self):
    strategy_lib.check_strategy(self.strategy, self.arch)
    check_class_order_rule(self.class_order_rule)
    if self.inputs not in ('features', 'images'):
      raise ValueError(f'inputs must be "features" or "images", got '
                       f'{self.inputs!r}')
    if self.replay not in ('generative', 'buffer', 'images'):
      raise ValueError(f'replay must be "generative", "buffer" or "images", '
                       f'got {self.replay!r}')
    steps.generator_recon_levels(self.strategy, self.recon_levels)
    steps.check_replay_targets(self.replay_targets)
    if self.inputs == 'images' and self.replay == 'buffer':
      raise ValueError('training on images needs generative replay')
    if self.replay == 'images' and self.inputs != 'images':
      raise ValueError('replaying images needs inputs="images"')
    if self.arch.num_classes % self.num_tasks:
      raise ValueError(f'{self.arch.num_classes} classes do not split into '
                       f'{self.num_tasks} equal tasks')
    for name in ('num_tasks', 'iters_per_task', 'batch_size', 'replay_size',
                 'chunk_size', 'buffer_size', 'scan_unroll'):
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


# How the class permutation that defines the tasks is chosen:
#   authors:  the reference code's rule (its `data/load.py`, the default):
#             the labels are remapped by `np.random.seed(seed);
#             np.random.permutation(num_classes)` (CIFAR-10 and CIFAR-100
#             for every seed; Fashion-MNIST for seeds >= 10) and the tasks
#             are consecutive groups of the new labels; Fashion-MNIST keeps
#             the dataset's order for seeds below 10;
#   seeded:   a permutation drawn with JAX from the run's seed;
#   identity: classes in their dataset order for every seed.
CLASS_ORDER_RULES = ('authors', 'seeded', 'identity')
# Datasets whose order the reference keeps for seeds below 10 (its
# `exception` for the MNIST family).
_ORDER_KEPT_BELOW_SEED_10 = ('fashion_mnist',)


def check_class_order_rule(rule: str, name: str = 'class order') -> None:
  if rule not in CLASS_ORDER_RULES:
    raise ValueError(f'{name} must be one of '
                     f'{", ".join(CLASS_ORDER_RULES)}, got {rule!r}')


def class_order(seed: int, num_classes: int, rule: str = 'authors',
                dataset: str | None = None) -> np.ndarray:
  """The run's class order: task t gets the t-th consecutive group.

  Args:
    seed: the run's seed.
    num_classes: classes of the benchmark.
    rule: one of `CLASS_ORDER_RULES`.
    dataset: the dataset's name (`data.NAMES`); the authors' rule keeps
      Fashion-MNIST's order for seeds below 10.
  """
  check_class_order_rule(rule)
  if rule == 'identity' or (rule == 'authors' and seed < 10 and
                            dataset in _ORDER_KEPT_BELOW_SEED_10):
    return np.arange(num_classes)
  if rule == 'authors':
    # Label y becomes permutation[y]; listing the classes by their new
    # label is the inverse permutation.
    permutation = np.random.RandomState(seed).permutation(num_classes)
    return np.argsort(permutation)
  key = jax.random.fold_in(jax.random.key(seed), 0x0C1A55)
  return np.asarray(jax.random.permutation(key, num_classes))


def task_of_class(order: np.ndarray, num_tasks: int) -> np.ndarray:
  """int [C]: the 0-based task each class belongs to."""
  per_task = len(order) // num_tasks
  tasks = np.empty(len(order), np.int32)
  tasks[order] = np.arange(len(order)) // per_task
  return tasks


@functools.partial(jax.jit, static_argnums=0)
def init_classifier(arch: arch_lib.ArchConfig, key: jax.Array):
  """Classifier variables (`params`, and `batch_stats` with batch norm)."""
  images = jnp.zeros((1,) + tuple(arch.image_shape), jnp.float32)
  return classifier_lib.Classifier(arch).init(key, images)


@functools.partial(jax.jit, static_argnums=0)
def init_generator(arch: arch_lib.ArchConfig, key: jax.Array):
  """Generator parameters."""
  features = jnp.zeros((1, arch.feature_dim), jnp.float32)
  return generator_lib.Generator(arch).init(
      {'params': key}, features, jax.random.key(0))['params']


@functools.partial(jax.jit, static_argnums=0)
def init_image_generator(arch: arch_lib.ArchConfig, key: jax.Array):
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


def make_chunk_runner(config: ContinualConfig, batched: bool = False,
                      mesh: jax.sharding.Mesh | None = None
                      ) -> 'ChunkRunner':
  """A `ChunkRunner`: `runner(state, features, labels, data, length)`.

  Runs `length` iterations (static) in one `lax.scan` over one task's
  `TaskData`. Each iteration draws `batch_size` rows uniformly from
  `data.rows[:data.num_rows]` (padded to a fixed size, so tasks of different
  sizes share one compilation) with a key folded from the state's key and
  step. With buffer replay, `data.buffer_rows` index the stored samples.
  Cached per config, so every run of the same config reuses one
  compilation.

  Args:
    config: the run's configuration.
    batched: the state and `data` carry a leading seed axis and the
      iteration is `vmap`ped over it: independent runs in one program
      (`features` and `labels` are shared).
    mesh: data parallelism: the current and replay batches are sharded over
      the mesh's `"data"` axis (parameters stay replicated, gradients are
      reduced by XLA).
  """
  return _chunk_runner(config, batched, mesh)


# Iterations per chunk where the loop runs on the host (`loops.slow_convolutions`).
HOST_LOOP_CHUNK = 20


@functools.lru_cache(maxsize=None)
def _chunk_runner(config, batched, mesh):
  """`make_chunk_runner`, cached on all three arguments."""
  tx = optim.adam(config.learning_rate)
  shard = None
  if mesh is not None:
    shard = functools.partial(sharding.constrain_batch, mesh)
  if config.replay == 'generative':
    plr_step = steps.make_plr_step(
        config.arch, config.strategy, config.replay_size, tx, tx,
        inputs=config.inputs,
        extractor_trainable_until=config.extractor_trainable_until,
        recon_levels=config.recon_levels,
        replay_targets=config.replay_targets,
        targets_after_update=config.targets_after_update, shard=shard,
        jit=False)
  elif config.replay == 'images':
    plr_step = steps.make_gr_step(
        config.arch, config.replay_size, tx, tx,
        frozen_after=config.extractor_trainable_until,
        replay_targets=config.replay_targets,
        bernoulli=not config.standardise_images,
        classifier_on_reconstructions=config.classifier_on_reconstructions,
        shard=shard, jit=False)
  else:
    buffer_step = steps.make_buffer_step(config.arch, config.strategy,
                                         config.replay_size, tx, shard=shard,
                                         jit=False)

  def iteration(state, _, features, labels, rows, num_rows, buffer, info):
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), 1)
    pick = rows[jax.random.randint(key, (config.batch_size,), 0, num_rows)]
    batch = steps.Batch(x=features[pick], y=labels[pick])
    if shard is not None:
      batch = shard(batch)
    if config.replay == 'buffer':
      return buffer_step(state, batch, buffer, info)
    return plr_step(state, batch, info)

  has_convolutions = (config.inputs == 'images'
                      and bool(config.arch.conv_channels))
  if batched:
    seed_axes = (0, None, None, None, 0, 0, 0, 0)
    iteration = (loops.map_unrolled(iteration, seed_axes)
                 if loops.slow_convolutions(has_convolutions)
                 else jax.vmap(iteration, in_axes=seed_axes))
  host_loop = loops.slow_convolutions(has_convolutions)
  # A host loop gains nothing from long chunks; short ones keep the progress
  # lines coming on slow backends.
  return ChunkRunner(
      loop=loops.make_loop(iteration, host_loop, unroll=config.scan_unroll),
      chunk_size=(min(config.chunk_size, HOST_LOOP_CHUNK) if host_loop
                  else config.chunk_size),
      iteration=iteration)


@dataclasses.dataclass(frozen=True)
class ChunkRunner:
  """Runs a chunk of a task's iterations: `runner(state, features, labels,
  data, length) -> (state, per-iteration metrics)`.

  Attributes:
    loop: the compiled loop (`loops.make_loop`) over `iteration`.
    chunk_size: iterations per chunk the task loop asks for.
    iteration: one iteration, pure (for cost analysis).
  """
  loop: Callable[..., Any]
  chunk_size: int
  iteration: Callable[..., Any]

  def __call__(self, state, features, labels, data: 'TaskData', length: int):
    return self.loop(state, features, labels, data.rows, data.num_rows,
                     jnp.take(features, data.buffer_rows, axis=0), data.info,
                     length=length)


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


@dataclasses.dataclass(frozen=True)
class TaskSplit:
  """How one seed's classes split into tasks.

  Attributes:
    order: the class permutation; task t gets its t-th consecutive group.
    train_tasks: the 0-based task of every training row.
    test_tasks: likewise for the test rows.
  """
  order: np.ndarray
  train_tasks: np.ndarray
  test_tasks: np.ndarray


def task_split(config: ContinualConfig, seed: int, train_labels: np.ndarray,
               test_labels: np.ndarray) -> TaskSplit:
  """Seed `seed`'s class order (`config.class_order_rule`) and the tasks of
  the training and test rows."""
  order = class_order(seed, config.arch.num_classes, config.class_order_rule,
                      config.dataset)
  of_class = task_of_class(order, config.num_tasks)
  return TaskSplit(order=order, train_tasks=of_class[train_labels],
                   test_tasks=of_class[test_labels])


@flax.struct.dataclass
class TaskData:
  """One task's data as the chunk runner takes it (a leading seed axis on
  every leaf when the seeds are batched).

  Attributes:
    rows: the task's training rows, int32 [R], padded to the largest task of
      the run (so every task shares one compilation).
    num_rows: how many of `rows` are real, int32 scalar.
    buffer_rows: the training rows stored for buffer replay, int32 [M]
      (zeros in task 1; [1] for generative replay, unused).
    info: the task's `steps.TaskInfo`.
  """
  rows: jax.Array
  num_rows: jax.Array
  buffer_rows: jax.Array
  info: steps.TaskInfo


def task_data(config: ContinualConfig, splits: Sequence[TaskSplit],
              seeds: Sequence[int], task: int,
              batched: bool = True) -> TaskData:
  """`TaskData` of 1-based `task` for the seeds' splits (stacked on a seed
  axis if `batched`, else the one seed's)."""
  max_rows = max(int(np.bincount(s.train_tasks,
                                 minlength=config.num_tasks).max())
                 for s in splits)
  num_buffer = config.buffer_size if config.replay == 'buffer' else 1
  per_seed = []
  for seed, split in zip(seeds, splits):
    task_rows = np.flatnonzero(split.train_tasks == task - 1)
    if not len(task_rows):
      raise ValueError(f'task {task} has no training data')
    rows = np.zeros(max_rows, np.int32)
    rows[:len(task_rows)] = task_rows
    buffer_rows = jnp.zeros((num_buffer,), jnp.int32)
    if config.replay == 'buffer' and task > 1:
      buffer_rows = _fill_buffer(
          jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 0xB0F),
                             task - 1),
          np.flatnonzero(split.train_tasks < task - 1), config.buffer_size)
    per_seed.append(TaskData(
        rows=jnp.asarray(rows), num_rows=jnp.asarray(len(task_rows), jnp.int32),
        buffer_rows=buffer_rows,
        info=steps.task_info(task, split.order, config.num_tasks,
                             frozen_after=config.extractor_trainable_until)))
  return stack_seeds(per_seed, batched)


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
  progress = _RunProgress(
      accuracy=np.zeros((len(seeds), config.num_tasks, config.num_tasks)),
      histories=[[] for _ in seeds])
  first_task, first_done = 1, 0
  if checkpoints is not None:
    restored = checkpoints.restore(state)
    if restored is not None:
      state, first_task, first_done, arrays = restored
      progress = _RunProgress.unpack(arrays, len(seeds), first_task)
      hooks.call('on_resume', first_task, first_done)
  for t in range(first_task, config.num_tasks + 1):
    data = task_data(config, splits, seeds, t, batched)
    done = first_done if t == first_task else 0
    state = _train_task(config, run_chunk, state, features, labels, data, t,
                        done, progress, seeds, batched, checkpoints, hooks)
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
                          class_order=split.order))
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


def _train_task(config, run_chunk, state, features, labels, data, task, done,
                progress, seeds, batched, checkpoints, hooks):
  """Task `task`'s iterations from `done` on, chunk by chunk: metrics
  checked and kept in `progress`, hooks called, checkpoints saved when due."""
  every = checkpoints.every if checkpoints is not None else 0
  while done < config.iters_per_task:
    length = min(run_chunk.chunk_size, config.iters_per_task - done)
    if every:
      length = min(length, every - done % every)
    state, metrics = run_chunk(state, features, labels, data, length)
    metrics = sharding.to_host(metrics)
    _check_finite(metrics, task, done, seeds, batched, checkpoints)
    progress.chunks.append(metrics)
    hooks.call('on_metrics', task, done, metrics)
    done += length
    hooks.call('on_chunk', task, done)
    saved = False
    if every and done < config.iters_per_task and checkpoints.due(done):
      checkpoints.save(state, task, done, progress.pack())
      saved = True
    if (done < config.iters_per_task and hooks.should_stop is not None
        and hooks.should_stop()):
      # A chunk boundary is a resume point like any other: the rerun's
      # chunks end where this run's would have.
      if checkpoints is not None and not saved:
        checkpoints.save(state, task, done, progress.pack())
      raise interrupts.Interrupted(_where(task, done, seeds))
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


@dataclasses.dataclass
class _RunProgress:
  """What a run has produced so far, and its checkpointed form.

  Attributes:
    accuracy: [seeds, tasks, tasks], rows filled up to the last task done.
    histories: per seed, per finished task, the metrics of every iteration.
    chunks: the current task's metrics so far, one dict per chunk.
  """
  accuracy: np.ndarray
  histories: list[list[dict[str, np.ndarray]]]
  chunks: list[dict[str, np.ndarray]] = dataclasses.field(
      default_factory=list)

  def end_task(self, batched: bool) -> None:
    """The current task's chunks become each seed's history entry."""
    for i, history in enumerate(self.histories):
      # Scanned metrics are [iterations, seeds] when batched.
      history.append({
          k: np.concatenate([c[k][:, i] if batched else c[k]
                             for c in self.chunks])
          for k in self.chunks[0]})
    self.chunks = []

  def pack(self) -> dict[str, np.ndarray]:
    """Accuracy rows and losses so far, as flat arrays for a checkpoint."""
    arrays = {'accuracy': self.accuracy}
    for i, history in enumerate(self.histories):
      for k, task_metrics in enumerate(history):
        for name, values in task_metrics.items():
          arrays[f'history|{i}|{k}|{name}'] = values
    for name in (self.chunks[0] if self.chunks else {}):
      arrays[f'current|{name}'] = np.concatenate([c[name]
                                                  for c in self.chunks])
    return arrays

  @classmethod
  def unpack(cls, arrays, num_seeds: int, task: int) -> '_RunProgress':
    """Inverse of `pack` for a checkpoint taken in `task`."""
    histories = [[{} for _ in range(task - 1)] for _ in range(num_seeds)]
    chunks = {}
    for key, values in arrays.items():
      parts = key.split('|')
      if parts[0] == 'history':
        histories[int(parts[1])][int(parts[2])][parts[3]] = values
      elif parts[0] == 'current':
        chunks[parts[1]] = values
    return cls(accuracy=arrays['accuracy'], histories=histories,
               chunks=[chunks] if chunks else [])


def stack_seeds(trees, batched: bool = True):
  """Per-seed pytrees stacked on a leading seed axis (the only one if not
  `batched`), as `run_seeds` and its chunk runner take them."""
  if not batched:
    return trees[0]
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


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


def _fill_buffer(key: jax.Array, seen_rows: np.ndarray,
                 size: int) -> jax.Array:
  """`size` training rows from the tasks seen, without replacement if enough."""
  pick = jax.random.choice(key, len(seen_rows), (size,),
                           replace=len(seen_rows) < size)
  return jnp.asarray(seen_rows[np.asarray(pick)], jnp.int32)
