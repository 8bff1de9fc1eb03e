"""Strategies: parsing, validation, the batch split and the relative cost."""

import math

import numpy as np
import pytest

from plr_jax.models import arch as arch_lib
from plr_jax.train import strategy


def test_parse_strategy_returns_tuple():
  assert strategy.parse_strategy('0.3,0.7') == (0.3, 0.7)
  assert strategy.parse_strategy(' 0.5, 0.3, 0.2 ') == (0.5, 0.3, 0.2)
  assert strategy.parse_strategy('1') == (1.0,)


def test_parse_ir_needs_levels():
  assert strategy.parse_strategy('ir', num_levels=3) == (1.0, 0.0, 0.0)
  assert strategy.parse_strategy('IR', num_levels=2) == (1.0, 0.0)
  with pytest.raises(ValueError, match='number of levels'):
    strategy.parse_strategy('ir')


@pytest.mark.parametrize('text, message', [
    ('0.3,0.6', 'sums to 0.9, not 1'),
    ('0.5,0.5,0.1', 'sums to 1.1, not 1'),
    ('1.2,-0.2', 'fraction -0.2 is negative'),
    ('0.3,abc', "'abc' is not a number"),
    ('0.3,', "'' is not a number"),
    ('', 'strategy is empty'),
    ('   ', 'strategy is empty'),
    ('0.3;0.7', "not ';'"),
    ('0.3 0.7', "not ' '"),
    ('0.3|0.7', "not '|'"),
    ('0.3:0.7', "not ':'"),
    ('nan,1', 'not a finite number'),
    ('inf,0', 'not a finite number'),
])
def test_parse_strategy_rejects_bad_input(text, message):
  with pytest.raises(ValueError, match=message) as error:
    strategy.parse_strategy(text)
  assert '\n' not in str(error.value)


def test_sum_tolerance_is_1e_6():
  assert strategy.parse_strategy('0.3333334,0.6666667')
  with pytest.raises(ValueError, match='not 1'):
    strategy.parse_strategy('0.333333,0.666665')


def test_strategy_length_is_checked_against_architecture():
  assert strategy.check_strategy((0.3, 0.7), 'arch1') == (0.3, 0.7)
  with pytest.raises(ValueError, match='3 entries but arch1 has 2 levels'):
    strategy.check_strategy((0.5, 0.3, 0.2), 'arch1')
  with pytest.raises(ValueError, match='2 entries but arch2 has 3 levels'):
    strategy.check_strategy((0.5, 0.5), 'arch2')
  with pytest.raises(ValueError, match='unknown architecture'):
    strategy.check_strategy((1.0,), 'arch9')


def test_parse_checks_levels_when_given():
  with pytest.raises(ValueError, match='2 entries but'):
    strategy.parse_strategy('0.5,0.5', num_levels=3)


@pytest.mark.parametrize('strat, batch, expected', [
    ((0.3, 0.7), 256, (77, 179)),
    ((0.7, 0.3), 256, (179, 77)),
    ((0.5, 0.5), 256, (128, 128)),
    ((0.5, 0.5), 255, (128, 127)),  # tie goes to the shallower level
    ((0.34, 0.33, 0.33), 256, (87, 85, 84)),
    ((0.2, 0.3, 0.5), 256, (51, 77, 128)),
    ((1.0, 0.0, 0.0), 256, (256, 0, 0)),
    ((0.3, 0.7), 10, (3, 7)),
    ((0.3, 0.7), 0, (0, 0)),
])
def test_split_batch(strat, batch, expected):
  assert strategy.split_batch(strat, batch) == expected


@pytest.mark.parametrize('strat', [
    (0.3, 0.7), (0.34, 0.33, 0.33), (0.1, 0.2, 0.3, 0.4), (1 / 3, 1 / 3, 1 / 3),
    (0.01, 0.99), (0.0, 0.5, 0.5)])
def test_split_batch_is_exact(strat):
  for batch in range(0, 300):
    sizes = strategy.split_batch(strat, batch)
    assert sum(sizes) == batch
    assert all(s >= 0 for s in sizes)
    # Every level is within one sample of its exact share.
    assert all(abs(s - f * batch) < 1 for s, f in zip(sizes, strat))
    # Levels with a zero fraction never receive samples.
    assert all(s == 0 for s, f in zip(sizes, strat) if f == 0)


@pytest.mark.parametrize('arch, strat, paper_r', [
    ('arch1', (0.7, 0.3), 71.4),
    ('arch1', (0.5, 0.5), 52.4),
    ('arch1', (0.3, 0.7), 33.3),
    ('arch2', (0.5, 0.3, 0.2), 66.7),
    ('arch2', (0.34, 0.33, 0.33), 52.9),
    ('arch2', (0.2, 0.3, 0.5), 38.1),
])
def test_relative_cost_paper_reproduces_tables(arch, strat, paper_r):
  assert round(100 * strategy.relative_cost(strat, arch, 'paper'), 1) == paper_r


@pytest.mark.parametrize('arch, strat, exact_r', [
    ('arch1', (0.7, 0.3), 90.2),
    ('arch1', (0.5, 0.5), 83.6),
    ('arch1', (0.3, 0.7), 77.0),
    ('arch2', (0.5, 0.3, 0.2), 77.2),
    ('arch2', (0.34, 0.33, 0.33), 67.8),
    ('arch2', (0.2, 0.3, 0.5), 57.8),
])
def test_relative_cost_exact_counts_routed_updates(arch, strat, exact_r):
  assert round(100 * strategy.relative_cost(strat, arch, 'exact'), 1) == exact_r


def test_relative_cost_of_ir_is_one_and_config_accepted():
  arch = arch_lib.PRESETS['arch2']
  for accounting in ('paper', 'exact'):
    assert strategy.relative_cost((1, 0, 0), arch, accounting) == 1.0
  with pytest.raises(ValueError, match='unknown accounting'):
    strategy.relative_cost((1, 0, 0), arch, 'flops')


def test_relative_cost_counts_parameters_by_hand():
  # Tiny: level-0 width 128 (4x4x8 after strides 1, 2 on 8x8), hidden 16, 16,
  # 6 classes. fc_1: 128*16+16, fc_2: 16*16+16, head: 16*6+6.
  arch = arch_lib.PRESETS['tiny']
  fc1, fc2, head = 2064, 272, 102
  assert arch.fc_param_counts == (fc1, fc2, head)
  paper = (0.25 * fc2 + head) / (fc2 + head)
  exact = (0.25 * fc1 + fc2 + head) / (fc1 + fc2 + head)
  assert strategy.relative_cost((0.25, 0.75), arch) == pytest.approx(paper)
  assert strategy.relative_cost((0.25, 0.75), arch, 'exact') == pytest.approx(
      exact)


# Weights and biases of fc_1 .. fc_H and the head, and the level widths, by
# hand: ARCH1 1024-2000-2000 and ARCH2 1024-1000-1000-1000 with 100 classes,
# fmnist 3136-50-50-50 with 10.
_HAND = {
    'arch1': ([1024 * 2000 + 2000, 2000 * 2000 + 2000, 2000 * 100 + 100],
              [1024, 2000, 2000]),
    'arch2': ([1024 * 1000 + 1000, 1000 * 1000 + 1000, 1000 * 1000 + 1000,
               1000 * 100 + 100], [1024, 1000, 1000, 1000]),
    'fmnist': ([3136 * 50 + 50, 50 * 50 + 50, 50 * 50 + 50, 50 * 10 + 10],
               [3136, 50, 50, 50]),
}


def _authors_rule(name, weights, sizes):
  """The authors' plr branch's rule over their levels 0 .. H (the head's
  input included), as written in their models/plr_strategy.py."""
  n = len(weights)
  if name == 'basic':
    return [1 / n] * n
  if name == 'cumulative_weights':
    cumulative = [sum(weights[i:]) for i in range(n)]
    raw = [cumulative[0] / c for c in cumulative]
  elif name == 'total_weights':
    raw = [sum(weights) / c for c in weights]
  elif name == 'input_size':
    raw = [c / sum(sizes) for c in sizes]
  else:
    raw = list(range(1, n + 1))
  return [r / sum(raw) for r in raw]


@pytest.mark.parametrize('arch', ['arch1', 'arch2', 'fmnist'])
@pytest.mark.parametrize('name', strategy.NAMED)
def test_named_strategies_are_the_authors_rules_on_our_levels(arch, name):
  weights, sizes = _HAND[arch]
  assert arch_lib.get_arch(arch).fc_param_counts == tuple(weights)
  theirs = _authors_rule(name, weights, sizes)
  # Ours: their fractions without the head's input level, rescaled.
  want = [f / sum(theirs[:-1]) for f in theirs[:-1]]
  got = strategy.named_strategy(name, arch)
  np.testing.assert_allclose(got, want, rtol=1e-12)
  assert math.fsum(got) == 1.0
  assert strategy.parse_strategy(f' {name.upper()} ', arch=arch) == got


def test_named_strategies_by_hand():
  # A few values written out: ARCH1 cumulative_weights gives level 0 the
  # share 1/6252100 : 1/4202100, i.e. 4202100 / 10454200.
  np.testing.assert_allclose(
      strategy.named_strategy('cumulative_weights', 'arch1'),
      [4202100 / 10454200, 6252100 / 10454200])
  np.testing.assert_allclose(strategy.named_strategy('total_weights',
                                                     'arch1'),
                             [4002000 / 6052000, 2050000 / 6052000])
  np.testing.assert_allclose(strategy.named_strategy('input_size', 'arch2'),
                             [1024 / 3024, 1000 / 3024, 1000 / 3024])
  np.testing.assert_allclose(strategy.named_strategy('layer_idx', 'fmnist'),
                             [1 / 6, 2 / 6, 3 / 6])
  np.testing.assert_allclose(strategy.named_strategy('basic', 'arch2'),
                             [1 / 3] * 3)
  cumulative = [1 / 162460, 1 / 5610, 1 / 3060]
  np.testing.assert_allclose(
      strategy.named_strategy('cumulative_weights', 'fmnist'),
      [c / sum(cumulative) for c in cumulative])
  with pytest.raises(ValueError, match='needs the architecture'):
    strategy.parse_strategy('layer_idx', 2)
  with pytest.raises(ValueError, match='unknown strategy rule'):
    strategy.named_strategy('fastest', 'arch1')
