"""Copies a strategy search's finished records into reported/NAME/.

  python reported/collect_search.py SEARCH_WORKDIR NAME

Takes each finished strategy's results.json as `NAME/<run id>.json` (the
ones the search ran; strategies it took from finished Table 1 rows are
already in reported/ under their own names and are listed in NAME/SHARED.md
instead), and the search's ranking (results.md, results.json) and figure
(figures/pareto.png, .pdf) as they stand. Rerun it as more strategies
finish; then `python reported/manifest.py`.
"""

import glob
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def collect(workdir: str, name: str) -> list[str]:
  """Copies what has finished; returns the run ids copied."""
  dest = os.path.join(HERE, name)
  os.makedirs(dest, exist_ok=True)
  copied, shared = [], []
  for path in sorted(glob.glob(os.path.join(workdir, '*', 'results.json'))):
    run_id = os.path.basename(os.path.dirname(path))
    if run_id == 'screen':
      continue
    with open(path) as fh:
      record = json.load(fh)
    if 'provenance' not in record or 'search' not in record['provenance'].get(
        'command', ''):
      shared.append(run_id)
      continue
    shutil.copyfile(path, os.path.join(dest, f'{run_id}.json'))
    copied.append(run_id)
  for part in ('results.md', 'results.json', 'figures/pareto.png',
               'figures/pareto.pdf'):
    source = os.path.join(workdir, part)
    if os.path.isfile(source):
      shutil.copyfile(source, os.path.join(dest, os.path.basename(part)))
  if shared:
    with open(os.path.join(dest, 'SHARED.md'), 'w') as fh:
      fh.write('Strategies of this search taken from finished Table 1 rows '
               '(the same configuration; their records are '
               '`reported/<run id>_100ep.json`):\n\n'
               + ''.join(f'- `{r}`\n' for r in shared))
  return copied


if __name__ == '__main__':
  if len(sys.argv) != 3:
    sys.exit('usage: python reported/collect_search.py SEARCH_WORKDIR NAME')
  print('\n'.join(collect(sys.argv[1], sys.argv[2])))
