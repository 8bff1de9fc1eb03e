"""How good and how well-matched a frozen extractor is on a dataset: batch
norm's running statistics against the activations the data produces, and a
linear probe of its features (docs/experiments.md, Table 1 diagnosis)."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib


def batch_norm_agreement(arch: arch_lib.ArchConfig, variables,
                         images: np.ndarray) -> list[dict]:
  """Per batch-norm layer of the extractor, how the batch statistics of
  `images` (normalised as a run normalises them) compare with the layer's
  running statistics: `mean_shift` (|batch mean - running mean| in running
  standard deviations, median and max over channels) and `var_ratio`
  (batch variance / running variance: median, min, max). Near 0 and 1 when
  the data is what the extractor was trained on, in the same units."""
  _, captured = classifier_lib.Classifier(arch).apply(
      variables, jnp.asarray(images, jnp.float32),
      method=classifier_lib.Classifier.extract, capture_intermediates=True,
      mutable=['intermediates'])
  outputs = flax.traverse_util.flatten_dict(captured['intermediates'])
  stats = flax.traverse_util.flatten_dict(variables.get('batch_stats', {}))
  rows = []
  for i in range(1, len(arch.conv_channels) + 1):
    mean_key = ('extractor', f'bn_{i}', 'mean')
    if mean_key not in stats:
      continue
    running_mean = np.asarray(stats[mean_key])
    running_var = np.asarray(stats[('extractor', f'bn_{i}', 'var')])
    # The convolution's output is the batch norm's input.
    x = np.asarray(outputs[('extractor', f'conv_{i}', '__call__')][0])
    x = x.reshape(-1, x.shape[-1])
    shift = np.abs(x.mean(0) - running_mean) / np.sqrt(running_var)
    ratio = x.var(0) / running_var
    rows.append({'layer': i,
                 'mean_shift': [float(np.median(shift)), float(shift.max())],
                 'var_ratio': [float(np.median(ratio)), float(ratio.min()),
                               float(ratio.max())]})
  return rows


def linear_probe(train: tuple[np.ndarray, np.ndarray],
                 test: tuple[np.ndarray, np.ndarray], num_classes: int,
                 steps: int = 300, learning_rate: float = 1e-2,
                 l2: float = 1e-4) -> dict:
  """Softmax regression on standardised features (statistics of `train`),
  full-batch Adam from zeros (deterministic): its train and test accuracy."""
  x, y = np.asarray(train[0], np.float32), jnp.asarray(train[1])
  mean, std = x.mean(0), x.std(0) + 1e-6
  x = jnp.asarray((x - mean) / std)
  x_test = jnp.asarray((np.asarray(test[0], np.float32) - mean) / std)
  params = {'w': jnp.zeros((x.shape[1], num_classes)),
            'b': jnp.zeros(num_classes)}
  tx = optax.adam(learning_rate)

  def loss(p):
    logits = x @ p['w'] + p['b']
    return (optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            + l2 * jnp.sum(p['w'] ** 2))

  @jax.jit
  def fit(p):
    def step(carry, _):
      p, state = carry
      updates, state = tx.update(jax.grad(loss)(p), state, p)
      return (optax.apply_updates(p, updates), state), None
    return jax.lax.scan(step, (p, tx.init(p)), None, length=steps)[0][0]

  params = fit(params)

  def accuracy(features, labels):
    logits = features @ params['w'] + params['b']
    return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(labels)))

  return {'train_accuracy': accuracy(x, y),
          'test_accuracy': accuracy(x_test, test[1]), 'steps': steps}
