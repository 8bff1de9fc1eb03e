"""Flags shared by the experiment binaries, and their validation.

Everything is checked before any work starts; a bad value ends the program
with one line on stderr and exit code 2 (`experiment.main_guard`).
"""

import json
import os
import sys

from absl import flags

from plr_jax.io import checkpoint
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax.data import datasets as data
from plr_jax import experiment
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib

flags.DEFINE_string('workdir', None, 'Where checkpoints, feature caches and '
                    'results go. Required.')
flags.DEFINE_string('data_dir', None, 'Directory with the standard dataset '
                    'files (cifar-10-batches-py/, cifar-100-python/, the '
                    'Fashion-MNIST IDX .gz files). Fashion-MNIST is also '
                    'found in /usr/share/datasets/fashion-mnist; '
                    'tensorflow-datasets is tried last.')
flags.DEFINE_list('seeds', ['0', '1', '2'], 'Comma-separated integer seeds.')
flags.DEFINE_integer('iters_per_task', None, "Iterations per task (default: "
                     "the preset's).")
flags.DEFINE_string('preset', 'paper', '"paper" (the paper\'s sizes and '
                    'lengths) or "tiny" (small networks, a few iterations).')
flags.DEFINE_string('data_label', 'auto', 'What the data is, for the results: '
                    'auto (from the files), exact, jpeg or fake.')

flags.DEFINE_integer('checkpoint_every', 1000, 'Checkpoint every this many '
                     'iterations within a task (0: only at task ends), at '
                     'most once per --checkpoint_min_secs; rerunning with '
                     'the same --workdir resumes.')
flags.DEFINE_float('checkpoint_min_secs', 60.0, 'Skip a mid-task checkpoint '
                   'when the last one is more recent than this (seconds); '
                   'task ends are always checkpointed.')
flags.DEFINE_bool('vmap_seeds', True, 'Run all seeds as one vmapped program '
                  '(false: one after another).')
flags.DEFINE_bool('data_parallel', True, 'With more than one device, shard '
                  'every batch over all of them (jax.sharding mesh).')
flags.DEFINE_string('precision', 'float32', 'Matmul precision: float32 '
                    '(exact), tensorfloat32, bfloat16 or a '
                    'jax.lax.DotAlgorithmPreset name such as BF16_BF16_F32 '
                    '(faster on GPUs/TPUs; see benchmarks/RESULTS.md for the '
                    'measured effect).')
flags.DEFINE_string('task_phases', 'auto', 'auto, true or false: compile '
                    'one program per task phase (task 1 without replay; '
                    'replaying; after a freeze) instead of one that '
                    'branches on the task at run time. auto: on CPU and '
                    'GPU, where it was measured faster. Results agree to '
                    'float tolerance.')
flags.DEFINE_integer('scan_unroll', 1, 'Iterations per step of the scanned '
                     'task loop (lax.scan unroll). Results agree to float '
                     'tolerance.')
flags.DEFINE_string('class_order', 'authors', 'How the classes split into '
                    'tasks: authors (the reference code\'s rule: labels '
                    'remapped by np.random.seed(seed); '
                    'np.random.permutation(classes), Fashion-MNIST in '
                    'dataset order for seeds below 10), seeded (a '
                    'permutation drawn with JAX from each seed) or identity '
                    '(dataset order for every seed).')
flags.DEFINE_string('coordinator_address', None, 'Multi-host runs: '
                    'jax.distributed coordinator host:port.')
flags.DEFINE_integer('num_processes', None, 'Multi-host runs: process count.')
flags.DEFINE_integer('process_id', None, 'Multi-host runs: this process.')

FLAGS = flags.FLAGS

def workdir() -> str:
  if not FLAGS.workdir:
    raise ValueError('--workdir is required')
  experiment.check_workdir(FLAGS.workdir)
  return FLAGS.workdir


def seeds() -> list[int]:
  if not FLAGS.seeds:
    raise ValueError('--seeds is empty; give integers like --seeds=0,1,2')
  try:
    return [int(s) for s in FLAGS.seeds]
  except ValueError:
    raise ValueError(f'--seeds must be integers, got '
                     f'{",".join(FLAGS.seeds)!r}') from None


# Presets a binary adds for itself (fashion_mnist: "authors").
BINARY_PRESETS: dict[str, experiment.Preset] = {}


def preset() -> experiment.Preset:
  if FLAGS.preset in BINARY_PRESETS:
    return BINARY_PRESETS[FLAGS.preset]
  try:
    return experiment.get_preset(FLAGS.preset)
  except ValueError:
    names = sorted(set(experiment.PRESETS) | set(BINARY_PRESETS))
    raise ValueError(f'unknown preset {FLAGS.preset!r}; choose one of '
                     f'{", ".join(names)}') from None


def iters_per_task() -> int | None:
  if FLAGS.iters_per_task is not None and FLAGS.iters_per_task < 1:
    raise ValueError(f'--iters_per_task must be positive, got '
                     f'{FLAGS.iters_per_task}')
  return FLAGS.iters_per_task


def data_label() -> str | None:
  allowed = ('auto', 'exact', 'jpeg', 'fake')
  if FLAGS.data_label not in allowed:
    raise ValueError(f'--data_label must be one of {", ".join(allowed)}, '
                     f'got {FLAGS.data_label!r}')
  return None if FLAGS.data_label == 'auto' else FLAGS.data_label


def arch_preset(name: str, allowed: tuple[str, ...]) -> arch_lib.ArchConfig:
  if name not in allowed:
    raise ValueError(f'unknown arch {name!r}; choose one of '
                     f'{", ".join(allowed)}')
  chosen = arch_lib.get_arch(name)
  return experiment.shrink(chosen) if preset().shrink else chosen


def strategy(text: str, arch_config: arch_lib.ArchConfig):
  try:
    parsed = strategy_lib.parse_strategy(text, None)
  except ValueError as e:
    if 'needs the number of levels' not in str(e):
      raise
    parsed = strategy_lib.internal_replay(arch_config.num_levels)
  strategy_lib.check_levels(parsed, arch_config.num_levels, arch_config.name)
  return parsed


# Flags that do not change what a run computes: a rerun may change them.
NOT_CONFIG = ('workdir', 'data_dir', 'extractor_dir', 'checkpoint_every',
              'checkpoint_min_secs', 'task_phases', 'scan_unroll',
              'coordinator_address', 'num_processes', 'process_id')


def claim_workdir(work: str) -> None:
  """Refuses a workdir that holds a run with other flags, else records ours.

  Resuming must never mix two configurations in one results.json.
  """
  if FLAGS.checkpoint_every < 0:
    raise ValueError(f'--checkpoint_every must be >= 0, got '
                     f'{FLAGS.checkpoint_every}')
  if FLAGS.checkpoint_min_secs < 0:
    raise ValueError(f'--checkpoint_min_secs must be >= 0, got '
                     f'{FLAGS.checkpoint_min_secs}')
  run_options()  # validates --scan_unroll, --task_phases, --class_order
  ours = {k: v for k, v in flag_values().items() if k not in NOT_CONFIG}
  ours = json.loads(json.dumps(ours))  # lists and tuples alike
  path = os.path.join(work, 'run_flags.json')
  if os.path.isfile(path):
    with open(path) as fh:
      theirs = json.load(fh)
    # A flag added since that run started counts as its default there.
    theirs = {**{k: v for k, v in ours.items()
                 if k in FLAGS and v == FLAGS[k].default}, **theirs}
    differ = sorted(k for k in set(ours) | set(theirs)
                    if ours.get(k) != theirs.get(k))
    if differ:
      shown = ', '.join(f'--{k}={theirs.get(k)} there, {ours.get(k)} now'
                        for k in differ[:3])
      raise ValueError(f'workdir {work} holds a run with other flags ({shown}'
                       f'); use another --workdir or the same flags')
    return
  checkpoint.write_json_atomic(path, ours)


def runtime():
  """Sets up devices from the flags; returns the data-parallel mesh or None.

  Call after the other flags are validated and before any computation.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from plr_jax.train import sharding  # pylint: disable=g-import-not-at-top
  experiment.set_precision(FLAGS.precision)
  sharding.initialize_distributed(FLAGS.coordinator_address,
                                  FLAGS.num_processes, FLAGS.process_id)
  if FLAGS.data_parallel and jax.device_count() > 1:
    return sharding.data_mesh()
  return None


def run_options() -> dict:
  """`run_continual`'s arguments from --task_phases, --scan_unroll (how the
  task loop compiles) and --class_order (how the classes split into
  tasks)."""
  if FLAGS.scan_unroll < 1:
    raise ValueError(f'--scan_unroll must be positive, got '
                     f'{FLAGS.scan_unroll}')
  continual.check_class_order_rule(FLAGS.class_order, '--class_order')
  return {'task_phases': continual.parse_task_phases(FLAGS.task_phases),
          'scan_unroll': FLAGS.scan_unroll,
          'class_order_rule': FLAGS.class_order}


def extractor_dir(flag_value: str | None, work: str) -> str:
  return flag_value or os.path.join(work, 'extractor')


def flag_values() -> dict:
  """The flags of this program, for results.json."""
  values = {}
  for module, module_flags in FLAGS.flags_by_module_dict().items():
    if 'experiments' in module or module == sys.argv[0]:
      values.update({f.name: f.value for f in module_flags})
  return values


def define_cifar_flags(default_strategy_help: str) -> None:
  """The flags of the CIFAR protocols (Tables 1 and 2)."""
  flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
  flags.DEFINE_string('strategy', 'ir', default_strategy_help)
  flags.DEFINE_string('extractor_dir', None, 'Pretrained extractor checkpoint '
                      '(default WORKDIR/extractor; pretrained there on '
                      'CIFAR-10 if absent).')
  flags.DEFINE_integer('pretrain_epochs', None,
                       "Default: the preset's (100).")
  define_recon_levels_flag()


def define_recon_levels_flag() -> None:
  flags.DEFINE_string('recon_levels', 'all', 'Levels the generator '
                      'reconstructs: "all" (every level for current and '
                      'replayed data: paper eq. 2, the reference\'s '
                      '--latent), "only_last_layer" (current data level 0 '
                      'only, replayed data every level: the reference\'s '
                      '--only-last-layer), "used" (the levels the strategy '
                      'replays at) or "classifier" (level 0 only; replayed '
                      'hidden levels from the previous classifier). See '
                      'README notes.')
  flags.DEFINE_string('replay_targets', 'auto', 'How replayed samples are '
                      'labelled: soft (distillation of the previous '
                      'classifier, the reference\'s --distill), hard (its '
                      'argmax, the reference\'s default) or auto (the '
                      'protocol\'s: see --help of each binary).')


def recon_levels(chosen_strategy) -> str:
  """--recon_levels, validated."""
  try:
    steps.generator_recon_levels(chosen_strategy, FLAGS.recon_levels)
  except ValueError as e:
    raise ValueError(f'--{e}') from None
  return FLAGS.recon_levels


def replay_targets(auto: str) -> str:
  """--replay_targets, with "auto" resolved to `auto`."""
  value = FLAGS.replay_targets
  if value == 'auto':
    return auto
  if value not in ('soft', 'hard'):
    raise ValueError(f'--replay_targets must be soft, hard or auto, got '
                     f'{value!r}')
  return value


def run_cifar(experiment_name: str, dataset_name: str, num_tasks: int, *,
              replay: str, compute_mfid: bool) -> None:
  """Validates the flags, gets the extractor and runs a CIFAR protocol."""
  arch = arch_config = arch_preset(FLAGS.arch, ('arch1', 'arch2'))
  chosen = strategy(FLAGS.strategy, arch)
  targets = replay_targets('soft')  # the reference's PLR runs: --distill
  recon_levels(chosen)
  run_seeds, run_preset = seeds(), preset()
  iters, label = iters_per_task(), data_label()
  work = workdir()
  claim_workdir(work)
  mesh = runtime()
  dataset = data.load(dataset_name, FLAGS.data_dir)
  extractor, meta = experiment.get_extractor(
      arch, extractor_dir(FLAGS.extractor_dir, work), FLAGS.data_dir,
      FLAGS.pretrain_epochs or run_preset.pretrain_epochs, seed=0)
  if dataset.num_classes != arch.num_classes:
    # One logit per class of the benchmark (10 for split CIFAR-10).
    arch_config = arch_lib.with_classes(arch, dataset.num_classes)
  experiment.run_continual(
      experiment_name, arch_config, chosen, dataset, extractor, meta,
      num_tasks=num_tasks, preset=run_preset, seeds=run_seeds, workdir=work,
      iters_per_task=iters, replay=replay, compute_mfid=compute_mfid,
      data_label=label, recon_levels=FLAGS.recon_levels,
      replay_targets=targets,
      vmap_seeds=FLAGS.vmap_seeds, mesh=mesh,
      checkpoint_every=FLAGS.checkpoint_every,
      checkpoint_min_secs=FLAGS.checkpoint_min_secs, **run_options(),
      flags=flag_values())
