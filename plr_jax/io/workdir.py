"""A run directory's layout: every path a run reads or writes there.

  WORKDIR/run_config.json        the run's configuration (its identity)
  WORKDIR/data.json              the data's fingerprint
  WORKDIR/extractor/             an extractor pretrained by the run
  WORKDIR/features/              the feature cache
  WORKDIR/checkpoints/seeds_*/   each seed group's checkpoints and records
  WORKDIR/logs/seed_*/           metrics and accuracies as they happen
  WORKDIR/results.json, .md      the record
  WORKDIR/.lock[.i]              the lock of the process writing there
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

  def checkpoints(self, seeds: Sequence[int]) -> str:
    """The checkpoint directory of the seed group `seeds`."""
    return os.path.join(self.root, 'checkpoints',
                        'seeds_' + '_'.join(str(s) for s in seeds))

  def lock(self, process_index: int = 0) -> str:
    name = '.lock' if process_index == 0 else f'.lock.{process_index}'
    return os.path.join(self.root, name)
