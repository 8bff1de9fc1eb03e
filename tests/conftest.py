"""Shared fixtures: tiny architectures and parameters.

Compilation dominates the tests' time (tiny programs, compiled once or
twice each), so the test processes, and the binaries they start (they
inherit these variables), compile faster:
- one persistent XLA compilation cache, so a program that many tests compile
  is compiled once per machine (the cache holds the executable XLA would
  build again);
- XLA's CPU backend without LLVM's expensive optimisation passes
  (`--xla_backend_optimization_level=0`), which cut test_continual's CPU
  time by about 40% on 2 cores (2m04s to 1m16s, 2026-12-02). Every
  comparison in the tests is between runs made under the same flags.
"""

import os
import tempfile

os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(
    tempfile.gettempdir(), f'plr_jax_tests_xla_cache_{os.getuid()}'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
FAST_COMPILE_FLAGS = ('--xla_backend_optimization_level=0 '
                      '--xla_llvm_disable_expensive_passes=true')
if 'xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' '
                             + FAST_COMPILE_FLAGS).strip()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
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
