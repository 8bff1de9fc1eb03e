"""Per-level diagnostics (`eval.levels`) and `experiments.diagnose`."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.eval import levels as levels_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import generator as generator_lib
from plr_jax.train import continual
from plr_jax.train import losses
from tests import fake_data
from tests.conftest import TINY3
from tests.test_experiments import _run


def _setup():
  arch = TINY3
  classifier = continual.init_classifier(arch, jax.random.key(0))['params']
  generator = continual.init_generator(arch, jax.random.key(1))
  features = jax.random.normal(jax.random.key(2), (32, arch.feature_dim))
  labels = jnp.arange(32) % 4
  mask = jnp.arange(arch.num_classes) < 4
  return arch, classifier, generator, features, labels, mask


def test_statistics_agree_with_the_features_and_the_loss():
  arch, classifier, generator, features, labels, mask = _setup()
  key = jax.random.key(3)
  stats = levels_lib.level_statistics(arch, classifier, generator, features,
                                      labels, mask, key, num_samples=64)
  assert len(stats['levels']) == arch.num_levels
  _, targets = classifier_lib.Classifier(arch).apply(
      {'params': classifier}, features,
      method=classifier_lib.Classifier.levels)
  for n, entry in enumerate(stats['levels']):
    np.testing.assert_allclose(entry['target_ms'],
                               float(jnp.mean(targets[n] ** 2)), rtol=1e-6)
    assert 0.0 <= entry['sample_accuracy'] <= 1.0
    assert ('sample_vs_classifier_mse' in entry) == (n > 0)
  # The same noise as the loss: half the per-level errors sum to eq. 2.
  recon_key, _ = jax.random.split(key)
  _, _, _, recons = generator_lib.Generator(arch).apply(
      {'params': generator}, features, recon_key)
  loss = float(jnp.mean(losses.reconstruction(recons, targets)))
  np.testing.assert_allclose(
      sum(0.5 * e['recon_mse'] for e in stats['levels']), loss, rtol=1e-5)


def test_samples_decoded_from_the_classifier_levels_are_consistent():
  """A generator whose hidden levels equal the classifier's of its level 0
  scores 0 on `sample_vs_classifier_mse`; the fresh one does not."""
  arch, classifier, generator, features, labels, mask = _setup()
  stats = levels_lib.level_statistics(arch, classifier, generator, features,
                                      labels, mask, jax.random.key(4))
  assert all(e['sample_vs_classifier_mse'] > 0
             for e in stats['levels'][1:])
  assert 'latent term' in levels_lib.format_table(stats)


def test_diagnose_binary_reports_every_task(tmp_path):
  root = tmp_path / 'data'
  fake_data.write_fashion_mnist(root, per_class_train=12, per_class_test=4)
  out = str(tmp_path / 'diag.json')
  proc = _run('diagnose', f'--data_dir={root}', '--preset=tiny',
              '--strategy=0.2,0.3,0.5', '--max_tasks=2', f'--out={out}')
  assert 'after task 2' in proc.stdout and 'after task 3' not in proc.stdout
  with open(out) as fh:
    record = json.load(fh)
  assert [r['task'] for r in record['reports']] == [1, 2]
  assert len(record['reports'][0]['levels']) == 3  # fmnist: 3 levels
  assert record['reports'][1]['losses']['generator/replay_recon'] > 0
  # Nothing else is written.
  assert set(os.listdir(tmp_path)) == {'data', 'diag.json'}
  # Bad input: tests/test_experiments.py's _BAD_INPUT.
