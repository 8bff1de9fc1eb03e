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
                        hooks=continual.Hooks(on_chunk=stop_mid_task_2))
  latest = json.load(open(os.path.join(directory, 'latest.json')))
  assert (latest["task"], latest["done"]) == (2, 20)
  resumed_from = []
  again = continual.run_seeds(
      config, train, test, [0, 1], classifier_params=params,
      checkpoints=checkpoint.RunCheckpointer(directory, 20),
      hooks=continual.Hooks(
          on_resume=lambda t, d: resumed_from.append((t, d))))
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
          '--set=loop.checkpoint_min_secs=0',
          '--strategy=0.5,0.5', '--set=data_label=fake', *extra]


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
  # The CSV logs too: what the killed process wrote past its checkpoint was
  # dropped before the rerun wrote it again.
  for name in ('metrics.csv', 'accuracy.csv'):
    with open(os.path.join(workdir, 'logs', 'seed_0', name)) as fh:
      resumed_log = fh.read()
    with open(os.path.join(tmp_path, 'first', 'logs', 'seed_0', name)) as fh:
      assert resumed_log == fh.read(), name
  # A finished run is not run again; other flags are refused.
  rerun = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
  assert 'finished in an earlier run' in rerun.stderr
  # A workdir from before a config field existed resumes when the field is
  # at its default.
  config_path = os.path.join(workdir, 'run_config.json')
  with open(config_path) as fh:
    recorded = json.load(fh)
  assert recorded['continual'].pop('targets_after_update') is True
  with open(config_path, 'w') as fh:
    json.dump(recorded, fh)
  older = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
  assert 'finished in an earlier run' in older.stderr, older.stderr[-2000:]
  other = subprocess.run(
      _command(workdir, data_dir, '--strategy=ir'), cwd=ROOT, env=_env(),
      capture_output=True, text=True, timeout=600)
  assert other.returncode == 2
  lines = other.stderr.strip().splitlines()
  assert len(lines) == 1 and 'holds a run of another configuration' in lines[0]
  assert 'continual.strategy: [0.5, 0.5] there, [1.0, 0.0] now' in lines[0], lines


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


def _tensorboard_scalars(directory):
  """(tag, step, value) of every scalar in `directory`'s event files."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = []
  for name in sorted(os.listdir(directory)):
    if 'tfevents' not in name:
      continue
    with open(os.path.join(directory, name), 'rb') as fh:
      data = fh.read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack('<Q', data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 12 + length + 4
      for value in event.summary.value:
        out.append((value.tag, event.step, value.simple_value))
  return out


def test_metrics_log_of_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
  from plr_jax.io import logs  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  chunks = [(1, 0, {'a': rng.normal(size=(20, 2)), 'b': rng.normal(size=(20, 2))}),
            (1, 20, {'a': rng.normal(size=(20, 2)), 'b': rng.normal(size=(20, 2))}),
            (2, 0, {'a': rng.normal(size=(20, 2))})]
  whole = logs.MetricsLog(str(tmp_path / 'whole'), [3, 4], 40, every=10)
  for task, done, metrics in chunks:
    whole.chunk(task, done, metrics, batched=True)
    if (task, done) == (1, 20):
      whole.accuracy(1, np.array([[0.5, 0.0], [0.25, 0.0]]))
  whole.close()
  # A process that wrote all three chunks but checkpointed only after the
  # first; the rerun resumes there and writes chunks 2 and 3 again.
  resumed = logs.MetricsLog(str(tmp_path / 'resumed'), [3, 4], 40, every=10)
  for task, done, metrics in chunks:
    resumed.chunk(task, done, metrics, batched=True)
  resumed.close()
  rerun = logs.MetricsLog(str(tmp_path / 'resumed'), [3, 4], 40, every=10)
  rerun.resume(1, 20)
  for task, done, metrics in chunks[1:]:
    rerun.chunk(task, done, metrics, batched=True)
    if (task, done) == (1, 20):
      rerun.accuracy(1, np.array([[0.5, 0.0], [0.25, 0.0]]))
  rerun.close()
  for seed in (3, 4):
    for name in ('metrics.csv', 'accuracy.csv'):
      a = open(tmp_path / 'whole' / f'seed_{seed}' / name).read()
      b = open(tmp_path / 'resumed' / f'seed_{seed}' / name).read()
      assert a == b, name
  lines = open(tmp_path / 'whole' / 'seed_4' / 'metrics.csv').read().splitlines()
  assert lines[0] == 'step,task,iteration,name,value'
  # Means over blocks of 10 iterations; step 50 is task 2's iteration 10.
  step, task, iteration, name, value = lines[-2].split(',')
  assert (step, task, iteration, name) == ('50', '2', '10', 'a')
  assert float(value) == pytest.approx(chunks[2][2]['a'][:10, 1].mean())
  scalars = _tensorboard_scalars(str(tmp_path / 'whole' / 'seed_3'))
  assert ('accuracy/task_1', 40, 0.5) in scalars
  assert len([s for s in scalars if s[0] == 'a']) == 6
  # TensorBoard keeps the last event of a purged step range: the resumed
  # files hold the purge marker and the rewritten values.
  resumed_a = [s for s in _tensorboard_scalars(
      str(tmp_path / 'resumed' / 'seed_3')) if s[0] == 'a']
  assert sorted({s[1] for s in resumed_a}) == [10, 20, 30, 40, 50, 60]
