"""Every binary end to end with --preset=tiny on fake data in the real file
formats, its results.json validated; bad input gets one line and exit 2."""

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from plr_jax.data import datasets as data
from tests import binaries
from tests import fake_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(binary, *args, expect=0):
  env = {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'}
  proc = subprocess.run(
      [sys.executable, '-m', f'experiments.{binary}', *args], cwd=ROOT,
      env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == expect, proc.stderr[-3000:]
  return proc


def _run_all(*invocations):
  """Each `(binary, arg, ...)` in turn, every one expected to exit 0, as
  children of one interpreter (tests/binaries.py); their `Result`s."""
  results = binaries.run_many(
      [(f'experiments.{binary}', args) for binary, *args in invocations])
  for (binary, *args), proc in zip(invocations, results):
    assert proc.returncode == 0, (binary, args, proc.stderr[-3000:])
  return results


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('data')
  fake_data.write_cifar10(root, per_class_train=10, per_class_test=4)
  fake_data.write_cifar100(root, per_class_train=4, per_class_test=2)
  fake_data.write_fashion_mnist(root, per_class_train=12, per_class_test=4)
  return str(root)


@functools.lru_cache(maxsize=None)
def _results(workdir):
  with open(os.path.join(workdir, 'results.json')) as fh:
    return json.load(fh)


def _check_record(record, tasks, seeds, mfid):
  assert record['seeds'] == seeds
  assert record['data'] == 'fake'
  assert len(record['per_seed']) == len(seeds)
  for seed in record['per_seed']:
    matrix = np.asarray(seed['accuracy_matrix'])
    assert matrix.shape == (tasks, tasks)
    assert np.all((matrix >= 0) & (matrix <= 1))
    assert seed['average_accuracy'] == pytest.approx(matrix[-1].mean())
    assert all(np.isfinite(v) for v in seed['final_losses'].values())
    assert ('mfid' in seed) == mfid
    if mfid:
      assert np.isfinite(seed['mfid']) and seed['mfid'] >= 0
  accs = [s['average_accuracy'] for s in record['per_seed']]
  assert record['average_accuracy_mean'] == pytest.approx(np.mean(accs))
  assert 0 < record['r_paper'] <= 1 and 0 < record['r_exact'] <= 1
  assert record['timing']['wall_time_s'] > 0
  assert record['config']['seeds'] == seeds
  assert record['config']['continual']['batch_size'] == 32  # tiny preset


def test_split_cifar100_pretrains_then_runs(data_dir, tmp_path):
  workdir = str(tmp_path / 'c100')
  out = str(tmp_path / 'plots')
  # Three runs, one after another, forked from one interpreter
  # (tests/binaries.py): PLR with pretraining, IR reusing its extractor,
  # the plots of both.
  proc, ir_proc, plots_proc = _run_all(
      ('split_cifar100', f'--workdir={workdir}', f'--data_dir={data_dir}',
       '--preset=tiny', '--seeds=0,1', '--strategy=0.3,0.7',
       '--set=data_label=fake'),
      ('split_cifar100', f'--workdir={workdir}_ir',
       f'--extractor_dir={workdir}/extractor', f'--data_dir={data_dir}',
       '--preset=tiny', '--seeds=0', '--strategy=ir', '--mfid=false',
       '--set=data_label=fake'),
      ('plots', workdir, f'{workdir}_ir', f'--out={out}', '--format=png,pdf'))
  assert 'pretrain epoch 1/1' in proc.stderr
  assert 'task 10/10 iter 20/20' in proc.stderr  # progress lines
  record = _results(workdir)
  _check_record(record, tasks=10, seeds=[0, 1], mfid=True)
  # Each seed's accuracy per task is reported as each task ends.
  for seed in record['per_seed']:
    row = seed['accuracy_matrix'][1][:2]
    assert (f'[seed {seed["seed"]}] after task 2/10: accuracy per task '
            f'{100 * row[0]:.1f} {100 * row[1]:.1f} |') in proc.stderr
  assert record['strategy'] == [0.3, 0.7]
  assert record['extractor']['dataset'] == 'cifar10'
  assert os.path.isfile(os.path.join(workdir, 'extractor', 'meta.json'))
  assert 'S=[0.3, 0.7]' in open(os.path.join(workdir, 'results.md')).read()
  # The feature cache is keyed by the extractor's fingerprint.
  cached = os.listdir(os.path.join(workdir, 'features'))
  assert any(record['extractor']['fingerprint'] in f for f in cached)
  # Another run reuses the extractor instead of pretraining again.
  assert 'using extractor' in ir_proc.stderr
  assert 'pretrain epoch' not in ir_proc.stderr

  for name in ('heatmap_0.png', 'heatmap_1.pdf', 'accuracy_per_task.png',
               'accuracy_vs_r.pdf', 'summary.md'):
    assert os.path.getsize(os.path.join(out, name)) > 0, plots_proc.stdout
  # A tiny run says so wherever its numbers go; untrained cells are blank.
  assert record['comparable'] is False
  assert record['departures'][0].startswith('tiny preset'), record
  results_md = open(os.path.join(workdir, 'results.md')).read()
  assert results_md.startswith('**Not comparable with the paper:** tiny '
                               'preset'), results_md
  assert '| 1 | ' in results_md and '|  |' in results_md  # blank cells
  assert 'R (exact): ' in results_md
  summary = open(os.path.join(out, 'summary.md')).read()
  assert summary.startswith('**Not comparable with the paper:** tiny')


def test_split_cifar10_buffer_replay(data_dir, tmp_path):
  # A run that pretrains its extractor; the extractor exported in the
  # portable (committed) form; a run on that form: the same results.
  workdir = str(tmp_path / 'c10')
  portable = str(tmp_path / 'portable')
  again = str(tmp_path / 'c10_again')
  none = str(tmp_path / 'c10_none')
  flags = (f'--data_dir={data_dir}', '--preset=tiny', '--arch=arch2',
           '--strategy=0.5,0.3,0.2', '--set=data_label=fake', '--seeds=3')
  _run_all(('split_cifar10', f'--workdir={workdir}', *flags),
           ('export_extractor', f'--source={workdir}/extractor',
            f'--dest={portable}', '--command=split_cifar10 (test)',
            '--code=test'),
           ('split_cifar10', f'--workdir={again}',
            f'--extractor_dir={portable}', *flags),
           ('split_cifar10', f'--workdir={none}',
            f'--extractor_dir={portable}', *flags, '--replay=none'))
  named = str(tmp_path / 'c10_layer_idx')
  probe_json = str(tmp_path / 'probe.json')
  rule, probe = _run_all(
      ('split_cifar10', f'--workdir={named}', f'--extractor_dir={portable}',
       *[f for f in flags if not f.startswith('--strategy')],
       '--strategy=layer_idx'),
      ('probe_extractor', f'--extractor_dir={portable}',
       f'--data_dir={data_dir}', '--images=20', '--steps=30',
       f'--out={probe_json}'))
  # The extractor probe: its batch norm against the data it was trained on
  # (tiny ARCH2: five convolutions of 4 channels, batch norm after the first
  # four), a linear probe.
  report = json.load(open(probe_json))
  assert [row['layer'] for row in report['batch_norm']] == [1, 2, 3, 4]
  shift, ratio = report['batch_norm'][0]['mean_shift'], report['batch_norm'][
      0]['var_ratio']
  assert 0 <= shift[0] <= shift[1] and 0 < ratio[1] <= ratio[0] <= ratio[2]
  assert 0 <= report['linear_probe']['test_accuracy'] <= 1
  # 10 training images per class, 16 features each: mostly separable.
  assert report['linear_probe']['train_accuracy'] > 0.3
  assert 'linear probe (30 steps): train' in probe.stdout, probe.stdout
  # A named rule: its fractions and R printed, the rule's name in results.
  assert ('ARCH2 layer_idx: fractions 0.1667, 0.3333, 0.5 per level, '
          'R (paper) ') in rule.stderr, rule.stderr[-2000:]
  assert _results(named)['strategy_name'] == 'layer_idx'
  np.testing.assert_allclose(_results(named)['strategy'], [1 / 6, 2 / 6, 3 / 6])
  record = _results(workdir)
  # No replay (the lower bound): no replay cost, no replay loss; task 1 is
  # trained exactly as with the buffer (nothing is replayed there).
  lower = _results(none)
  assert lower['strategy_name'] == 'no replay'
  assert lower['r_paper'] == lower['r_exact'] == 0
  assert lower['config']['continual']['replay'] == 'none'
  assert 'classifier/replay_loss' not in lower['per_seed'][0]['final_losses']
  assert 'classifier/replay_loss' in record['per_seed'][0]['final_losses']
  assert (lower['per_seed'][0]['accuracy_matrix'][0]
          == record['per_seed'][0]['accuracy_matrix'][0])
  assert '| ARCH2 | no replay | 0.0% | 0.0% |' in open(
      os.path.join(none, 'results.md')).read()
  _check_record(record, tasks=2, seeds=[3], mfid=False)
  # The authors' rule by default: np.random.seed(3); permutation(10).
  permutation = np.random.RandomState(3).permutation(10)
  assert record['per_seed'][0]['class_order'] == np.argsort(
      permutation).tolist()
  assert record['config']['continual']['class_order_rule'] == 'authors'
  assert record['config']['continual']['replay'] == 'buffer'
  assert record['config']['continual']['arch']['num_classes'] == 10
  assert sorted(os.listdir(portable)) == ['extractor.npz', 'meta.json']
  meta = json.load(open(os.path.join(portable, 'meta.json')))
  assert meta['command'] == 'split_cifar10 (test)' and meta['machine']
  assert meta['fingerprint'] == record['extractor']['fingerprint']
  assert _results(again)['per_seed'] == record['per_seed']
  assert record['departures'] == ['tiny preset (small networks, 20 '
                                  'iterations per task, batch 32)']
  # reproduce gives a row the extractor of its architecture, and refuses a
  # directory without one before writing anything.
  table = str(tmp_path / 'table1')
  rows = ('table1', f'--workdir={table}', f'--data_dir={data_dir}',
          '--preset=tiny', '--seeds=3', '--set=data_label=fake')
  done, refused = binaries.run_many([
      ('experiments.reproduce',
       (*rows, '--rows=table1_arch2_0.5_0.3_0.2',
        f'--extractor_dirs={portable}')),
      ('experiments.reproduce',
       (*rows, f'--workdir={table}_none', f'--extractor_dirs={tmp_path}'))])
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'pretrain epoch' not in done.stderr
  row = _results(os.path.join(table, 'table1_arch2_0.5_0.3_0.2'))
  assert row['per_seed'] == record['per_seed']
  assert refused.returncode == 2, refused.stderr[-2000:]
  assert 'holds no extractor' in refused.stderr
  assert not os.path.exists(f'{table}_none')


@pytest.mark.parametrize('setup, strategy, replay, name', [
    ('ir_frozen', '0.5,0.3,0.2', 'generative',
     'S=[0.5, 0.3, 0.2], encoder frozen after task 1'),
    ('gr_frozen', 'ir', 'images', 'GR, convolutions frozen after task 1'),
])
def test_fashion_mnist_setups(data_dir, tmp_path, setup, strategy, replay,
                              name):
  workdir = str(tmp_path / 'fm')
  _run('fashion_mnist', f'--workdir={workdir}', f'--data_dir={data_dir}',
       '--preset=tiny', '--seeds=0', f'--setup={setup}',
       f'--strategy={strategy}', '--set=data_label=fake')
  record = _results(workdir)
  _check_record(record, tasks=5, seeds=[0], mfid=False)
  assert record['config']['continual']['extractor_trainable_until'] == 1
  assert record['config']['continual']['replay'] == replay
  # The tables name the setup, not just the level the replay enters at.
  assert record['strategy_name'] == name
  with open(os.path.join(workdir, 'results.md')) as fh:
    assert name in fh.read()


def test_pretrain_and_ablation(data_dir, tmp_path):
  workdir = str(tmp_path / 'pre')
  ablation = str(tmp_path / 'fig4')
  _run_all(
      ('pretrain', f'--workdir={workdir}', f'--data_dir={data_dir}',
       '--preset=tiny', '--seeds=0', '--num_classes=4', '--noaugment'),
      ('pretraining_ablation', f'--workdir={ablation}',
       f'--data_dir={data_dir}', '--preset=tiny', '--seeds=0',
       '--class_counts=0,2', '--augment=true', '--iters_per_task=5',
       '--set=data_label=fake'))
  meta = json.load(open(os.path.join(workdir, 'meta.json')))
  assert len(meta['classes']) == 4 and meta['augment'] is False
  assert 0 <= meta['test_accuracy'] <= 1
  summary = json.load(open(os.path.join(ablation, 'results.json')))
  assert [r['run_id'] for r in summary['rows']] == [
      'fig4_arch1_k0_aug0', 'fig4_arch1_k2_aug1']
  assert all(0 <= r['ours'] <= 1 for r in summary['rows'])
  assert all(r['data'] == 'fake' for r in summary['rows'])


# Bad input and the one line it must give: (binary, flags, message); each
# case starts from `_base_flags` of its binary, its own flags replacing them.
_BAD_INPUT = [
    ('split_cifar10', ['--replay=generative'], '--replay: Table 1 replays a buffer or nothing'),
    ('split_cifar100', ['--replay=images'], '--replay: Table 2 replays generated features or nothing'),
    ('split_cifar100', ['--strategy=0.5,0.6'], '--strategy: strategy [0.5,0.6] sums to 1.1, not 1'),
    ('split_cifar100', ['--strategy=0.5,0.3,0.2'], '--strategy: strategy has 3 entries but arch1 has 2 levels'),
    ('split_cifar100', ['--strategy=-0.5,1.5'], 'is negative'),
    ('split_cifar100', ['--seeds='], '--seeds is empty'),
    ('split_cifar100', ['--seeds=a,b'], '--seeds must be integers'),
    ('split_cifar100', ['--iters_per_task=0'], '--iters_per_task: iters_per_task must be positive'),
    ('split_cifar100', ['--arch=arch9'], "--arch: unknown arch 'arch9'; choose one of"),
    ('split_cifar100', ['--preset=huge'], "--preset: unknown preset 'huge'; choose one of"),
    ('split_cifar100', ['--workdir=/proc/plr_cannot_write'], 'is not writable'),
    ('split_cifar100', ['--data_dir=/nonexistent'], 'cifar100 not found'),
    ('split_cifar100', ['--precision=fp8'], "got 'fp8'"),
    ('split_cifar100', ['--set=continual.scan_unroll=0'], 'scan_unroll must be positive'),
    ('split_cifar100', ['--set=loop.vmap_seeds=maybe'], "'loop.vmap_seeds' takes true or false"),
    ('split_cifar100', ['--set=bogus=1'], "unknown config field 'bogus'"),
    ('split_cifar100', ['--seeds=0,0'], '--seeds: seeds must be distinct; repeated: 0'),
    ('split_cifar100', ['--bogus_flag=1'], "'bogus_flag'; --help lists the flags"),
    ('split_cifar100', ['--recon_levels=every'], '--recon_levels: recon_levels must be one of all, only_last_layer'),
    ('split_cifar100', ['--replay_targets=firm'], '--replay_targets: replay targets must be "soft" or "hard"'),
    ('fashion_mnist', ['--num_tasks=3'], '--num_tasks: 10 classes do not split into 3 equal tasks'),
    ('split_cifar100', ['--class_order=sorted'], '--class_order: class order must be one of'),
    ('fashion_mnist', ['--setup=gr_frozen', '--arch=fmnist_mlp'],
     'no convolutions to freeze'),
    ('diagnose', ['--setup=gr'], '--setup must be ir_frozen or ir_naive'),
    ('benchmarks.profile', ['--arch=tiny', '--strategy=0.3,0.8'],
     'sums to 1.1'),
]


def _base_flags(binary, workdir, data_dir):
  """What a bad-input case of `binary` adds to its own flags."""
  if binary == 'benchmarks.profile':  # synthetic data, writes nothing
    return {}
  base = {'--data_dir': data_dir, '--preset': 'tiny'}
  if binary != 'diagnose':  # diagnose has no workdir (only --out)
    base['--workdir'] = workdir
  return base


def test_bad_input_is_one_line_and_exit_2(data_dir, tmp_path):
  """Each case in a process of its own (forked from one interpreter that
  imported the libraries once: tests/binaries.py)."""
  invocations, workdirs = [], []
  for i, (binary, args, _) in enumerate(_BAD_INPUT):
    workdirs.append(tmp_path / f'w{i}')
    base = _base_flags(binary, str(workdirs[-1]), data_dir)
    for arg in args:
      base[arg.split('=')[0]] = arg.split('=', 1)[1]
    module = binary if '.' in binary else f'experiments.{binary}'
    invocations.append((module, [f'{k}={v}' for k, v in base.items()]))
  results = binaries.run_many(invocations)
  for (_, args, message), proc, workdir in zip(_BAD_INPUT, results, workdirs):
    assert proc.returncode == 2, (args, proc.stderr[-3000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert 'Traceback' not in proc.stderr, args
    # Nothing was written: the workdir is still absent.
    assert not os.path.exists(workdir), args


@pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST),
    reason='Debian dataset-fashion-mnist not installed (.ci/run installs it)')
def test_real_fashion_mnist_two_tasks_beats_chance(tmp_path):
  workdir = str(tmp_path / 'real')
  _run('fashion_mnist', f'--workdir={workdir}', '--preset=tiny',
       '--seeds=0', '--num_tasks=2', '--iters_per_task=1000')
  record = _results(workdir)
  assert record['data'] == 'exact'
  # Chance is 10% over the 10 classes.
  assert record['average_accuracy_mean'] > 0.3, record['per_seed']


def test_fashion_mnist_gr_without_convolutions(data_dir, tmp_path):
  """`fmnist_mlp`: GR with fully connected networks on the flat image."""
  workdir = str(tmp_path / 'mlp')
  _run('fashion_mnist', f'--workdir={workdir}', f'--data_dir={data_dir}',
       '--preset=tiny', '--seeds=0', '--setup=gr', '--arch=fmnist_mlp',
       '--set=data_label=fake')
  record = _results(workdir)
  _check_record(record, tasks=5, seeds=[0], mfid=False)
  assert record['config']['continual']['arch']['conv_channels'] == []
  assert record['config']['continual']['replay'] == 'images'
  # (The freezing setups refuse this arch: _BAD_INPUT.)


_OWN_FLAGS = {
    'split_cifar100': ('--strategy', '--arch', '--mfid', '--workdir',
                       '--seeds', '--set'),
    'split_cifar10': ('--strategy', '--arch', '--workdir'),
    'fashion_mnist': ('--setup', '--strategy', '--recon_levels'),
    'pretrain': ('--epochs', '--num_classes', '--crop_padding',
                 '--conv_backward', '--download'),
    'reproduce': ('--rows', '--list', '--extractor_dirs'),
    'plots': ('--out', '--format'),
    'export_extractor': ('--source', '--dest', '--command', '--code'),
    'import_extractor': ('--checkpoint', '--dest', '--arch'),
    'download': ('--data_dir', '--datasets'),
    'probe_extractor': ('--extractor_dir', '--data_dir', '--steps', '--out'),
    'search': ('--protocol', '--grid', '--named', '--list', '--rows'),
}


def test_help_lists_each_binarys_own_flags_and_exits_0_and_reproduce_lists_rows(
    tmp_path):
  # From another directory: the binaries do not depend on the clone's root.
  invocations = [(f'experiments.{binary}', ['--help'])
                 for binary in _OWN_FLAGS]
  invocations += [('experiments.reproduce', ['table1', '--list']),
                  ('experiments.reproduce', ['table9', '--list'])]
  results = binaries.run_many(invocations, cwd=tmp_path)
  for binary, proc in zip(_OWN_FLAGS, results):
    assert proc.returncode == 0, (binary, proc.stderr[-2000:])
    for flag in _OWN_FLAGS[binary]:
      name = flag.lstrip('-')
      assert (f'--{name}:' in proc.stdout or f'--[no]{name}:' in proc.stdout
              ), (binary, flag, proc.stdout)
    assert 'python -m experiments.' in proc.stdout, binary  # the docstring
    assert '(default:' in proc.stdout, binary
  table1, table9 = results[-2:]
  assert table1.returncode == 0, table1.stderr[-2000:]
  ids = [line.split(':')[0] for line in table1.stdout.splitlines()]
  # The paper's eight rows and each architecture's lower bound.
  assert len(ids) == 10 and len(set(ids)) == 10, table1.stdout
  # Every row is described, and no two alike.
  descriptions = [line.split(': ', 1)[1] for line in table1.stdout.splitlines()]
  assert len(set(descriptions)) == 10 and all(descriptions), table1.stdout
  assert 'table1_arch2_none: ARCH2 no replay, 3 seeds' in table1.stdout
  assert 'the paper: 70.6% +- 1.0' in table1.stdout
  assert 'table1_arch1_0.3_0.7' in ids, ids
  assert table9.returncode == 2, table9.stderr[-2000:]


def test_recon_levels_default_per_protocol():
  from experiments.configs import fig5  # pylint: disable=g-import-not-at-top
  from experiments.configs import table2  # pylint: disable=g-import-not-at-top
  def levels(cfg):
    return cfg.continual.recon_levels
  # Fashion-MNIST, 3 x 50: the measured better of the reference's two modes.
  assert levels(fig5.config('ir_frozen', '0.2,0.3,0.5')) == 'only_last_layer'
  assert levels(fig5.config('ir_naive')) == 'only_last_layer'
  # One level (the authors' network) or image replay: the same computation
  # either way; "all" as recorded before.
  assert levels(fig5.config('ir_frozen', preset='authors')) == 'all'
  assert levels(fig5.config('gr')) == 'all'
  assert levels(fig5.config('ir_frozen', recon_levels='all')) == 'all'
  # CIFAR-100: the authors' main scripts (--latent).
  assert levels(table2.config('arch2', '0.2,0.3,0.5')) == 'all'


def test_a_table_marks_rows_that_are_not_comparable(tmp_path):
  from experiments.configs import table1  # pylint: disable=g-import-not-at-top
  from plr_jax.eval import results as results_lib  # pylint: disable=g-import-not-at-top,line-too-long
  rows = table1.rows('tiny', seeds=(0,))[:2]
  record = {'average_accuracy_mean': 0.5, 'average_accuracy_sem': 0.0,
            'data': 'fake', 'departures': ['tiny preset (test)']}
  comparable = {**record, 'departures': []}
  for row, rec in zip(rows, (record, comparable)):
    os.makedirs(tmp_path / row.run_id)
    with open(tmp_path / row.run_id / 'results.json', 'w') as fh:
      json.dump(rec, fh)
  table = results_lib.write_table(str(tmp_path), 'T', rows)
  assert [r['comparable'] for r in table['rows']] == [False, True]
  text = open(tmp_path / 'results.md').read()
  assert text.startswith('**Not comparable with the paper:** tiny preset '
                         '(test).')
  lines = [l for l in text.splitlines() if l.startswith('| table1_')]
  assert '| not comparable |' in lines[0]
  assert '| -21.1 |' in lines[1]  # 50.0% against the paper's 71.1%


def test_bad_arguments_name_their_flag_by_field_not_by_message():
  from experiments import common  # pylint: disable=g-import-not-at-top
  from plr_jax import errors  # pylint: disable=g-import-not-at-top

  def build(fail):
    raise fail
  with pytest.raises(common.FlagError, match=r'^--num_tasks: strategy words'):
    common.preset_config(build, errors.FieldError('num_tasks',
                                                  'strategy words'))
  # A plain ValueError is not attributed to a flag by its wording.
  with pytest.raises(ValueError, match=r'^unknown arch x$') as raised:
    common.preset_config(build, ValueError('unknown arch x'))
  assert not isinstance(raised.value, common.FlagError)
