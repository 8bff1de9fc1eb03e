"""Writes reported/MANIFEST.md: one line per current record.

  python reported/manifest.py

A record's provenance (date, machine, code commit, command) is read from
its `provenance` field (results.json) or, for an extractor, from its
meta.json; records written before those fields existed take theirs from
`BEFORE` below (from reported/README.md and the notes of their sessions).
`tests/test_docs.py` fails when the manifest is out of date.
"""

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_AMD_AVX2 = '2-core AMD EPYC KVM VM (AVX2), CPU, jax 0.10.2'
_FM = 'python -m experiments.fashion_mnist '
BEFORE = {
    'fig5_gr_authors_command': ('2026-12-02', _AMD_AVX2, '3f1115e',
                                _FM + '--setup=gr --preset=authors --seeds=0'),
    'fig5_gr_authors_setup': (
        '2026-12-03', 'seed 0: as fig5_gr_authors_command; seeds 1, 2: '
        '2-core Intel Xeon KVM VM (AVX512-BF16), CPU, jax 0.10.2',
        '3f1115e (seed 0), 7328658 (seeds 1, 2)',
        _FM + '--setup=gr --preset=authors --seeds=0,1,2 '
        '--set=loop.vmap_seeds=false'),
    'fig5_ir_frozen_authors_setup': (
        '2026-12-02', _AMD_AVX2, '3f1115e',
        _FM + '--setup=ir_frozen --preset=authors --seeds=0,1,2'),
    'fig5_gr_frozen_authors_setup': (
        '2026-12-02', _AMD_AVX2, '3f1115e',
        _FM + '--setup=gr_frozen --preset=authors --seeds=0'),
    'fig5_ir_naive_authors_setup': (
        '2026-12-02', _AMD_AVX2, '5ea5f77',
        _FM + '--setup=ir_naive --preset=authors --seeds=0'),
}
_EPYC_BF16 = 'cpu (AMD EPYC, 2 cores, avx512_bf16), jax 0.10.2'
_TABLE1 = ('python -m experiments.reproduce table1 --workdir=RUNS/{work} '
           '--data_dir=DATA --rows={row} --seeds=0,1,2{extra}')


def _table1_row(row: str, ours: bool = True) -> None:
  """A Table 1 row's record: on our committed extractor (`<row>_100ep`) or
  on the authors' imported one (`<row>_bir`); code 8b7ab8c."""
  if ours:
    BEFORE[f'{row}_100ep'] = ('2026-12-06', _EPYC_BF16, '8b7ab8c', _TABLE1.format(
        work='table1', row=row, extra=' (the extractors: '
        'extractors/arch1_cifar10_100ep, arch2_cifar10_100ep)'))
  else:
    BEFORE[f'{row}_bir'] = ('2026-12-06', _EPYC_BF16, '8b7ab8c', _TABLE1.format(
        work='table1_bir', row=row, extra=' --extractor_dirs=BIR/arch1,'
        'BIR/arch2 (the authors\' C3-5x16-bn-cifar10_pretrained, imported '
        'by experiments.import_extractor --arch=arch1 / arch2)'))


_table1_row('table1_arch1_ir')
_table1_row('table1_arch1_ir', ours=False)
_table1_row('table1_arch2_ir')
_table1_row('table1_arch2_ir', ours=False)
_table1_row('table1_arch1_0.3_0.7')
_table1_row('table1_arch1_0.3_0.7', ours=False)
_table1_row('table1_arch2_0.2_0.3_0.5')
_table1_row('table1_arch2_0.2_0.3_0.5', ours=False)
_table1_row('table1_arch1_0.7_0.3')
_table1_row('table1_arch1_0.5_0.5')
_table1_row('table1_arch2_0.5_0.3_0.2')
_table1_row('table1_arch2_0.34_0.33_0.33')
for _strategy in ('ir', '0.2,0.3,0.5', '0.5,0.3,0.2'):
  for _levels in ('all', 'only_last_layer'):
    _name = f'fig5_plr_{_strategy.replace(",", "_")}_{_levels}'
    BEFORE[_name] = (
        '2026-12-02', _AMD_AVX2,
        '5ea5f77' if _name == 'fig5_plr_0.5_0.3_0.2_only_last_layer'
        else '3f1115e',
        _FM + f'--setup=ir_frozen --strategy={_strategy} '
        f'--recon_levels={_levels} --seeds=0,1,2')


def _data(record: dict) -> str:
  label = {'exact': 'exact', 'jpeg': 'JPEG'}.get(record.get('data'),
                                                 record.get('data', '?'))
  name = {'fashion_mnist': 'Fashion-MNIST', 'cifar10': 'CIFAR-10',
          'cifar100': 'CIFAR-100'}.get(record.get('dataset'),
                                       record.get('dataset', ''))
  return f'{label} {name}'.strip()


def _records() -> list[str]:
  """The record files: reported/*.json and each strategy of a search
  (reported/search_*/<run id>.json; not its ranking, results.json)."""
  searches = [p for p in glob.glob(os.path.join(HERE, 'search_*', '*.json'))
              if os.path.basename(p) != 'results.json']
  return sorted(glob.glob(os.path.join(HERE, '*.json'))) + sorted(searches)


def rows() -> list[str]:
  out = []
  for path in _records():
    name = os.path.relpath(path, HERE)[:-len('.json')]
    with open(path) as fh:
      record = json.load(fh)
    made = record.get('provenance')
    if made:
      date, where, code, command = (made['date'][:10], made['machine'],
                                    made['code'], made['command'])
    elif name in BEFORE:
      date, where, code, command = BEFORE[name]
    else:
      raise ValueError(f'{name}: no provenance; add it to BEFORE')
    result = (f'{100 * record["average_accuracy_mean"]:.2f} +- '
              f'{100 * record["average_accuracy_sem"]:.2f}%')
    out.append(f'| `{name}` | {result} | {_data(record)} | `{command}` | '
               f'{code} | {where} | {date} |')
  for path in sorted(glob.glob(os.path.join(HERE, 'extractors', '*',
                                            'meta.json'))):
    with open(path) as fh:
      meta = json.load(fh)
    name = 'extractors/' + os.path.basename(os.path.dirname(path))
    out.append(f'| `{name}` | test accuracy '
               f'{100 * meta["test_accuracy"]:.2f}%, {meta["epochs"]} epochs '
               f'| {_data(meta)} | `{meta["command"]}` | {meta["code"]} | '
               f'{meta["machine"]} | {meta.get("date", "?")[:10]} |')
  return out


def text() -> str:
  return '\n'.join([
      '# Current records', '',
      'Written by `python reported/manifest.py`; every current record in '
      '`reported/` with its command, the code that ran it, its data, the '
      'machine and the date (earlier records: `earlier/`).', '',
      '| record | result | data | command | code | machine | date |',
      '|---|---|---|---|---|---|---|', *rows(), ''])


if __name__ == '__main__':
  with open(os.path.join(HERE, 'MANIFEST.md'), 'w') as fh:
    fh.write(text())
