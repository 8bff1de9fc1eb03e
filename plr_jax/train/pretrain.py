"""Extractor pretraining (docs/design.md, "Extractor pretraining").

The whole classifier (extractor, hidden stack and a head for the pretraining
classes) is trained end to end with Adam, batch norm in training mode and
random-crop-plus-flip augmentation done in JAX; only the extractor is kept.
Each epoch is one jit-compiled `lax.scan` over batches, the images resident
on the device. With an `EpochCheckpointer` the state is saved after every
epoch and a rerun continues after the last saved one; epoch e's batch order
and augmentation come from `fold_in(key, e)`, so a resumed pretraining (or
one extended to more epochs) computes what an uninterrupted one would.
"""

import dataclasses
import functools
import json
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from plr_jax.data import datasets as data_lib
from plr_jax.io import checkpoint as checkpoint_lib
from plr_jax.io import interrupts
from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import inference
from plr_jax.models import init as model_init
from plr_jax.models import layers
from plr_jax.train import loops
from plr_jax.train import optim


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
  """Pretraining hyper-parameters; docs/design.md: 100 epochs, Adam 1e-4, 256."""
  epochs: int = 100
  batch_size: int = 256
  learning_rate: float = 1e-4
  augment: bool = True
  # 'symmetric' as the reference (torchvision's RandomCrop(32, padding=4,
  # padding_mode='symmetric')); 'zeros' pads with the mean colour.
  crop_padding: str = 'symmetric'
  # How the extractor's convolutions are differentiated (layers.conv3x3):
  # 'patches' (matmuls over patches, the faster on XLA:CPU) or 'xla'. Both
  # give the same gradients to float rounding.
  conv_backward: str = 'patches'

  # Fields that change float rounding only: left out of a run's identity and
  # of the extractor's name, kept in the pretraining state's identity so that
  # a resumed pretraining computes what an uninterrupted one would.
  ARITHMETIC_FIELDS = ('conv_backward',)

  def __post_init__(self):
    for name in ('epochs', 'batch_size'):
      if getattr(self, name) < 1:
        raise ValueError(f'pretraining {name} must be positive, got '
                         f'{getattr(self, name)}')
    if self.crop_padding not in ('symmetric', 'zeros'):
      raise ValueError(f"crop padding must be 'symmetric' or 'zeros', got "
                       f'{self.crop_padding!r}')
    if self.conv_backward not in layers.CONV_BACKWARDS:
      raise ValueError(f'conv backward must be one of '
                       f'{", ".join(layers.CONV_BACKWARDS)}, got '
                       f'{self.conv_backward!r}')


@dataclasses.dataclass(frozen=True)
class Step:
  """One pretraining step and its parts (`benchmarks.pretrain` times each).

  Attributes:
    model: the classifier, its convolutions differentiated as configured.
    tx: the optimizer.
    batch: `(i, perm, images, labels, mean, std, key) -> (x, y)`: the i-th
      batch of the permutation, normalised and augmented.
    loss: `(params, batch_stats, x, y) -> (loss, batch_stats)`.
    step: `((params, batch_stats, opt_state), i, perm, images, labels, mean,
      std, key) -> (carry, loss)`: batch, gradient, update.
  """
  model: classifier_lib.Classifier
  tx: optax.GradientTransformation
  batch: Callable
  loss: Callable
  step: Callable


@functools.lru_cache(maxsize=None)
def make_step(arch: arch_lib.ArchConfig, config: PretrainConfig) -> Step:
  """The pure pretraining step of `arch` under `config`."""
  model = classifier_lib.Classifier(arch, config.conv_backward)
  tx = optim.adam(config.learning_rate)

  def loss_fn(params, batch_stats, images, labels):
    logits, updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, images, True,
        mutable=['batch_stats'])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return loss.mean(), updates.get('batch_stats', {})

  def batch(i, perm, images, labels, mean, std, key):
    rows = jax.lax.dynamic_slice_in_dim(perm, i * config.batch_size,
                                        config.batch_size)
    x = (images[rows].astype(jnp.float32) / 255.0 - mean) / std
    if config.augment:
      x = data_lib.augment(jax.random.fold_in(key, i), x,
                           mode=config.crop_padding)
    return x, labels[rows]

  def step(carry, i, perm, images, labels, mean, std, key):
    params, batch_stats, opt_state = carry
    x, y = batch(i, perm, images, labels, mean, std, key)
    (loss, batch_stats), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(params, batch_stats, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

  return Step(model, tx, batch, loss_fn, step)


@functools.lru_cache(maxsize=None)
def _make_epoch(arch: arch_lib.ArchConfig, config: PretrainConfig,
                steps_per_epoch: int):
  parts = make_step(arch, config)
  tx, step = parts.tx, parts.step

  loop = loops.make_loop(step, loops.slow_convolutions(True))

  def epoch(carry, images, labels, mean, std, key, between=None):
    perm = jax.random.permutation(key, images.shape[0])
    if between is None:
      return loop(carry, perm, images, labels, mean, std, key,
                  length=steps_per_epoch)
    return loop(carry, perm, images, labels, mean, std, key,
                length=steps_per_epoch, between=between)

  return tx, epoch


def _resume(checkpoints: checkpoint_lib.EpochCheckpointer | None, carry,
            identity: dict, config: PretrainConfig):
  """`(carry, first epoch to run, wall time of the epochs done)`: from the
  last epoch saved in `checkpoints` if there is one (refusing another
  pretraining's, or one past `config.epochs`), else from the start."""
  if checkpoints is None:
    return carry, 1, 0.0
  restored = checkpoints.restore(carry)
  if restored is None:
    return carry, 1, 0.0
  carry, info = restored
  recorded = info.get('identity') or {}
  # States saved before the option existed were computed with XLA's.
  recorded.setdefault('config', {}).setdefault('conv_backward', 'xla')
  if recorded != identity:
    recorded_backward = recorded['config']['conv_backward']
    if recorded == {**identity, 'config': {
        **identity['config'], 'conv_backward': recorded_backward}}:
      raise checkpoint_lib.CheckpointError(
          f'{checkpoints.directory} holds a pretraining computed with '
          f'conv_backward={recorded_backward}; resume it with that '
          f'(pretrain: --conv_backward={recorded_backward}, other '
          f'binaries: --set=extractor.conv_backward={recorded_backward})')
    raise checkpoint_lib.CheckpointError(
        f'{checkpoints.directory} holds another pretraining (other '
        'architecture, data, hyper-parameters or seed); use another '
        'directory')
  if info['epoch'] > config.epochs:
    raise checkpoint_lib.CheckpointError(
        f'{checkpoints.directory} holds a pretraining at epoch '
        f'{info["epoch"]}, past the {config.epochs} epochs asked for')
  return carry, info['epoch'] + 1, info['wall_time_s']


def pretrain(arch: arch_lib.ArchConfig, dataset: data_lib.Dataset,
             config: PretrainConfig, seed: int,
             on_epoch: Callable[[int, float], None] | None = None,
             checkpoints: checkpoint_lib.EpochCheckpointer | None = None,
             should_stop: interrupts.StopCheck | None = None):
  """Trains a classifier on `dataset` and returns its variables.

  Args:
    arch: the target architecture; the head is resized to the dataset's
      classes.
    dataset: e.g. CIFAR-10, or a subset of its classes (Figure 4).
    config: epochs, batch size, learning rate, augmentation.
    seed: initialisation, batch order and augmentation.
    on_epoch: called with the 1-based epoch and its mean training loss.
    checkpoints: saves the state after every epoch; a pretraining found
      there (same architecture, data, hyper-parameters and seed; any number
      of epochs up to `config.epochs`) is continued instead of restarted.
    should_stop: polled between the steps of an epoch on the CPU (the
      epoch is then dropped: a resume recomputes it) and after every
      epoch's checkpoint; True raises `interrupts.Interrupted`.

  Returns:
    `(variables, test_accuracy, wall_time_s)` for the whole classifier
    (keep `variables['params']['extractor']` and `variables['batch_stats']`);
    the wall time counts the epochs of earlier, resumed processes too.

  Raises:
    checkpoint.CheckpointError: `checkpoints` holds another pretraining, or
      one longer than `config.epochs`.
  """
  start = time.perf_counter()
  classes = np.unique(dataset.train_labels)
  # Labels are remapped to 0..K-1 so a subset of classes gets a K-way head.
  remap = np.full(int(classes.max()) + 1, -1, np.int32)
  remap[classes] = np.arange(len(classes))
  arch = arch_lib.with_classes(arch, len(classes))
  steps_per_epoch = len(dataset.train_labels) // config.batch_size
  if steps_per_epoch < 1:
    raise ValueError(f'{len(dataset.train_labels)} training images is fewer '
                     f'than one batch of {config.batch_size}')
  tx, epoch = _make_epoch(arch, config, steps_per_epoch)
  key = jax.random.key(seed)
  variables = model_init.init_classifier(arch, jax.random.fold_in(key, 0))
  carry = (variables['params'], variables.get('batch_stats', {}),
           tx.init(variables['params']))
  mean, std = dataset.channel_stats()
  images = jnp.asarray(dataset.train_images)
  labels = jnp.asarray(remap[dataset.train_labels])
  identity = {'arch': dataclasses.asdict(arch),
              'config': {**dataclasses.asdict(config), 'epochs': None},
              'seed': seed, 'dataset': dataset.name,
              'classes': classes.tolist(),
              'train_images': int(len(dataset.train_labels))}
  identity = json.loads(json.dumps(identity))  # tuples as lists
  carry, first, earlier_s = _resume(checkpoints, carry, identity, config)
  for e in range(first, config.epochs + 1):
    # On XLA:CPU an epoch is a host loop (loops.slow_convolutions), and a stop
    # request is honoured between its steps: the epoch is dropped and
    # recomputed on resume from the last saved one (elsewhere an epoch is
    # one compiled scan, polled after it ends).
    def between(e=e):
      interrupts.check(should_stop, lambda: (
          f'the extractor pretraining during epoch {e}/{config.epochs} '
          f'({f"epochs up to {e - 1} are" if e > 1 else "no epoch is"} '
          'saved)'))
    carry, losses = epoch(carry, images, labels, mean, std,
                          jax.random.fold_in(key, e),
                          between if loops.slow_convolutions(True) else None)
    loss = float(jnp.mean(losses))
    if checkpoints is not None:
      checkpoints.save(carry, e, {
          'identity': identity, 'loss': loss,
          'wall_time_s': earlier_s + time.perf_counter() - start})
    if on_epoch is not None:
      on_epoch(e, loss)
    if e < config.epochs:
      interrupts.check(should_stop, lambda e=e: (
          f'the extractor pretraining after epoch {e}/{config.epochs}'))
  variables = {'params': carry[0], 'batch_stats': carry[1]}
  test = data_lib.normalise(dataset.test_images, mean, std)
  features = inference.extract_features(arch, variables, test)
  predictions = inference.predict(arch, variables['params'], features)
  accuracy = float(np.mean(predictions == remap[dataset.test_labels]))
  return variables, accuracy, earlier_s + time.perf_counter() - start
