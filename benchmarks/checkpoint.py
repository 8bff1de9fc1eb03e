r"""Our checkpoint commit (`io.checkpoint.RunCheckpointer`) against orbax's
`CheckpointManager` doing the same job, on a run's real state.

  python -m benchmarks.checkpoint --dir=/tmp/ckpt_bench --out=record.json

Both write the whole `PLRState` of an ARCH1 Table 2 run (classifier,
generator, Adam moments, the previous task's networks), the run's progress
arrays and a small JSON of where it is; the manager keeps one checkpoint
(`max_to_keep=1`), as ours does. Prints the median seconds to save (until
durable) and to restore, and the bytes on disk.
"""

import os
import shutil
import statistics
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from experiments.configs import table2
from plr_jax.io import atomic
from plr_jax.io import checkpoint
from plr_jax.io import machine
from plr_jax.train import continual
from plr_jax.train import steps

flags.DEFINE_string('dir', '/tmp/plr_checkpoint_bench', 'Scratch directory '
                    '(removed and rewritten).')
flags.DEFINE_integer('repeats', 3, 'Saves and restores of each.')
flags.DEFINE_string('out', None, 'Write the record here as JSON.')
FLAGS = flags.FLAGS


def _size(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def _ours(state, progress, directory, repeats):
  saver = checkpoint.RunCheckpointer(directory)
  save, restore = [], []
  for i in range(repeats):
    start = time.perf_counter()
    saver.save(state, 2, 1000 * (i + 1), progress)
    save.append(time.perf_counter() - start)
    start = time.perf_counter()
    restored = saver.restore(state)
    jax.block_until_ready(restored[0])
    restore.append(time.perf_counter() - start)
  return save, restore


def _manager(state, progress, directory, repeats):
  tree = checkpoint._state_tree(state)  # pylint: disable=protected-access
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(max_to_keep=1))
  save, restore = [], []
  for i in range(repeats):
    step = 5000 + 1000 * (i + 1)
    start = time.perf_counter()
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(tree),
        progress=ocp.args.StandardSave(progress),
        info=ocp.args.JsonSave({'task': 2, 'done': 1000 * (i + 1)})))
    manager.wait_until_finished()
    save.append(time.perf_counter() - start)
    start = time.perf_counter()
    restored = manager.restore(manager.latest_step(), args=ocp.args.Composite(
        state=ocp.args.StandardRestore(tree),
        progress=ocp.args.StandardRestore(progress),
        info=ocp.args.JsonRestore()))
    jax.block_until_ready(restored['state'])
    restore.append(time.perf_counter() - start)
  manager.close()
  return save, restore


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every step at INFO
  config = table2.config('arch1', '0.3,0.7').continual
  state = steps.end_task(continual.init_state(config, jax.random.key(0)))
  rng = np.random.default_rng(0)
  # The progress arrays of a run at task 2: accuracy rows and 1000
  # iterations of eight metrics.
  progress = {'accuracy': rng.random((1, 10, 10)),
              **{f'metric_{i}': rng.random((1000,)).astype(np.float32)
                 for i in range(8)}}
  record = {'machine': machine.describe(), 'jax': jax.__version__,
            'orbax': ocp.__version__ if hasattr(ocp, '__version__') else '?',
            'state_mb': sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20}
  for name, fn in (('ours', _ours), ('checkpoint_manager', _manager)):
    directory = os.path.join(FLAGS.dir, name)
    shutil.rmtree(directory, ignore_errors=True)
    save, restore = fn(state, progress, directory, FLAGS.repeats)
    record[name] = {'save_s': statistics.median(save),
                    'restore_s': statistics.median(restore),
                    'all_save_s': save, 'all_restore_s': restore,
                    'disk_mb': _size(directory) / 2**20}
    print(f'{name}: save {record[name]["save_s"]:.2f} s, restore '
          f'{record[name]["restore_s"]:.2f} s (median of {FLAGS.repeats}), '
          f'{record[name]["disk_mb"]:.0f} MB on disk', file=sys.stderr)
  print(f'state: {record["state_mb"]:.0f} MB in memory; {record["machine"]}',
        file=sys.stderr)
  if FLAGS.out:
    atomic.write_json(FLAGS.out, record)


if __name__ == '__main__':
  app.run(main)
