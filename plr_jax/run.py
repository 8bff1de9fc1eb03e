"""The library's entry point: `run(config, workdir)` runs a whole protocol.

    from plr_jax import config, run
    record = run.run(my_config, 'runs/a1_03_07', data_dir='DATA')

It validates what it can before writing anything, gets the extractor
(loads it, or pretrains one into `WORKDIR/extractor`), runs every seed
(vmapped in one program by default), checkpoints into `WORKDIR/checkpoints`, logs losses and accuracies as they
happen into `WORKDIR/logs/` (CSV and TensorBoard, `io.logs`) and writes
`WORKDIR/results.json` and `results.md`. Running it again on the
same workdir resumes; a workdir holding a run of another configuration is
refused. Progress lines go to stderr.
"""

import dataclasses
import json
import math
import os
import time

import jax
import numpy as np

from plr_jax import config as config_lib
from plr_jax import prepare
from plr_jax.data import datasets as data_lib
from plr_jax.data import features as features_lib
from plr_jax.eval import mfid as mfid_lib
from plr_jax.eval import results as results_lib
from plr_jax.io import atomic
from plr_jax.io import checkpoint
from plr_jax.io import first_task as first_task_lib
from plr_jax.io import interrupts
from plr_jax.io import lock
from plr_jax.io import machine
from plr_jax.io import workdir as workdir_lib
from plr_jax.io import logs as logs_lib
from plr_jax.io import progress as progress_lib
from plr_jax.train import continual
from plr_jax.train import replay_kinds
from plr_jax.train import sharding
from plr_jax.train import strategy as strategy_lib



class WorkdirWriteError(RuntimeError):
  """Writing in the workdir failed during the run (e.g. the disk is full)."""


def run(config: config_lib.RunConfig, workdir: str, *,
        data_dir: str | None = None, extractor_dir: str | None = None,
        mesh: jax.sharding.Mesh | None = None,
        should_stop: interrupts.StopCheck | None = None,
        first_task_dir: str | None = None) -> dict:
  """Runs `config` in `workdir` and returns its `results.json` record.

  Args:
    config: the run.
    workdir: checkpoints, feature cache, the extractor if pretrained here,
      `run_config.json`, `results.json`, `results.md`.
    data_dir: where the dataset files are (see `data.datasets.load`).
    extractor_dir: a pretrained extractor (default `WORKDIR/extractor`,
      pretrained there if absent).
    mesh: spread every batch over this mesh's devices (`sharding.data_mesh`).
    should_stop: polled at the safe points (after every chunk, task and
      pretraining epoch); True checkpoints and raises
      `interrupts.Interrupted` (binaries: SIGINT and SIGTERM).
    first_task_dir: an `io.first_task.FirstTaskStore` shared by runs that may
      differ in their strategy only (a search's): a group of seeds starts
      from its snapshot of the end of task 1 where that has this run's
      first task, and leaves its own there where none is yet (one process
      only; ignored in a multi-process run).

  Raises:
    ValueError: bad input (a workdir of another run, a missing dataset, an
      unwritable workdir, batches that do not split over the mesh), each a
      one-line message, raised before anything is written.
    continual.NonFiniteLossError: a loss became NaN or infinite.
  """
  program_start = time.perf_counter()
  prepare.check_writable(workdir)
  paths = workdir_lib.Workdir(workdir)
  prepare.check_workdir_config(workdir, config)
  cont = config.continual
  sharding.check_divisible(mesh, batch_size=cont.batch_size,
                           replay_size=cont.replay_size)
  extractor_dir = extractor_dir or paths.extractor
  dataset, cifar10 = prepare.load_datasets(config, data_dir, extractor_dir)
  # Hashing the arrays takes a while for CIFAR: once per program.
  data_fingerprint = dataset.fingerprint()
  prepare.check_workdir_data(workdir, dataset, data_fingerprint)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ValueError(f'workdir {workdir} is not writable ({e.strerror})'
                     ) from None
  try:
    with lock.hold(workdir, jax.process_index()):
      # Checked again under the lock: another process may have written.
      prepare.check_workdir_config(workdir, config)
      prepare.check_workdir_data(workdir, dataset, data_fingerprint)
      atomic.write_json(paths.config_file,
                                   config.identity())
      atomic.write_json(
          paths.data_file,
          {'dataset': dataset.name, 'fingerprint': data_fingerprint,
           'source': dataset.source})
      with jax.default_matmul_precision(config.precision):
        store = (first_task_lib.FirstTaskStore(first_task_dir)
                 if first_task_dir and jax.process_count() == 1 else None)
        program = _Program(config=config, paths=paths, mesh=mesh,
                           should_stop=should_stop, start=program_start,
                           first_task=store)
        return _run(program, dataset, cifar10, extractor_dir,
                    data_fingerprint)
  except OSError as e:
    if e.filename is None or not os.path.abspath(e.filename).startswith(
        os.path.abspath(workdir)):
      raise
    raise WorkdirWriteError(f'cannot write in workdir {workdir} '
                            f'({e.strerror}: {e.filename}); rerun the same '
                            'command to resume') from None


@dataclasses.dataclass(frozen=True)
class _Program:
  """What the parts of one `run` share.

  Attributes:
    config: the run.
    paths: its workdir.
    mesh: the devices every batch is spread over (None: one device).
    should_stop: the stop check (`run`'s argument).
    start: `time.perf_counter()` at the program's start.
    first_task: where task 1 is shared with other runs (None: nowhere).
    first_task_key: this run's `first_task_identity` (set once the data and
      the extractor are known).
  """
  config: config_lib.RunConfig
  paths: workdir_lib.Workdir
  mesh: jax.sharding.Mesh | None
  should_stop: interrupts.StopCheck | None
  start: float
  first_task: first_task_lib.FirstTaskStore | None = None
  first_task_key: dict | None = None


@dataclasses.dataclass(frozen=True)
class _Inputs:
  """The training and test sets as the task loop takes them (level-0
  features, or normalised images), with the extractor that made them."""
  train: tuple[np.ndarray, np.ndarray]
  test: tuple[np.ndarray, np.ndarray]
  extractor_meta: dict | None
  pretrain_s: float


def _run(program: _Program, dataset, cifar10, extractor_dir: str,
         data_fingerprint: str) -> dict:
  """`run` once the workdir is locked: every group of seeds, then the
  record."""
  cont = program.config.continual
  inputs = _inputs(program, dataset, cifar10, extractor_dir)
  if program.first_task is not None:
    program = dataclasses.replace(program, first_task_key=(
        first_task_identity(
            program.config, data_fingerprint,
            (inputs.extractor_meta or {}).get('fingerprint'))))
  if replay_kinds.get(cont.replay).replays:
    prepare.log(_strategy_line(program.config))
  seeds = list(program.config.seeds)
  batched = program.config.loop.vmap_seeds and len(seeds) > 1
  groups = [seeds] if batched else [[s] for s in seeds]
  progress = progress_lib.Progress(cont.num_tasks, cont.iters_per_task,
                                   len(groups))
  # Groups that all finished earlier: this process only writes the record.
  summarised = all(os.path.isfile(program.paths.records(g)) for g in groups)
  reference = None
  per_seed = []
  for group in groups:
    records, reference = _run_group(program, group, inputs, progress,
                                    reference)
    per_seed.extend(records)
  return _write_record(program, per_seed, inputs, dataset, data_fingerprint,
                       _earlier_record(program) if summarised else None)


# What a record says about the process that made it: where a process only
# summarises groups that finished earlier, these keep the earlier record's
# values.
_PROCESS_TIMING = ('extractor_this_program_s', 'program_s')


def _earlier_record(program: _Program) -> dict | None:
  """The run's earlier record, or None if there is none (or it is
  unreadable). A process that only summarises finished groups keeps its
  provenance and program timing (`_PROCESS_TIMING`), so that rewriting a
  finished run's record (a search that meets a finished row) does not
  claim its training for this command and code, or time this process as
  the run's program."""
  try:
    with open(program.paths.results_json) as fh:
      record = json.load(fh)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _strategy_line(config: config_lib.RunConfig) -> str:
  """e.g. "ARCH1 cumulative_weights: fractions 0.402, 0.598 per level,
  R (paper) 43.0%, R (exact) 80.4%"."""
  cont = config.continual
  fractions = ', '.join(f'{f:.4g}' for f in cont.strategy)
  costs = [100 * strategy_lib.relative_cost(cont.strategy, cont.arch, how)
           for how in ('paper', 'exact')]
  return (f'{cont.arch.name.upper()} {results_lib.run_name(config)}: '
          f'fractions {fractions} per level, R (paper) {costs[0]:.1f}%, '
          f'R (exact) {costs[1]:.1f}%')


def _inputs(program: _Program, dataset, cifar10,
            extractor_dir: str) -> _Inputs:
  """Normalised images, or the extractor's level-0 features (the extractor
  loaded, or pretrained, first)."""
  cont = program.config.continual
  extractor_meta = None
  pretrain_s = 0.0
  if cont.inputs == 'images':
    mean, std = dataset.channel_stats()
    if not cont.standardise_images:
      mean, std = np.zeros_like(mean), np.ones_like(std)
    train = data_lib.normalise(dataset.train_images, mean, std)
    test = data_lib.normalise(dataset.test_images, mean, std)
  else:
    start = time.perf_counter()
    extractor, extractor_meta = prepare.get_extractor(
        program.config, extractor_dir, cifar10, program.should_stop)
    pretrain_s = time.perf_counter() - start
    train, test = features_lib.cached_features(
        program.config.arch, extractor, extractor_meta['fingerprint'],
        dataset, program.paths.features)
  return _Inputs(train=(train, dataset.train_labels),
                 test=(test, dataset.test_labels),
                 extractor_meta=extractor_meta, pretrain_s=pretrain_s)


def _run_group(program: _Program, group: list[int], inputs: _Inputs,
               progress: progress_lib.Progress, reference
               ) -> tuple[list[dict], object]:
  """One group of seeds (vmapped together): resumed from its checkpoints,
  or taken from its `records.json` if it finished in an earlier run.
  Returns its per-seed records and the mFID reference classifier (trained
  by the first group that needs it)."""
  config, cont = program.config, program.config.continual
  label = (f'[seed{"s" if len(group) > 1 else ""} '
           f'{",".join(str(s) for s in group)}]')
  group_dir = program.paths.checkpoints(group)
  done_path = program.paths.records(group)
  if os.path.isfile(done_path):
    with open(done_path) as fh:
      records = json.load(fh)
    prepare.log(f'{label} finished in an earlier run: using {done_path}')
    progress.skip(cont.num_tasks * cont.iters_per_task)
    return records, reference
  if config.mfid and reference is None:
    prepare.log(f'training the mFID reference classifier '
        f'({config.mfid.reference_epochs} epochs, all classes)')
    reference = mfid_lib.train_reference(
        config.arch, *inputs.train, seed=0,
        epochs=config.mfid.reference_epochs, batch_size=cont.batch_size,
        should_stop=program.should_stop)
  progress.start_run(label)
  shared_from = _adopt_first_task(program, group, label)
  checkpoints = checkpoint.RunCheckpointer(
      group_dir, config.loop.checkpoint_every, config.loop.checkpoint_min_secs)
  # In a multi-host run the first process writes the logs.
  metrics_log = (logs_lib.MetricsLog(program.paths.logs, group,
                                     cont.iters_per_task, config.loop.log_every)
                 if jax.process_index() == 0 else logs_lib.NoLog())
  start = time.perf_counter()
  try:
    results = continual.run_seeds(
        cont, inputs.train, inputs.test, group, batched=len(group) > 1,
        hooks=_hooks(program, label, group, progress, metrics_log),
        mesh=program.mesh, checkpoints=checkpoints)
  finally:
    metrics_log.close()
  # Seeds of a vmapped group share its wall time: each gets an equal part.
  elapsed = (time.perf_counter() - start) / len(group)
  records = [_seed_record(program, seed, result, reference, inputs)
             for seed, result in zip(group, results)]
  for record, result in zip(records, results):
    record.update(_seed_timing(result, elapsed, len(group)))
    if shared_from:
      record['first_task_from'] = shared_from
  atomic.write_json(done_path, records)
  return records, reference


def first_task_identity(config: config_lib.RunConfig, data_fingerprint: str,
                        extractor_fingerprint: str | None) -> dict:
  """What fixes a run's first task (`io.first_task`): its identity without
  the strategy (where the replay kind ignores it there), with the data's
  and the extractor's fingerprints."""
  identity = config.identity()
  if not replay_kinds.get(config.continual.replay).strategy_in_first_task(
      config.continual):
    identity['continual'].pop('strategy', None)
  return {'config': identity, 'data': data_fingerprint,
          'extractor': extractor_fingerprint}


def _adopt_first_task(program: _Program, group: list[int], label: str
                      ) -> str | None:
  """Starts `group` from the shared snapshot of task 1, where there is one
  of the same first task and the group has no checkpoint of its own;
  returns the run directory it was taken from (None: not taken)."""
  store = program.first_task
  if store is None or not store.adopt(
      group, program.first_task_key, program.paths.checkpoints(group),
      program.paths.logs):
    return None
  source = store.source(group)
  prepare.log(f'{label} task 1 taken from {source} (the same computation: '
              'the strategies differ from the first replay on)')
  return source


def _keep_first_task(program: _Program, group: list[int]):
  """The `on_task_end` hook that leaves the group's end of task 1 in the
  shared store (if it has none yet)."""
  store = program.first_task

  def on_task_end(task, state):
    del state
    if (store is not None and task == 1 and jax.process_index() == 0
        and not store.has(group)):
      store.take(group, program.first_task_key,
                 program.paths.checkpoints(group), program.paths.logs,
                 source=program.paths.root)
  return on_task_end


def _hooks(program: _Program, label: str, group: list[int],
           progress: progress_lib.Progress, metrics_log) -> continual.Hooks:
  """Progress lines, logs and the stop check of one group's run."""
  cont = program.config.continual

  def on_resume(task, done):
    prepare.log(f'{label} resuming from task {task}, iteration {done} '
        f'(checkpoint in {program.paths.checkpoints(group)})')
    progress.skip((task - 1) * cont.iters_per_task + done, whole_run=False)
    metrics_log.resume(task, done)

  def on_evaluated(task, rows):
    progress.evaluated(task, rows, group)
    metrics_log.accuracy(task, rows)

  def on_metrics(task, done, metrics):
    metrics_log.chunk(task, done, metrics, batched=len(group) > 1)

  return continual.Hooks(on_chunk=progress, on_metrics=on_metrics,
                         on_evaluated=on_evaluated, on_resume=on_resume,
                         on_task_end=_keep_first_task(program, group),
                         should_stop=program.should_stop)


def _seed_record(program: _Program, seed: int, result: continual.Result,
                 reference, inputs: _Inputs) -> dict:
  """One seed's entry of `results.json`'s `per_seed` (its mFID computed
  here when the run scores one)."""
  record = {'seed': seed, 'class_order': result.class_order.tolist(),
            'accuracy_matrix': result.accuracy.tolist(),
            'average_accuracy': result.average_accuracy,
            'final_losses': {k: float(v[-1])
                             for k, v in result.losses[-1].items()}}
  if reference is not None:
    record['mfid'] = mfid_lib.mfid(
        program.config.arch, reference,
        sharding.to_host(result.state.generator.params), inputs.test[0],
        jax.random.fold_in(jax.random.key(seed), 0xF1D),
        program.config.mfid.samples)
  prepare.log(f'[seed {seed}] average accuracy '
      f'{100 * result.average_accuracy:.2f}%'
      + (f', mFID {record["mfid"]:.1f}' if 'mfid' in record else ''))
  return record


def _seed_timing(result: continual.Result, elapsed: float, group_size: int
                 ) -> dict:
  """A seed's share of its group's training time: over every process that
  trained it when they all counted it (`wall_time_s`), and this process's
  (`this_process_s`)."""
  known = math.isfinite(result.seconds)
  return {'wall_time_s': result.seconds / group_size if known else elapsed,
          'this_process_s': elapsed, 'processes': result.processes,
          'wall_time_complete': known}


def _write_record(program: _Program, per_seed: list[dict], inputs: _Inputs,
                  dataset, data_fingerprint: str,
                  earlier: dict | None) -> dict:
  """Summarises the seeds into `results.json` and `results.md`; `earlier`:
  the record this process only rewrites (`_earlier_record`), or None."""
  config, cont = program.config, program.config.continual
  meta = inputs.extractor_meta
  provenance = (earlier.get('provenance') if earlier is not None
                else machine.provenance())
  record = results_lib.summarise(
      config.protocol, config_lib.to_json(config), config.arch,
      cont.strategy, config.seeds, per_seed,
      config.data_label or dataset.label,
      extra={'extractor': {k: v for k, v in (meta or {}).items()
                           if k not in ('wall_time_s', 'provenance')}
                          or meta,
             'dataset': dataset.name,
             'data_fingerprint': data_fingerprint,
             'devices': (1 if program.mesh is None
                         else int(program.mesh.devices.size)),
             **({'provenance': provenance} if provenance else {})},
      name=config.name, replays=replay_kinds.get(cont.replay).replays)
  timing = record['timing']
  if meta and 'wall_time_s' in meta:
    timing['extractor_wall_time_s'] = meta['wall_time_s']
  timing['extractor_this_program_s'] = inputs.pretrain_s
  timing['program_s'] = time.perf_counter() - program.start
  if earlier is not None:
    before = earlier.get('timing')
    before = before if isinstance(before, dict) else {}
    for name in _PROCESS_TIMING:
      if name in before:
        timing[name] = before[name]
  results_lib.write(program.paths.root, record)
  prepare.log(f'{record["strategy_name"]}: {100 * record["average_accuracy_mean"]:.2f}'
      f'% +- {100 * record["average_accuracy_sem"]:.2f}% over '
      f'{len(config.seeds)} seed(s); wrote {program.paths.results_json}')
  return record
