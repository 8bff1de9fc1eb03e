"""Checkpoint and resume, the NaN guard, refusing a mixed workdir, and
bit-identical reruns (issue 5)."""

import errno
import functools
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
from plr_jax.io import interrupts
from plr_jax.io import lock
from plr_jax.train import continual
from tests import binaries
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
  _assert_same_results(whole, again)
  # The training time counts the first process up to its checkpoint too.
  assert [r.processes for r in whole + again] == [1, 1, 2, 2]
  np.testing.assert_array_less(0.0, [r.seconds for r in whole + again])


def _assert_same_results(a_results, b_results):
  """Accuracies, per-iteration losses and final states bit for bit."""
  for a, b in zip(a_results, b_results):
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    for x, y in zip(a.losses, b.losses):
      chex.assert_trees_all_equal(x, y)
    chex.assert_trees_all_equal(a.state.classifier, b.state.classifier)
    chex.assert_trees_all_equal(a.state.generator, b.state.generator)
    chex.assert_trees_all_equal(a.state.prev_generator,
                                b.state.prev_generator)


def _stopped_run(directory, stop_at=(2, 30)):
  """The tiny run of two seeds stopped by `should_stop` once the chunk
  ending at `stop_at` (task, iteration) is done; checkpoints only at task
  ends and at the stop."""
  params, train, test = test_continual._data()  # pylint: disable=protected-access
  progress = []
  hooks = continual.Hooks(on_chunk=lambda t, d: progress.append((t, d)),
                          should_stop=lambda: progress[-1] == stop_at)
  with pytest.raises(interrupts.Interrupted) as stopped:
    continual.run_seeds(test_continual.CONFIG, train, test, [0, 1],
                        classifier_params=params, hooks=hooks,
                        checkpoints=checkpoint.RunCheckpointer(directory))
  return stopped.value


@functools.lru_cache(maxsize=None)
def _whole_run():
  params, train, test = test_continual._data()  # pylint: disable=protected-access
  return continual.run_seeds(test_continual.CONFIG, train, test, [0, 1],
                             classifier_params=params)


def _resume(directory):
  params, train, test = test_continual._data()  # pylint: disable=protected-access
  return continual.run_seeds(test_continual.CONFIG, train, test, [0, 1],
                             classifier_params=params,
                             checkpoints=checkpoint.RunCheckpointer(directory))


def test_a_stop_request_checkpoints_where_it_stops(tmp_path):
  directory = str(tmp_path / 'stop')
  stopped = _stopped_run(directory)
  assert stopped.where == 'task 2, iteration 30 (seeds 0,1)'
  assert str(stopped).endswith('rerun the same command to resume')
  latest = json.load(open(os.path.join(directory, 'latest.json')))
  assert (latest['task'], latest['done']) == (2, 30)
  _assert_same_results(_whole_run(), _resume(directory))


def test_a_damaged_checkpoint_is_named_in_one_line(tmp_path):
  """Detected, not skipped: only the latest checkpoint is kept (an ARCH1
  state is 240 MB), so there is no earlier one to fall back on."""
  good = str(tmp_path / 'good')
  _stopped_run(good)
  name = json.load(open(os.path.join(good, 'latest.json')))['name']

  def damaged(how):
    directory = str(tmp_path / how)
    shutil.copytree(good, directory)
    if how == 'missing_step':
      with open(os.path.join(directory, 'latest.json'), 'w') as fh:
        json.dump({'task': 2, 'done': 40, 'name': 'task002_iter0000040'}, fh)
    elif how == 'bad_pointer':
      with open(os.path.join(directory, 'latest.json'), 'w') as fh:
        fh.write('{"task": 2, "do')
    elif how == 'truncated_state':
      for root, _, files in os.walk(os.path.join(directory, name)):
        for f in files:
          path = os.path.join(root, f)
          os.truncate(path, os.path.getsize(path) // 2)
    elif how == 'truncated_arrays':
      path = os.path.join(directory, name + '.npz')
      os.truncate(path, os.path.getsize(path) // 2)
    return directory

  for how, message in [('missing_step', 'is missing'),
                       ('bad_pointer', 'is unreadable'),
                       ('truncated_state', 'is damaged'),
                       ('truncated_arrays', 'is damaged')]:
    directory = damaged(how)
    with pytest.raises(checkpoint.CheckpointError) as error:
      _resume(directory)
    text = str(error.value)
    assert message in text and directory in text, (how, text)
    assert '\n' not in text, (how, text)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path,
                                                         monkeypatch):
  directory = str(tmp_path / 'full')
  real_savez = checkpoint.np.savez
  calls = []

  def disk_full_on_the_third_save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return real_savez(*args, **kwargs)
  monkeypatch.setattr(checkpoint.np, 'savez', disk_full_on_the_third_save)
  with pytest.raises(checkpoint.CheckpointWriteError,
                     match='No space left on device.*the previous '
                     'checkpoint is kept'):
    _resume(directory)  # checkpoints after tasks 1, 2 and 3
  monkeypatch.undo()
  latest = json.load(open(os.path.join(directory, 'latest.json')))
  assert (latest['task'], latest['done']) == (3, 0)
  # Nothing of the failed write is left; the rerun resumes from task 3.
  assert sorted(os.listdir(directory)) == ['latest.json', latest['name'],
                                           latest['name'] + '.npz']
  _assert_same_results(_whole_run(), _resume(directory))


def test_one_process_per_workdir(tmp_path):
  workdir = str(tmp_path / 'busy')
  with lock.hold(workdir):
    with pytest.raises(lock.WorkdirBusyError,
                       match=f'in use by process {os.getpid()}'):
      with lock.hold(workdir):
        pass
  # A lock left by a killed process does not block.
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; sys.path.insert(0, sys.argv[1]);'
       'from plr_jax.io import lock; '
       'ctx = lock.hold(sys.argv[2]); ctx.__enter__(); print("held", '
       'flush=True); time.sleep(600)', ROOT, workdir],
      stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'held'
  with pytest.raises(lock.WorkdirBusyError, match=f'process {holder.pid}'):
    with lock.hold(workdir):
      pass
  # A binary on the busy workdir: one line naming the holder, exit 2.
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  proc = subprocess.run(_command(workdir, data_dir), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=600)
  _one_line_refusal(proc, f'is in use by process {holder.pid}')
  holder.kill()
  holder.wait()
  with lock.hold(workdir):
    pass


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
  record.pop('provenance')  # when, where and how it was started
  return record


# The soak's run: 2 tasks x 200 iterations, a checkpoint every 10.
_SOAK_ITERS = 200
_SOAK_FLAGS = (f'--iters_per_task={_SOAK_ITERS}', '--checkpoint_every=10')


def _done_so_far(latest):
  """Iterations the checkpoint pointer `latest` says are done (0 if none)."""
  try:
    with open(latest) as fh:
      where = json.load(fh)
  except (OSError, ValueError):
    return 0
  return (where['task'] - 1) * _SOAK_ITERS + where['done']


def test_soak_20_sigkills_then_resume_gives_identical_results(tmp_path):
  """A run killed with SIGKILL at 20 seeded-random moments and resumed after
  each ends with the results, and the logs, of an uninterrupted run. Five
  kills come at a random time after start-up begins (importing, loading,
  compiling); fifteen once the run has passed a random iteration (the
  targets at least 20 iterations apart, so that every one of these
  processes resumes and makes progress before it is killed)."""
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  workdir = str(tmp_path / 'run')
  command = _command(workdir, data_dir, *_SOAK_FLAGS)
  # Uninterrupted. Reruns are deterministic (timing aside).
  subprocess.run(command, cwd=ROOT, env=_env(), check=True,
                 capture_output=True, timeout=600)
  uninterrupted = _results_without_timing(workdir)
  assert len(uninterrupted['data_fingerprint']) == 16
  shutil.move(workdir, str(tmp_path / 'first'))
  latest = os.path.join(workdir, 'checkpoints', 'seeds_0', 'latest.json')
  rng = np.random.default_rng(20261202)
  # Stay clear of the run's end, so every process is killed while running.
  last, spacing, count = 2 * _SOAK_ITERS - 60, 20, 15
  targets = (np.sort(rng.integers(0, last - spacing * count, size=count))
             + spacing * np.arange(1, count + 1))
  moments = [('progress', int(t)) for t in targets]
  for position in np.sort(rng.choice(20, size=5, replace=False)):
    moments.insert(int(position), ('start-up', rng.uniform(0.2, 2.0)))
  resumed_and_progressed = 0
  for kind, when in moments:
    proc = subprocess.Popen(command, cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    if kind == 'start-up':
      time.sleep(when)
    else:
      start = _done_so_far(latest)
      had_checkpoint = start > 0
      # The previous process may have run past this target in the moments
      # before its kill (a fast machine makes many checkpoints in 20 ms), so
      # wait at least for this process's own first checkpoint: it has resumed.
      goal = max(when, start + 10)
      deadline = time.time() + 300
      while (proc.poll() is None and _done_so_far(latest) < goal
             and time.time() < deadline):
        time.sleep(0.002)
      time.sleep(rng.uniform(0.0, 0.02))
    assert proc.poll() is None, 'the run ended before it could be killed'
    os.kill(proc.pid, signal.SIGKILL)
    stderr = proc.communicate()[1]
    if kind == 'progress' and had_checkpoint:
      assert 'resuming from task' in stderr, stderr[-2000:]
      resumed_and_progressed += 1
    assert not os.path.exists(os.path.join(workdir, 'results.json'))
  assert resumed_and_progressed >= count - 1
  resumed = subprocess.run(command, cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'resuming from task' in resumed.stderr
  assert _results_without_timing(workdir) == uninterrupted
  # The CSV logs too: what a killed process wrote past its checkpoint was
  # dropped before the rerun wrote it again.
  for name in ('metrics.csv', 'accuracy.csv'):
    with open(os.path.join(workdir, 'logs', 'seed_0', name)) as fh:
      resumed_log = fh.read()
    with open(os.path.join(tmp_path, 'first', 'logs', 'seed_0', name)) as fh:
      assert resumed_log == fh.read(), name
  _check_finished_workdir(tmp_path, workdir, data_dir, _SOAK_FLAGS)


def _one_line_refusal(proc, message):
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], lines


def _snapshot(directory):
  """Every file under `directory` with its size and modification time."""
  out = {}
  for root, _, files in os.walk(directory):
    for f in files:
      stat = os.stat(os.path.join(root, f))
      out[os.path.join(root, f)] = (stat.st_size, stat.st_mtime_ns)
  return out


def _check_finished_workdir(tmp_path, workdir, data_dir, flags):
  """What a finished workdir accepts and refuses; a refusal changes
  nothing in it."""
  run = functools.partial(subprocess.run, cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
  # A finished run is not run again.
  rerun = run(_command(workdir, data_dir, *flags))
  assert 'finished in an earlier run' in rerun.stderr
  # A workdir from before a config field existed resumes when the field is
  # at its default.
  config_path = os.path.join(workdir, 'run_config.json')
  with open(config_path) as fh:
    recorded = json.load(fh)
  assert recorded['continual'].pop('targets_after_update') is True
  with open(config_path, 'w') as fh:
    json.dump(recorded, fh)
  older = run(_command(workdir, data_dir, *flags))
  assert 'finished in an earlier run' in older.stderr, older.stderr[-2000:]
  before = _snapshot(workdir)
  # Other images: refused, whatever their directory.
  other = str(tmp_path / 'other_data')
  fake_data.write_cifar10(other, per_class_train=10, per_class_test=4,
                          seed=5)
  refusals = [
      (_command(workdir, data_dir, *flags, '--strategy=ir'),
       'continual.strategy: [0.5, 0.5] there, [1.0, 0.0] now'),
      (_command(workdir, data_dir, *flags, '--seeds=0,1'),
       'holds a run of seeds 0, not 0,1'),
      (_command(workdir, other, *flags), 'holds a run on other cifar10 data'),
      (_command(workdir, data_dir, *flags, '--precision=fp16'),
       "got 'fp16'")]
  # One process each, forked from one interpreter (tests/binaries.py).
  results = binaries.run_commands([command for command, _ in refusals])
  for (_, message), proc in zip(refusals, results):
    _one_line_refusal(proc, message)
  assert _snapshot(workdir) == before


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


def _c100_command(workdir, data_dir):
  return [sys.executable, '-m', 'experiments.split_cifar100',
          f'--workdir={workdir}', f'--data_dir={data_dir}', '--preset=tiny',
          '--seeds=0', '--strategy=0.3,0.7', '--pretrain_epochs=20',
          '--checkpoint_every=10', '--set=loop.checkpoint_min_secs=0',
          '--set=data_label=fake', '--set=mfid.reference_epochs=400']


def _interrupt_when(command, trigger, signum):
  """Starts `command`, sends `signum` once a stderr line contains `trigger`;
  returns (exit code, stderr after the trigger)."""
  proc = subprocess.Popen(command, cwd=ROOT, env=_env(), text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  seen = []
  for line in proc.stderr:
    seen.append(line)
    if trigger in line:
      proc.send_signal(signum)
      break
  else:
    raise AssertionError(f'{trigger!r} never came: {"".join(seen)[-2000:]}')
  rest = proc.stderr.read()
  return proc.wait(timeout=600), rest


def test_sigint_and_sigterm_stop_cleanly_and_the_run_resumes(tmp_path):
  """A signal during pretraining, the mFID reference training, mid-task and
  during compilation: each stops at the next safe point with one line and
  128 + the signal's number; the run finished by the last rerun equals an
  uninterrupted one."""
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  fake_data.write_cifar100(data_dir, per_class_train=4, per_class_test=2)
  whole = str(tmp_path / 'whole')
  subprocess.run(_c100_command(whole, data_dir), cwd=ROOT, env=_env(),
                 check=True, capture_output=True, timeout=600)
  workdir = str(tmp_path / 'run')
  command = _c100_command(workdir, data_dir)
  moments = [('pretrain epoch 1/20', signal.SIGINT, 'the extractor pretraining'),
             ('training the mFID reference', signal.SIGTERM, 'the mFID reference'),
             ('task 2/10 iter', signal.SIGINT, 'task '),
             ('resuming from task', signal.SIGTERM, 'task ')]
  for trigger, signum, where in moments:
    code, rest = _interrupt_when(command, trigger, signum)
    assert code == 128 + signum, (trigger, rest[-2000:])
    lines = rest.strip().splitlines()
    assert lines[-1].startswith(f'interrupted at {where}'), (trigger, rest)
    assert lines[-1].endswith('rerun the same command to resume'), lines
    assert 'Traceback' not in rest and 'Fatal Python error' not in rest, rest
    assert not os.path.exists(os.path.join(workdir, 'results.json'))
  done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'resuming from task' in done.stderr
  assert _results_without_timing(workdir) == _results_without_timing(whole)
  # Its wall time covers the stopped processes' training, not the last's
  # alone (the mid-task stop and the one while resuming: 3 processes).
  timing = json.load(open(os.path.join(workdir, 'results.json')))['timing']
  assert timing['processes'] == 3 and timing['wall_time_complete'], timing
  assert timing['wall_time_s'] > timing['this_process_s'] > 0, timing
  assert 'over 3 processes (resumed)' in open(
      os.path.join(workdir, 'results.md')).read()


def test_library_inputs_are_checked_with_the_expected_value():
  from plr_jax.models import arch as arch_lib  # pylint: disable=g-import-not-at-top
  from plr_jax.models import classifier as classifier_lib  # pylint: disable=g-import-not-at-top
  from plr_jax.train import optim  # pylint: disable=g-import-not-at-top
  from plr_jax.train import steps  # pylint: disable=g-import-not-at-top
  tiny = arch_lib.PRESETS['tiny']
  model = classifier_lib.Classifier(tiny)
  variables = continual.init_classifier(tiny, jax.random.key(0))
  # 32 x 32 images into the tiny architecture (8 x 8 x 3).
  with pytest.raises(ValueError, match=r'tiny images must have shape '
                     r'\[batch, 8, 8, 3\], got \[2, 32, 32, 3\]'):
    model.apply(variables, np.zeros((2, 32, 32, 3), np.float32))
  with pytest.raises(ValueError, match='level-1 features must have shape'):
    model.apply(variables, np.zeros((2, 5), np.float32), 1,
                method=classifier_lib.Classifier.classify_from)
  params, (x, y), test = test_continual._data()  # pylint: disable=protected-access
  config = test_continual.CONFIG
  cases = [
      ((x[:, :-1], y), r'training level-0 features for tiny must have shape '
       rf'\[rows, {x.shape[1]}\], got \[{x.shape[0]}, {x.shape[1] - 1}\]'),
      ((x, y + tiny.num_classes), r'training labels must be in \[0, '
       rf'{tiny.num_classes}\) for tiny'),
      ((x, y[:-1]), 'one per row'),
      ((x, y.astype(np.float32)), 'labels must be integers'),
  ]
  for train, message in cases:
    with pytest.raises(ValueError, match=message):
      continual.run_seeds(config, train, test, [0], classifier_params=params)
  with pytest.raises(ValueError, match='3 entries but tiny has 2 levels'):
    steps.make_classifier_step(tiny, optim.adam(), (0.2, 0.3, 0.5), 8)


def test_a_resumed_run_compiles_nothing_new(tmp_path):
  """Restored arrays are placed like fresh ones, so the steps compiled for
  a run serve its resumed part too."""
  directory = str(tmp_path / 'stop')
  _stopped_run(directory)
  runner = continual.make_chunk_runner(test_continual.CONFIG, True)
  before = runner.loop._cache_size()  # pylint: disable=protected-access
  _resume(directory)
  assert runner.loop._cache_size() == before  # pylint: disable=protected-access


def test_a_checkpoint_without_a_time_count_marks_the_wall_time_incomplete():
  from plr_jax.eval import results as results_lib  # pylint: disable=g-import-not-at-top
  from plr_jax.train import run_progress  # pylint: disable=g-import-not-at-top
  # A checkpoint's arrays as code before the count wrote them.
  old = run_progress.RunProgress.unpack({'accuracy': np.zeros((1, 2, 2))},
                                        1, 2)
  assert np.isnan(old.seconds()) and old.processes == 2
  again = run_progress.RunProgress.unpack(old.pack(), 1, 2)
  assert np.isnan(again.seconds()) and again.processes == 3
  new = run_progress.RunProgress.unpack(
      run_progress.RunProgress(np.zeros((1, 2, 2)), [[]]).pack(), 1, 2)
  assert new.seconds() >= 0 and new.processes == 2
  seed = {'wall_time_s': 5.0, 'this_process_s': 5.0, 'processes': 2,
          'wall_time_complete': False}
  timing = results_lib._timing([seed, dict(seed, wall_time_complete=True)])  # pylint: disable=protected-access
  assert timing == {'wall_time_s_per_seed': [5.0, 5.0], 'wall_time_s': 10.0,
                    'this_process_s': 10.0, 'processes': 2,
                    'wall_time_complete': False}
  assert 'last of 2 processes only' in results_lib._processes(timing)  # pylint: disable=protected-access


def _fake_checkpoint(directory, task, done):
  name = f'task{task:03d}_iter{done:07d}'
  os.makedirs(os.path.join(directory, name))
  open(os.path.join(directory, name, 'state'), 'w').write('state')
  np.savez(os.path.join(directory, f'{name}.npz'), seconds=np.float64(1.0))
  json.dump({'task': task, 'done': done, 'name': name},
            open(os.path.join(directory, 'latest.json'), 'w'))


def test_the_first_task_store_takes_and_gives_only_what_matches(tmp_path):
  from plr_jax.io import first_task  # pylint: disable=g-import-not-at-top
  store = first_task.FirstTaskStore(str(tmp_path / 'store'))
  donor = str(tmp_path / 'donor' / 'checkpoints')
  _fake_checkpoint(donor, 2, 0)
  logs = tmp_path / 'donor' / 'logs' / 'seed_0'
  logs.mkdir(parents=True)
  (logs / 'metrics.csv').write_text('task 1 rows')
  mid = str(tmp_path / 'mid')
  _fake_checkpoint(mid, 2, 40)
  with pytest.raises(ValueError, match='not the end of task 1'):
    store.take([0], {'a': 1}, mid, str(tmp_path / 'none'), 'mid')
  assert not store.has([0])
  store.take([0], {'a': 1}, donor, str(tmp_path / 'donor' / 'logs'), 'donor')
  assert store.has([0]) and store.source([0]) == 'donor'
  # A take that raced another (it saw no snapshot, then found one when it
  # came to put its own): no error, the first snapshot stays.
  answers = iter([False])
  real_has = store.has
  store.has = lambda seeds: next(answers, None) or real_has(seeds)
  store.take([0], {'a': 1}, donor, str(tmp_path / 'donor' / 'logs'), 'late')
  store.has = real_has
  assert store.source([0]) == 'donor'
  assert os.listdir(tmp_path / 'store') == ['seeds_0']
  assert not store.has([0, 1])  # kept per group of seeds
  # Another identity, or a group with a checkpoint of its own: not taken.
  other = str(tmp_path / 'other')
  assert not store.adopt([0], {'a': 2}, other, str(tmp_path / 'o_logs'))
  assert not store.adopt([0], {'a': 1}, mid, str(tmp_path / 'm_logs'))
  assert json.load(open(os.path.join(mid, 'latest.json')))['done'] == 40
  assert store.adopt([0], {'a': 1}, other, str(tmp_path / 'o_logs'))
  latest = json.load(open(os.path.join(other, 'latest.json')))
  assert (latest['task'], latest['done']) == (2, 0)
  assert open(os.path.join(other, latest['name'], 'state')).read() == 'state'
  assert (tmp_path / 'o_logs' / 'seed_0' / 'metrics.csv').read_text() == (
      'task 1 rows')
  # A snapshot without its identity.json (a take cut short) is not one.
  os.remove(os.path.join(str(tmp_path / 'store'), 'seeds_0', 'identity.json'))
  assert not store.has([0])
  assert not store.adopt([0], {'a': 1}, str(tmp_path / 'third'),
                         str(tmp_path / 't_logs'))
