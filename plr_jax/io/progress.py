"""Progress lines for long runs: task, iteration, rate and time left.

Called between jit-compiled chunks, so it never slows the step itself; it
prints at most once per `interval_s` seconds, and always at the end of a task.
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
               interval_s: float = 10.0, stream=None):
    self.num_tasks = num_tasks
    self.iters_per_task = iters_per_task
    self.total = num_tasks * iters_per_task * num_runs
    self.interval_s = interval_s
    self.stream = stream or sys.stderr
    self.done_before = 0  # iterations of earlier runs and tasks
    self.label = ''
    self._start = time.perf_counter()
    self._last = -float('inf')
    self._skipped = 0

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

  def __call__(self, task: int, done_in_task: int) -> None:
    now = time.perf_counter()
    done = self.done_before + (task - 1) * self.iters_per_task + done_in_task
    end_of_task = done_in_task == self.iters_per_task
    if end_of_task and task == self.num_tasks:
      self.done_before += self.num_tasks * self.iters_per_task
    if now - self._last < self.interval_s and not end_of_task:
      return
    self._last = now
    rate = (done - self._skipped) / max(now - self._start, 1e-9)
    left = (self.total - done) / rate if rate > 0 else float('inf')
    print(f'{self.label} task {task}/{self.num_tasks} iter '
          f'{done_in_task}/{self.iters_per_task} | {rate:.1f} it/s | '
          f'elapsed {_duration(now - self._start)} | ETA {_duration(left)}',
          file=self.stream, flush=True)

  def evaluated(self, task: int, rows, seeds) -> None:
    """Reports each seed's test accuracy per task after `task` (`rows`:
    [seeds, tasks] in [0, 1]; the average is over the tasks seen so far)."""
    for seed, row in zip(seeds, rows):
      seen = ' '.join(f'{100 * a:.1f}' for a in row[:task])
      mean = 100 * sum(row[:task]) / task
      print(f'[seed {seed}] after task {task}/{self.num_tasks}: accuracy per '
            f'task {seen} | average {mean:.2f}%', file=self.stream, flush=True)
