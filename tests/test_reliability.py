"""Checkpoint and resume, the NaN guard, refusing a mixed workdir, and
bit-identical reruns (issue 5)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest

from plr_jax.io import checkpoint
from plr_jax.train import continual
from tests import fake_data
from tests import test_continual

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Interrupt(Exception):
  pass


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  params, train, test = test_continual._data()  # pylint: disable=protected-access
  config = test_continual.CONFIG
  whole = continual.run_seeds(
      config, train, test, [0, 1], classifier_params=params,
      checkpoints=checkpoint.RunCheckpointer(str(tmp_path / 'a'), every=20))

  def stop_mid_task_2(task, done):
    if task == 2 and done == 40:
      raise _Interrupt()
  directory = str(tmp_path / 'b')
  with pytest.raises(_Interrupt):
    continual.run_seeds(config, train, test, [0, 1], classifier_params=params,
                        checkpoints=checkpoint.RunCheckpointer(directory, 20),
                        on_chunk=stop_mid_task_2)
  latest = json.load(open(os.path.join(directory, 'latest.json')))
  assert (latest["task"], latest["done"]) == (2, 20)
  resumed_from = []
  again = continual.run_seeds(
      config, train, test, [0, 1], classifier_params=params,
      checkpoints=checkpoint.RunCheckpointer(directory, 20),
      on_resume=lambda t, d: resumed_from.append((t, d)))
  assert resumed_from == [(2, 20)]
  for a, b in zip(whole, again):
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    for x, y in zip(a.losses, b.losses):
      chex.assert_trees_all_equal(x, y)
    chex.assert_trees_all_equal(a.state.classifier, b.state.classifier)
    chex.assert_trees_all_equal(a.state.generator, b.state.generator)
    chex.assert_trees_all_equal(a.state.prev_generator,
                                b.state.prev_generator)


def test_non_finite_loss_stops_with_task_and_iteration(tmp_path):
  params, (x, y), test = test_continual._data()  # pylint: disable=protected-access
  config = test_continual.CONFIG
  order = continual.class_order(0, config.arch.num_classes)
  task = continual.task_of_class(order, config.num_tasks)[y]
  x = np.where((task == 1)[:, None], np.nan, x)  # task 2's data is broken
  directory = str(tmp_path / 'nan')
  with pytest.raises(continual.NonFiniteLossError,
                     match=r'became nan at task 2, iteration 1 \(seed 0\); .*kept in'):
    continual.run_seeds(config, (x, y), test, [0], classifier_params=params,
                        checkpoints=checkpoint.RunCheckpointer(directory, 20))
  # The last good checkpoint (end of task 1) is still there.
  latest = json.load(open(os.path.join(directory, 'latest.json')))
  assert (latest['task'], latest['done']) == (2, 0)


def _command(workdir, data_dir, *extra):
  return [sys.executable, '-m', 'experiments.split_cifar10',
          f'--workdir={workdir}', f'--data_dir={data_dir}', '--preset=tiny',
          '--seeds=0', '--iters_per_task=200', '--checkpoint_every=20',
          '--checkpoint_min_secs=0',
          '--strategy=0.5,0.5', '--data_label=fake', *extra]


def _env():
  return {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'}


def _results_without_timing(workdir):
  with open(os.path.join(workdir, 'results.json')) as fh:
    record = json.load(fh)
  record.pop('timing')
  return record


def test_sigkill_mid_task_then_resume_gives_identical_results(tmp_path):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  workdir = str(tmp_path / 'run')
  # Uninterrupted. The run below, half of which comes from another process,
  # must reproduce it bit for bit: reruns are deterministic (timing aside).
  subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                 check=True, capture_output=True, timeout=600)
  records = [_results_without_timing(workdir)]
  shutil.move(workdir, str(tmp_path / 'first'))
  # Killed with SIGKILL in the middle of task 2, then the same command again.
  proc = subprocess.Popen(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  latest = os.path.join(workdir, 'checkpoints', 'seeds_0', 'latest.json')
  deadline = time.time() + 600
  while time.time() < deadline and proc.poll() is None:
    try:
      with open(latest) as fh:
        where = json.load(fh)
      if where['task'] == 2 and where['done'] >= 40:
        break
    except (OSError, ValueError):
      pass
    time.sleep(0.01)
  assert proc.poll() is None, 'the run ended before it could be killed'
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  resumed = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'resuming from task 2, iteration' in resumed.stderr
  assert _results_without_timing(workdir) == records[0]
  # A finished run is not run again; other flags are refused.
  rerun = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
  assert 'finished in an earlier run' in rerun.stderr
  # A workdir from before a flag existed resumes when the flag is at its
  # default.
  flags_path = os.path.join(workdir, 'run_flags.json')
  with open(flags_path) as fh:
    recorded = json.load(fh)
  assert recorded.pop('class_order') == 'authors'
  with open(flags_path, 'w') as fh:
    json.dump(recorded, fh)
  older = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
  assert 'finished in an earlier run' in older.stderr, older.stderr[-2000:]
  other = subprocess.run(
      _command(workdir, data_dir, '--strategy=ir'), cwd=ROOT, env=_env(),
      capture_output=True, text=True, timeout=600)
  assert other.returncode == 2
  lines = other.stderr.strip().splitlines()
  assert len(lines) == 1 and 'holds a run with other flags' in lines[0]
  assert '--strategy=0.5,0.5 there, ir now' in lines[0]


def test_extractor_of_another_architecture_is_refused(tmp_path):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  fake_data.write_fashion_mnist(data_dir)
  made = subprocess.run(
      [sys.executable, '-m', 'experiments.pretrain',
       f'--workdir={tmp_path / "ext"}', f'--data_dir={data_dir}',
       '--preset=tiny', '--arch=fmnist', '--dataset=fashion_mnist'],
      cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
  assert made.returncode == 0, made.stderr[-2000:]
  proc = subprocess.run(
      _command(str(tmp_path / 'w'), data_dir,
               f'--extractor_dir={tmp_path / "ext"}'),
      cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and 'made for another architecture' in lines[0], (
      proc.stderr)


def test_mid_task_checkpoints_wait_for_the_minimum_interval(tmp_path):
  now = [0.0]
  checkpoints = checkpoint.RunCheckpointer(str(tmp_path), every=10,
                                           min_interval_s=60,
                                           clock=lambda: now[0])
  now[0] = 5.0
  assert not checkpoints.due(10)  # 5 s after the start: too soon
  now[0] = 61.0
  assert checkpoints.due(10) and not checkpoints.due(15)
  state = continual.init_state(test_continual.CONFIG, jax.random.key(0))
  checkpoints.save(state, task=1, done=10, arrays={})
  now[0] = 70.0
  assert not checkpoints.due(20)  # 9 s after the save
  now[0] = 121.0
  assert checkpoints.due(20)
  assert checkpoint.RunCheckpointer(str(tmp_path), every=10).due(10)
  assert not checkpoint.RunCheckpointer(str(tmp_path)).due(10)


def test_pretraining_resumes_after_the_last_epoch(tmp_path):
  """Three epochs in one go equal one epoch, then a rerun asked for three
  (the checkpoint after epoch 1 is continued, not restarted)."""
  from plr_jax.models import arch as arch_lib
  from plr_jax.data import datasets as data_lib
  from plr_jax.train import pretrain
  fake_data.write_cifar10(tmp_path, per_class_train=10, per_class_test=2)
  dataset = data_lib.load('cifar10', str(tmp_path))
  arch = arch_lib.ArchConfig(
      'tiny32', image_shape=(32, 32, 3), conv_channels=(4, 4),
      conv_strides=(2, 2), conv_batch_norm=True, conv_last_relu=False,
      hidden=(8,), num_classes=10, z_dim=2)
  config = pretrain.PretrainConfig(epochs=3, batch_size=25)
  whole, accuracy, _ = pretrain.pretrain(
      arch, dataset, config, seed=0,
      checkpoints=checkpoint.EpochCheckpointer(str(tmp_path / 'a')))
  epochs = []
  checkpoints = checkpoint.EpochCheckpointer(str(tmp_path / 'b'))
  pretrain.pretrain(arch, dataset, pretrain.PretrainConfig(
      epochs=1, batch_size=25), seed=0, checkpoints=checkpoints)
  resumed, resumed_accuracy, _ = pretrain.pretrain(
      arch, dataset, config, seed=0, checkpoints=checkpoints,
      on_epoch=lambda e, loss: epochs.append(e))
  assert epochs == [2, 3]
  chex.assert_trees_all_equal(whole, resumed)
  assert accuracy == resumed_accuracy
  # Another seed (or data, or hyper-parameter) is refused, not mixed in.
  with pytest.raises(checkpoint.CheckpointError,
                     match='holds another pretraining'):
    pretrain.pretrain(arch, dataset, config, seed=1, checkpoints=checkpoints)
  with pytest.raises(checkpoint.CheckpointError, match='past the 2 epochs'):
    pretrain.pretrain(arch, dataset, pretrain.PretrainConfig(
        epochs=2, batch_size=25), seed=0, checkpoints=checkpoints)
