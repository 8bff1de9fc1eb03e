"""The first task of runs that differ only in their strategy, trained once.

Before the first replay a run's strategy changes nothing it computes: task
1 trains on current data alone (no replay batch, no gates from the
strategy), so the state at the end of task 1 is the same, bit for bit, for
every strategy of a search. A `FirstTaskStore` keeps that state (the
checkpoint taken at the end of task 1, and the logs up to it) from the
first run that gets there, and later runs with the same first task start
from it as a resumed run would: what they compute is what they would have
computed alone (`tests/test_search.py` compares the records).

What "the same first task" means is `run.first_task_identity`: the run's
identity with the strategy left out, unless its replay kind says the
strategy shapes task 1 too (`ReplayKind.strategy_in_first_task`: a
generator reconstructing only the levels the strategy uses), plus the data
and the extractor by fingerprint. A snapshot whose identity differs is not
used.

Layout: `ROOT/seeds_<s>_<s>/` holds `checkpoint` and `checkpoint.npz` (as
`RunCheckpointer` writes them), `logs/seed_<s>/` (the CSV and TensorBoard
logs of task 1), and `identity.json`, written last: a snapshot without it
is incomplete and ignored.
"""

import json
import os
import shutil
from typing import Sequence

from plr_jax.io import atomic

_IDENTITY = 'identity.json'
_CHECKPOINT = 'checkpoint'


class FirstTaskStore:
  """Snapshots of the end of task 1, one per group of seeds, under `root`."""

  def __init__(self, root: str):
    self.root = root

  def _group(self, seeds: Sequence[int]) -> str:
    return os.path.join(self.root,
                        'seeds_' + '_'.join(str(s) for s in seeds))

  def has(self, seeds: Sequence[int]) -> bool:
    """Whether a complete snapshot exists for `seeds`."""
    return os.path.isfile(os.path.join(self._group(seeds), _IDENTITY))

  def _info(self, seeds: Sequence[int]) -> dict | None:
    """The snapshot's identity.json for `seeds`, or None (absent, cut
    short or unreadable)."""
    try:
      with open(os.path.join(self._group(seeds), _IDENTITY)) as fh:
        info = json.load(fh)
      return info if isinstance(info, dict) else None
    except (OSError, ValueError):
      return None

  def matches(self, seeds: Sequence[int], identity: dict) -> bool:
    """Whether the snapshot for `seeds` exists and has this identity."""
    info = self._info(seeds)
    return info is not None and info.get('identity') == identity

  def source(self, seeds: Sequence[int]) -> str | None:
    """The run directory the snapshot for `seeds` was taken from."""
    return (self._info(seeds) or {}).get('source')

  def take(self, seeds: Sequence[int], identity: dict, checkpoint_dir: str,
           logs_dir: str, source: str) -> None:
    """Keeps the latest checkpoint in `checkpoint_dir` (taken at the end of
    task 1) and the logs of `seeds` in `logs_dir`; a snapshot already there
    (or written meanwhile by another process) is left as it is."""
    group = self._group(seeds)
    if self.has(seeds):
      return
    with open(os.path.join(checkpoint_dir, 'latest.json')) as fh:
      latest = json.load(fh)
    if (latest['task'], latest['done']) != (2, 0):
      raise ValueError(f'{checkpoint_dir}: the latest checkpoint is not the '
                       'end of task 1')
    tmp = f'{group}.tmp.{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    name = os.path.join(checkpoint_dir, latest['name'])
    shutil.copytree(name, os.path.join(tmp, _CHECKPOINT))
    shutil.copyfile(f'{name}.npz', os.path.join(tmp, f'{_CHECKPOINT}.npz'))
    for seed in seeds:
      seed_logs = os.path.join(logs_dir, f'seed_{seed}')
      if os.path.isdir(seed_logs):
        shutil.copytree(seed_logs, os.path.join(tmp, 'logs', f'seed_{seed}'))
    atomic.write_json(os.path.join(tmp, _IDENTITY),
                      {'identity': identity, 'source': source,
                       'latest': latest})
    try:
      # Atomic: the group directory exists only complete. Another process
      # of the same search may have got there first; its snapshot is the
      # same state.
      os.rename(tmp, group)
    except OSError:
      shutil.rmtree(tmp, ignore_errors=True)
      if not self.has(seeds):
        raise

  def adopt(self, seeds: Sequence[int], identity: dict, checkpoint_dir: str,
            logs_dir: str) -> bool:
    """Makes the snapshot of `seeds` the latest checkpoint in
    `checkpoint_dir` (which must hold none) and its logs those in
    `logs_dir`, if the snapshot has `identity`. Returns whether it did."""
    if (not self.matches(seeds, identity)
        or os.path.exists(os.path.join(checkpoint_dir, 'latest.json'))):
      return False
    group = self._group(seeds)
    latest = self._info(seeds)['latest']
    os.makedirs(checkpoint_dir, exist_ok=True)
    name = os.path.join(checkpoint_dir, latest['name'])
    shutil.rmtree(name, ignore_errors=True)
    shutil.copytree(os.path.join(group, _CHECKPOINT), name)
    shutil.copyfile(os.path.join(group, f'{_CHECKPOINT}.npz'), f'{name}.npz')
    for seed in seeds:
      source = os.path.join(group, 'logs', f'seed_{seed}')
      target = os.path.join(logs_dir, f'seed_{seed}')
      if os.path.isdir(source):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    # Last: until it exists the directory holds no checkpoint.
    atomic.write_json(os.path.join(checkpoint_dir, 'latest.json'), latest)
    return True
