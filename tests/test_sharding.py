"""Data parallelism over 8 forced CPU devices matches one device."""

import os
import subprocess
import sys

import pytest

from plr_jax.train import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_over_8_cpu_devices_matches_single_device():
  flags = os.environ.get('XLA_FLAGS', '')
  env = dict(os.environ,
             XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, '-m', 'tests.sharded_check'],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'sharded runs match' in proc.stdout


def test_batches_must_split_over_the_mesh():
  class FakeMesh:  # only .devices.size is read
    class devices:  # pylint: disable=invalid-name
      size = 8
  with pytest.raises(ValueError, match='batch_size 12 does not split over 8'):
    sharding.check_divisible(FakeMesh(), batch_size=12)
  sharding.check_divisible(FakeMesh(), batch_size=16)
  sharding.check_divisible(None, batch_size=7)
