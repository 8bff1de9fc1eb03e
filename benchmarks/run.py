r"""Speed and cost of PLR iterations: `python -m benchmarks.run [--json]`.

For each architecture, each of the paper's strategies (and IR), 1 seed and
3 vmapped seeds, it measures on whatever backend JAX finds:

  ms_per_iter          median wall time of one training iteration (classifier
                       step + generator step + replay sampling), from chunks
                       of --iters iterations run in one jitted lax.scan,
                       after a warm-up chunk; per program, so 3 vmapped seeds
                       take this long for all three.
  compile_s            first chunk's time minus a steady chunk's.
  iteration_flops      XLA's cost analysis of one iteration.
  replay_update_flops  XLA's cost analysis of the classifier's replay update
                       alone (distillation gradient of the 256 replayed
                       samples at their levels + the gated Adam update).
  replay_update_ms     its median wall time (scanned, like the iterations).
  r_paper, r_exact     R(S) in the paper's and the exact accounting.

Data are random features shaped like CIFAR-100's (the speed does not depend on
their values). Examples:

  python -m benchmarks.run                      # table, ARCH1 and ARCH2
  python -m benchmarks.run --json --out=benchmarks/cpu.json
  python -m benchmarks.run --archs=tiny --seeds=1 --iters=2 --repeats=1
"""

import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.io import atomic
from plr_jax.io import machine
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax import config as config_lib
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib

STRATEGIES = {
    'arch1': ('ir', '0.7,0.3', '0.5,0.5', '0.3,0.7'),
    'arch2': ('ir', '0.5,0.3,0.2', '0.34,0.33,0.33', '0.2,0.3,0.5'),
    'fmnist': ('ir', '0.2,0.3,0.5'),
    'tiny': ('ir', '0.5,0.5'),
}

def define_flags():
  """The flags of `python -m benchmarks.run` (defined only when it runs, so
  that other tools can import this module and define their own)."""
  flags.DEFINE_list('archs', ['arch1', 'arch2'], 'Architectures: ' +
                    ', '.join(STRATEGIES))
  flags.DEFINE_string('strategies', '', 'Strategies to measure instead of the '
                      "paper's, separated by ';' (e.g. 'ir;0.3,0.7').")
  flags.DEFINE_list('seeds', ['1', '3'], 'Seed counts to run (vmapped).')
  flags.DEFINE_integer('iters', 100, 'Iterations per timed chunk.')
  flags.DEFINE_integer('repeats', 5, 'Timed chunks (the median is reported).')
  flags.DEFINE_integer('rows', 10000, 'Rows of random training features.')
  flags.DEFINE_list('precision', ['float32'], 'Matmul precisions to measure, '
                    'each one float32, tensorfloat32, bfloat16 or a '
                    'jax.lax.DotAlgorithmPreset name.')
  flags.DEFINE_bool('flops', True, "Count FLOPs with XLA's cost analysis (on "
                    'GPUs this compiles the iteration and the replay update '
                    'once more each; the counts do not depend on the backend).')
  flags.DEFINE_bool('json', False, 'Print a JSON list of records instead of '
                    'a table.')
  flags.DEFINE_string('out', None, 'Also write the JSON records here.')
  flags.DEFINE_list('scan_unroll', ['1'], 'Scan unroll factors to measure.')


FLAGS = flags.FLAGS


def _flops(lowered) -> float:
  """XLA's FLOP count of a lowered program (of the compiled one where the
  backend gives none before compilation, as jax 0.11 on GPU)."""
  analysis = lowered.cost_analysis()
  if not analysis:
    analysis = lowered.compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per program
    analysis = analysis[0]
  return float(analysis.get('flops', float('nan')))


def _timed(fn, state, repeats):
  """Runs fn(state) -> (state, out) `repeats + 1` times; (first, median)."""
  times = []
  for _ in range(repeats + 1):
    start = time.perf_counter()
    state, out = fn(state)
    jax.block_until_ready((state, out))
    times.append(time.perf_counter() - start)
  return times[0], statistics.median(times[1:]), state


@dataclasses.dataclass
class Task2Chunk:
  """A task-2 chunk (replay on) of one configuration, on random features.

  `chunk(state) -> (state, metrics)` runs `iters` iterations in one program;
  the other fields are its inputs, for cost analysis and replay updates.
  """
  config: continual.ContinualConfig
  strategy: strategy_lib.Strategy
  num_seeds: int
  run_chunk: Callable[..., Any]
  state: steps.PLRState
  features: jax.Array
  labels: jax.Array
  data: continual.TaskData
  iters: int

  @property
  def info(self) -> steps.TaskInfo:
    return self.data.info

  @property
  def batched(self) -> bool:
    """Whether the seeds are vmapped (a leading seed axis everywhere)."""
    return self.num_seeds > 1

  def chunk(self, state):
    return self.run_chunk(state, self.features, self.labels, self.data,
                          self.iters)


def task2_chunk(arch: arch_lib.ArchConfig, strategy_text: str,
                num_seeds: int, iters: int, rows: int,
                scan_unroll: int = 1) -> Task2Chunk:
  """Builds the chunk `measure` times (and `benchmarks.profile` traces);
  `scan_unroll` as in `continual.ContinualConfig`."""
  strategy = strategy_lib.parse_strategy(strategy_text, arch=arch)
  num_tasks = 10 if arch.num_classes % 10 == 0 else 3
  config = continual.ContinualConfig(
      arch=arch, strategy=strategy, num_tasks=num_tasks, iters_per_task=iters,
      chunk_size=iters, scan_unroll=scan_unroll)
  batched = num_seeds > 1
  rng = np.random.default_rng(0)
  features = jnp.asarray(rng.normal(size=(rows, arch.feature_dim)),
                         jnp.float32)
  labels = jnp.asarray(np.arange(rows) % arch.num_classes, jnp.int32)
  seeds = list(range(num_seeds))
  labels_host = np.asarray(labels)
  splits = [continual.task_split(config, s, labels_host, labels_host)
            for s in seeds]
  # Task 2: replay is on.
  data = continual.task_data(config, splits, seeds, 2, batched)
  stack = functools.partial(continual.stack_seeds, batched=batched)
  state = stack([continual.init_state(config, jax.random.key(s))
                 for s in seeds])
  return Task2Chunk(
      config=config, strategy=strategy, num_seeds=num_seeds,
      run_chunk=continual.make_chunk_runner(config, batched),
      state=steps.end_task(state), features=features, labels=labels,
      data=data, iters=iters)


@dataclasses.dataclass
class ReplayUpdate:
  """The classifier's replay update alone, in a `Task2Chunk`'s configuration.

  `step(classifier, replay, info) -> (classifier, metrics)` is one update
  from `replay`, random features at every level (vmapped over the seeds
  where the chunk is); `chunk(classifier) -> (classifier, metrics)` scans it
  over the chunk's iterations in one jitted program, like the iterations.
  """
  step: Callable[..., Any]
  replay: replay_lib.ReplayBatch
  chunk: Callable[..., Any]


def replay_update(setup: Task2Chunk) -> ReplayUpdate:
  """`setup`'s classifier replay update (distillation gradient of the replay
  batch at its levels + the gated Adam update), without current data."""
  config, arch = setup.config, setup.config.arch
  tx = optim.adam(config.learning_rate)
  replay_step = steps.make_classifier_step(
      arch, tx, setup.strategy, config.replay_size, with_current=False,
      jit=False)
  keys = jax.random.split(jax.random.key(1), arch.num_levels + 1)
  replay = replay_lib.ReplayBatch(
      levels=tuple(jax.random.normal(k, (config.replay_size, d))
                   for k, d in zip(keys, arch.level_dims)),
      logits=jax.random.normal(keys[-1],
                               (config.replay_size, arch.num_classes)))
  replay = continual.stack_seeds([replay] * setup.num_seeds,
                                 batched=setup.batched)
  step = lambda s, r, i: replay_step(s, None, r, i)
  if setup.batched:
    step = jax.vmap(step)

  @jax.jit
  def chunk(classifier):
    return jax.lax.scan(lambda c, _: step(c, replay, setup.info), classifier,
                        None, length=setup.iters)
  return ReplayUpdate(step=step, replay=replay, chunk=chunk)


def measure(arch: arch_lib.ArchConfig, strategy_text: str, num_seeds: int,
            iters: int, repeats: int, rows: int, flops: bool = True,
            scan_unroll: int = 1) -> dict:
  """One benchmark record (see the module docstring)."""
  setup = task2_chunk(arch, strategy_text, num_seeds, iters, rows,
                      scan_unroll)
  strategy = setup.strategy
  features, labels, info = setup.features, setup.labels, setup.info
  run_chunk = setup.run_chunk
  first, steady, state = _timed(setup.chunk, setup.state, repeats)

  iteration = jax.jit(run_chunk.iteration)
  data = setup.data
  iteration_flops = _flops(iteration.lower(
      state, jnp.int32(0), features, labels, data.rows, data.num_rows,
      info)) if flops else float('nan')

  # The classifier's replay update alone.
  update = replay_update(setup)
  classifier = state.classifier
  replay_flops = _flops(jax.jit(update.step).lower(
      classifier, update.replay, info)) if flops else float('nan')
  _, replay_steady, _ = _timed(update.chunk, steps.copy_tree(classifier),
                               repeats)
  device = jax.devices()[0]
  return {
      'arch': arch.name, 'strategy': strategy_text,
      'strategy_fractions': list(strategy), 'seeds': num_seeds,
      'backend': jax.default_backend(),
      'device': getattr(device, 'device_kind', str(device)),
      'precision': str(jax.config.jax_default_matmul_precision),
      'scan_unroll': scan_unroll,
      'ms_per_iter': 1000 * steady / iters,
      'compile_s': max(first - steady, 0.0),
      'iteration_flops': iteration_flops,
      'replay_update_flops': replay_flops,
      'replay_update_ms': 1000 * replay_steady / iters,
      'r_paper': strategy_lib.relative_cost(strategy, arch, 'paper'),
      'r_exact': strategy_lib.relative_cost(strategy, arch, 'exact'),
      'iters': iters, 'repeats': repeats,
      'date': datetime.date.today().isoformat(),
      'host': platform.node(), 'cpu': machine.host_cpu(), 'jax': jax.__version__,
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
  }


def add_ratios(records: list[dict]) -> None:
  """FLOPs and times relative to IR of the same arch, seeds and precision."""
  group = lambda r: (r['arch'], r['seeds'], r['precision'],
                     r.get('scan_unroll'))
  ir = {group(r): r for r in records if r['strategy'] == 'ir'}
  for r in records:
    base = ir.get(group(r))
    if base:
      for key in ('iteration_flops', 'replay_update_flops', 'ms_per_iter',
                  'replay_update_ms'):
        r[f'{key}_vs_ir'] = r[key] / base[key]


def table(records: list[dict]) -> str:
  head = ('| arch | strategy | seeds | precision | unroll '
          '| ms/iter | compile s | GFLOP/iter '
          '| replay GFLOP (vs IR) | replay ms (vs IR) | iter GFLOP vs IR '
          '| R paper | R exact |')
  lines = [head, '|' + '---|' * 13]
  for r in records:
    lines.append(
        f'| {r["arch"]} | {r["strategy"]} | {r["seeds"]} | '
        f'{r["precision"]} | {r.get("scan_unroll", 1)} | '
        f'{r["ms_per_iter"]:.2f} | {r["compile_s"]:.1f} | '
        f'{r["iteration_flops"] / 1e9:.2f} | '
        f'{r["replay_update_flops"] / 1e9:.2f} '
        f'({100 * r.get("replay_update_flops_vs_ir", float("nan")):.0f}%) | '
        f'{r["replay_update_ms"]:.2f} '
        f'({100 * r.get("replay_update_ms_vs_ir", float("nan")):.0f}%) | '
        f'{100 * r.get("iteration_flops_vs_ir", float("nan")):.0f}% | '
        f'{100 * r["r_paper"]:.1f}% | {100 * r["r_exact"]:.1f}% |')
  return '\n'.join(lines)


def main(argv):
  del argv
  try:
    archs = [arch_lib.get_arch(a) for a in FLAGS.archs]
    seed_counts = [int(s) for s in FLAGS.seeds]
    if FLAGS.iters < 1 or FLAGS.repeats < 1 or min(seed_counts) < 1:
      raise ValueError('--iters, --repeats and --seeds must be positive')
    if FLAGS.strategies:
      chosen = tuple(t.strip() for t in FLAGS.strategies.split(';'))
      strategies = {a.name: chosen for a in archs}
    else:
      strategies = STRATEGIES
    unknown = [a.name for a in archs if a.name not in strategies]
    if unknown:
      raise ValueError(f'no strategies listed for {unknown}')
    for arch in archs:
      for text in strategies[arch.name]:
        strategy_lib.parse_strategy(text, arch=arch)
    for name in FLAGS.precision:
      config_lib.check_precision(name)
    unrolls = [int(u) for u in FLAGS.scan_unroll]
    if min(unrolls) < 1:
      raise ValueError('--scan_unroll values must be positive')
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  records = []
  for precision in FLAGS.precision:
    jax.config.update('jax_default_matmul_precision', precision)
    for arch in archs:
      for num_seeds in seed_counts:
        for text in strategies[arch.name]:
          for unroll in unrolls:
            records.append(measure(arch, text, num_seeds, FLAGS.iters,
                                   FLAGS.repeats, FLAGS.rows, FLAGS.flops,
                                   unroll))
            r = records[-1]
            print(f'{arch.name} {text} seeds={num_seeds} {precision} '
                  f'unroll={unroll}: {r["ms_per_iter"]:.2f} ms/iter',
                  file=sys.stderr, flush=True)
            add_ratios(records)
            if FLAGS.out:  # after each record: a run cut short keeps them
              atomic.write_json(FLAGS.out, records)
  print(json.dumps(records, indent=1) if FLAGS.json else table(records))


if __name__ == '__main__':
  define_flags()
  app.run(main)
