"""Pure, jit-compiled PLR train steps built by factories.

Each factory closes over what fixes the shapes (architecture, strategy, batch
sizes) and returns `step(state, ...) -> (state, metrics)`. The task number and
the class masks are array arguments (`TaskInfo`); the task's `Phase` (task 1
without replay; replaying; replaying with frozen layers) is static, so a step
compiles once per phase and computes only what its phase needs: task 1 traces
no replay, frozen layers get no gradient. A step runs inside `lax.scan` over
iterations and under `vmap` over seeds.

A replay slice at level n enters the classifier after fc_n
(`Classifier.classify_injected`): it never runs fc_1 .. fc_n, and
`stop_gradient` keeps gradients out of the generator. Layer gates
(`optim.gated_update`) make sure a layer that received no data in a step
keeps its parameters and Adam moments.
"""

from typing import Any, Callable, Mapping, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import generator as generator_lib
from plr_jax.models import image_generator
from plr_jax.train import losses
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import strategy as strategy_lib

Classifier = classifier_lib.Classifier
Generator = generator_lib.Generator
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
  """
  task: jax.Array
  active: jax.Array
  replayed: jax.Array
  phase: Phase = flax.struct.field(pytree_node=False)


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


def trains_until(info: TaskInfo, last_task: int) -> bool:
  """Whether layers trained up to `last_task` (inclusive) still train: a
  Python bool from the phase (made with `frozen_after=last_task`), so the
  frozen layers' gradients are never computed."""
  del last_task  # part of the phase
  return not info.phase.frozen


def classifier_gates(arch: arch_lib.ArchConfig, slices: tuple[int, ...],
                     with_current: bool, train_extractor: bool
                     ) -> dict[str, bool]:
  """Which classifier layers receive data in a step (static).

  fc_j sees current data and the replay slices of levels < j; the head sees
  every slice.
  """
  gates = {'extractor': with_current and train_extractor}
  for j in range(1, arch.num_levels + 1):
    gates[f'fc_{j}'] = with_current or sum(slices[:j]) > 0
  gates['head'] = with_current or sum(slices) > 0
  return gates


def _combine_gates(static: Mapping[str, bool], params,
                   trainable: Mapping[str, jax.Array] | None):
  trainable = trainable or {}

  def combine(name):
    # Python bools stay Python bools: a gate closed at trace time leaves the
    # layer's gradient unused, so XLA never computes it.
    fixed, varying = static.get(name, True), trainable.get(name, True)
    if isinstance(varying, bool):
      return fixed and varying
    return jnp.logical_and(fixed, varying)
  return {name: combine(name) for name in params}


def make_classifier_step(
    arch: arch_lib.ArchConfig, tx: optax.GradientTransformation,
    strategy: strategy_lib.Strategy, replay_size: int, *,
    inputs: str = 'features', with_current: bool = True,
    replay_images: bool = False, replay_targets: str = 'soft', jit: bool = True,
) -> Callable[..., tuple[TrainState, Metrics]]:
  """Builds `step(state, batch, replay, info, trainable=None)`.

  Args:
    arch: the architecture.
    tx: the classifier's optimizer.
    strategy: fractions per level; slice n of the replay batch (rows in level
      order) is injected at level n.
    replay_size: rows of every replay batch.
    inputs: `"features"` (level-0 features) or `"images"` (runs the extractor,
      in inference mode, and trains it unless its gate is closed).
    with_current: False builds a replay-only step (`batch` is ignored).
    replay_images: the replay batch holds images (`levels=(images,)`) that
      run through the whole classifier (standard generative replay, GR);
      the strategy must then be IR.
    replay_targets: `"soft"`: distillation towards the previous
      classifier's softened logits (the reference's `--distill`, its PLR
      runs); `"hard"`: cross-entropy towards their argmax among the earlier
      classes (the reference's default, its Fashion-MNIST GR command).
    jit: return the step jit-compiled, state donated.

  Returns:
    The step. `replay=None` leaves replay out (a separate trace).
    `trainable` maps layer names to bool arrays that close gates, e.g. to
    freeze layers after the first task.
  """
  if inputs not in ('features', 'images'):
    raise ValueError(f'inputs must be "features" or "images", got {inputs!r}')
  check_replay_targets(replay_targets)
  strategy = strategy_lib.check_strategy(strategy, arch)
  slices = strategy_lib.split_batch(strategy, replay_size)
  model = Classifier(arch)

  if replay_images and slices[0] != replay_size:
    raise ValueError('replay of images enters at the input: use IR')

  def current_inputs(params, batch: Batch):
    """What the current batch feeds the stack: images or level-0 rows."""
    if inputs == 'images' and not replay_images:
      return model.apply({'params': params}, batch.x,
                         method=Classifier.extract)
    return batch.x

  def replay_inputs(replay: replay_lib.ReplayBatch):
    """The replay batch's slices, one entry per level (None: no rows)."""
    if replay_images:
      return (jax.lax.stop_gradient(replay.levels[0]),)
    entries, offset = [], 0
    for level, size in enumerate(slices):
      rows = replay.levels[level][offset:offset + size]
      entries.append(jax.lax.stop_gradient(rows) if size else None)
      offset += size
    return tuple(entries)

  def logits_of(params, current, replayed):
    """One pass over the current rows (or None) and the replayed entries
    (or None); images: one batch through the whole classifier."""
    if replay_images:
      rows = [r for r in (current, replayed and replayed[0]) if r is not None]
      return model.apply({'params': params}, jnp.concatenate(rows))
    return model.apply({'params': params}, current,
                       replayed or (None,) * len(slices),
                       method=Classifier.classify_injected)

  def replay_objective(logits, replay: replay_lib.ReplayBatch,
                       info: TaskInfo):
    if replay_targets == 'hard':
      labels = losses.hard_targets(replay.logits, info.replayed)
      return jnp.mean(losses.cross_entropy(logits, labels, info.active))
    return jnp.mean(losses.distillation(logits, replay.logits, info.replayed,
                                        info.active))

  def replay_loss(params, replay: replay_lib.ReplayBatch,
                  info: TaskInfo):
    return replay_objective(
        logits_of(params, None, replay_inputs(replay)), replay, info)

  def loss_fn(params, batch: Batch, replay, info: TaskInfo):
    current_weight, replay_weight = losses.task_weights(info.task)
    metrics = {}
    loss = 0.0
    if replay is not None and replay.logits.shape[0] != replay_size:
      raise ValueError(f'replay batch has {replay.logits.shape[0]} rows, '
                       f'the step was built for {replay_size}')
    # When the phase replays, current rows and replay slices share one pass
    # through the stack (each layer one matmul over every row that reaches
    # it).
    one_pass = replays_in_one_pass(info, replay)
    if with_current:
      current_rows = current_inputs(params, batch)
      if one_pass:
        logits = logits_of(params, current_rows, replay_inputs(replay))
        logits, replay_logits = jnp.split(logits, [batch.x.shape[0]])
      else:
        logits = logits_of(params, current_rows, None)
      current = jnp.mean(losses.cross_entropy(logits, batch.y, info.active))
      metrics['current_loss'] = current
      loss += current_weight * current
    elif one_pass:
      replay_logits = logits_of(params, None, replay_inputs(replay))
    if replay is not None:
      if one_pass:
        replayed = replay_objective(replay_logits, replay, info)
      else:
        replayed = when_replaying(info, replay_loss,
                                  lambda *_: jnp.zeros(()), params,
                                  replay, info)
      metrics['replay_loss'] = replayed
      loss += replay_weight * replayed
    metrics['loss'] = loss
    return loss, metrics

  def step(state: TrainState, batch: Batch | None,
           replay: replay_lib.ReplayBatch | None, info: TaskInfo,
           trainable: Mapping[str, jax.Array] | None = None):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, batch, replay, info)
    static = classifier_gates(arch, slices if replay is not None else
                              (0,) * len(slices), with_current,
                              inputs == 'images')
    gates = _combine_gates(static, state.params, trainable)
    params, opt_state = optim.gated_update(tx, grads, state.params,
                                           state.opt_state, gates)
    return TrainState(params=params, opt_state=opt_state), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


def make_generator_step(
    arch: arch_lib.ArchConfig, tx: optax.GradientTransformation, *,
    with_current: bool = True, model=None,
    current_levels: tuple[int, ...] | None = None,
    replay_levels: tuple[int, ...] | None = None,
    recon_loss: Callable[..., jax.Array] = losses.reconstruction,
    replay_targets: str = 'soft',
    jit: bool = True,
) -> Callable[..., tuple[TrainState, Metrics]]:
  """Builds `step(state, levels, labels, replay, info, key, trainable=None)`.

  `levels` are the real data's features at every level (the classifier's,
  level 0 first): the reconstruction targets, with `labels` choosing each
  example's prior mode. Replayed data is reconstructed towards the previous
  generator's own outputs; its prior is the mixture of the earlier classes'
  modes weighted by the previous classifier's softened predictions
  (`replay_targets="soft"`), or the mode of its most likely class
  (`"hard"`). `model` defaults to `Generator(arch)`; an `ImageGenerator`
  takes `levels=(images,)` (with `recon_loss=losses.bernoulli_reconstruction`
  for its Bernoulli pixels). `current_levels` and `replay_levels` pick the
  levels whose reconstruction enters the loss for current and replayed data
  (None: all, paper eq. 2; see `generator_recon_levels`). The latent term is
  divided by the input images' C*H*W (`ArchConfig.input_size`), as the
  reference's.
  """
  model = model or Generator(arch)
  check_replay_targets(replay_targets)
  normaliser = float(model.arch.input_size)

  def pick(levels, chosen):
    if chosen is None:
      return levels
    return tuple(levels[n] for n in chosen)

  def noise(key, x):
    return generator_lib.latent_noise(model.arch, key, x)

  def forward(params, x, eps):
    """`(mean, logvar, z, outputs)` of rows `x` with the noise `eps`."""
    return model.apply({'params': params}, x, eps,
                       method=type(model).reconstruct)

  def vae(params, x, key):
    return forward(params, x, noise(key, x))

  def vae_joint(params, x, key, replay_x, replay_key):
    """`vae` of two batches in one pass, each with its own noise."""
    out = forward(params, jnp.concatenate([x, replay_x]),
                  jnp.concatenate([noise(key, x), noise(replay_key, replay_x)]))
    rows = x.shape[0]
    return (jax.tree.map(lambda a: a[:rows], out),
            jax.tree.map(lambda a: a[rows:], out))

  def recon_of(outs, targets, chosen):
    return jnp.mean(recon_loss(pick(outs, chosen), pick(targets, chosen)))

  def replay_log_weights(replay: replay_lib.ReplayBatch, info):
    """Log mixture weights of the prior modes for each replayed sample."""
    if replay_targets == 'hard':
      hard = losses.hard_targets(replay.logits, info.replayed)
      one_hot = jax.nn.one_hot(hard, replay.logits.shape[-1], dtype=bool)
      return jnp.where(one_hot, 0.0, 0.5 * jnp.finfo(replay.logits.dtype).min)
    return losses.masked_log_softmax(
        replay.logits / losses.DISTILLATION_TEMPERATURE, info.replayed)

  def replay_terms(params, vae_out, replay: replay_lib.ReplayBatch, info):
    mean, logvar, z, outs = vae_out
    latent = jnp.mean(losses.mixture_latent(
        z, mean, logvar, params['prior_mean'], params['prior_logvar'],
        replay_log_weights(replay, info))) / normaliser
    return {'replay_recon': recon_of(outs, replay.levels, replay_levels),
            'replay_latent': latent}

  def loss_fn(params, levels, labels, replay, info: TaskInfo, key):
    current_key, replay_key = jax.random.split(key)
    current_weight, replay_weight = losses.task_weights(info.task)
    metrics = {}
    loss = 0.0
    # When the phase replays, current and replayed rows share one
    # pass through the VAE (each with the noise it would get alone).
    one_pass = with_current and replays_in_one_pass(info, replay)
    if one_pass:
      current_out, replay_out = vae_joint(params, levels[0], current_key,
                                          replay.levels[0], replay_key)
    elif with_current:
      current_out = vae(params, levels[0], current_key)
    if with_current:
      mean, logvar, z, outs = current_out
      recon = recon_of(outs, levels, current_levels)
      latent = jnp.mean(losses.latent(
          z, mean, logvar, params['prior_mean'][labels],
          params['prior_logvar'][labels])) / normaliser
      metrics.update(recon=recon, latent=latent)
      loss += current_weight * (recon + latent)
    if replay is not None:
      if one_pass:
        terms = replay_terms(params, replay_out, replay, info)
      else:
        zeros = {'replay_recon': jnp.zeros(()),
                 'replay_latent': jnp.zeros(())}
        terms = when_replaying(
            info, lambda p, r, i, k: replay_terms(p, vae(p, r.levels[0], k),
                                                  r, i),
            lambda *_: zeros, params, replay, info, replay_key)
      metrics.update(terms)
      loss += replay_weight * (terms['replay_recon'] + terms['replay_latent'])
    metrics['loss'] = loss
    return loss, metrics

  def step(state: TrainState, levels, labels, replay, info: TaskInfo,
           key: jax.Array, trainable: Mapping[str, jax.Array] | None = None):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, levels, labels, replay, info, key)
    has_data = with_current or replay is not None
    gates = _combine_gates({name: has_data for name in state.params},
                           state.params, trainable)
    params, opt_state = optim.gated_update(tx, grads, state.params,
                                           state.opt_state, gates)
    return TrainState(params=params, opt_state=opt_state), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


RECON_LEVELS = ('all', 'only_last_layer', 'used', 'classifier')
REPLAY_TARGETS = ('soft', 'hard')


def check_replay_targets(replay_targets: str) -> None:
  if replay_targets not in REPLAY_TARGETS:
    raise ValueError(f'replay targets must be "soft" or "hard", got '
                     f'{replay_targets!r}')


def generator_recon_levels(
    strategy: strategy_lib.Strategy, mode: str = 'all'
) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
  """The levels the generator reconstructs: `(for current data, for
  replayed data)`, each a tuple of levels or None for every level.

  The reference's two modes: "all" (its `--latent`: every level for both,
  paper eq. 2) and "only_last_layer" (its `--only-last-layer`: level 0 alone
  for current data, every level for replayed data). Ours: "used" keeps the
  levels a replay slice is injected at, for both; "classifier" keeps level 0
  alone for both, and the hidden levels of a replayed sample are then the
  previous classifier's features of its generated level 0 (see
  `replay.generative`), so the generator never models hidden activations.
  """
  if mode not in RECON_LEVELS:
    raise ValueError(f'recon_levels must be one of {", ".join(RECON_LEVELS)}'
                     f', got {mode!r}')
  if mode == 'all':
    return None, None
  if mode == 'only_last_layer':
    return (0,), None
  if mode == 'classifier':
    return (0,), (0,)
  used = tuple(n for n, f in enumerate(strategy) if f > 0)
  return used, used


def make_plr_step(
    arch: arch_lib.ArchConfig, strategy: strategy_lib.Strategy,
    replay_size: int, classifier_tx: optax.GradientTransformation,
    generator_tx: optax.GradientTransformation, *, inputs: str = 'features',
    extractor_trainable_until: int | None = None,
    recon_levels: str = 'all', replay_targets: str = 'soft',
    targets_after_update: bool = True,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, TaskInfo], tuple[PLRState, Metrics]]:
  """One generative PLR iteration: sample replay, update both networks.

  The replay batch comes from the previous generator and is labelled by the
  previous classifier (skipped in task 1). The classifier is updated first;
  the generator's reconstruction targets for current data are then the
  classifier's features after that update (as the reference computes them,
  under `no_grad`, after the classifier's step of the same iteration).

  Args:
    arch, strategy, replay_size: as for `make_classifier_step`.
    classifier_tx, generator_tx: the two optimizers.
    inputs: `"features"` (cached level-0 features, frozen extractor) or
      `"images"` (the classifier's extractor runs, and is trained, on the
      current images; the generator works on its level-0 output). Images
      need an extractor without batch norm.
    extractor_trainable_until: with images, the extractor is trained up to
      and including this task and frozen after it (None: never frozen).
    recon_levels: which levels the generator reconstructs, for current and
      replayed data: `"all"`, `"only_last_layer"` (the reference's modes),
      `"used"`, `"classifier"` (ours); see `generator_recon_levels`.
    replay_targets: `"soft"` or `"hard"` (see `make_classifier_step`); the
      generator's replay prior follows the same choice.
    targets_after_update: False takes the generator's targets from the
      classifier before this iteration's update (one pass fewer to wait for;
      not the reference's order).
    shard: applied to the replay batch (e.g. `sharding.constrain_batch`, to
      split it over devices); None leaves placement to XLA.
    jit: return the step jit-compiled, state donated.
  """
  shard = shard or (lambda tree: tree)
  if inputs == 'images' and arch.conv_batch_norm:
    raise ValueError(f'{arch.name}: training on images is supported for '
                     'extractors without batch norm only')
  classifier_step = make_classifier_step(arch, classifier_tx, strategy,
                                         replay_size, inputs=inputs,
                                         replay_targets=replay_targets, jit=False)
  current_levels, replay_levels = generator_recon_levels(strategy,
                                                         recon_levels)
  generator_step = make_generator_step(
      arch, generator_tx, current_levels=current_levels,
      replay_levels=replay_levels, replay_targets=replay_targets, jit=False)
  model = Classifier(arch)

  def step(state: PLRState, batch: Batch, info: TaskInfo):
    key = jax.random.fold_in(state.key, state.step)
    replay_key, generator_key = jax.random.split(key)
    replay = when_replaying(
        info,
        lambda: replay_lib.generative(
            arch, state.prev_generator, state.prev_classifier, replay_key,
            info.replayed, replay_size,
            hidden_from_classifier=recon_levels == 'classifier'),
        lambda: replay_lib.empty(arch, replay_size, batch.x.dtype))
    replay = shard(replay)
    trainable = None
    if inputs == 'images' and extractor_trainable_until is not None:
      trainable = {'extractor': trains_until(info, extractor_trainable_until)}
    classifier, classifier_metrics = classifier_step(
        state.classifier, batch, replay, info, trainable)
    params = (classifier if targets_after_update
              else state.classifier).params
    features = batch.x
    if inputs == 'images':
      features = model.apply({'params': params}, batch.x,
                             method=Classifier.extract)
    _, levels = model.apply({'params': params}, features,
                            method=Classifier.levels)
    levels = jax.lax.stop_gradient(levels)
    generator, generator_metrics = generator_step(
        state.generator, levels, batch.y, replay, info, generator_key)
    metrics = {f'classifier/{k}': v for k, v in classifier_metrics.items()}
    metrics.update({f'generator/{k}': v for k, v in generator_metrics.items()})
    state = state.replace(classifier=classifier, generator=generator,
                          step=state.step + 1)
    return state, metrics

  return jax.jit(step, donate_argnums=0) if jit else step


def make_gr_step(
    arch: arch_lib.ArchConfig, replay_size: int,
    classifier_tx: optax.GradientTransformation,
    generator_tx: optax.GradientTransformation, *,
    frozen_after: int | None = None, replay_targets: str = 'hard',
    bernoulli: bool = True, classifier_on_reconstructions: bool = True,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, TaskInfo], tuple[PLRState, Metrics]]:
  """Standard generative replay of images (Figure 5's GR baselines), as the
  reference's `train.py` runs it.

  The previous `ImageGenerator` samples images of earlier classes and the
  previous classifier labels them (`replay_targets`: its argmax among the
  earlier classes, the reference's default, or its softened logits); they
  run through the whole classifier. With `classifier_on_reconstructions`
  (the reference) the classifier trains on the current generator's
  reconstructions of the current batch (constants for autodiff), not on the
  real images; it is evaluated on real images. The generator then trains on
  the real images. With `frozen_after=K` the classifier's extractor and the
  generator's convolutional encoder and decoder are frozen after task K
  (`gr_frozen`). `bernoulli`: pixels in [0, 1], binary cross-entropy (see
  `ImageGenerator`).
  """
  shard = shard or (lambda tree: tree)
  generator = image_generator.ImageGenerator(arch, bernoulli=bernoulli)
  ir = strategy_lib.internal_replay(arch.num_levels)
  classifier_step = make_classifier_step(
      arch, classifier_tx, ir, replay_size, inputs='images',
      replay_images=True, replay_targets=replay_targets, jit=False)
  generator_step = make_generator_step(
      arch, generator_tx, model=generator,
      recon_loss=(losses.bernoulli_reconstruction if bernoulli
                  else losses.reconstruction),
      replay_targets=replay_targets, jit=False)
  model = Classifier(arch)

  def sample(state, key, info):
    _, (images,) = generator.apply(
        {'params': state.prev_generator}, key, info.replayed, replay_size,
        method=image_generator.ImageGenerator.sample)
    logits = model.apply({'params': state.prev_classifier}, images)
    return replay_lib.ReplayBatch(levels=(jax.lax.stop_gradient(images),),
                                  logits=jax.lax.stop_gradient(logits))

  def reconstructions(params, images, key):
    _, _, _, (raw,) = generator.apply(
        {'params': params}, images,
        generator_lib.latent_noise(arch, key, images),
        method=image_generator.ImageGenerator.reconstruct)
    return jax.lax.stop_gradient(image_generator.to_images(raw, bernoulli))

  def step(state: PLRState, batch: Batch, info: TaskInfo):
    key = jax.random.fold_in(state.key, state.step)
    replay_key, generator_key, recon_key = jax.random.split(key, 3)
    empty = replay_lib.ReplayBatch(
        levels=(jnp.zeros((replay_size,) + batch.x.shape[1:], batch.x.dtype),),
        logits=jnp.zeros((replay_size, arch.num_classes), batch.x.dtype))
    replay = when_replaying(info, lambda: sample(state, replay_key, info),
                            lambda: empty)
    replay = shard(replay)
    classifier_trainable = generator_trainable = None
    if frozen_after is not None:
      open_gate = trains_until(info, frozen_after)
      classifier_trainable = {'extractor': open_gate}
      generator_trainable = {'conv_encoder': open_gate,
                             'conv_decoder': open_gate}
    classifier_batch = batch
    if classifier_on_reconstructions:
      classifier_batch = batch.replace(x=reconstructions(
          state.generator.params, batch.x, recon_key))
    classifier, classifier_metrics = classifier_step(
        state.classifier, classifier_batch, replay, info,
        classifier_trainable)
    generator_state, generator_metrics = generator_step(
        state.generator, (batch.x,), batch.y, replay, info, generator_key,
        generator_trainable)
    metrics = {f'classifier/{k}': v for k, v in classifier_metrics.items()}
    metrics.update({f'generator/{k}': v for k, v in generator_metrics.items()})
    return state.replace(classifier=classifier, generator=generator_state,
                         step=state.step + 1), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


def make_buffer_step(
    arch: arch_lib.ArchConfig, strategy: strategy_lib.Strategy,
    replay_size: int, classifier_tx: optax.GradientTransformation, *,
    shard: Callable[[Any], Any] | None = None, jit: bool = True,
) -> Callable[[PLRState, Batch, jax.Array, TaskInfo],
              tuple[PLRState, Metrics]]:
  """One buffer-replay iteration (Table 1): `step(state, batch, buffer, info)`.

  `buffer` holds stored level-0 features [M, D_0]; each iteration draws
  `replay_size` of them, the previous classifier recomputes their features
  at every level and their soft targets, and the slices enter the classifier
  at their levels. No generator: `state.generator` is None.
  """
  shard = shard or (lambda tree: tree)
  classifier_step = make_classifier_step(arch, classifier_tx, strategy,
                                         replay_size,
                                         jit=False)

  def step(state: PLRState, batch: Batch, buffer: jax.Array, info: TaskInfo):
    key = jax.random.fold_in(state.key, state.step)
    replay = when_replaying(
        info,
        lambda: replay_lib.from_buffer(arch, state.prev_classifier, buffer,
                                       key, replay_size),
        lambda: replay_lib.empty(arch, replay_size, batch.x.dtype))
    classifier, metrics = classifier_step(state.classifier, batch,
                                          shard(replay), info)
    metrics = {f'classifier/{k}': v for k, v in metrics.items()}
    return state.replace(classifier=classifier, step=state.step + 1), metrics

  return jax.jit(step, donate_argnums=0) if jit else step


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
