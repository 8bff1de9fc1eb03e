r"""Why does replay fail? Per-level statistics of a Fashion-MNIST PLR run.

  python -m experiments.diagnose --setup=ir_frozen --strategy=0.2,0.3,0.5 \
      --recon_levels=all --seed=0 --max_tasks=2 --out=diag.json

Runs one seed of `experiments.fashion_mnist`'s configuration (the same
flags) and after every task prints, per level, the mean square of the
classifier's features (the generator's targets), of their reconstructions
and of generated samples, the reconstruction error, whether samples at each
level carry their class, how far a sample's hidden levels are from the
classifier's levels of its own level 0 (`plr_jax.eval.levels`), and the last
iterations' loss terms. Nothing is checkpointed; --out gets the numbers as
JSON (written atomically).
"""

import dataclasses

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.configs import fig5
from plr_jax.data import datasets as data_lib
from plr_jax.eval import levels as levels_lib
from plr_jax.io import atomic
from plr_jax.models import classifier as classifier_lib
from plr_jax.train import continual

common.define_method_flags()
flags.DEFINE_string('data_dir', None, 'Fashion-MNIST (default: '
                    '/usr/share/datasets/fashion-mnist).')
flags.DEFINE_string('setup', 'ir_frozen', 'ir_frozen or ir_naive.')
flags.DEFINE_string('strategy', 'ir', '"ir", fractions per level, or a '
                    'named rule (see split_cifar100 --help).')
flags.DEFINE_string('preset', 'paper', 'paper, authors or tiny.')
flags.DEFINE_string('arch', None, 'As for experiments.fashion_mnist.')
flags.DEFINE_integer('seed', 0, 'The run\'s seed.')
flags.DEFINE_integer('iters_per_task', None, 'Default: the preset\'s.')
flags.DEFINE_integer('max_tasks', 5, 'Stop after this many tasks.')
flags.DEFINE_integer('samples', 1000, 'Generated samples per report.')
flags.DEFINE_string('out', None, 'Write the reports here as JSON.')
flags.DEFINE_multi_string('set', [], 'Any other config field, as for the '
                          'run binaries.')
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS


class _Done(Exception):
  """Raised from the task-end callback to stop after --max_tasks."""


def _config():
  """The run the flags describe (a generative PLR setup of Figure 5)."""
  if FLAGS.setup not in ('ir_frozen', 'ir_naive'):
    raise common.FlagError('--setup must be ir_frozen or ir_naive (the '
                           'generative PLR setups)')
  config = common.preset_config(
      fig5.config, FLAGS.setup, FLAGS.strategy, (FLAGS.seed,), FLAGS.preset,
      arch=FLAGS.arch, replay_targets=common.replay_targets(),
      recon_levels=common.recon_levels())
  if FLAGS.iters_per_task:
    config = dataclasses.replace(config, continual=dataclasses.replace(
        config.continual, iters_per_task=FLAGS.iters_per_task))
  config = common.config_lib.override(config, FLAGS.set)
  if FLAGS.max_tasks < 1:
    raise common.FlagError('--max_tasks must be at least 1')
  return config


def _images(cont):
  """Fashion-MNIST's training and test images as the run takes them: raw
  pixels in [0, 1] unless the config standardises them."""
  dataset = data_lib.load('fashion_mnist', FLAGS.data_dir)
  mean, std = dataset.channel_stats()
  if not cont.standardise_images:
    mean, std = np.zeros_like(mean), np.ones_like(std)
  train = (data_lib.normalise(dataset.train_images, mean, std),
           dataset.train_labels)
  test = (data_lib.normalise(dataset.test_images, mean, std),
          dataset.test_labels)
  return train, test


def _statistics(arch, state, test, seen, task):
  """`levels.level_statistics` of the networks after `task`, on the test
  images of the classes `seen`."""
  rows = np.isin(test[1], seen)
  images, labels = test[0][rows], test[1][rows]
  params = jax.device_get(state.classifier.params)
  features = classifier_lib.Classifier(arch).apply(
      {'params': params}, jnp.asarray(images),
      method=classifier_lib.Classifier.extract)
  mask = np.zeros(arch.num_classes, bool)
  mask[seen] = True
  return levels_lib.level_statistics(
      arch, params, jax.device_get(state.generator.params), features,
      jnp.asarray(labels), jnp.asarray(mask),
      jax.random.fold_in(jax.random.key(FLAGS.seed), task), FLAGS.samples)


def main():
  config = _config()
  cont = config.continual
  arch = cont.arch
  train, test = _images(cont)
  order = continual.class_order(FLAGS.seed, arch.num_classes,
                                cont.class_order_rule, cont.dataset)
  per_task = arch.num_classes // cont.num_tasks
  reports = []
  last_losses = {}

  def on_metrics(task, done, metrics):
    del task, done
    last_losses.update({k: float(np.mean(v[-100:])) for k, v in
                        metrics.items()})

  def on_chunk(task, done):
    if done % 500 == 0:
      print(f'task {task} iteration {done}/{cont.iters_per_task}', flush=True)

  def on_task_end(task, state):
    seen = order[:task * per_task]
    stats = _statistics(arch, state, test, seen, task)
    stats['task'] = task
    stats['losses'] = dict(last_losses)
    reports.append(stats)
    print(f'after task {task} (classes {sorted(seen.tolist())}):')
    print(levels_lib.format_table(stats))
    print('losses (mean of the last iterations): ' + ', '.join(
        f'{k} {v:.4g}' for k, v in sorted(last_losses.items())), flush=True)
    if task >= FLAGS.max_tasks:
      raise _Done

  try:
    result, = continual.run_seeds(cont, train, test, [FLAGS.seed],
                                  batched=False, hooks=continual.Hooks(
                                      on_task_end=on_task_end,
                                      on_metrics=on_metrics,
                                      on_chunk=on_chunk))
  except _Done:
    result = None
  if result is not None:
    print(f'average accuracy {100 * result.average_accuracy:.2f}%')
  if FLAGS.out:
    atomic.write_json(FLAGS.out, {
        'config': common.config_lib.to_json(config), 'reports': reports})


if __name__ == '__main__':
  common.run_main(main)
