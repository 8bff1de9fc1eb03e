"""A run directory's layout: every path a run reads or writes there.

  WORKDIR/run_config.json        the run's configuration (its identity)
  WORKDIR/data.json              the data's fingerprint
  WORKDIR/extractor/             an extractor pretrained by the run
  WORKDIR/features/              the feature cache
  WORKDIR/checkpoints/seeds_*/   each seed group's checkpoints, and its
                                 records.json once it finished
  WORKDIR/logs/seed_*/           metrics and accuracies as they happen
  WORKDIR/results.json, .md      the record
  WORKDIR/.lock[.i]              the lock of the process writing there

A table's directory (`experiments.reproduce`) holds one run directory per
row (`row(run_id)`), the extractors its rows share
(`shared_extractor(id)`), its own results.json and .md, and `figures/`.
"""

import dataclasses
import os
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class Workdir:
  """The paths of the run directory `root`."""
  root: str

  @property
  def config_file(self) -> str:
    return os.path.join(self.root, 'run_config.json')

  @property
  def data_file(self) -> str:
    return os.path.join(self.root, 'data.json')

  @property
  def extractor(self) -> str:
    return os.path.join(self.root, 'extractor')

  @property
  def features(self) -> str:
    return os.path.join(self.root, 'features')

  @property
  def logs(self) -> str:
    return os.path.join(self.root, 'logs')

  @property
  def results_json(self) -> str:
    return os.path.join(self.root, 'results.json')

  @property
  def results_md(self) -> str:
    return os.path.join(self.root, 'results.md')

  @property
  def figures(self) -> str:
    return os.path.join(self.root, 'figures')

  def shared_extractor(self, extractor_id: str) -> str:
    """An extractor a table's rows share (pretrained there once)."""
    return os.path.join(self.root, f'extractor_{extractor_id}')

  def row(self, run_id: str) -> 'Workdir':
    """The run directory of a table's row."""
    return Workdir(os.path.join(self.root, run_id))

  def records(self, seeds: Sequence[int]) -> str:
    """The per-seed records of the seed group `seeds`, once it finished."""
    return os.path.join(self.checkpoints(seeds), 'records.json')

  def checkpoints(self, seeds: Sequence[int]) -> str:
    """The checkpoint directory of the seed group `seeds`."""
    return os.path.join(self.root, 'checkpoints',
                        'seeds_' + '_'.join(str(s) for s in seeds))

  def lock(self, process_index: int = 0) -> str:
    name = '.lock' if process_index == 0 else f'.lock.{process_index}'
    return os.path.join(self.root, name)
