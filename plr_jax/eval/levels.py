"""Per-level statistics of a PLR generator against its classifier.

What tells whether replay at level n can work: how large the classifier's
features at each level are (the reconstruction targets), how well the
generator reconstructs them, whether its samples at level n carry their
class (the classifier, entered at level n, names the class the sample was
drawn for), and whether a sample's hidden levels agree with what the
classifier computes from the same sample's level 0. `experiments.diagnose`
prints these after every task of a run.
"""

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import generator as generator_lib
from plr_jax.train import losses

Classifier = classifier_lib.Classifier
Generator = generator_lib.Generator


def level_statistics(arch: arch_lib.ArchConfig, classifier_params,
                     generator_params, features: jax.Array, labels: jax.Array,
                     class_mask: jax.Array, key: jax.Array,
                     num_samples: int = 1000) -> dict:
  """Statistics per level of real and generated features.

  Args:
    arch: the architecture.
    classifier_params, generator_params: the networks.
    features: level-0 features of real examples [B, D_0] (the extractor's
      output for image inputs).
    labels: their classes [B].
    class_mask: bool [classes]: the classes to sample (e.g. those seen so
      far); accuracies are argmaxes among them.
    key: PRNG key for the VAE's noise and the samples.
    num_samples: generated examples.

  Returns:
    `{"levels": [per level n: {"target_ms", "recon_ms", "recon_mse",
    "sample_ms", "sample_accuracy", "sample_vs_classifier_mse"}],
    "latent": ..., "real_accuracy": ...}`, floats: `*_ms` are mean squares
    over units and rows, `recon_mse` the mean squared error of the
    reconstructions of real rows (twice the loss's term for the level),
    `sample_accuracy` the fraction of samples the classifier entered at
    level n assigns to the class they were drawn for, and
    `sample_vs_classifier_mse` (n >= 1) the mean squared difference
    between a sample's level n and the classifier's level n of the same
    sample's level 0. `latent` is the generator's latent term on the real
    rows (per example, divided by the input size as in the loss).
  """
  classifier, generator = Classifier(arch), Generator(arch)
  recon_key, sample_key = jax.random.split(key)
  cvars, gvars = {'params': classifier_params}, {'params': generator_params}
  logits, targets = classifier.apply(cvars, features,
                                     method=Classifier.levels)
  mean, logvar, z, recons = generator.apply(gvars, features, recon_key)
  latent = jnp.mean(losses.latent(
      z, mean, logvar, generator_params['prior_mean'][labels],
      generator_params['prior_logvar'][labels])) / arch.input_size
  classes, samples = generator.apply(gvars, sample_key, class_mask,
                                     num_samples, method=Generator.sample)
  _, implied = classifier.apply(cvars, samples[0], method=Classifier.levels)

  def accuracy(level_logits, wanted):
    masked = jnp.where(class_mask, level_logits, -jnp.inf)
    return jnp.mean(jnp.argmax(masked, -1) == wanted)

  def mean_square(x):
    return jnp.mean(jnp.square(x))

  levels = []
  for n in range(arch.num_levels):
    entry = {
        'target_ms': mean_square(targets[n]),
        'recon_ms': mean_square(recons[n]),
        'recon_mse': mean_square(recons[n] - targets[n]),
        'sample_ms': mean_square(samples[n]),
        'sample_accuracy': accuracy(
            classifier.apply(cvars, samples[n], n,
                             method=Classifier.classify_from), classes),
    }
    if n:
      entry['sample_vs_classifier_mse'] = mean_square(samples[n] - implied[n])
    levels.append(entry)
  out = {'levels': levels, 'latent': latent,
         'real_accuracy': accuracy(logits, labels)}
  return jax.tree.map(lambda v: float(np.asarray(v)), out)


def format_table(stats: dict) -> str:
  """`level_statistics` as a small text table, one row per level."""
  cols = ('target_ms', 'recon_ms', 'recon_mse', 'sample_ms',
          'sample_accuracy', 'sample_vs_classifier_mse')
  lines = ['level ' + ' '.join(f'{c:>{len(c)}}' for c in cols)]
  for n, entry in enumerate(stats['levels']):
    cells = [f'{entry[c]:{len(c)}.4g}' if c in entry else f'{"-":>{len(c)}}'
             for c in cols]
    lines.append(f'{n:>5} ' + ' '.join(cells))
  lines.append(f'latent term {stats["latent"]:.4g}; accuracy on the real '
               f'rows {stats["real_accuracy"]:.3f}')
  return '\n'.join(lines)
