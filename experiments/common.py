"""What the experiment binaries share.

The flags every run takes (defined here when a binary asks for them, and
listed in that binary's `--help`: binaries call `define_*_flags()` and adopt
this module's key flags),
building the run's `RunConfig` from them (with `--set field=value` for any
other knob of the config), and the command-line rules: a bad value ends the
program with one line on stderr naming the flag and exit code 2, `--help`
prints the binary's own flags and exits 0.
"""

import dataclasses
import os
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging

from plr_jax import config as config_lib
from plr_jax import errors
from plr_jax import run as run_lib
from plr_jax.data import datasets
from plr_jax.data import download
from plr_jax.io import checkpoint
from plr_jax.io import interrupts
from plr_jax.train import continual

# SIGINT and SIGTERM set this flag while a binary runs (`run_main`); the
# binaries pass it to the library as `should_stop`, which stops at the next
# safe point with a checkpoint.
STOP = interrupts.StopFlag()


def define_io_flags() -> None:
  """--workdir, --data_dir, --seeds, --preset, --precision."""
  flags.DEFINE_string('workdir', None, 'Where checkpoints, feature caches and '
                      'results go; rerunning the same command there resumes. '
                      'Required.')
  flags.DEFINE_string('data_dir', None, 'Directory with the standard dataset '
                      'files (cifar-10-batches-py/, cifar-100-python/, the '
                      'Fashion-MNIST IDX .gz files). Fashion-MNIST is also '
                      'found in /usr/share/datasets/fashion-mnist; '
                      'tensorflow-datasets is tried last.')
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Comma-separated distinct '
                    'integer seeds.')
  flags.DEFINE_string('preset', 'paper', 'Sizes and lengths: paper (the '
                      "paper's) or tiny (small networks, a few iterations: "
                      'seconds on a CPU).')
  flags.DEFINE_bool('download', False, 'Fetch missing datasets into '
                    '--data_dir first: the official files, their published '
                    'checksums verified (plr_jax/data/download.py).')
  flags.DEFINE_string('precision', 'float32', 'Matmul precision: float32 '
                      '(exact), tensorfloat32, bfloat16 or a '
                      'jax.lax.DotAlgorithmPreset name such as BF16_BF16_F32 '
                      '(see the README for what each does on a backend).')


def define_run_flags() -> None:
  """The flags of every continual run: the above, lengths, class order,
  checkpoints, config overrides, devices."""
  define_io_flags()
  flags.DEFINE_integer('iters_per_task', None, "Iterations per task (default: "
                       "the preset's).")
  flags.DEFINE_string('class_order', 'authors', 'How the classes split into '
                      "tasks: authors (the reference code's rule: labels "
                      'remapped by np.random.seed(seed); '
                      'np.random.permutation(classes), Fashion-MNIST in '
                      'dataset order for seeds below 10), seeded (a '
                      'permutation drawn with JAX from each seed) or identity '
                      '(dataset order for every seed).')
  flags.DEFINE_integer('checkpoint_every', 1000, 'Checkpoint every this many '
                       'iterations within a task (0: only at task ends).')
  flags.DEFINE_multi_string('set', [], 'Any other field of the run config, '
                            'e.g. --set=continual.scan_unroll=4 '
                            '--set=loop.vmap_seeds=false --set=data_label=fake '
                            '(repeatable; see plr_jax/config.py).')
  flags.DEFINE_bool('data_parallel', True, 'With more than one device, shard '
                    'every batch over all of them.')
  flags.DEFINE_string('coordinator_address', None, 'Multi-host runs: '
                      'jax.distributed coordinator host:port.')
  flags.DEFINE_integer('num_processes', None, 'Multi-host runs: process count.')
  flags.DEFINE_integer('process_id', None, 'Multi-host runs: this process.')


FLAGS = flags.FLAGS


class FlagError(ValueError):
  """A bad flag value; the message names the flag."""


def define_method_flags(recon_levels: bool = True) -> None:
  """--replay_targets and (for generative replay) --recon_levels."""
  flags.DEFINE_string('replay_targets', 'auto', 'How replayed samples are '
                      'labelled: soft (distillation of the previous '
                      "classifier, the reference's --distill), hard (its "
                      "argmax, the reference's default) or auto (the "
                      "protocol's default).")
  if recon_levels:
    flags.DEFINE_string('recon_levels', 'auto', 'Levels the generator '
                        'reconstructs: all (every level for current and '
                        "replayed data: paper eq. 2, the reference's "
                        '--latent), only_last_layer (current data level 0 '
                        "only: the reference's --only-last-layer), used "
                        '(the levels the strategy replays at), classifier '
                        '(level 0 only; replayed hidden levels from the '
                        "previous classifier) or auto (the protocol's "
                        'default: all for CIFAR-100, as the authors\' main '
                        'scripts; only_last_layer for Fashion-MNIST networks '
                        'with hidden levels, see docs/deviations.md).')


def recon_levels() -> str | None:
  """--recon_levels; None for auto (the protocol's default)."""
  value = FLAGS.recon_levels
  return None if value == 'auto' else value  # Checked by ContinualConfig.


def preset_config(build: Callable[..., config_lib.RunConfig], *args,
                  **kwargs) -> config_lib.RunConfig:
  """`build(*args, **kwargs)` (a preset's config function), a bad argument
  (`errors.FieldError`) reported as the flag of the same name."""
  try:
    return build(*args, **kwargs)
  except errors.FieldError as e:
    raise FlagError(f'--{e.field}: {e}') from None


def define_extractor_flags() -> None:
  flags.DEFINE_string('extractor_dir', None, 'A pretrained extractor '
                      'checkpoint (default WORKDIR/extractor; pretrained '
                      'there on CIFAR-10 if absent).')
  flags.DEFINE_integer('pretrain_epochs', None, 'Epochs of an extractor '
                       "pretrained by the run (default: the preset's, 100).")


def seeds() -> tuple[int, ...]:
  if not FLAGS.seeds:
    raise FlagError('--seeds is empty; give integers like --seeds=0,1,2')
  try:
    values = tuple(int(s) for s in FLAGS.seeds)
  except ValueError:
    raise FlagError(f'--seeds must be integers, got '
                    f'{",".join(FLAGS.seeds)!r}') from None
  return values  # Distinct: checked by RunConfig (reported as --seeds).


def replay_targets() -> str | None:
  """--replay_targets; None for auto (the preset's choice)."""
  value = FLAGS.replay_targets
  return None if value == 'auto' else value  # Checked by ContinualConfig.


def finish(cfg: config_lib.RunConfig) -> config_lib.RunConfig:
  """The flags every run takes, applied to a preset's config, then --set;
  the result's `departures` say how it differs from the paper's."""
  base = cfg
  cont = cfg.continual
  changes = {'class_order': ('class_order_rule', FLAGS.class_order)}
  if FLAGS.iters_per_task is not None:
    changes['iters_per_task'] = ('iters_per_task', FLAGS.iters_per_task)
  for flag, (field, value) in changes.items():
    try:
      cont = dataclasses.replace(cont, **{field: value})
    except ValueError as e:
      raise FlagError(f'--{flag}: {e}') from None
  extractor = cfg.extractor
  if extractor is not None and getattr(FLAGS, 'pretrain_epochs', None):
    extractor = dataclasses.replace(extractor, epochs=FLAGS.pretrain_epochs)
  try:
    loop = dataclasses.replace(cfg.loop,
                               checkpoint_every=FLAGS.checkpoint_every)
  except ValueError as e:
    raise FlagError(f'--checkpoint_every: {e}') from None
  try:
    cfg = dataclasses.replace(cfg, continual=cont, extractor=extractor,
                              loop=loop, precision=FLAGS.precision)
  except ValueError as e:
    raise FlagError(f'--precision: {e}') from None
  try:
    cfg = config_lib.override(cfg, FLAGS.set)
  except ValueError as e:
    raise FlagError(f'--set: {e}') from None
  return cfg.replace(departures=departures(base, cfg))


# --set fields that change how a run executes or is labelled, not what it
# computes.
_DESCRIPTIVE_FIELDS = ('loop.', 'data_label', 'name', 'departures',
                       'extractor.conv_backward') + tuple(
                           f'continual.{f}'
                           for f in continual.ContinualConfig.LOOP_FIELDS)


def departures(base: config_lib.RunConfig,
               cfg: config_lib.RunConfig) -> tuple[str, ...]:
  """How `cfg` (the preset's `base` after the flags) departs from the
  paper's sizes and lengths, in words; () for a run comparable with it."""
  out = []
  cont = cfg.continual
  if FLAGS.preset == 'tiny':
    out.append(f'tiny preset (small networks, {cont.iters_per_task} '
               f'iterations per task, batch {cont.batch_size})')
  elif cont.iters_per_task != base.continual.iters_per_task:
    out.append(f'{cont.iters_per_task} iterations per task (the paper: '
               f'{base.continual.iters_per_task})')
  if (FLAGS.preset != 'tiny' and cfg.extractor and base.extractor
      and cfg.extractor.epochs != base.extractor.epochs):
    out.append(f'extractor pretrained {cfg.extractor.epochs} epochs (the '
               f'paper: {base.extractor.epochs})')
  for entry in FLAGS.set:
    if not entry.split('=', 1)[0].startswith(_DESCRIPTIVE_FIELDS):
      out.append(f'--set={entry}')
  return tuple(out)


def data_dir(*names: str) -> str | None:
  """--data_dir, after fetching the datasets `names` into it where
  --download asks for that."""
  if FLAGS.download:
    if not FLAGS.data_dir:
      raise FlagError('--download needs --data_dir (where to put the files)')
    for name in names:
      if name == 'fashion_mnist' and os.path.isfile(os.path.join(
          datasets.DEBIAN_FASHION_MNIST, 'train-images-idx3-ubyte.gz')):
        continue  # Debian's package is there
      download.download(name, FLAGS.data_dir,
                        log=lambda line: print(line, file=sys.stderr))
  return FLAGS.data_dir


def run_data_dir(cfg: config_lib.RunConfig) -> str | None:
  """`data_dir` for a run: its dataset, and CIFAR-10 when it may pretrain
  an extractor."""
  names = [cfg.continual.dataset]
  if cfg.extractor is not None and cfg.continual.dataset != 'cifar10':
    names.append('cifar10')
  return data_dir(*names)


def workdir() -> str:
  if not FLAGS.workdir:
    raise FlagError('--workdir is required')
  return FLAGS.workdir


def mesh():
  """Sets up devices from the flags; returns the data-parallel mesh or None."""
  import jax  # pylint: disable=g-import-not-at-top
  from plr_jax.train import sharding  # pylint: disable=g-import-not-at-top
  sharding.initialize_distributed(FLAGS.coordinator_address,
                                  FLAGS.num_processes, FLAGS.process_id)
  if FLAGS.data_parallel and jax.device_count() > 1:
    return sharding.data_mesh()
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with `--help` exiting 0 and bad flags exiting 2 in one
  line."""
  if any(a in ('-h', '--help', '-?', '--helpshort') for a in argv[1:]):
    usage = (sys.modules['__main__'].__doc__ or '').strip()
    print(f'{usage}\n\nflags:{FLAGS.main_module_help()}')
    sys.exit(0)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    hint = ''
    if isinstance(e, flags.UnrecognizedFlagError):
      hint = '; --help lists the flags this program takes'
    print(f'error: {e}{hint}', file=sys.stderr)
    sys.exit(2)


def run_main(main: Callable[..., None], positional=()) -> None:
  """`app.run` for a binary: flags parsed as above; `main` gets the
  positional arguments (`positional`: their names, or "*" for any number);
  bad input (ValueError) is one line and exit 2, a diverged run one line and
  exit 1; SIGINT or SIGTERM stop at the next safe point (checkpointed) with
  one line and exit 130 or 143."""
  def wrapped(argv):
    args = argv[1:]
    if positional != '*' and len(args) != len(positional):
      wanted = ' '.join(n.upper() for n in positional) or 'no arguments'
      print(f'error: expected {wanted}, got {" ".join(args) or "none"}',
            file=sys.stderr)
      sys.exit(2)
    logging.set_verbosity(logging.WARNING)  # orbax logs every read at INFO
    try:
      with interrupts.handle_signals(STOP):
        main(*args)
    except interrupts.Interrupted as e:
      print(str(e), file=sys.stderr)
      sys.exit(STOP.exit_code)
    except ValueError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
    except (continual.NonFiniteLossError, checkpoint.CheckpointWriteError,
            run_lib.WorkdirWriteError) as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(1)
  app.run(wrapped, flags_parser=_parse_flags)
