"""Train steps: partial updates, one compilation for every task, vmap."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import run as bench
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import arch as arch_lib
from plr_jax.models import generator as generator_lib
from plr_jax.train import continual
from plr_jax.models import image_generator
from plr_jax.train import losses
from plr_jax.train import optim
from plr_jax.train import replay as replay_lib
from plr_jax.train import replay_kinds
from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib
from tests.conftest import TINY, TINY3

ORDER = np.arange(6)
ADAM = optim.adam(1e-2)


def _batch(arch, key, size=8):
  x = jax.random.normal(key, (size, arch.feature_dim))
  y = jax.random.randint(jax.random.fold_in(key, 1), (size,), 0, 2)
  return steps.Batch(x=x, y=y)


def _replay(arch, key, size=12):
  keys = jax.random.split(key, arch.num_levels + 1)
  levels = tuple(jax.nn.relu(jax.random.normal(k, (size, d)))
                 for k, d in zip(keys, arch.level_dims))
  logits = jax.random.normal(keys[-1], (size, arch.num_classes)) * 2
  return replay_lib.ReplayBatch(levels=levels, logits=logits)


@functools.lru_cache(maxsize=None)
def _top_params(arch):
  params = continual.init_classifier(arch, jax.random.key(0))['params']
  return {k: v for k, v in params.items() if k != 'extractor'}


def _fresh_top_params(arch):
  """`_top_params` in buffers of its own (steps elsewhere donate theirs)."""
  params = continual.init_classifier(arch, jax.random.key(0))['params']
  return {k: v for k, v in params.items() if k != 'extractor'}


def _classifier_state(arch, tx):
  return steps.TrainState.create(_top_params(arch), tx)


@functools.lru_cache(maxsize=None)
def _warm_state(arch, tx):
  """Two full steps, so that every layer has non-zero Adam moments."""
  strategy = (1 / arch.num_levels,) * arch.num_levels
  step = jax.jit(steps.make_classifier_step(arch, tx, strategy, 12, jit=False))
  state = _classifier_state(arch, tx)
  for i in range(2):
    state, _ = step(state, _batch(arch, jax.random.key(i)),
                    _replay(arch, jax.random.key(10 + i)),
                    steps.task_info(2, ORDER, 3))
  return state


def _layer(tree, name):
  """The params, Adam mu and Adam nu of one layer."""
  adam_state = tree.opt_state[0]
  return (tree.params[name], adam_state.mu[name], adam_state.nu[name])


@pytest.mark.parametrize('strategy, frozen', [
    ((1.0, 0.0, 0.0), ()),
    ((0.0, 1.0, 0.0), ('fc_1',)),
    ((0.0, 0.0, 1.0), ('fc_1', 'fc_2')),
    ((0.0, 0.5, 0.5), ('fc_1',)),
    ((0.5, 0.0, 0.5), ()),
])
def test_replay_only_step_leaves_shallower_layers_untouched(strategy, frozen):
  arch, tx = TINY3, ADAM
  state = _warm_state(arch, tx)
  step = steps.make_classifier_step(arch, tx, strategy, 12,
                                    with_current=False, jit=False)
  info = steps.task_info(2, ORDER, 3)
  replay = _replay(arch, jax.random.key(99))
  new, metrics = jax.jit(step)(state, None, replay, info)
  assert float(metrics['replay_loss']) > 0
  for name in ('fc_1', 'fc_2', 'fc_3', 'head'):
    before, after = _layer(state, name), _layer(new, name)
    if name in frozen:
      chex.assert_trees_all_equal(after, before)  # bit for bit
    else:
      for b, a in zip(before, after):
        assert not np.array_equal(a['kernel'], b['kernel']), name
  if frozen:
    # Without the gates Adam would have moved the frozen layers: the
    # gradient is zero but the moments are not.
    grads = jax.tree.map(jnp.zeros_like, state.params)
    updates, _ = tx.update(grads, state.opt_state, state.params)
    assert float(jnp.abs(updates[frozen[0]]['kernel']).max()) > 0


def test_trainable_gates_freeze_layers_with_current_data():
  arch, tx = TINY, ADAM
  state = _warm_state(arch, tx)
  step = jax.jit(steps.make_classifier_step(arch, tx, (0.5, 0.5), 12,
                                            jit=False))
  new, _ = step(state, _batch(arch, jax.random.key(5)),
                _replay(arch, jax.random.key(6)), steps.task_info(2, ORDER, 3),
                trainable={'fc_1': jnp.array(False)})
  chex.assert_trees_all_equal(_layer(new, 'fc_1'), _layer(state, 'fc_1'))
  assert not np.array_equal(new.params['fc_2']['kernel'],
                            state.params['fc_2']['kernel'])


def test_gates_must_cover_every_layer():
  with pytest.raises(ValueError, match=r"no gate for layers \['head'\]"):
    optim.gate_tree({'fc_1': {}, 'head': {}}, {'fc_1': True})


def test_replay_slices_enter_at_their_levels():
  """The replay loss equals distillation of classify_from(level n) per slice."""
  arch, tx = TINY3, optim.adam(1e-3)
  state = _classifier_state(arch, tx)
  replay = _replay(arch, jax.random.key(3))
  info = steps.task_info(3, ORDER, 3)
  step = steps.make_classifier_step(arch, tx, (0.25, 0.25, 0.5), 12,
                                    with_current=False, jit=False)
  _, metrics = step(state, None, replay, info)
  model = classifier_lib.Classifier(arch)
  logits = [model.apply({'params': state.params}, replay.levels[n][a:b], n,
                        method=classifier_lib.Classifier.classify_from)
            for n, (a, b) in enumerate(((0, 3), (3, 6), (6, 12)))]
  want = losses.distillation(jnp.concatenate(logits), replay.logits,
                             info.replayed, info.active).mean()
  np.testing.assert_allclose(metrics['replay_loss'], want, rtol=1e-6)


def test_classifier_step_compiles_once_per_phase():
  arch, tx = TINY, optim.adam(1e-3)
  step = steps.make_classifier_step(arch, tx, (0.5, 0.5), 12, jit=False)
  # Task 1 (no replay) and tasks 2 and 3 (replaying): two programs.
  step = jax.jit(chex.assert_max_traces(step, n=2), donate_argnums=0)
  # Buffers of its own: the donation would delete the cached _top_params.
  state = steps.TrainState.create(_fresh_top_params(arch), tx)
  for t in (1, 2, 3):
    state, metrics = step(state, _batch(arch, jax.random.key(t)),
                          _replay(arch, jax.random.key(t)),
                          steps.task_info(t, ORDER, 3))
    chex.assert_tree_all_finite(metrics)
    if t == 1:
      assert float(metrics['replay_loss']) == 0.0  # not traced in task 1


def _plr_state(arch, seed):
  config = continual.ContinualConfig(arch=arch, strategy=(0.5, 0.5),
                                     num_tasks=3, batch_size=8, replay_size=12,
                                     learning_rate=1e-3)
  return continual.init_state(config, jax.random.key(seed))


@functools.lru_cache(maxsize=None)
def _plr_step():
  """The pure PLR step and its jitted form, which may be traced once per
  phase (task 1; replaying)."""
  tx = optim.adam(1e-3)
  step = steps.make_plr_step(TINY, (0.5, 0.5), 12, tx, tx, jit=False)
  return step, jax.jit(chex.assert_max_traces(step, n=2))


def test_plr_step_compiles_once_per_phase_and_trains_both_networks():
  arch, (_, step) = TINY, _plr_step()
  state = _plr_state(arch, 0)
  for t in (1, 2, 3):
    new, metrics = step(state, _batch(arch, jax.random.key(t)),
                        steps.task_info(t, ORDER, 3))
    chex.assert_tree_all_finite(metrics)
    assert int(new.step) == int(state.step) + 1
    for part in ('classifier', 'generator'):
      old_p, new_p = getattr(state, part).params, getattr(new, part).params
      assert not np.array_equal(old_p['head']['kernel'] if part == 'classifier'
                                else old_p['dec_0']['kernel'],
                                new_p['head']['kernel'] if part == 'classifier'
                                else new_p['dec_0']['kernel'])
    if t > 1:
      assert float(metrics['classifier/replay_loss']) > 0
      assert float(metrics['generator/replay_recon']) > 0
    state = steps.end_task(new)


def test_plr_step_vmaps_over_seeds():
  """A vmapped batch of seeds gives each seed's own result."""
  arch, (step, jitted_step) = TINY, _plr_step()
  info = steps.task_info(2, ORDER, 3)
  states = [_plr_state(arch, s) for s in (0, 1)]
  batches = [_batch(arch, jax.random.key(s)) for s in (0, 1)]
  stacked = jax.tree.map(lambda *x: jnp.stack(x), *states)
  stacked_batch = jax.tree.map(lambda *x: jnp.stack(x), *batches)
  out, metrics = jax.jit(jax.vmap(step, in_axes=(0, 0, None)))(
      stacked, stacked_batch, info)
  for s in (0, 1):
    alone, alone_metrics = jitted_step(states[s], batches[s], info)
    # Batched matmuls sum in another order; one Adam step of size 1e-3 turns
    # that into differences of order 1e-5.
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[s], (out.classifier, out.generator)),
        (alone.classifier, alone.generator), rtol=1e-4, atol=3e-5)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[s], metrics),
                                alone_metrics, rtol=1e-4, atol=3e-5)


def test_generator_step_without_data_changes_nothing():
  arch, tx = TINY, optim.adam(1e-3)
  params = continual.init_generator(arch, jax.random.key(0))
  state = steps.TrainState.create(params, tx)
  step = steps.make_generator_step(arch, tx, with_current=False, jit=False)
  new, metrics = step(state, None, None, None, steps.task_info(2, ORDER, 3),
                      jax.random.key(0))
  assert float(metrics['loss']) == 0.0
  chex.assert_trees_all_equal(new.params, state.params)
  chex.assert_trees_all_equal(new.opt_state[0].mu, state.opt_state[0].mu)
  chex.assert_trees_all_equal(new.opt_state[0].nu, state.opt_state[0].nu)
  # Adam's step counter (bias correction) is shared and still advances.
  assert int(new.opt_state[0].count) == 1


def test_generator_step_reduces_reconstruction_loss():
  arch, tx = TINY, optim.adam(3e-3)
  params = continual.init_generator(arch, jax.random.key(0))
  state = steps.TrainState.create(params, tx)
  step = steps.make_generator_step(arch, tx)
  replay = _replay(arch, jax.random.key(1))
  levels = _replay(arch, jax.random.key(2), size=8).levels
  labels = jnp.arange(8) % 2
  info = steps.task_info(2, ORDER, 3)
  first = None
  for i in range(120):
    state, metrics = step(state, levels, labels, replay, info,
                          jax.random.key(i))
    first = first if first is not None else metrics
  assert float(metrics['recon']) < 0.7 * float(first['recon'])
  assert float(metrics['replay_recon']) < 0.7 * float(first['replay_recon'])


def _flops(step, *args) -> float:
  return bench._flops(jax.jit(step).lower(*args))  # pylint: disable=W0212


@pytest.mark.parametrize('replay', ['generative', 'images', 'buffer'])
def test_phase_programs_skip_task_1s_replay_and_the_frozen_layers(replay):
  """A step's program is specialised to its task's phase: task 1 traces no
  replay (a zero replay loss, fewer FLOPs), and once the extractor froze
  its gradients are not computed (fewer FLOPs) and it stays as it was."""
  arch = TINY3
  images = replay in ('generative', 'images')
  frozen_after = 2 if images else None
  config = continual.ContinualConfig(
      arch=arch, num_tasks=3, iters_per_task=1, batch_size=4, replay_size=4,
      replay=replay, inputs='images' if images else 'features',
      strategy=(1.0, 0.0, 0.0) if replay == 'images' else (0.0, 0.5, 0.5),
      extractor_trainable_until=frozen_after, buffer_size=6)
  state = steps.end_task(continual.init_state(config, jax.random.key(0)))
  shape = arch.image_shape if images else (arch.feature_dim,)
  x = jax.random.normal(jax.random.key(1), (4,) + shape)
  batch = steps.Batch(x=x, y=jnp.array([0, 1, 2, 3]))
  step = replay_kinds.get(replay).make_step(config, ADAM, None)
  memory = None
  if replay == 'buffer':
    memory = jax.random.normal(jax.random.key(2), (6, arch.feature_dim))
  flops = {}
  for task in (1, 2, 3):
    info = steps.task_info(task, ORDER, 3, frozen_after=frozen_after)
    info = info.replace(memory=memory)
    new, metrics = jax.jit(step)(steps.copy_tree(state), batch, info)
    chex.assert_tree_all_finite(metrics)
    replay_loss = float(metrics['classifier/replay_loss'])
    assert (replay_loss == 0.0) == (task == 1), (task, replay_loss)
    if images:
      changed = not np.allclose(
          jax.tree.leaves(new.classifier.params['extractor'])[0],
          jax.tree.leaves(state.classifier.params['extractor'])[0])
      assert changed == (task <= 2), task
    flops[task] = _flops(step, state, batch, info)
  assert flops[1] < flops[2]
  if images:
    assert flops[3] < flops[2]
  else:
    assert flops[3] == flops[2]


def test_generator_recon_levels_modes():
  """(levels for current data, levels for replayed data); None: all."""
  strategy = (0.5, 0.0, 0.5)
  assert steps.generator_recon_levels(strategy, 'all') == (None, None)
  assert steps.generator_recon_levels(strategy, 'only_last_layer') == (
      (0,), None)
  assert steps.generator_recon_levels(strategy, 'used') == ((0, 2), (0, 2))
  assert steps.generator_recon_levels(strategy, 'classifier') == ((0,), (0,))
  with pytest.raises(ValueError, match='recon_levels must be one of'):
    steps.generator_recon_levels(strategy, 'some')


def test_replayed_hidden_levels_from_the_previous_classifier():
  """`hidden_from_classifier`: the same level-0 samples and soft targets,
  and hidden levels that are the classifier's own features of them."""
  arch = TINY3
  generator = continual.init_generator(arch, jax.random.key(0))
  classifier = _top_params(arch)
  mask = jnp.asarray(np.arange(6) < 2)
  decoded, from_classifier = (
      replay_lib.generative(arch, generator, classifier, jax.random.key(1),
                            mask, 10, hidden_from_classifier=flag)
      for flag in (False, True))
  chex.assert_trees_all_equal_shapes(decoded, from_classifier)
  np.testing.assert_array_equal(decoded.levels[0], from_classifier.levels[0])
  np.testing.assert_allclose(decoded.logits, from_classifier.logits,
                             rtol=1e-5, atol=1e-5)
  _, expected = classifier_lib.Classifier(arch).apply(
      {'params': classifier}, decoded.levels[0],
      method=classifier_lib.Classifier.levels)
  for level in (1, 2):
    np.testing.assert_allclose(from_classifier.levels[level], expected[level],
                               rtol=1e-6)
    assert not np.allclose(from_classifier.levels[level],
                           decoded.levels[level])


def test_plr_step_with_hidden_levels_from_the_classifier():
  """The generator then reconstructs level 0 alone (as for IR), and the
  replay still trains both networks."""
  arch, tx = TINY, optim.adam(1e-3)
  make = functools.partial(steps.make_plr_step, arch, replay_size=12,
                           classifier_tx=tx, generator_tx=tx, jit=False)
  step = jax.jit(make(strategy=(0.5, 0.5), recon_levels='classifier'))
  ir_step = jax.jit(make(strategy=(1.0, 0.0), recon_levels='used'))
  state = _plr_state(arch, 0)
  batch, info = _batch(arch, jax.random.key(1)), steps.task_info(1, ORDER, 3)
  (state, metrics), (_, ir_metrics) = (f(state, batch, info)
                                       for f in (step, ir_step))
  np.testing.assert_allclose(metrics['generator/recon'],
                             ir_metrics['generator/recon'], rtol=1e-6)
  state = steps.end_task(state)
  _, metrics = step(state, _batch(arch, jax.random.key(2)),
                    steps.task_info(2, ORDER, 3))
  chex.assert_tree_all_finite(metrics)
  assert float(metrics['classifier/replay_loss']) > 0
  assert float(metrics['generator/replay_recon']) > 0


def test_plr_step_with_bfloat16_matmuls_on_cpu():
  """`BF16_BF16_F32` (explicit casts on XLA:CPU): the task-2 step stays close
  to the float32 one and differs from it (the casts happen)."""
  arch, (step, _) = TINY, _plr_step()
  state = steps.end_task(_plr_state(arch, 0))
  batch, info = _batch(arch, jax.random.key(3)), steps.task_info(2, ORDER, 3)
  exact, exact_metrics = jax.jit(step)(state, batch, info)
  with jax.default_matmul_precision('BF16_BF16_F32'):
    ours, metrics = jax.jit(step)(state, batch, info)
  chex.assert_tree_all_finite((ours.classifier, ours.generator, metrics))
  chex.assert_trees_all_close(metrics, exact_metrics, rtol=2e-2, atol=2e-3)
  chex.assert_trees_all_close((ours.classifier, ours.generator),
                              (exact.classifier, exact.generator), atol=2e-3)
  losses_differ = any(float(metrics[k]) != float(exact_metrics[k])
                      for k in metrics)
  assert losses_differ == (jax.default_backend() == 'cpu')


def _dots(jaxpr) -> list[int]:
  """FLOPs of every dot_general in a jaxpr, nested ones (pjit, custom VJPs)
  too."""
  flops = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'dot_general':
      (contract, _), _ = eqn.params['dimension_numbers']
      lhs = eqn.invars[0].aval.shape
      size = int(np.prod([lhs[d] for d in contract]))
      flops.append(2 * size * int(np.prod(eqn.outvars[0].aval.shape)))
    for value in eqn.params.values():
      inner = getattr(value, 'jaxpr', value)  # a ClosedJaxpr or a Jaxpr
      if hasattr(inner, 'eqns'):
        flops += _dots(inner)
  return flops


@pytest.mark.parametrize('strategy', [(1.0, 0.0, 0.0), (0.0, 0.5, 0.5),
                                      (0.2, 0.3, 0.5)])
@pytest.mark.parametrize('with_current', [True, False])
def test_one_pass_runs_each_layer_once(strategy, with_current):
  """With the phase known, current rows and every replay slice go through
  the classifier in one pass: each layer's forward and kernel gradient are
  one matmul over all the rows that reach it, its input gradient one over
  the rows that came from below (none for data and injected rows), so the
  matmuls do exactly the arithmetic of separate passes per slice."""
  arch, batch, replay_size = TINY3, 8, 12
  tx = optim.adam(1e-3)
  step = steps.make_classifier_step(arch, tx, strategy, replay_size,
                                    with_current=with_current, jit=False)
  args = (_classifier_state(arch, tx), _batch(arch, jax.random.key(0), batch),
          _replay(arch, jax.random.key(1), replay_size))
  info = steps.task_info(2, ORDER, 3)
  dots = _dots(jax.make_jaxpr(step)(*args, info).jaxpr)
  ins = arch.level_dims + (arch.hidden[-1],)
  outs = arch.hidden + (arch.num_classes,)
  slices = strategy_lib.split_batch(strategy, replay_size)
  expected, below = [], 0
  for j in range(arch.num_levels + 1):  # fc_1 .. fc_H, head
    injected = slices[j] if j < arch.num_levels else 0
    if j == 0 and with_current:
      injected += batch  # data: no input gradient either
    rows = below + injected
    if rows:
      layer = 2 * ins[j] * outs[j]
      expected += [layer * rows] * 2 + ([layer * below] if below else [])
    below = rows
  assert sorted(dots) == sorted(expected)


def test_hard_replay_targets_are_cross_entropy_to_the_teachers_argmax():
  """`replay_targets="hard"` (the reference without `--distill`): the
  classifier's replay loss is the cross-entropy over the classes seen so far
  towards the previous classifier's argmax among the earlier ones."""
  arch, tx = TINY, ADAM
  state = steps.TrainState.create(_fresh_top_params(arch), tx)
  replay = _replay(arch, jax.random.key(3))
  info = steps.task_info(2, ORDER, 3)  # earlier classes 0, 1; seen 0 .. 3
  make = functools.partial(steps.make_classifier_step, arch, tx, (1.0, 0.0),
                           12, with_current=False, jit=False)
  _, hard = jax.jit(make(replay_targets='hard'))(state, None, replay, info)
  _, soft = jax.jit(make(replay_targets='soft'))(state, None, replay, info)
  logits = np.asarray(classifier_lib.Classifier(arch).apply(
      {'params': state.params}, replay.levels[0], 0,
      method=classifier_lib.Classifier.classify_from), np.float64)[:, :4]
  labels = np.argmax(np.asarray(replay.logits)[:, :2], axis=1)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  expected = -np.mean(log_p[np.arange(12), labels])
  np.testing.assert_allclose(hard['replay_loss'], expected, rtol=1e-5)
  assert abs(float(soft['replay_loss']) - expected) > 1e-3
  with pytest.raises(ValueError, match='"soft" or "hard"'):
    make(replay_targets='argmax')


def test_generator_replay_latent_with_hard_targets_uses_one_mode():
  """Hard targets: the replayed sample's prior is its teacher class's mode
  (the reference's `calculate_variat_loss` with y given); the latent term is
  divided by the images' C*H*W (192 for `tiny`'s 8x8x3)."""
  arch, tx = TINY, ADAM
  params = continual.init_generator(arch, jax.random.key(0))
  state = steps.TrainState.create(params, tx)
  replay = _replay(arch, jax.random.key(4))
  info = steps.task_info(2, ORDER, 3)
  step = steps.make_generator_step(arch, tx, with_current=False,
                                   replay_targets='hard', jit=False)
  key = jax.random.key(7)
  _, metrics = jax.jit(step)(state, None, None, replay, info, key)
  _, replay_key = jax.random.split(key)
  model = generator_lib.Generator(arch)
  x = replay.levels[0]
  mean, logvar, z, _ = model.apply(
      {'params': params}, x,
      generator_lib.latent_noise(arch, replay_key, x),
      method=generator_lib.Generator.reconstruct)
  hard = np.argmax(np.asarray(replay.logits)[:, :2], axis=1)
  expected = np.mean(losses.latent(
      z, mean, logvar, params['prior_mean'][hard],
      params['prior_logvar'][hard])) / 192
  assert arch.input_size == 192
  np.testing.assert_allclose(metrics['replay_latent'], expected, rtol=1e-4)


def test_recon_levels_only_last_layer():
  """The reference's `--only-last-layer`: current data reconstructs level 0
  alone (as "classifier" mode does), replayed data every level (as
  "all")."""
  arch, tx = TINY, optim.adam(1e-3)
  make = lambda mode: jax.jit(steps.make_plr_step(
      arch, (0.5, 0.5), 12, tx, tx, recon_levels=mode, jit=False))
  state = steps.end_task(_plr_state(arch, 0))
  batch, info = _batch(arch, jax.random.key(2)), steps.task_info(2, ORDER, 3)
  metrics = {mode: make(mode)(state, batch, info)[1]
             for mode in ('all', 'only_last_layer', 'classifier')}
  np.testing.assert_allclose(metrics['only_last_layer']['generator/recon'],
                             metrics['classifier']['generator/recon'],
                             rtol=1e-6)
  np.testing.assert_allclose(
      metrics['only_last_layer']['generator/replay_recon'],
      metrics['all']['generator/replay_recon'], rtol=1e-6)
  assert (float(metrics['all']['generator/recon'])
          > float(metrics['only_last_layer']['generator/recon']))


def test_generator_targets_come_from_the_updated_classifier():
  """As the reference: the classifier steps first, and the generator
  reconstructs the updated classifier's features of the current batch."""
  arch, tx = TINY, optim.adam(1e-2)
  state = _plr_state(arch, 1)
  batch = _batch(arch, jax.random.key(3))
  info = steps.task_info(1, ORDER, 3)
  make = lambda after: jax.jit(steps.make_plr_step(
      arch, (0.5, 0.5), 12, tx, tx, targets_after_update=after, jit=False))
  new, new_metrics = make(True)(state, batch, info)
  old, old_metrics = make(False)(state, batch, info)
  chex.assert_trees_all_equal(new.classifier, old.classifier)
  # (A first Adam step moves each parameter by about the learning rate
  # either way; the losses show the other targets.)
  assert abs(float(new_metrics['generator/recon'])
             - float(old_metrics['generator/recon'])) > 1e-4
  _, generator_key = jax.random.split(jax.random.fold_in(state.key,
                                                         state.step))
  _, levels = classifier_lib.Classifier(arch).apply(
      {'params': new.classifier.params}, batch.x,
      method=classifier_lib.Classifier.levels)
  generator_step = jax.jit(steps.make_generator_step(arch, tx, jit=False))
  expected, _ = generator_step(state.generator, levels, batch.y,
                               replay_lib.empty(arch, 12), info,
                               generator_key)
  chex.assert_trees_all_close(new.generator, expected, rtol=1e-5, atol=1e-7)


def test_gr_classifier_trains_on_the_vaes_reconstructions():
  """The reference's GR: the classifier's current batch is the image VAE's
  reconstruction of it (sigmoid pixels), not the real images; the VAE
  itself trains on the real images either way."""
  arch = arch_lib.PRESETS['fmnist_scripts']
  arch = dataclasses.replace(arch, conv_channels=(4, 4, 4), hidden=(8,))
  config = continual.ContinualConfig(
      arch=arch, strategy=(1.0,), num_tasks=5, batch_size=4, replay_size=4,
      replay='images', inputs='images')
  state = continual.init_state(config, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  batch = steps.Batch(x=images, y=jnp.array([0, 1, 0, 1]))
  info = steps.task_info(1, np.arange(10), 5)
  tx = optim.adam(1e-4)
  make = lambda on: jax.jit(steps.make_gr_step(
      arch, 4, tx, tx, classifier_on_reconstructions=on, jit=False))
  recon, recon_metrics = make(True)(state, batch, info)
  real, real_metrics = make(False)(state, batch, info)
  chex.assert_trees_all_equal(recon.generator, real.generator)
  # The real-image run equals a classifier step on the real batch; the
  # reconstruction run one on the VAE's output for that batch.
  _, _, recon_key = jax.random.split(jax.random.fold_in(state.key,
                                                        state.step), 3)
  generator = image_generator.ImageGenerator(arch)
  _, _, _, (raw,) = generator.apply(
      {'params': state.generator.params}, images,
      generator_lib.latent_noise(arch, recon_key, images),
      method=image_generator.ImageGenerator.reconstruct)
  reconstructed = jax.nn.sigmoid(raw)
  assert 0 < float(reconstructed.min()) and float(reconstructed.max()) < 1
  logits = classifier_lib.Classifier(arch).apply(
      {'params': state.classifier.params}, reconstructed)
  expected = jnp.mean(losses.cross_entropy(logits, batch.y, info.active))
  np.testing.assert_allclose(recon_metrics['classifier/current_loss'],
                             expected, rtol=1e-5)
  assert abs(float(real_metrics['classifier/current_loss'])
             - float(expected)) > 1e-4


def test_buffer_batches_hold_distinct_stored_samples():
  """As the reference's latent buffer: each replay batch is the start of a
  fresh permutation of the stored samples (no repeats), with every level
  and the soft targets recomputed by the previous classifier."""
  arch = TINY
  params = _fresh_top_params(arch)
  stored = jax.random.normal(jax.random.key(0), (16, arch.feature_dim))
  batch = replay_lib.from_buffer(arch, params, stored, jax.random.key(1), 12)
  rows = [int(np.argmin(np.abs(np.asarray(stored) - r).sum(axis=1)))
          for r in np.asarray(batch.levels[0])]
  assert len(set(rows)) == 12
  logits, levels = classifier_lib.Classifier(arch).apply(
      {'params': params}, stored[np.asarray(rows)],
      method=classifier_lib.Classifier.levels)
  chex.assert_trees_all_close((batch.logits, batch.levels), (logits, levels),
                              rtol=1e-5, atol=1e-6)
  other = replay_lib.from_buffer(arch, params, stored, jax.random.key(2), 12)
  assert not np.array_equal(other.levels[0], batch.levels[0])
  # A buffer smaller than the batch is drawn with replacement.
  small = replay_lib.from_buffer(arch, params, stored[:5], jax.random.key(1),
                                 12)
  chex.assert_shape(small.levels[0], (12, arch.feature_dim))
