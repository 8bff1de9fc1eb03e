"""One run per workdir: an advisory lock held while a run writes there.

The lock is `fcntl.flock` on `WORKDIR/.lock` (one file per process of a
multi-host run), which the kernel releases when its holder exits, however it
exits: a lock left by a killed process never blocks the rerun. The file
holds the holder's pid, for the refusal's message.
"""

import contextlib
import errno
import fcntl
import os
from typing import Iterator

from plr_jax.io import workdir as workdir_lib


class WorkdirBusyError(ValueError):
  """Another live process holds the workdir."""


def lock_path(workdir: str, process_index: int = 0) -> str:
  return workdir_lib.Workdir(workdir).lock(process_index)


@contextlib.contextmanager
def hold(workdir: str, process_index: int = 0) -> Iterator[None]:
  """Holds `workdir`'s lock (creating the directory) for the block.

  Raises:
    WorkdirBusyError: another process holds it; the message names its pid.
  """
  os.makedirs(workdir, exist_ok=True)
  path = lock_path(workdir, process_index)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
        raise
      holder = os.pread(fd, 32, 0).decode(errors='replace').strip() or '?'
      raise WorkdirBusyError(
          f'workdir {workdir} is in use by process {holder}; wait for it to '
          'finish or stop it, or use another workdir') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock
