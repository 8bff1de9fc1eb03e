"""The benchmark's records carry what issue 4 asks for, with sane values."""

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
  assert '| tiny | 0.5,0.5 | 2 |' in bench.table(records)
