"""Strategies: parsing, validation, the batch split and the relative cost."""

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
