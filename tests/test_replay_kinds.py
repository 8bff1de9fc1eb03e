"""Replay kinds: one module each, found by name, behind one interface; the
task loop asks the kind and compares no replay names; `none` fine-tunes."""

import ast
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plr_jax.models import classifier as classifier_lib
from plr_jax.train import continual
from plr_jax.train import losses
from plr_jax.train import optim
from plr_jax.train import replay_kinds
from plr_jax.train import steps
from tests.conftest import TINY, TINY3

KINDS_DIR = os.path.dirname(replay_kinds.__file__)
PACKAGE = os.path.dirname(os.path.dirname(KINDS_DIR))


def test_every_kind_module_is_registered_under_its_name():
  modules = sorted(name[:-3] for name in os.listdir(KINDS_DIR)
                   if name.endswith('.py') and name not in ('__init__.py',
                                                            'base.py'))
  assert modules == sorted(replay_kinds.names()) == sorted(
      ['buffer', 'generative', 'images', 'none'])
  for name in modules:
    kind = replay_kinds.get(name)
    assert isinstance(kind, replay_kinds.ReplayKind)
    assert kind.name == name and kind.description
  with pytest.raises(ValueError, match='replay must be one of generative, '
                     "buffer, images, none, got 'tape'"):
    continual.ContinualConfig(arch=TINY, strategy=(1.0, 0.0), num_tasks=2,
                              replay='tape')


def test_a_new_kind_is_one_module(tmp_path, monkeypatch):
  # A module beside the others (here in a second directory of the package's
  # path) is a kind, found by its name: nothing else to register.
  (tmp_path / 'echo.py').write_text(
      'from plr_jax.train.replay_kinds import none\n'
      'class Echo(none.NoReplay):\n'
      "  name = 'echo'\n"
      'KIND = Echo()\n')
  monkeypatch.setattr(replay_kinds, '__path__',
                      list(replay_kinds.__path__) + [str(tmp_path)])
  assert 'echo' in replay_kinds.names()
  config = continual.ContinualConfig(arch=TINY, strategy=(1.0, 0.0),
                                     num_tasks=2, replay='echo')
  assert replay_kinds.get(config.replay).name == 'echo'
  (tmp_path / 'wrong.py').write_text(
      'from plr_jax.train.replay_kinds import none\n'
      'KIND = none.NoReplay()\n')
  replay_kinds._names.cache_clear()  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="module wrong holds a kind named "
                     "'none'"):
    replay_kinds.get('wrong')


@pytest.mark.parametrize('replay, inputs, message', [
    ('buffer', 'images', 'buffer replay stores level-0 features'),
    ('images', 'features', 'replaying images needs inputs="images"'),
])
def test_a_kind_refuses_inputs_it_cannot_take(replay, inputs, message):
  with pytest.raises(ValueError, match=message):
    continual.ContinualConfig(arch=TINY3, strategy=(1.0, 0.0, 0.0),
                              num_tasks=3, replay=replay, inputs=inputs)


def _replay_comparisons(path):
  """Lines of `path` that compare something's `.replay` (a replay name)."""
  tree = ast.parse(open(path).read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Compare):
      for operand in [node.left, *node.comparators]:
        if isinstance(operand, ast.Attribute) and operand.attr == 'replay':
          yield node.lineno


def test_no_module_outside_the_kinds_compares_replay_names():
  found = []
  for directory, _, files in os.walk(PACKAGE):
    if os.path.samefile(directory, KINDS_DIR):
      continue
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(directory, name)
        found += [f'{path}:{line}' for line in _replay_comparisons(path)]
  assert not found
  # The check finds what it forbids.
  probe = os.path.join(KINDS_DIR, 'base.py')
  assert not list(_replay_comparisons(probe))


def test_the_comparison_check_finds_one(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text("if config.replay == 'buffer':\n  pass\n")
  assert list(_replay_comparisons(str(bad))) == [1]


def _none_config(**options):
  return continual.ContinualConfig(
      arch=TINY, strategy=(0.3, 0.7), num_tasks=2, iters_per_task=1,
      batch_size=6, replay_size=4, learning_rate=1e-2, replay='none',
      **options)


def test_none_step_is_a_plain_adam_step_on_the_current_loss():
  """Task 2: cross-entropy over the classes seen so far, weight 1 (not
  1/t), every layer updated; nothing replayed, no generator."""
  config = _none_config()
  tx = optim.adam(config.learning_rate)
  state = steps.end_task(continual.init_state(config, jax.random.key(0)))
  assert state.generator is None and state.prev_generator is None
  batch = steps.Batch(
      x=jax.random.normal(jax.random.key(1), (6, TINY.feature_dim)),
      y=jnp.array([0, 1, 2, 3, 0, 1]))
  order = np.arange(TINY.num_classes)
  info = steps.task_info(2, order, 2)
  step = jax.jit(replay_kinds.get('none').make_step(config, tx, None))
  new, metrics = step(steps.copy_tree(state), batch, info)
  assert set(metrics) == {'classifier/current_loss', 'classifier/loss'}

  model = classifier_lib.Classifier(TINY)

  def loss(params):
    logits = model.apply({'params': params}, batch.x, 0,
                         method=classifier_lib.Classifier.classify_from)
    return jnp.mean(losses.cross_entropy(logits, batch.y, info.active))

  params = state.classifier.params
  grads = jax.grad(loss)(params)
  updates, _ = tx.update(grads, state.classifier.opt_state, params)
  want = optax.apply_updates(params, updates)
  chex.assert_trees_all_close(new.classifier.params, want, atol=1e-6)
  assert float(metrics['classifier/loss']) == pytest.approx(
      float(loss(params)), rel=1e-6)
  assert int(new.step) == int(state.step) + 1


def test_none_run_keeps_nothing_and_forgets():
  """A run without replay: no memory rows, no generator, no replay loss;
  trained on task 2 alone, it keeps less of task 1 than buffer replay."""
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(TINY.num_classes), 30)
  centres = rng.normal(size=(TINY.num_classes, TINY.feature_dim)) * 3
  features = (centres[labels]
              + rng.normal(size=(len(labels), TINY.feature_dim))
              ).astype(np.float32)
  data = (features, labels)
  results = {}
  for replay in ('none', 'buffer'):
    config = continual.ContinualConfig(
        arch=TINY, strategy=(1.0, 0.0), num_tasks=2, iters_per_task=150,
        batch_size=16, replay_size=16, learning_rate=3e-3, chunk_size=50,
        replay=replay, buffer_size=40)
    split = continual.task_split(config, 0, labels, labels)
    task_data = continual.task_data(config, [split], [0], 2, batched=False)
    assert (task_data.memory_rows is None) == (replay == 'none')
    results[replay] = continual.run(config, data, data, 0)
  none, buffer = results['none'], results['buffer']
  assert none.state.generator is None
  assert 'classifier/replay_loss' not in none.losses[1]
  # Task 1 is learnt the same way (the same keys, no replay yet) ...
  np.testing.assert_allclose(none.accuracy[0], buffer.accuracy[0])
  assert none.accuracy[0, 0] > 0.8
  # ... and forgotten without replay.
  assert none.accuracy[1, 0] < buffer.accuracy[1, 0] - 0.2, (
      none.accuracy, buffer.accuracy)


def test_presets_offer_the_lower_bound():
  from experiments.configs import fig5, table1, table2  # pylint: disable=g-import-not-at-top
  t1 = table1.config('arch2', replay='none', preset='tiny')
  t2 = table2.config('arch1', replay='none', preset='tiny')
  f5 = fig5.config('none', preset='tiny')
  assert {c.continual.replay for c in (t1, t2, f5)} == {'none'}
  assert t2.mfid is None  # no generator to score
  assert table2.config('arch1', preset='tiny').mfid is not None
  assert f5.name.startswith('No replay')
  ids = [row.run_id for row in table1.rows('tiny')]
  assert ids[-2:] == ['table1_arch1_none', 'table1_arch2_none']
  with pytest.raises(ValueError, match='replay must be buffer or none'):
    table1.config('arch1', replay='generative')
