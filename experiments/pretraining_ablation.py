r"""Figure 4: Internal Replay on split CIFAR-100 against the extractor's
pretraining (number of CIFAR-10 classes, augmentation on or off).

  python -m experiments.pretraining_ablation --workdir=/tmp/plr/fig4 \
      --data_dir=DATA --class_counts=0,2,4,6,8,10 --seeds=0,1,2

A class count of 0 means no pretraining (a randomly initialised, frozen
extractor). Each setting runs in WORKDIR/k<K>_aug<0|1>/; WORKDIR/results.json
and results.md collect them.
"""

import os

from absl import app
from absl import flags
from absl import logging
import jax

from experiments import common
from plr_jax.io import checkpoint
from plr_jax.train import continual
from plr_jax.data import datasets as data
from plr_jax import experiment
from plr_jax.eval import results

flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_list('class_counts', ['0', '2', '4', '6', '8', '10'],
                  'CIFAR-10 classes to pretrain on; 0: no pretraining.')
flags.DEFINE_list('augment', ['true', 'false'], 'Augmentation settings.')
flags.DEFINE_integer('pretrain_epochs', None, "Default: the preset's (100).")
FLAGS = flags.FLAGS


def _bools(values):
  table = {'true': True, '1': True, 'false': False, '0': False}
  try:
    return [table[v.lower()] for v in values]
  except KeyError:
    raise ValueError(f'--augment takes true/false, got {values}') from None


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  def run():
    arch = common.arch_preset(FLAGS.arch, ('arch1', 'arch2'))
    seeds, preset = common.seeds(), common.preset()
    iters, label = common.iters_per_task(), common.data_label()
    try:
      counts = [int(c) for c in FLAGS.class_counts]
    except ValueError:
      raise ValueError('--class_counts must be integers') from None
    augments = _bools(FLAGS.augment)
    workdir = common.workdir()
    common.claim_workdir(workdir)
    mesh = common.runtime()
    cifar10 = data.load('cifar10', FLAGS.data_dir)
    cifar100 = data.load('cifar100', FLAGS.data_dir)
    epochs = FLAGS.pretrain_epochs or preset.pretrain_epochs
    rows = []
    for count in counts:
      for augment in (augments if count else [False]):
        name = f'k{count}_aug{int(augment)}'
        subdir = os.path.join(workdir, name)
        experiment.check_workdir(subdir)
        ext_dir = os.path.join(subdir, 'extractor')
        if os.path.isfile(os.path.join(ext_dir, 'meta.json')):
          extractor, meta = checkpoint.load_extractor(ext_dir, arch)
        elif count == 0:
          variables = continual.init_classifier(arch, jax.random.key(0))
          checkpoint.save_extractor(ext_dir, arch, variables,
                                    {'arch': arch.name, 'classes': [],
                                     'pretrained': False})
          extractor, meta = checkpoint.load_extractor(ext_dir, arch)
        else:
          subset = experiment.class_subset(cifar10, count, seeds[0])
          extractor, meta = experiment.pretrain_extractor(
              arch, subset, ext_dir, epochs, seeds[0], augment=augment,
              batch_size=preset.batch_size)
        record = experiment.run_continual(
            'pretraining_ablation', arch,
            (1.0,) + (0.0,) * (arch.num_levels - 1), cifar100, extractor,
            meta, num_tasks=10, preset=preset, seeds=seeds, workdir=subdir,
            iters_per_task=iters, compute_mfid=False, data_label=label,
            vmap_seeds=FLAGS.vmap_seeds, mesh=mesh,
            checkpoint_every=FLAGS.checkpoint_every,
            checkpoint_min_secs=FLAGS.checkpoint_min_secs,
            **common.run_options(), flags=common.flag_values())
        rows.append({'pretrain_classes': count, 'augment': augment,
                     'setting': name,
                     'extractor_test_accuracy': meta.get('test_accuracy'),
                     'accuracy_mean': record['average_accuracy_mean'],
                     'accuracy_sem': record['average_accuracy_sem'],
                     'data': record['data']})
    summary = {'experiment': 'pretraining_ablation', 'arch': arch.name,
               'seeds': seeds, 'rows': rows}
    checkpoint.write_json_atomic(os.path.join(workdir, 'results.json'),
                                 summary)
    lines = ['# Figure 4: IR on split CIFAR-100 against pretraining', '',
             '| CIFAR-10 classes | augment | IR accuracy | data |',
             '|---|---|---|---|']
    for r in rows:
      lines.append(f'| {r["pretrain_classes"]} | {r["augment"]} | '
                   f'{100 * r["accuracy_mean"]:.1f}% +- '
                   f'{100 * r["accuracy_sem"]:.1f}% | '
                   f'{results.DATA_LABELS.get(r["data"], r["data"])} |')
    results.write_text_atomic(os.path.join(workdir, 'results.md'),
                              '\n'.join(lines) + '\n')
  experiment.main_guard(run)


if __name__ == '__main__':
  app.run(main)
