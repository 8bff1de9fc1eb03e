"""What `run.run` does before training: the workdir's checks (writable,
the same configuration and data as a run already there), the datasets, and
the extractor (loaded, or pretrained and saved)."""

import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

from plr_jax import config as config_lib
from plr_jax.data import datasets as data_lib
from plr_jax.io import checkpoint
from plr_jax.io import extractors
from plr_jax.io import interrupts
from plr_jax.io import machine
from plr_jax.io import workdir as workdir_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import init as model_init
from plr_jax.train import class_order as class_order_lib
from plr_jax.train import pretrain as pretrain_lib


def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def check_writable(directory: str) -> None:
  """ValueError unless `directory` exists writable, or could be created
  (its nearest existing ancestor is a writable directory). Creates nothing."""
  path = os.path.abspath(directory)
  while not os.path.exists(path):
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
    raise ValueError(f'workdir {directory} is not writable ({path} is not '
                     'a writable directory)')


def recorded_config(workdir: str) -> dict | None:
  """The identity of the run recorded in `workdir`, or None."""
  path = workdir_lib.Workdir(workdir).config_file
  if not os.path.isfile(path):
    return None
  with open(path) as fh:
    return json.load(fh)


def check_workdir_config(workdir: str, config: config_lib.RunConfig) -> None:
  """ValueError if `workdir` holds a run of another configuration.

  A field that did not exist when the workdir's run was recorded counts as
  equal when this run has it at its default value."""
  theirs = recorded_config(workdir)
  if theirs is None:
    return
  ours = config.identity()
  theirs = config_lib.identity_of(config_lib.fill_defaults(theirs, config))
  if theirs != ours:
    differ = _differences(theirs, ours)
    if [k for k, _, _ in differ] == ['seeds']:
      there, now = (','.join(map(str, v)) for v in (theirs['seeds'],
                                                    ours['seeds']))
      raise ValueError(
          f'workdir {workdir} holds a run of seeds {there}, not {now}: a '
          "run's seeds are fixed when it starts (vmapped seeds share one "
          'program and checkpoint); run the other seeds in another workdir')
    shown = ', '.join(f'{k}: {a} there, {b} now' for k, a, b in differ[:3])
    raise ValueError(f'workdir {workdir} holds a run of another '
                     f'configuration ({shown}); use another workdir or the '
                     'same configuration')


def check_workdir_data(workdir: str, dataset: data_lib.Dataset,
                       ours: str) -> None:
  """ValueError if `workdir` holds a run on other data than `dataset`, whose
  `Dataset.fingerprint` is `ours` (workdirs from before the check pass)."""
  path = workdir_lib.Workdir(workdir).data_file
  if not os.path.isfile(path):
    return
  with open(path) as fh:
    theirs = json.load(fh)
  if theirs.get('fingerprint') != ours:
    raise ValueError(
        f'workdir {workdir} holds a run on other {dataset.name} data '
        f'(fingerprint {theirs.get("fingerprint")} there, {ours} now, read '
        f'from {dataset.source}); give the data it was run on or use another '
        'workdir')


def _differences(a, b, prefix=''):
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _differences(a.get(k), b.get(k), f'{prefix}{k}.')
    return out
  if a != b:
    return [(prefix.rstrip('.'), json.dumps(a), json.dumps(b))]
  return []


def load_datasets(config: config_lib.RunConfig, data_dir: str | None,
                  extractor_dir: str | None):
  """The run's dataset, and CIFAR-10 if an extractor must be pretrained.

  Every missing dataset is named in one `DatasetNotFoundError`.
  """
  names = [config.dataset]
  if (config.extractor is not None and config.extractor_classes
      and not _has_extractor(extractor_dir)
      and config.dataset != 'cifar10'):
    names.append('cifar10')
  found, missing = {}, []
  for name in names:
    try:
      found[name] = data_lib.load(name, data_dir)
    except data_lib.DatasetNotFoundError as e:
      missing.append(str(e))
  if missing:
    raise data_lib.DatasetNotFoundError('; '.join(missing))
  return found[config.dataset], found.get('cifar10', found[config.dataset])


def _has_extractor(directory: str | None) -> bool:
  return bool(directory) and os.path.isfile(
      os.path.join(directory, 'meta.json'))


def pretrain_extractor(arch: arch_lib.ArchConfig, dataset: data_lib.Dataset,
                       directory: str, pretrain: pretrain_lib.PretrainConfig,
                       seed: int,
                       should_stop: interrupts.StopCheck | None = None):
  """Pretrains on `dataset`, saves the extractor, returns (variables, meta).

  The state is saved after every epoch in `directory/pretrain_state/`; a
  rerun with the same arguments continues after the last saved epoch (and
  more epochs extend a finished-but-shorter pretraining kept there)."""
  start = time.perf_counter()
  pretrain = dataclasses.replace(
      pretrain, batch_size=min(pretrain.batch_size, len(dataset.train_labels)))
  log(f'pretraining the {arch.name} extractor on {dataset.name} '
      f'({len(np.unique(dataset.train_labels))} classes, {pretrain.epochs} '
      f'epochs, augment={pretrain.augment})')
  checkpoints = checkpoint.EpochCheckpointer(
      os.path.join(directory, 'pretrain_state'))
  def on_epoch(epoch, loss):
    log(f'  pretrain epoch {epoch}/{pretrain.epochs} | loss {loss:.4f} | '
        f'{time.perf_counter() - start:.0f}s')
  variables, accuracy, wall_time = pretrain_lib.pretrain(
      arch, dataset, pretrain, seed, on_epoch, checkpoints, should_stop)
  meta = {'arch': arch.name, 'dataset': dataset.name, 'data': dataset.label,
          'classes': np.unique(dataset.train_labels).tolist(),
          'epochs': pretrain.epochs, 'augment': pretrain.augment,
          'crop_padding': pretrain.crop_padding,
          'conv_backward': pretrain.conv_backward, 'seed': seed,
          'test_accuracy': accuracy, 'wall_time_s': wall_time,
          'data_fingerprint': dataset.fingerprint(),
          'provenance': machine.provenance()}
  fp = extractors.save_extractor(directory, arch, variables, meta)
  log(f'saved extractor {fp} to {directory} (test accuracy '
      f'{100 * accuracy:.1f}%)')
  return extractors.load_extractor(directory, arch)


def class_subset(dataset: data_lib.Dataset, num_classes: int,
                 seed: int) -> data_lib.Dataset:
  """The first `num_classes` classes of a seeded permutation (Figure 4)."""
  total = dataset.num_classes
  if not 1 <= num_classes <= total:
    raise ValueError(f'the class count must be in 1..{total} for '
                     f'{dataset.name}, got {num_classes}')
  if num_classes == total:
    return dataset
  order = class_order_lib.class_order(seed, total, 'seeded')
  return dataset.subset(np.sort(order[:num_classes]))


def get_extractor(config: config_lib.RunConfig, directory: str,
                  cifar10: data_lib.Dataset,
                  should_stop: interrupts.StopCheck | None = None):
  """Loads the extractor in `directory`, or makes one there: pretrained on
  `config.extractor_classes` CIFAR-10 classes, or (0 classes) randomly
  initialised."""
  arch = config.arch
  if _has_extractor(directory):
    variables, meta = extractors.load_extractor(directory, arch)
    log(f'using extractor {meta["fingerprint"]} from {directory}')
    return variables, meta
  if config.extractor_classes == 0:
    variables = model_init.init_classifier(arch, jax.random.key(0))
    extractors.save_extractor(directory, arch, variables,
                              {'arch': arch.name, 'classes': [],
                               'pretrained': False})
    return extractors.load_extractor(directory, arch)
  subset = class_subset(cifar10, config.extractor_classes,
                        config.extractor_seed)
  return pretrain_extractor(arch, subset, directory, config.extractor,
                            config.extractor_seed, should_stop)
