r"""Checks a frozen extractor against a dataset: batch norm's running
statistics against the activations the data produces (is the input what the
extractor was trained on?), and a linear probe of its features (how well do
they separate the classes, on training and test images?).

  python -m experiments.probe_extractor --data_dir=DATA \
      --extractor_dir=reported/extractors/arch1_cifar10_100ep --out=probe.json

Images are normalised as every run normalises them (the dataset's channel
mean and std). Prints a table and, with --out, writes it as JSON.
"""

from absl import flags

from experiments import common
from plr_jax.data import datasets
from plr_jax.eval import extractor_probe
from plr_jax.io import atomic
from plr_jax.io import extractors
from plr_jax.models import inference

flags.DEFINE_string('extractor_dir', None, 'The extractor to probe.')
flags.DEFINE_string('data_dir', None, 'Where the dataset files are.')
flags.DEFINE_string('dataset', 'cifar10', 'The dataset to probe it on.')
flags.DEFINE_integer('images', 1000, 'Training images for the batch-norm '
                     'statistics.')
flags.DEFINE_integer('steps', 300, "Full-batch Adam steps of the probe.")
flags.DEFINE_string('out', None, 'Write the results here as JSON.')
FLAGS = flags.FLAGS


def main():
  if not FLAGS.extractor_dir:
    raise common.FlagError('--extractor_dir is required')
  if FLAGS.images < 1 or FLAGS.steps < 1:
    raise common.FlagError('--images and --steps must be positive')
  try:
    arch, variables, meta = extractors.load_any_extractor(
        FLAGS.extractor_dir)
  except extractors.CheckpointError as e:
    raise common.FlagError(f'--extractor_dir: {e}') from None
  dataset = datasets.load(FLAGS.dataset, FLAGS.data_dir)
  mean, std = dataset.channel_stats()
  train = datasets.normalise(dataset.train_images, mean, std)
  test = datasets.normalise(dataset.test_images, mean, std)
  agreement = extractor_probe.batch_norm_agreement(
      arch, variables, train[:FLAGS.images])
  probe = extractor_probe.linear_probe(
      (inference.extract_features(arch, variables, train),
       dataset.train_labels),
      (inference.extract_features(arch, variables, test),
       dataset.test_labels),
      int(dataset.train_labels.max()) + 1, steps=FLAGS.steps)
  print(f'extractor {meta["fingerprint"]} ({meta.get("arch")}) on '
        f'{dataset.label} {dataset.name}')
  for row in agreement:
    print(f'batch norm {row["layer"]}: mean shift (running stds) median '
          f'{row["mean_shift"][0]:.3f} max {row["mean_shift"][1]:.3f}; '
          f'variance ratio median {row["var_ratio"][0]:.3f} range '
          f'{row["var_ratio"][1]:.2f}..{row["var_ratio"][2]:.2f}')
  print(f'linear probe ({probe["steps"]} steps): train '
        f'{100 * probe["train_accuracy"]:.1f}%, test '
        f'{100 * probe["test_accuracy"]:.1f}%')
  if FLAGS.out:
    atomic.write_json(FLAGS.out, {
        'extractor': meta['fingerprint'], 'arch': meta.get('arch'),
        'dataset': dataset.name, 'data': dataset.label,
        'batch_norm': agreement, 'linear_probe': probe})


if __name__ == '__main__':
  common.run_main(main)
