"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=8 by
test_sharding.py: a tiny run data-parallel over 8 CPU devices must match the
single-device run to float tolerance."""

import sys

import chex
import jax

from plr_jax.train import continual
from plr_jax.train import sharding
from tests import test_continual


def main():
  assert jax.device_count() == 8, jax.devices()
  params, train, test = test_continual._data()  # pylint: disable=protected-access
  for config in (test_continual.CONFIG,
                 continual.ContinualConfig(
                     arch=test_continual.CONFIG.arch, strategy=(0.3, 0.7),
                     num_tasks=2, iters_per_task=30, batch_size=16,
                     replay_size=16, learning_rate=3e-3, chunk_size=15,
                     replay='buffer', buffer_size=32)):
    mesh = sharding.data_mesh()
    single = continual.run(config, train, test, 0, classifier_params=params)
    spread = continual.run(config, train, test, 0, classifier_params=params,
                           mesh=mesh)
    leaf = jax.tree.leaves(spread.state.classifier.params)[0]
    assert len(leaf.sharding.device_set) == 8, leaf.sharding
    test_continual.assert_results_close(spread, single)
    # Seeds vmapped and data sharded at once.
    both = continual.run_seeds(config, train, test, [0, 1],
                               classifier_params=params, mesh=mesh)
    chex.assert_trees_all_close(both[0].state.classifier.params,
                                single.state.classifier.params,
                                rtol=1e-3, atol=1e-4)
  # Images, the extractor frozen after task 1: tasks 2-3 run on features
  # extracted once and replicated over the mesh (`train.frozen_inputs`).
  images = test_continual._tiny3_images()  # pylint: disable=protected-access
  config = continual.ContinualConfig(
      arch=test_continual.TINY3, strategy=(0.5, 0.3, 0.2), num_tasks=3,
      iters_per_task=10, batch_size=8, replay_size=8, learning_rate=3e-3,
      chunk_size=5, inputs='images', extractor_trainable_until=1,
      recon_levels='only_last_layer')
  single = continual.run(config, images, images, 0)
  spread = continual.run(config, images, images, 0, mesh=sharding.data_mesh())
  test_continual.assert_results_close(spread, single)
  print('sharded runs match')
  return 0


if __name__ == '__main__':
  sys.exit(main())
