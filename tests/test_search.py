"""The strategy search: its grid, ranking, Pareto front and paired
differences, and `experiments.search` end to end on tiny runs."""

import json
import os

import numpy as np
import pytest

from plr_jax.eval import search
from plr_jax.models import arch as arch_lib
from plr_jax.train import strategy
from tests import binaries
from tests import fake_data


def test_simplex_grid_covers_the_simplex_once():
  two = strategy.simplex_grid(2, 0.1)
  assert len(two) == 11 and two[0] == (1.0, 0.0) and two[-1] == (0.0, 1.0)
  # The paper's fractions come out exactly (the same run ids).
  assert (0.3, 0.7) in two and (0.7, 0.3) in two
  three = strategy.simplex_grid(3, 0.25)
  assert len(three) == 15 == len(set(three))  # C(4 + 2, 2)
  assert all(abs(sum(s) - 1) < 1e-12 for s in three)
  assert len(strategy.simplex_grid(3, 0.1)) == 66
  with pytest.raises(ValueError, match='grid step must divide 1'):
    strategy.simplex_grid(2, 0.3)


def test_pareto_front():
  costs = [1.0, 0.9, 0.8, 0.7, 0.85]
  accuracies = [0.70, 0.71, 0.69, 0.60, 0.69]
  # 0.85 at 0.69 is dominated by 0.8 at 0.69; 1.0 at 0.70 by 0.9 at 0.71.
  assert search.pareto_front(costs, accuracies) == [False, True, True, True,
                                                    False]
  assert search.pareto_front([1.0, 1.0], [0.5, 0.5]) == [True, True]


def _record(seeds, accuracies):
  return {'per_seed': [{'seed': s, 'average_accuracy': a}
                       for s, a in zip(seeds, accuracies)]}


def test_paired_difference_uses_the_seeds_both_ran():
  ir = _record([0, 1, 2], [0.70, 0.60, 0.65])
  other = _record([0, 1, 3], [0.72, 0.61, 0.99])
  mean, sem = search.paired_difference(other, ir)
  assert mean == pytest.approx(0.015)
  assert sem == pytest.approx(np.std([0.02, 0.01], ddof=1) / np.sqrt(2))


def test_replay_flops_fall_with_deeper_replay():
  arch = arch_lib.get_arch('tiny')
  ir = search.replay_flops(arch, (1.0, 0.0), 32)
  deep = search.replay_flops(arch, (0.0, 1.0), 32)
  assert ir > deep > 0


def test_search_binary_runs_ranks_and_resumes(tmp_path):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=10, per_class_test=4)
  workdir = str(tmp_path / 'search')
  flags = ['--protocol=table1', '--preset=tiny', '--grid=0.5',
           '--named=false', f'--workdir={workdir}', f'--data_dir={data_dir}',
           '--seeds=0,1', '--set=data_label=fake']
  listed, = binaries.run_many([('experiments.search', flags + ['--list'])])
  assert listed.returncode == 0, listed.stderr[-2000:]
  lines = listed.stdout.splitlines()
  assert 'preset tiny, 2 seeds, 2 tasks x 20 iterations' in lines[0]
  # IR, the paper's three ARCH1 strategies, and the grid's [0, 1] ([1, 0]
  # and [0.5, 0.5] are already there).
  ids = [line.split(':')[0] for line in lines[1:-1]]
  assert ids == ['table1_arch1_ir', 'table1_arch1_0.7_0.3',
                 'table1_arch1_0.5_0.5', 'table1_arch1_0.3_0.7',
                 'table1_arch1_0_1'], lines
  assert 'R (paper) 29.4%' in lines[5] and 'about' in lines[5]
  assert 'once for all' in lines[-1]  # task 1 counted once in the total
  assert not os.path.exists(workdir)  # --list runs nothing
  ran, = binaries.run_many([
      ('experiments.search',
       flags + ['--rows=table1_arch1_ir,table1_arch1_0_1'])])
  assert ran.returncode == 0, ran.stderr[-2000:]
  table = json.load(open(os.path.join(workdir, 'results.json')))
  assert [r['run_id'] for r in table['rows']] and len(table['rows']) == 2
  assert table['pending'] == ['table1_arch1_0.7_0.3', 'table1_arch1_0.5_0.5',
                              'table1_arch1_0.3_0.7']
  by_id = {r['run_id']: r for r in table['rows']}
  ir, deep = by_id['table1_arch1_ir'], by_id['table1_arch1_0_1']
  assert ir['vs_ir'] == 0 and ir['origin'] == 'ir' and deep['origin'] == 'grid'
  assert ir['replay_flops'] > deep['replay_flops'] > 0
  assert deep['r_exact'] < ir['r_exact'] == 1
  accuracies = [r['accuracy'] for r in table['rows']]
  assert accuracies == sorted(accuracies, reverse=True)
  assert deep['pareto']  # the cheapest is never dominated
  md = open(os.path.join(workdir, 'results.md')).read()
  assert md.startswith('# Strategy search') and 'Not finished yet (3)' in md
  assert '**Not comparable with the paper:** tiny preset' in md
  for fmt in ('png', 'pdf'):
    assert os.path.getsize(os.path.join(workdir, 'figures', f'pareto.{fmt}'))
  # Rerun: the finished runs are taken as they are, the table rewritten;
  # a row's record keeps the provenance and program time of the process
  # that trained it.
  row_json = os.path.join(workdir, 'table1_arch1_ir', 'results.json')
  trained_by = json.load(open(row_json))['provenance']
  timing = json.load(open(row_json))['timing']
  again, = binaries.run_many([
      ('experiments.search',
       flags + ['--rows=table1_arch1_ir,table1_arch1_0_1'])])
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'finished in an earlier run' in again.stderr
  assert json.load(open(os.path.join(workdir, 'results.json'))) == table
  assert json.load(open(row_json))['provenance'] == trained_by
  assert json.load(open(row_json))['timing'] == timing


def _without_timing(path):
  with open(path) as fh:
    record = json.load(fh)
  record.pop('timing')
  record.pop('provenance')
  return record


def _logs(run_dir):
  out = {}
  for root, _, files in os.walk(os.path.join(run_dir, 'logs')):
    for name in files:
      if name.endswith('.csv'):
        with open(os.path.join(root, name)) as fh:
          out[os.path.relpath(os.path.join(root, name), run_dir)] = fh.read()
  return out


@pytest.mark.parametrize('protocol, rows, extra', [
    ('table1', ['table1_arch1_ir', 'table1_arch1_0.3_0.7'], []),
    ('fig5', ['fig5_fmnist_ir', 'fig5_fmnist_0.2_0.3_0.5'], []),
    ('table2', ['table2_arch1_ir', 'table2_arch1_0.3_0.7'], []),
    # A generator that learns only the strategy's levels in task 1 too.
    ('fig5', ['fig5_fmnist_ir', 'fig5_fmnist_0.2_0.3_0.5'],
     ['--set=continual.recon_levels=used']),
])
def test_a_shared_first_task_gives_the_results_of_runs_alone(
    tmp_path, protocol, rows, extra):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=6, per_class_test=2)
  fake_data.write_cifar100(data_dir, per_class_train=2, per_class_test=1)
  fake_data.write_fashion_mnist(data_dir, per_class_train=8, per_class_test=2)
  flags = [f'--protocol={protocol}', '--preset=tiny', '--named=false',
           f'--data_dir={data_dir}', '--seeds=0,1', '--set=data_label=fake',
           f'--rows={",".join(rows)}'] + extra
  shared, alone = binaries.run_many([
      ('experiments.search', flags + [f'--workdir={tmp_path / "shared"}']),
      ('experiments.search', flags + [f'--workdir={tmp_path / "alone"}',
                                      '--noshare_first_task'])])
  assert shared.returncode == 0, shared.stderr[-2000:]
  assert alone.returncode == 0, alone.stderr[-2000:]
  taken = shared.stderr.count('task 1 taken from')
  assert taken == (0 if extra else 1), shared.stderr[-2000:]
  assert 'task 1 taken from' not in alone.stderr
  for row in rows:
    a, b = tmp_path / 'shared' / row, tmp_path / 'alone' / row
    assert (_without_timing(a / 'results.json')
            == _without_timing(b / 'results.json')), row
    assert _logs(a) == _logs(b), row
  timing = json.load(open(tmp_path / 'shared' / rows[1] / 'results.json')
                     )['timing']
  if not extra:
    assert timing['first_task_from'] == [str(tmp_path / 'shared' / rows[0])]
    assert timing['processes'] == 2 and timing['wall_time_complete']


def _row(run_id, origin, vs_ir, pareto):
  return {'run_id': run_id, 'origin': origin, 'vs_ir': vs_ir,
          'pareto': pareto}


def test_strategies_that_split_the_replay_batch_alike_run_once():
  """ARCH1's cumulative_weights [0.3985, 0.6015] and the grid's [0.4, 0.6]
  give 102 + 154 of 256 rows: one run, named for both; a grid point equal
  to IR adds no name; a level used by one and not the other keeps both."""
  arch1 = arch_lib.with_classes(arch_lib.get_arch('arch1'), 10)  # Table 1
  rule = strategy.named_strategy('cumulative_weights', arch1)
  entries = [(search.Candidate('ir', 'IR', (1.0, 0.0), 'ir'), 0),
             (search.Candidate('cw', 'cumulative_weights', rule, 'rule'), 1),
             (search.Candidate('g1', 'S=[1, 0]', (1.0, 0.0), 'grid'), 2),
             (search.Candidate('g4', 'S=[0.4, 0.6]', (0.4, 0.6), 'grid'), 3),
             (search.Candidate('g5', 'S=[0.5, 0.5]', (0.5, 0.5), 'grid'), 4)]
  merged = search.merge_alike(entries, 256)
  assert [(c.run_id, c.name, extra) for c, extra in merged] == [
      ('ir', 'IR', 0), ('cw', 'cumulative_weights = S=[0.4, 0.6]', 1),
      ('g5', 'S=[0.5, 0.5]', 4)]
  # 1 replayed row in 1000 at level 1 is no row of 256, but a generator
  # that learns the used levels learns level 1: not the same run as IR.
  tiny_share = search.Candidate('t', 'S=[0.999, 0.001]', (0.999, 0.001),
                                'grid')
  assert len(search.merge_alike(entries[:1] + [(tiny_share, 5)], 256)) == 2


def test_screen_keeps_ir_the_paper_the_close_and_the_front():
  rows = [_row('ir', 'ir', 0.0, False), _row('paper', 'paper', -0.09, False),
          _row('close', 'grid', -0.019, False),
          _row('far', 'grid', -0.021, False),
          _row('front', 'rule', -0.2, True),
          _row('unknown', 'grid', float('nan'), False)]
  assert search.screen_select(rows, 2.0) == ['ir', 'paper', 'close', 'front']
  assert search.screen_select(rows, 0.0) == ['ir', 'paper', 'front']


def test_a_screened_search_spends_all_seeds_on_the_chosen_only(tmp_path):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=6, per_class_test=2)
  workdir = tmp_path / 'search'
  ran, = binaries.run_many([('experiments.search', [
      '--protocol=table1', '--preset=tiny', '--grid=0.25',
      f'--workdir={workdir}', f'--data_dir={data_dir}', '--seeds=3,4',
      # Below 0: only strategies that beat IR on the seed by that much.
      '--set=data_label=fake', '--screen=-1'])])
  assert ran.returncode == 0, ran.stderr[-2000:]
  screen = json.load(open(workdir / 'screen' / 'results.json'))
  # IR, the paper's 3, 3 rules (`basic` is IR; input_size splits the 32-row
  # replay batch as cumulative_weights does, 13 + 19, and runs as it), the
  # grid's [0.75, 0.25], [0.25, 0.75] and [0, 1].
  assert len(screen['rows']) == 10 and not screen['pending']
  assert 'cumulative_weights = input_size' in [r['name']
                                               for r in screen['rows']]
  assert all(r['seeds'] == [3] for r in screen['rows'])
  chosen = search.screen_select(screen['rows'], -1.0)
  table = json.load(open(workdir / 'results.json'))
  assert sorted(r['run_id'] for r in table['rows']) == sorted(chosen)
  assert all(r['seeds'] == [3, 4] for r in table['rows'])
  left = {r['run_id'] for r in screen['rows']} - set(chosen)
  assert left
  for run_id in left:  # screened out: never run on all seeds
    assert not (workdir / run_id).exists()
  md = open(workdir / 'results.md').read()
  assert '**Screened:** every strategy first ran on seed 3 alone' in md
  assert f'{len(left)} ran on seed 3 only' in md


def test_shards_split_the_strategies_between_processes(tmp_path):
  data_dir = str(tmp_path / 'data')
  fake_data.write_cifar10(data_dir, per_class_train=6, per_class_test=2)
  workdir = tmp_path / 'search'
  flags = ['--protocol=table1', '--preset=tiny', '--grid=0.5',
           '--named=false', f'--workdir={workdir}', f'--data_dir={data_dir}',
           '--seeds=0', '--set=data_label=fake']
  bad, first, second, whole = binaries.run_many([
      ('experiments.search', flags + ['--shard=2/2']),
      ('experiments.search', flags + ['--shard=0/2']),
      ('experiments.search', flags + ['--shard=1/2']),
      ('experiments.search', flags)])
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --shard must be i/n with 0 <= i < n, got '2/2'")
  assert first.returncode == second.returncode == whole.returncode == 0
  ran = [[line.split(': ')[-1] for line in p.stderr.splitlines()
          if line.startswith('== Strategy search')] for p in (first, second)]
  # IR, [0.7, 0.3], [0.5, 0.5], [0.3, 0.7], [0, 1]: alternately.
  assert ran == [['table1_arch1_ir', 'table1_arch1_0.5_0.5',
                  'table1_arch1_0_1'],
                 ['table1_arch1_0.7_0.3', 'table1_arch1_0.3_0.7']]
  assert 'finished in an earlier run' in whole.stderr
  assert not json.load(open(workdir / 'results.json'))['pending']


def test_collect_search_copies_what_the_search_ran(tmp_path, monkeypatch):
  import importlib.util  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  spec = importlib.util.spec_from_file_location(
      'collect_search', os.path.join(root, 'reported', 'collect_search.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  monkeypatch.setattr(module, 'HERE', str(tmp_path / 'reported'))
  work = tmp_path / 'search'
  records = {
      'ran': {'provenance': {'command': 'python -m experiments.search x'}},
      'shared': {},  # a finished Table 1 row the search took as it was
      'elsewhere': {'provenance': {'command': 'python -m experiments.'
                                              'reproduce table1'}}}
  for run_id, record in records.items():
    (work / run_id).mkdir(parents=True)
    (work / run_id / 'results.json').write_text(json.dumps(record))
  (work / 'screen' / 'x').mkdir(parents=True)
  (work / 'results.md').write_text('# ranking')
  assert module.collect(str(work), 'search_x') == ['ran']
  out = tmp_path / 'reported' / 'search_x'
  assert sorted(os.listdir(out)) == ['SHARED.md', 'ran.json', 'results.md']
  assert '`elsewhere`' in (out / 'SHARED.md').read_text()
  assert '`shared`' in (out / 'SHARED.md').read_text()


def test_the_same_ranking_draws_the_same_files(tmp_path):
  """A rerun of a search leaves its committed figure unchanged: the PDF
  carries no creation date."""
  from plr_jax.eval import plots  # pylint: disable=g-import-not-at-top
  rows = json.load(open(os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      'reported', 'search_table1_arch1', 'results.json')))['rows']
  first = plots.pareto_figure(rows, str(tmp_path / 'a'), 'a search')
  second = plots.pareto_figure(rows, str(tmp_path / 'b'), 'a search')
  for a, b in zip(first, second):
    assert open(a, 'rb').read() == open(b, 'rb').read(), a
