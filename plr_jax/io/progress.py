"""Progress lines for long runs: task, iteration, rate and time left.

Called between jit-compiled chunks, so it never slows the step itself; it
prints at most once per `interval_s` seconds, and always at the end of a task.
The rate, and the time left from it, are the steady state's: the first chunk
of every task (which pays for compilation, the previous task's evaluation and
checkpoint) does not count towards them while later chunks have been timed.
Once the current task has steady chunks, its own rate is the one reported
and extrapolated: tasks run at different paces (a replaying task is slower
than task 1; once an extractor is frozen, several times faster), and the
later tasks are like the current one, not like the average so far.
"""

import sys
import time


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{secs:02d}s'


class Progress:
  """Reports `[seed s] task t/T iter i/I | r it/s | ETA ..` lines."""

  def __init__(self, num_tasks: int, iters_per_task: int, num_runs: int = 1,
               interval_s: float = 10.0, stream=None, clock=time.perf_counter):
    self.num_tasks = num_tasks
    self.iters_per_task = iters_per_task
    self.total = num_tasks * iters_per_task * num_runs
    self.interval_s = interval_s
    self.stream = stream or sys.stderr
    self._clock = clock
    self.done_before = 0  # iterations of earlier runs and tasks
    self.label = ''
    self._start = clock()
    self._last = -float('inf')
    self._skipped = 0
    self._previous = None  # (time, run label, task, iterations done)
    self._first_seen = False
    self._steady = [0.0, 0]  # seconds and iterations of steady chunks
    self._task_steady = [0.0, 0]  # the same, of the current task only
    self._later = [0.0, 0]  # every chunk after this process's first

  def start_run(self, label: str) -> None:
    self.label = label

  def skip(self, iterations: int, whole_run: bool = True) -> None:
    """Iterations an earlier process did: done, but not towards the rate.

    `whole_run`: a finished run skipped entirely; otherwise the start of the
    run about to resume (its tasks and iterations are reported as usual).
    """
    if whole_run:
      self.done_before += iterations
    self._skipped += iterations

  def _time_chunk(self, now: float, task: int, done: int) -> None:
    if self._previous is None:
      seconds, iterations = now - self._start, done - self._skipped
      first_of_task = True
    else:
      then, label, previous_task, previous_done = self._previous
      seconds, iterations = now - then, done - previous_done
      first_of_task = label != self.label or previous_task != task
    self._previous = (now, self.label, task, done)
    if first_of_task:
      self._task_steady = [0.0, 0]
    if iterations <= 0:
      return
    if not self._first_seen:
      self._first_seen = True  # it paid for the compilation
    else:
      self._later[0] += seconds
      self._later[1] += iterations
    if not first_of_task:
      for kept in (self._steady, self._task_steady):
        kept[0] += seconds
        kept[1] += iterations

  @property
  def rate(self) -> float | None:
    """Iterations per second of the steady state: the current task's
    chunks after its first; until there is one, those of every task so far;
    until there is one, every chunk after the process's first, which
    compiled. None before any such chunk."""
    seconds, iterations = next(
        (kept for kept in (self._task_steady, self._steady) if kept[1]),
        self._later)
    return iterations / max(seconds, 1e-9) if iterations else None

  def __call__(self, task: int, done_in_task: int) -> None:
    now = self._clock()
    done = self.done_before + (task - 1) * self.iters_per_task + done_in_task
    self._time_chunk(now, task, done)
    end_of_task = done_in_task == self.iters_per_task
    if end_of_task and task == self.num_tasks:
      self.done_before += self.num_tasks * self.iters_per_task
    if now - self._last < self.interval_s and not end_of_task:
      return
    self._last = now
    rate = self.rate
    if rate is None:
      speed = 'rate and ETA after the first compiled chunk'
    else:
      left = (self.total - done) / rate if rate > 0 else float('inf')
      speed = f'{rate:.1f} it/s | ETA {_duration(left)}'
    print(f'{self.label} task {task}/{self.num_tasks} iter '
          f'{done_in_task}/{self.iters_per_task} | '
          f'elapsed {_duration(now - self._start)} | {speed}',
          file=self.stream, flush=True)

  def evaluated(self, task: int, rows, seeds) -> None:
    """Reports each seed's test accuracy per task after `task` (`rows`:
    [seeds, tasks] in [0, 1]; the average is over the tasks seen so far)."""
    for seed, row in zip(seeds, rows):
      seen = ' '.join(f'{100 * a:.1f}' for a in row[:task])
      mean = 100 * sum(row[:task]) / task
      print(f'[seed {seed}] after task {task}/{self.num_tasks}: accuracy per '
            f'task {seen} | average {mean:.2f}%', file=self.stream, flush=True)
