"""Checkpoints of training state for resuming: whole continual runs
(`RunCheckpointer`) and pretraining epochs (`EpochCheckpointer`).
Extractors are `io.extractors`; atomic files `io.atomic`.
"""

import json
import os
import shutil
import time
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from plr_jax.io import atomic



class CheckpointError(ValueError):
  """A checkpoint that is missing, unreadable or of another architecture."""


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (e.g. the disk is full); the previous
  one, if any, is still the latest and intact."""


class RunCheckpointer:
  """Checkpoints of one continual run (or vmapped group of runs), to resume.

  Each checkpoint holds the whole training state (both networks, both
  optimizer states, the previous task's networks, the PRNG key and the
  iteration counter) in an orbax directory, plus the run's progress (accuracy
  rows and per-iteration losses so far) in a `.npz` beside it. A checkpoint
  counts only once `latest.json` names it; that file is replaced atomically
  after both parts are written, so a crash at any moment leaves the previous
  checkpoint intact. Older checkpoints are deleted after the switch.

  Attributes:
    directory: where the checkpoints go.
    every: also checkpoint every this many iterations inside a task (0: only
      at task boundaries).
    min_interval_s: skip such a mid-task checkpoint when the last save was
      less than this many seconds ago (an ARCH1 state is 240 MB: on a GPU,
      writing it after every chunk would dominate).
  """

  def __init__(self, directory: str, every: int = 0,
               min_interval_s: float = 0.0,
               clock: Callable[[], float] = time.monotonic):
    if every < 0:
      raise ValueError(f'checkpoint interval must be >= 0, got {every}')
    if min_interval_s < 0:
      raise ValueError(f'minimum checkpoint interval must be >= 0 seconds, '
                       f'got {min_interval_s}')
    self.directory = directory
    self.every = every
    self.min_interval_s = min_interval_s
    self._clock = clock
    self._last_save = clock()

  def due(self, done: int) -> bool:
    """Whether to checkpoint inside a task after `done` iterations."""
    return bool(self.every and done % self.every == 0 and
                self._clock() - self._last_save >= self.min_interval_s)

  def save(self, state, task: int, done: int, arrays: dict) -> None:
    """Saves `state` as of `done` iterations into `task` (1-based)."""
    _commit(self.directory, 'task', f'{task:03d}_iter{done:07d}',
            _state_tree(state), arrays, {'task': task, 'done': done})
    self._last_save = self._clock()

  def restore(self, template):
    """`(state, task, done, arrays)` of the latest checkpoint, or None.

    Args:
      template: a state of the same structure (e.g. freshly initialised);
        gives the shapes, dtypes and device placement.
    """
    template_tree = _state_tree(template)
    found = _latest(self.directory, template_tree)
    if found is None:
      return None
    restored, arrays, info = found
    # Orbax commits what it restores to a device; where the template's
    # arrays are uncommitted (no mesh), so are the restored ones, or the
    # resumed run would compile its steps again.
    restored = jax.tree.map(
        lambda r, t: (jnp.asarray(np.asarray(r))
                      if isinstance(t, jax.Array) and not t.committed else r),
        restored, template_tree)
    key = jax.random.wrap_key_data(restored.pop('key'))
    state = flax.serialization.from_state_dict(
        template, {**restored, 'key': template.key})
    return (state.replace(key=key), int(info['task']), int(info['done']),
            arrays)


class EpochCheckpointer:
  """The state of a pretraining after each epoch, to resume it.

  The same commit rule as `RunCheckpointer`: `latest.json` names a
  checkpoint only once its parts are written, and older ones are deleted
  after the switch. `info` (a JSON dict saved beside the state) carries what
  the caller needs to check and continue, e.g. the configuration and the
  time spent so far.
  """

  def __init__(self, directory: str):
    self.directory = directory

  def save(self, tree, epoch: int, info: dict) -> None:
    _commit(self.directory, 'epoch', f'{epoch:04d}',
            flax.serialization.to_state_dict(tree), {},
            {**info, 'epoch': epoch})

  def restore(self, template):
    """`(tree, info)` of the latest epoch, or None if there is none."""
    found = _latest(self.directory,
                    flax.serialization.to_state_dict(template))
    if found is None:
      return None
    restored, _, info = found
    return flax.serialization.from_state_dict(template, restored), info


def _commit(directory: str, prefix: str, suffix: str, tree, arrays: dict,
            info: dict) -> None:
  """Writes `tree` (orbax) and `arrays` (.npz) as checkpoint
  `prefix + suffix`, then points `latest.json` at it, then deletes the
  older checkpoints (the other entries named `prefix...`).

  Raises:
    CheckpointWriteError: a write failed; what it left is removed and
      `latest.json` still names the previous checkpoint.
  """
  name = prefix + suffix
  path = os.path.abspath(os.path.join(directory, name))
  if _pointed_name(directory) == name:
    return  # this very checkpoint is already the latest (runs are deterministic)
  try:
    os.makedirs(directory, exist_ok=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, savable(tree), force=True)
    checkpointer.wait_until_finished()
    if jax.process_index() != 0:
      return  # orbax saved this process's part; the first one commits
    tmp = f'{path}.npz.tmp.{os.getpid()}.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, f'{path}.npz')
    atomic.write_json(os.path.join(directory, 'latest.json'),
                      {**info, 'name': name})
  except Exception as e:  # pylint: disable=broad-except
    # orbax wraps what its threads raise; the cause is in the chain.
    shutil.rmtree(path, ignore_errors=True)
    for leftover in (f'{path}.npz', f'{path}.npz.tmp.{os.getpid()}.npz'):
      if os.path.exists(leftover):
        os.remove(leftover)
    raise CheckpointWriteError(
        f'cannot write checkpoint {path} ({_one_line(e)}); the previous '
        'checkpoint is kept: rerun the same command to resume once that is '
        'fixed') from e
  for entry in os.listdir(directory):
    if entry.startswith(prefix) and not entry.startswith(name):
      old = os.path.join(directory, entry)
      if os.path.isdir(old):
        shutil.rmtree(old, ignore_errors=True)
      else:
        os.remove(old)


def savable(tree):
  """`tree` as orbax can save it: in a multi-process run, arrays that live on
  this process's devices only (every process holds the same values, e.g.
  while pretraining) become numpy arrays, which the first process writes;
  arrays spread over the processes' devices stay as they are."""
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(
      lambda x: (np.asarray(x) if isinstance(x, jax.Array)
                 and x.is_fully_addressable else x), tree)


def _pointed_name(directory: str) -> str | None:
  try:
    with open(os.path.join(directory, 'latest.json')) as fh:
      return json.load(fh).get('name')
  except (OSError, ValueError, AttributeError):
    return None


def _one_line(error: BaseException, limit: int = 200) -> str:
  """`Type: message` of `error` (or of the OSError in its chain), on one
  line."""
  cause = error
  while cause is not None and not isinstance(cause, OSError):
    cause = cause.__cause__ or cause.__context__
  chosen = cause or error
  text = ' '.join(str(chosen).split())[:limit]
  return f'{type(chosen).__name__}: {text}'


def _latest(directory: str, template_tree):
  """`(tree, arrays, info)` of the checkpoint `latest.json` names, or None.

  Raises:
    CheckpointError: the named checkpoint cannot be read.
  """
  pointer = os.path.join(directory, 'latest.json')
  if not os.path.isfile(pointer):
    return None
  try:
    with open(pointer) as fh:
      info = json.load(fh)
    path = os.path.abspath(os.path.join(directory, info['name']))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise CheckpointError(
        f'checkpoint pointer {pointer} is unreadable ({_one_line(e)}); '
        f'delete {directory} to start this run over') from None
  if not os.path.isdir(path) or not os.path.isfile(f'{path}.npz'):
    raise CheckpointError(
        f'checkpoint {path}, named by {pointer}, is missing; delete '
        f'{directory} to start this run over')
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      template_tree)
  try:
    tree = ocp.StandardCheckpointer().restore(path, target)
    with np.load(f'{path}.npz') as npz:
      arrays = dict(npz)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(
        f'checkpoint {path} is damaged ({_one_line(e)}); delete {directory} '
        'to start this run over') from None
  return tree, arrays, info


def _state_tree(state) -> dict:
  """A `PLRState` as nested dicts of arrays (the key as raw key data)."""
  tree = flax.serialization.to_state_dict(state)
  tree['key'] = jax.random.key_data(state.key)
  return tree
