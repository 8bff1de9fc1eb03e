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
                   arch_name: str = 'the architecture', *,
                   arch: 'str | arch_lib.ArchConfig | None' = None
                   ) -> Strategy:
  """Parses `"0.3,0.7"` into `(0.3, 0.7)`; `"ir"` needs the number of levels,
  a named rule (`NAMED`, e.g. `"cumulative_weights"`) the architecture.

  Args:
    text: comma-separated fractions that sum to 1, `ir`, or a name of
      `NAMED`.
    num_levels: if given, the strategy must have this many entries.
    arch_name: what error messages call the architecture.
    arch: the architecture (gives `num_levels` and `arch_name` too).

  Returns:
    The strategy as a tuple of floats.

  Raises:
    ValueError: with a one-line message saying what is wrong.
  """
  if arch is not None:
    arch = arch_lib.get_arch(arch)
    num_levels, arch_name = arch.num_levels, arch.name
  text = text.strip()
  if not text:
    raise ValueError('strategy is empty; give fractions like 0.3,0.7, "ir" '
                     f'or a rule ({", ".join(NAMED)})')
  if text.lower() == 'ir':
    if num_levels is None:
      raise ValueError('strategy "ir" needs the number of levels')
    return internal_replay(num_levels)
  if text.lower() in NAMED:
    if arch is None:
      raise ValueError(f'strategy "{text}" needs the architecture')
    return named_strategy(text.lower(), arch)
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


# The update-frequency rules of the authors' `plr` branch
# (`models/plr_strategy.py`), by name: each gives level n a raw weight, and
# the fractions are the weights normalised.
NAMED = ('basic', 'cumulative_weights', 'total_weights', 'input_size',
         'layer_idx')


def named_strategy(name: str, arch: 'str | arch_lib.ArchConfig') -> Strategy:
  """The fractions of the authors' rule `name` (one of `NAMED`) for `arch`.

  The rules, over the levels n = 0 .. H of the authors' `plr` branch, with
  W_n the weights and biases of the layer level n feeds (fc_{n+1}; the head
  for n = H) and D_n the width of level n:
    basic:              1 (uniform);
    cumulative_weights: 1 / (W_n + .. + W_H), the inverse of what a sample
                        replayed at n updates;
    total_weights:      1 / W_n;
    input_size:         D_n;
    layer_idx:          n + 1.
  That branch also counts the head's input (level H) as a level; ours stop at
  H - 1 (a slice at the head's input would train the head alone). The
  fractions here are the rule's weights of our levels 0 .. H-1, normalised:
  the branch's fractions with level H dropped and the rest rescaled to sum
  to 1 (docs/deviations.md).
  """
  arch = arch_lib.get_arch(arch)
  if name not in NAMED:
    raise ValueError(f'unknown strategy rule {name!r}; choose one of '
                     f'{", ".join(NAMED)}')
  counts = arch.fc_param_counts  # W_0 .. W_H: fc_1 .. fc_H, then the head
  widths = arch.level_dims + (arch.hidden[-1],)  # D_0 .. D_H
  levels = range(arch.num_levels)
  if name == 'basic':
    raw = [1.0 for _ in levels]
  elif name == 'cumulative_weights':
    raw = [1.0 / math.fsum(counts[n:]) for n in levels]
  elif name == 'total_weights':
    raw = [1.0 / counts[n] for n in levels]
  elif name == 'input_size':
    raw = [float(widths[n]) for n in levels]
  else:  # layer_idx
    raw = [float(n + 1) for n in levels]
  total = math.fsum(raw)
  fractions = [r / total for r in raw]
  # Exactly 1 in float64: the last fraction takes the rounding.
  fractions[-1] = 1.0 - math.fsum(fractions[:-1])
  return validate_strategy(fractions)


def simplex_grid(num_levels: int, step: float) -> list[Strategy]:
  """Every strategy whose fractions are multiples of `step` (which must
  divide 1), IR first, then in lexicographic order of the fractions from
  level 0 down: for 2 levels and 0.25, [1, 0], [0.75, 0.25], ... [0, 1]."""
  parts = round(1.0 / step) if step > 0 else 0
  if parts < 1 or abs(parts * step - 1.0) > 1e-9:
    raise ValueError(f'grid step must divide 1 (0.5, 0.25, 0.1, ...), got '
                     f'{step:g}')
  out = []

  def fill(prefix, left):
    if len(prefix) == num_levels - 1:
      out.append(tuple(prefix) + (left,))
      return
    for k in range(left, -1, -1):
      fill(prefix + [k], left - k)

  fill([], parts)
  return [tuple(k / parts for k in counts) for counts in out]


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
