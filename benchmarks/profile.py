r"""Where an iteration's time goes: `python -m benchmarks.profile`.

Traces one task-2 chunk (replay on) of `--iters` iterations with
`jax.profiler` (with `--part=replay_update`, of the classifier's replay
update alone, as `benchmarks.run` times it), after a compiling and a
warm-up chunk, and summarises the trace without TensorBoard: for every
timeline line of the device (on a CPU, of XLA's host threads) the events
per iteration, the time per iteration in which the line was busy (the union
of its events), and the events that took the most time, by name and by
kind (the name without its numeric suffix: `loop_add_fusion_12` ->
`loop_add_fusion`). Busy time far below the wall
time per iteration means the device waits (kernel launches, host
synchronisation); many events per iteration with short durations mean the
iteration is launch-bound. Examples:

  python -m benchmarks.profile                          # ARCH1, IR, 1 seed
  python -m benchmarks.profile --strategy=0.3,0.7 --precision=tensorfloat32 \
      --out=/tmp/profile.json --trace_dir=/tmp/trace    # keep the raw trace
  python -m benchmarks.profile --part=replay_update --precision=BF16_BF16_F32
"""

import collections
import glob
import os
import re
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax

from benchmarks import run as bench
from plr_jax.io import atomic
from plr_jax.models import arch as arch_lib
from plr_jax import config as config_lib
from plr_jax.train import strategy as strategy_lib

PARTS = ('iteration', 'replay_update')

# Zero-work bookkeeping events of XLA:CPU's thread pools.
_MARKERS = ('ThreadpoolListener', 'SlinkyThreadPool', 'ThunkExecutor',
            'end: ')


def define_flags():
  flags.DEFINE_string('arch', 'arch1', 'Architecture preset.')
  flags.DEFINE_string('strategy', 'ir', '"ir", fractions per level, or a '
                      'named rule.')
  flags.DEFINE_integer('seeds', 1, 'Vmapped seeds.')
  flags.DEFINE_enum('part', 'iteration', PARTS, 'What the traced chunk '
                    'runs: whole iterations, or the classifier\'s replay '
                    'update alone.')
  flags.DEFINE_integer('iters', 50, 'Iterations in the traced chunk.')
  flags.DEFINE_integer('rows', 10000, 'Rows of random training features.')
  flags.DEFINE_string('precision', 'float32', 'Matmul precision (as for the '
                      'binaries).')
  flags.DEFINE_integer('scan_unroll', 1, 'Scan unroll factor.')
  flags.DEFINE_integer('top', 12, 'Events and kinds listed per line.')
  flags.DEFINE_string('out', None, 'Also write the summary here as JSON.')
  flags.DEFINE_string('trace_dir', None, 'Keep the raw trace here '
                      '(TensorBoard / Perfetto); default: a temporary '
                      'directory, removed.')


def kind(name: str) -> str:
  """An event's name without its numeric suffix."""
  return re.sub(r'([._-]?\d+)+$', '', name) or name


def _busy_ns(intervals: list[tuple[int, int]]) -> int:
  """Length of the union of [start, end) intervals."""
  total, reach = 0, None
  for start, end in sorted(intervals):
    if reach is None or start > reach:
      total += end - start
      reach = end
    elif end > reach:
      total += end - reach
      reach = end
  return total


def _top(totals: dict, counts: dict, iters: int, top: int) -> list[dict]:
  names = sorted(totals, key=totals.get, reverse=True)[:top]
  return [{'name': n, 'us_per_iter': totals[n] / 1e3 / iters,
           'calls_per_iter': counts[n] / iters} for n in names]


def summarise(trace_dir: str, iters: int, top: int = 12) -> list[dict]:
  """Per-line summaries of the newest trace under `trace_dir`."""
  from jax.profiler import ProfileData  # pylint: disable=g-import-not-at-top
  paths = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'),
                    recursive=True)
  if not paths:
    raise FileNotFoundError(f'no *.xplane.pb trace under {trace_dir}')
  data = ProfileData.from_file(max(paths, key=os.path.getmtime))
  planes = [p for p in data.planes if p.name.startswith('/device:')]
  on_host = not planes
  if on_host:  # XLA:CPU runs the program on the host's threads.
    planes = [p for p in data.planes if p.name == '/host:CPU']
  lines = []
  for plane in planes:
    for line in plane.lines:
      if on_host and not line.name.startswith('tf_XLA'):
        continue
      events = [(e.name, int(e.start_ns), int(e.duration_ns))
                for e in line.events
                if e.duration_ns > 0 and not e.name.startswith(_MARKERS)]
      if not events:
        continue
      totals, counts = collections.Counter(), collections.Counter()
      kind_totals, kind_counts = collections.Counter(), collections.Counter()
      for name, _, duration in events:
        totals[name] += duration
        counts[name] += 1
        kind_totals[kind(name)] += duration
        kind_counts[kind(name)] += 1
      busy = _busy_ns([(s, s + d) for _, s, d in events])
      lines.append({
          'plane': plane.name, 'line': line.name,
          'events_per_iter': len(events) / iters,
          'busy_ms_per_iter': busy / 1e6 / iters,
          'top_events': _top(totals, counts, iters, top),
          'top_kinds': _top(kind_totals, kind_counts, iters, top),
      })
  lines.sort(key=lambda l: l['busy_ms_per_iter'], reverse=True)
  return lines


def profile(arch: arch_lib.ArchConfig, strategy_text: str, num_seeds: int,
            iters: int, rows: int, trace_dir: str, top: int = 12,
            scan_unroll: int = 1,
            part: str = 'iteration') -> dict:
  """Traces one steady task-2 chunk of `part` (one of `PARTS`); the summary
  with its wall time. Nine parameters: one per flag of the binary."""
  setup = bench.task2_chunk(arch, strategy_text, num_seeds, iters, rows,
                            scan_unroll)
  if part == 'iteration':
    chunk, state = setup.chunk, setup.state
  elif part == 'replay_update':
    chunk, state = bench.replay_update(setup).chunk, setup.state.classifier
  else:
    raise ValueError(f'part must be one of {PARTS}, got {part!r}')
  for _ in range(2):  # compile, then warm up
    state, metrics = chunk(state)
    jax.block_until_ready(metrics)
  with jax.profiler.trace(trace_dir):
    start = time.perf_counter()
    state, metrics = chunk(state)
    jax.block_until_ready(metrics)
    wall = time.perf_counter() - start
  device = jax.devices()[0]
  return {
      'arch': arch.name, 'strategy': strategy_text, 'seeds': num_seeds,
      'part': part, 'iters': iters, 'backend': jax.default_backend(),
      'device': getattr(device, 'device_kind', str(device)),
      'precision': str(jax.config.jax_default_matmul_precision),
      'scan_unroll': scan_unroll, 'jax': jax.__version__,
      'wall_ms_per_iter': 1000 * wall / iters,
      'lines': summarise(trace_dir, iters, top),
  }


def report(result: dict) -> str:
  out = [f'{result["arch"]} {result["strategy"]} seeds={result["seeds"]} '
         f'{result["part"]} '
         f'{result["device"]} {result["precision"]} '
         f'unroll={result["scan_unroll"]}: '
         f'{result["wall_ms_per_iter"]:.3f} ms per iteration (traced)']
  for line in result['lines']:
    out.append(f'\n{line["plane"]} / {line["line"]}: '
               f'{line["events_per_iter"]:.1f} events and '
               f'{line["busy_ms_per_iter"]:.3f} ms busy per iteration')
    for title, key in (('kind', 'top_kinds'), ('event', 'top_events')):
      out.append(f'  | {title} | us/iter | calls/iter |')
      out.append('  |---|---|---|')
      out.extend(f'  | {e["name"][:80]} | {e["us_per_iter"]:.1f} | '
                 f'{e["calls_per_iter"]:.1f} |' for e in line[key])
  return '\n'.join(out)


def main(argv):
  del argv
  try:
    arch = arch_lib.get_arch(FLAGS.arch)
    strategy_lib.parse_strategy(FLAGS.strategy, arch=arch)
    config_lib.check_precision(FLAGS.precision)
    if min(FLAGS.iters, FLAGS.seeds, FLAGS.rows, FLAGS.top,
           FLAGS.scan_unroll) < 1:
      raise ValueError('--iters, --seeds, --rows, --top and --scan_unroll '
                       'must be positive')
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  jax.config.update('jax_default_matmul_precision', FLAGS.precision)
  with tempfile.TemporaryDirectory() as scratch:
    result = profile(arch, FLAGS.strategy, FLAGS.seeds, FLAGS.iters,
                     FLAGS.rows, FLAGS.trace_dir or scratch, FLAGS.top,
                     FLAGS.scan_unroll, FLAGS.part)
  if FLAGS.out:
    atomic.write_json(FLAGS.out, result)
  print(report(result))


FLAGS = flags.FLAGS

if __name__ == '__main__':
  define_flags()
  app.run(main)
