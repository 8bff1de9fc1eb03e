"""The benchmark's records carry what issue 4 asks for, with sane values."""

import os
import subprocess
import sys

import chex
import pytest

from benchmarks import precision_probe
from benchmarks import pretrain as pretrain_bench
from benchmarks import profile
from benchmarks import run as bench
from tests.conftest import TINY

FIELDS = ('arch', 'strategy', 'seeds', 'backend', 'ms_per_iter', 'compile_s',
          'iteration_flops', 'replay_update_flops', 'r_paper', 'r_exact')


def test_records_have_the_fields_and_replay_flops_fall_with_the_strategy():
  records = [bench.measure(TINY, text, seeds, iters=2, repeats=1, rows=64)
             for seeds in (1, 2) for text in ('ir', '0.5,0.5')]
  bench.add_ratios(records)
  for record in records:
    for field in FIELDS:
      assert field in record, field
    assert record['ms_per_iter'] > 0 and record['iteration_flops'] > 0
  ir, plr = records[0], records[1]
  assert plr['replay_update_flops'] < ir['replay_update_flops']
  assert plr['r_paper'] < 1 and ir['r_exact'] == 1
  # Two vmapped seeds do twice the arithmetic of one.
  assert abs(records[2]['iteration_flops'] / ir['iteration_flops'] - 2) < 0.1
  assert '| tiny | 0.5,0.5 | 2 | ' in bench.table(records)
  if os.path.exists('/proc/cpuinfo'):  # the host CPU, which CPU times need
    assert 'cores' in records[0]['cpu'], records[0]['cpu']


def test_bad_strategy_is_one_line_and_exit_2():
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.run', '--archs=tiny',
       '--strategies=ir;0.3,0.8'], capture_output=True, text=True,
      check=False)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and 'sums to 1.1' in lines[0], proc.stderr


def test_precision_probe_reports_the_arithmetic_and_never_raises():
  exact = precision_probe.probe('float32', 64)
  assert exact['matmul_rel_error'] < 1e-5 and exact['conv_rel_error'] < 1e-5
  assert exact['matmul_ms'] > 0
  assert 'error' in precision_probe.probe('float8', 64)
  # A dot algorithm a backend lacks is reported, not raised (TF32 on CPU).
  tf32 = precision_probe.probe('TF32_TF32_F32', 64)
  assert 'matmul_rel_error' in tf32 or 'matmul_error' in tf32
  # bfloat16 operands (7 mantissa bits), on XLA:CPU through the dense layers'
  # own casts.
  bf16 = precision_probe.probe('BF16_BF16_F32', 64)
  assert 1e-3 < bf16['matmul_rel_error'] < 3e-2, bf16


@pytest.mark.parametrize('part', profile.PARTS)
def test_profile_summarises_where_a_chunk_spends_its_time(tmp_path, part):
  result = profile.profile(TINY, '0.5,0.5', 1, iters=3, rows=64,
                           trace_dir=str(tmp_path), top=4, part=part)
  assert result['part'] == part
  assert result['wall_ms_per_iter'] > 0 and result['lines']
  for line in result['lines']:
    assert line['events_per_iter'] > 0
    # A timeline line is busy at most the whole traced chunk.
    assert 0 < line['busy_ms_per_iter'] <= 1.05 * result['wall_ms_per_iter']
    assert 0 < len(line['top_kinds']) <= 4
  busiest = result['lines'][0]['top_events'][0]
  assert busiest['us_per_iter'] > 0 and busiest['calls_per_iter'] > 0
  assert 'ms per iteration' in profile.report(result)


def test_replay_update_alone_updates_the_classifier_only():
  setup = bench.task2_chunk(TINY, '0.5,0.5', 2, iters=2, rows=64)
  update = bench.replay_update(setup)
  before = setup.state.classifier
  after, _ = update.chunk(before)
  chex.assert_trees_all_equal_shapes_and_dtypes(after, before)
  # Both vmapped seeds' head moved (the replay's distillation gradient).
  moved = abs(after.params['head']['kernel'] - before.params['head']['kernel'])
  assert (moved.max(axis=(1, 2)) > 0).all()
  with pytest.raises(ValueError, match='part must be one of'):
    profile.profile(TINY, 'ir', 1, iters=1, rows=64, trace_dir='/tmp',
                    part='generator')


def test_profile_helpers():
  assert profile.kind('loop_add_fusion_12') == 'loop_add_fusion'
  assert profile.kind('ynn_fusion.44') == 'ynn_fusion'
  assert profile.kind('copy') == 'copy'
  # Overlapping and nested events count once.
  assert profile._busy_ns([(0, 10), (5, 20), (6, 8), (30, 40)]) == 30


# Bad flags of benchmarks.profile: tests/test_experiments.py's _BAD_INPUT.


def test_pretrain_benchmark_reports_the_floor_and_the_parts():
  record = pretrain_bench.measure('tiny', 'float32', 'patches', images=600,
                                  repeats=1, epoch=True)
  assert record['steps_per_epoch'] == 2  # 600 images, batch 256
  assert record['step_flops'] > 0 and record['matmul_gflops'] > 0
  assert record['floor_s'] == pytest.approx(
      record['steps_per_epoch'] * record['step_flops']
      / (record['matmul_gflops'] * 1e9))
  assert record['of_floor'] == pytest.approx(record['epoch_s']
                                             / record['floor_s'])
  assert set(record['parts_ms']) == {
      'batch', 'extractor_forward', 'extractor_forward_backward',
      'dense_forward_backward', 'optimizer', 'step'}
  assert all(v > 0 for v in record['parts_ms'].values())


def test_the_shell_scripts_parse():
  # The GPU scripts run where a mistake costs a lent machine's minutes.
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  scripts = [os.path.join(d, f) for d in ('benchmarks', 'reported')
             for f in sorted(os.listdir(os.path.join(root, d)))
             if f.endswith('.sh')]
  assert len(scripts) >= 5
  for script in scripts:
    proc = subprocess.run(['bash', '-n', os.path.join(root, script)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, (script, proc.stderr)
