"""What every experiment binary does: presets, the extractor, seeds, results.

The binaries in `experiments/` parse flags and call `run_continual` (or
`pretrain_extractor`); everything else lives here, so a user can drive the
same protocols from a notebook.
"""

import dataclasses
import json
import os
import sys
import time
from typing import Callable

import jax
import numpy as np

from plr_jax.io import checkpoint
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax.data import datasets as data_lib
from plr_jax.data import features as features_lib
from plr_jax.eval import mfid as mfid_lib
from plr_jax.train import pretrain as pretrain_lib
from plr_jax.io import progress as progress_lib
from plr_jax.eval import results as results_lib
from plr_jax.train import sharding


@dataclasses.dataclass(frozen=True)
class Preset:
  """Run lengths and sizes: the paper's, or a tiny one for tests and laptops."""
  name: str
  iters_per_task: int
  batch_size: int
  replay_size: int
  pretrain_epochs: int
  buffer_size: int
  mfid_samples: int
  reference_epochs: int
  chunk_size: int
  shrink: bool  # shrink the networks (same number of levels)


PRESETS = {
    'paper': Preset('paper', iters_per_task=5000, batch_size=256,
                    replay_size=256, pretrain_epochs=100, buffer_size=512,
                    mfid_samples=10_000, reference_epochs=20, chunk_size=500,
                    shrink=False),
    'tiny': Preset('tiny', iters_per_task=20, batch_size=32, replay_size=32,
                   pretrain_epochs=1, buffer_size=64, mfid_samples=256,
                   reference_epochs=1, chunk_size=10, shrink=True),
}


def get_preset(name: str) -> Preset:
  try:
    return PRESETS[name]
  except KeyError:
    raise ValueError(f'unknown preset {name!r}; choose one of '
                     f'{", ".join(sorted(PRESETS))}') from None


def shrink(arch: arch_lib.ArchConfig) -> arch_lib.ArchConfig:
  """A small network with the same image size, levels and classes."""
  return dataclasses.replace(
      arch, conv_channels=(4,) * len(arch.conv_channels),
      hidden=(24,) * arch.num_levels, z_dim=4)


def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


# Matmul precisions for --precision: JAX's coarse levels (on NVIDIA GPUs
# 'bfloat16' is Precision.DEFAULT, which XLA runs as TF32 for float32
# operands; on TPUs a single bfloat16 pass) and its exact dot algorithms
# ('BF16_BF16_F32': bfloat16 operands, float32 accumulation, where the
# backend has it). benchmarks/precision_probe.py shows what each one does on a
# backend.
PRECISIONS = ('float32', 'tensorfloat32', 'bfloat16') + tuple(
    p.name for p in jax.lax.DotAlgorithmPreset if p.name != 'DEFAULT')


def check_precision(name: str) -> None:
  """ValueError unless `name` is one of `PRECISIONS`."""
  if name not in PRECISIONS:
    raise ValueError(f'--precision must be float32, tensorfloat32, bfloat16 '
                     f'or a jax.lax.DotAlgorithmPreset name, got {name!r}')


def set_precision(name: str) -> None:
  """Sets JAX's default matmul precision; ValueError for an unknown name."""
  check_precision(name)
  jax.config.update('jax_default_matmul_precision', name)


def check_workdir(workdir: str) -> None:
  """Creates `workdir` and proves it writable, before any work."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write_probe.{os.getpid()}')
    with open(probe, 'w') as fh:
      fh.write('ok')
    os.remove(probe)
  except OSError as e:
    raise ValueError(f'workdir {workdir} is not writable: '
                     f'{e.strerror or e}') from None


def pretrain_extractor(arch: arch_lib.ArchConfig, dataset: data_lib.Dataset,
                       directory: str, epochs: int, seed: int,
                       augment: bool = True, batch_size: int = 256,
                       crop_padding: str = 'symmetric'):
  """Pretrains on `dataset`, saves the extractor, returns (variables, meta).

  The state is saved after every epoch in `directory/pretrain_state/`; a
  rerun with the same arguments continues after the last saved epoch (and
  more `epochs` extend a finished-but-shorter pretraining kept there)."""
  config = pretrain_lib.PretrainConfig(epochs=epochs, augment=augment,
                                       batch_size=min(batch_size,
                                                      len(dataset.train_labels)),
                                       crop_padding=crop_padding)
  start = time.perf_counter()
  log(f'pretraining the {arch.name} extractor on {dataset.name} '
      f'({len(np.unique(dataset.train_labels))} classes, {epochs} epochs, '
      f'augment={augment})')
  checkpoints = checkpoint.EpochCheckpointer(
      os.path.join(directory, 'pretrain_state'))
  def on_epoch(epoch, loss):
    log(f'  pretrain epoch {epoch}/{epochs} | loss {loss:.4f} | '
        f'{time.perf_counter() - start:.0f}s')
  variables, accuracy, wall_time = pretrain_lib.pretrain(
      arch, dataset, config, seed, on_epoch, checkpoints)
  meta = {'arch': arch.name, 'dataset': dataset.name, 'data': dataset.label,
          'classes': np.unique(dataset.train_labels).tolist(),
          'epochs': epochs, 'augment': augment, 'crop_padding': crop_padding,
          'seed': seed, 'test_accuracy': accuracy, 'wall_time_s': wall_time}
  fp = checkpoint.save_extractor(directory, arch, variables, meta)
  log(f'saved extractor {fp} to {directory} (test accuracy '
      f'{100 * accuracy:.1f}%)')
  return checkpoint.load_extractor(directory, arch)


def class_subset(dataset: data_lib.Dataset, num_classes: int,
                 seed: int) -> data_lib.Dataset:
  """The first `num_classes` classes of a seeded permutation (Figure 4)."""
  total = dataset.num_classes
  if not 1 <= num_classes <= total:
    raise ValueError(f'--num_classes must be in 1..{total} for '
                     f'{dataset.name}, got {num_classes}')
  if num_classes == total:
    return dataset
  order = continual.class_order(seed, total, 'seeded')
  return dataset.subset(np.sort(order[:num_classes]))


def get_extractor(arch: arch_lib.ArchConfig, directory: str,
                  data_dir: str | None, epochs: int, seed: int):
  """Loads the extractor in `directory`, or pretrains one on CIFAR-10 there."""
  if os.path.isfile(os.path.join(directory, 'meta.json')):
    variables, meta = checkpoint.load_extractor(directory, arch)
    log(f'using extractor {meta["fingerprint"]} from {directory}')
    return variables, meta
  cifar10 = data_lib.load('cifar10', data_dir)
  return pretrain_extractor(arch, cifar10, directory, epochs, seed)


def run_continual(experiment: str, arch: arch_lib.ArchConfig, strategy,
                  dataset: data_lib.Dataset, extractor, extractor_meta: dict,
                  num_tasks: int, preset: Preset, seeds, workdir: str, *,
                  iters_per_task: int | None = None, replay: str = 'generative',
                  compute_mfid: bool = True, data_label: str | None = None,
                  inputs: str = 'features',
                  extractor_trainable_until: int | None = None,
                  recon_levels: str = 'all', replay_targets: str = 'soft',
                  standardise_images: bool = False,
                  vmap_seeds: bool = True,
                  mesh=None, checkpoint_every: int = 0,
                  checkpoint_min_secs: float = 0.0,
                  task_phases: bool | None = None, scan_unroll: int = 1,
                  class_order_rule: str = 'authors',
                  name: str | None = None,
                  flags: dict | None = None) -> dict:
  """Runs a class-incremental protocol for every seed and writes the results.

  With `inputs="features"` the frozen `extractor` turns the images into
  cached level-0 features; with `"images"` the classifier's own extractor is
  trained on the images (frozen after `extractor_trainable_until`, if set)
  and `extractor` may be None. With `vmap_seeds` the seeds run as one
  vmapped program; `mesh` spreads every batch over its devices. Each group
  of seeds checkpoints into WORKDIR/checkpoints/ at task boundaries and every
  `checkpoint_every` iterations (at most once per `checkpoint_min_secs`);
  running again with the same workdir resumes
  where it stopped (finished groups are not run again). `task_phases` and
  `scan_unroll` choose how the task loop compiles (see `ContinualConfig`);
  `class_order_rule` how the classes split into tasks (`continual.class_order`).
  With images as inputs, `standardise_images` standardises them per channel
  (otherwise raw pixels in [0, 1], as the reference's Fashion-MNIST).
  `recon_levels` and `replay_targets`: see `steps.make_plr_step`.
  `name` labels the run in the tables (default: the strategy's name).

  Returns:
    The `results.json` record.
  """
  config = continual.ContinualConfig(
      arch=arch, strategy=tuple(strategy), num_tasks=num_tasks,
      iters_per_task=iters_per_task or preset.iters_per_task,
      batch_size=preset.batch_size, replay_size=preset.replay_size,
      chunk_size=preset.chunk_size, replay=replay,
      buffer_size=preset.buffer_size, inputs=inputs,
      extractor_trainable_until=extractor_trainable_until,
      recon_levels=recon_levels, replay_targets=replay_targets,
      standardise_images=standardise_images, task_phases=task_phases,
      scan_unroll=scan_unroll, class_order_rule=class_order_rule,
      dataset=dataset.name)
  sharding.check_divisible(mesh, batch_size=config.batch_size,
                           replay_size=config.replay_size)
  if inputs == 'images':
    mean, std = dataset.channel_stats()
    if not standardise_images:
      mean, std = np.zeros_like(mean), np.ones_like(std)
    train = data_lib.normalise(dataset.train_images, mean, std)
    test = data_lib.normalise(dataset.test_images, mean, std)
    compute_mfid = False  # the extractor moves: no fixed feature space
  else:
    train, test = features_lib.cached_features(
        arch, extractor, extractor_meta['fingerprint'], dataset, workdir)
  train = (train, dataset.train_labels)
  test = (test, dataset.test_labels)
  groups = [seeds] if vmap_seeds and len(seeds) > 1 else [[s] for s in seeds]
  progress = progress_lib.Progress(num_tasks, config.iters_per_task,
                                   len(groups))
  reference = None
  per_seed = []
  for group in groups:
    names = ','.join(str(s) for s in group)
    label = f'[seed{"s" if len(group) > 1 else ""} {names}]'
    group_dir = os.path.join(workdir, 'checkpoints',
                             'seeds_' + names.replace(',', '_'))
    done_path = os.path.join(group_dir, 'records.json')
    if os.path.isfile(done_path):
      with open(done_path) as fh:
        per_seed.extend(json.load(fh))
      log(f'{label} finished in an earlier run: using {done_path}')
      progress.skip(num_tasks * config.iters_per_task)
      continue
    if compute_mfid and replay == 'generative' and reference is None:
      log(f'training the mFID reference classifier '
          f'({preset.reference_epochs} epochs, all classes)')
      reference = mfid_lib.train_reference(arch, *train, seed=0,
                                           epochs=preset.reference_epochs,
                                           batch_size=preset.batch_size)
    progress.start_run(label)
    checkpoints = checkpoint.RunCheckpointer(group_dir, checkpoint_every,
                                             checkpoint_min_secs)

    def on_resume(task, done, label=label, group_dir=group_dir):
      log(f'{label} resuming from task {task}, iteration {done} '
          f'(checkpoint in {group_dir})')
      progress.skip((task - 1) * config.iters_per_task + done,
                    whole_run=False)

    def on_evaluated(task, rows, group=group):
      progress.evaluated(task, rows, group)
    start = time.perf_counter()
    results = continual.run_seeds(config, train, test, group,
                                  batched=len(group) > 1, on_chunk=progress,
                                  mesh=mesh, checkpoints=checkpoints,
                                  on_resume=on_resume,
                                  on_evaluated=on_evaluated)
    # Seeds of a vmapped group share its wall time: each gets an equal part.
    elapsed = (time.perf_counter() - start) / len(group)
    records = []
    for seed, result in zip(group, results):
      record = {'seed': seed, 'class_order': result.class_order.tolist(),
                'accuracy_matrix': result.accuracy.tolist(),
                'average_accuracy': result.average_accuracy,
                'final_losses': {k: float(v[-1])
                                 for k, v in result.losses[-1].items()}}
      if reference is not None:
        record['mfid'] = mfid_lib.mfid(
            arch, reference, result.state.generator.params, test[0],
            jax.random.fold_in(jax.random.key(seed), 0xF1D),
            preset.mfid_samples)
      record['wall_time_s'] = elapsed
      log(f'[seed {seed}] average accuracy '
          f'{100 * result.average_accuracy:.2f}%'
          + (f', mFID {record["mfid"]:.1f}' if 'mfid' in record else ''))
      records.append(record)
    checkpoint.write_json_atomic(done_path, records)
    per_seed.extend(records)
  run_config = {**(flags or {}), 'arch': dataclasses.asdict(arch),
                'strategy': list(strategy), 'num_tasks': num_tasks,
                'preset': dataclasses.asdict(preset),
                'iters_per_task': config.iters_per_task, 'replay': replay,
                'inputs': inputs,
                'extractor_trainable_until': extractor_trainable_until,
                'recon_levels': recon_levels,
                'replay_targets': replay_targets,
                'standardise_images': standardise_images,
                'class_order_rule': class_order_rule,
                'vmapped_seeds': len(groups) == 1 and len(seeds) > 1,
                'devices': 1 if mesh is None else int(mesh.devices.size)}
  record = results_lib.summarise(
      experiment, run_config, arch, strategy, seeds, per_seed,
      data_label or dataset.label,
      extra={'extractor': {k: v for k, v in (extractor_meta or {}).items()
                           if k != 'wall_time_s'} or extractor_meta,
             'dataset': dataset.name}, name=name)
  if extractor_meta and 'wall_time_s' in extractor_meta:
    record['timing']['extractor_wall_time_s'] = extractor_meta['wall_time_s']
  results_lib.write(workdir, record)
  log(f'{record["strategy_name"]}: {100 * record["average_accuracy_mean"]:.2f}'
      f'% +- {100 * record["average_accuracy_sem"]:.2f}% over '
      f'{len(seeds)} seed(s); wrote {os.path.join(workdir, "results.json")}')
  return record


def main_guard(main: Callable[[], None]) -> None:
  """Runs `main`; bad input (ValueError) becomes one line and exit 2, a
  diverged run (non-finite loss) one line and exit 1."""
  try:
    main()
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except continual.NonFiniteLossError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
