"""Stopping a run cleanly: a stop request polled at safe points.

A `StopFlag` records that a stop was asked for. The task loop (between
chunks), the extractor pretraining (between steps on the CPU, else after
each epoch) and the mFID reference training (every 20 steps) poll it and
raise `Interrupted` there, after the run's state is checkpointed (an
interrupted pretraining epoch or reference training is recomputed on
resume), so no exception ever unwinds through JAX mid-computation.
The binaries turn SIGINT and SIGTERM into stop requests (`handle_signals`);
the library installs no handlers of its own.
"""

import contextlib
import os
import signal
import sys
from typing import Callable, Iterator

StopCheck = Callable[[], bool]


class Interrupted(Exception):
  """A run stopped at a safe point because a stop was requested.

  Attributes:
    where: what was running, e.g. "task 2, iteration 500 (seeds 0,1)".
  """

  def __init__(self, where: str):
    super().__init__(f'interrupted at {where}; rerun the same command to '
                     'resume')
    self.where = where


class StopFlag:
  """A stop request; calling the flag says whether one was made."""

  def __init__(self):
    self.signum: int | None = None

  def __call__(self) -> bool:
    return self.signum is not None

  def request(self, signum: int = signal.SIGINT) -> None:
    self.signum = signum

  @property
  def exit_code(self) -> int:
    """128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (self.signum or signal.SIGINT)


def check(should_stop: StopCheck | None, where: Callable[[], str]) -> None:
  """Raises `Interrupted(where())` if `should_stop` says so."""
  if should_stop is not None and should_stop():
    raise Interrupted(where())


@contextlib.contextmanager
def handle_signals(flag: StopFlag) -> Iterator[StopFlag]:
  """SIGINT and SIGTERM request a stop at the next safe point; a second
  signal ends the process at once (the last checkpoint is kept). The
  previous handlers are restored on exit."""
  def handler(signum, frame):
    del frame
    if flag():
      print('error: stopped at once by a second signal; the last '
            'checkpoint is kept; rerun the same command to resume',
            file=sys.stderr, flush=True)
      os._exit(128 + signum)  # pylint: disable=protected-access
    flag.request(signum)

  previous = {s: signal.signal(s, handler)
              for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield flag
  finally:
    for s, old in previous.items():
      signal.signal(s, old)
