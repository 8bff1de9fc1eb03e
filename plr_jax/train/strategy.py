"""Replay strategies, the split of a replay batch into levels, and cost.

A strategy `S = [f_0, .., f_{N-1}]` (paper eq. 3) says which fraction of every
replay batch is injected at each level of the classifier. Internal Replay (IR)
is `[1, 0, .., 0]`.
"""

import math
import re
from typing import Sequence

from plr_jax.models import arch as arch_lib

Strategy = tuple[float, ...]

SUM_TOLERANCE = 1e-6
_OTHER_SEPARATORS = re.compile(r'[;:|/\s]')


def parse_strategy(text: str, num_levels: int | None = None,
                   arch_name: str = 'the architecture') -> Strategy:
  """Parses `"0.3,0.7"` into `(0.3, 0.7)`; `"ir"` needs `num_levels`.

  Args:
    text: comma-separated fractions that sum to 1, or `ir`.
    num_levels: if given, the strategy must have this many entries.
    arch_name: what error messages call the architecture.

  Returns:
    The strategy as a tuple of floats.

  Raises:
    ValueError: with a one-line message saying what is wrong.
  """
  text = text.strip()
  if not text:
    raise ValueError('strategy is empty; give fractions like 0.3,0.7 or "ir"')
  if text.lower() == 'ir':
    if num_levels is None:
      raise ValueError('strategy "ir" needs the number of levels')
    return internal_replay(num_levels)
  separator = _OTHER_SEPARATORS.search(text.replace(', ', ','))
  if separator:
    raise ValueError(
        f'strategy {text!r}: separate the fractions with commas, '
        f'not {separator.group()!r}')
  entries = []
  for item in text.split(','):
    item = item.strip()
    try:
      value = float(item)
    except ValueError:
      raise ValueError(
          f'strategy {text!r}: {item!r} is not a number') from None
    entries.append(value)
  strategy = validate_strategy(entries)
  if num_levels is not None:
    check_levels(strategy, num_levels, arch_name)
  return strategy


def validate_strategy(entries: Sequence[float]) -> Strategy:
  """Checks that `entries` are finite, non-negative and sum to 1."""
  strategy = tuple(float(f) for f in entries)
  shown = ','.join(f'{f:g}' for f in strategy)
  if not strategy:
    raise ValueError('strategy is empty')
  for f in strategy:
    if not math.isfinite(f):
      raise ValueError(f'strategy [{shown}]: {f} is not a finite number')
    if f < 0:
      raise ValueError(f'strategy [{shown}]: fraction {f:g} is negative')
  total = math.fsum(strategy)
  if abs(total - 1.0) > SUM_TOLERANCE:
    raise ValueError(
        f'strategy [{shown}] sums to {total:.6g}, not 1 (tolerance '
        f'{SUM_TOLERANCE:g})')
  return strategy


def internal_replay(num_levels: int) -> Strategy:
  """IR: the whole replay batch at level 0."""
  return (1.0,) + (0.0,) * (num_levels - 1)


def check_levels(strategy: Sequence[float], num_levels: int,
                 arch_name: str = 'the architecture') -> None:
  """Raises if the strategy does not have one entry per level."""
  if len(strategy) != num_levels:
    raise ValueError(
        f'strategy has {len(strategy)} entries but {arch_name} has '
        f'{num_levels} levels (one per hidden layer)')


def check_strategy(strategy: Sequence[float],
                   arch: 'str | arch_lib.ArchConfig') -> Strategy:
  """Validates `strategy` and its length against `arch`'s levels."""
  arch = arch_lib.get_arch(arch)
  strategy = validate_strategy(strategy)
  check_levels(strategy, arch.num_levels, arch.name)
  return strategy


def split_batch(strategy: Sequence[float], batch_size: int) -> tuple[int, ...]:
  """Exact integer slice sizes per level, summing to `batch_size`.

  Largest-remainder rule: every level gets `floor(f_n * B)`, and the samples
  left over go one each to the levels with the largest fractional parts, ties
  to the shallower level. A level with `f_n = 0` always gets 0.

  Args:
    strategy: fractions per level, summing to 1.
    batch_size: the replay batch size B.

  Returns:
    Slice sizes, level 0 first.
  """
  strategy = validate_strategy(strategy)
  if batch_size < 0:
    raise ValueError(f'batch size must be non-negative, got {batch_size}')
  # Round away float noise such as 0.7 * 10 = 7.000000000000001.
  exact = [round(f * batch_size, 9) for f in strategy]
  sizes = [math.floor(x) for x in exact]
  left = batch_size - sum(sizes)
  order = sorted(range(len(exact)), key=lambda n: (-(exact[n] - sizes[n]), n))
  for n in order[:left]:
    sizes[n] += 1
  return tuple(sizes)


def relative_cost(strategy: Sequence[float],
                  arch: 'str | arch_lib.ArchConfig',
                  accounting: str = 'paper') -> float:
  """R(S) of paper eq. 5: weight updates during replay relative to IR.

  Args:
    strategy: fractions per level.
    arch: `"arch1"`, `"arch2"`, any preset name, or an `ArchConfig`.
    accounting: `"paper"` counts P_n as the last N weight layers including
      the head, which reproduces the paper's tables; `"exact"` counts what the
      level routing really updates: fc_j gets gradient from the slices with
      level < j, the head from every slice.

  Returns:
    R as a fraction in (0, 1].
  """
  arch = arch_lib.get_arch(arch)
  strategy = check_strategy(strategy, arch)
  counts = arch.fc_param_counts  # fc_1 .. fc_H, head
  if accounting == 'paper':
    # Eq. 4: U = sum_n (f_0 + .. + f_n) P_n over the last N weight layers.
    layers = counts[1:]
    cumulative = [math.fsum(strategy[:n + 1]) for n in range(len(strategy))]
  elif accounting == 'exact':
    # fc_j (j = 1..H) sees levels < j; the head sees every level.
    layers = counts
    cumulative = [math.fsum(strategy[:j]) for j in range(1, len(counts))]
    cumulative.append(1.0)
  else:
    raise ValueError(
        f'unknown accounting {accounting!r}; choose "paper" or "exact"')
  used = math.fsum(f * p for f, p in zip(cumulative, layers))
  return used / math.fsum(layers)
