"""Shared fixtures: tiny architectures and parameters."""

import jax
import pytest

from plr_jax.models import arch as arch_lib
from plr_jax.train import continual

TINY = arch_lib.PRESETS['tiny']
# Three levels, to exercise the middle of the stack too.
TINY3 = arch_lib.ArchConfig(
    'tiny3', image_shape=(8, 8, 1), conv_channels=(4, 4), conv_strides=(2, 2),
    conv_batch_norm=False, conv_last_relu=True, hidden=(12, 10, 8),
    num_classes=6, z_dim=3)


@pytest.fixture(scope='session')
def tiny_variables():
  return continual.init_classifier(TINY, jax.random.key(0))


@pytest.fixture(scope='session')
def tiny_generator_params():
  return continual.init_generator(TINY, jax.random.key(1))
