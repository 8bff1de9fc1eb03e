"""A tiny generative PLR run, end to end: 3 tasks of fake data."""

import dataclasses
import functools
import io

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plr_jax.train import continual
from plr_jax.eval import accuracy as evaluation
from plr_jax.train import loops
from plr_jax.io import progress as progress_lib
from plr_jax.train import steps
from tests.conftest import TINY, TINY3

CONFIG = continual.ContinualConfig(
    arch=TINY, strategy=(0.5, 0.5), num_tasks=3, iters_per_task=60,
    batch_size=16, replay_size=16, learning_rate=3e-3, chunk_size=30)


def _fake_images(seed, per_class):
  """Images whose class shows in their mean colour: learnable, but not at once."""
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(TINY.num_classes), per_class)
  centres = rng.normal(size=(TINY.num_classes, 1, 1, 3))
  images = rng.normal(size=(len(labels),) + TINY.image_shape) * 0.5
  return (images + centres[labels]).astype(np.float32), labels


@functools.lru_cache(maxsize=None)
def _data():
  variables = continual.init_classifier(TINY, jax.random.key(42))
  train_x, train_y = _fake_images(0, 40)
  test_x, test_y = _fake_images(0, 10)
  train = (evaluation.extract_features(TINY, variables, train_x), train_y)
  test = (evaluation.extract_features(TINY, variables, test_x), test_y)
  return variables['params'], train, test


@functools.lru_cache(maxsize=None)
def _run(seed):
  params, train, test = _data()
  snapshots = {}

  def on_task_end(task, state):
    # The next task reuses (donates) the state's buffers: keep host copies.
    snapshots[task] = jax.device_get((state.prev_classifier,
                                      state.prev_generator))

  result = continual.run(CONFIG, train, test, seed, classifier_params=params,
                         hooks=continual.Hooks(on_task_end=on_task_end))
  return result, snapshots


def test_run_produces_finite_losses_and_an_accuracy_matrix():
  result, _ = _run(0)
  assert result.accuracy.shape == (3, 3)
  assert np.all((result.accuracy >= 0) & (result.accuracy <= 1))
  assert len(result.losses) == 3
  for task_losses in result.losses:
    for name, values in task_losses.items():
      chex.assert_shape(values, (CONFIG.iters_per_task,))
      assert np.all(np.isfinite(values)), name
  # Replay is off in task 1 and on afterwards.
  assert np.all(result.losses[0]['classifier/replay_loss'] == 0)
  assert np.all(result.losses[2]['classifier/replay_loss'] > 0)
  # Something was learnt: task 1 right after it, and the final average is
  # above chance (1/6 of the head's classes).
  assert result.accuracy[0, 0] > 0.8
  assert result.average_accuracy > 1 / 6
  # Replay keeps part of task 1 through task 2 (without the replay
  # distillation over all seen classes this was exactly 0).
  assert result.accuracy[1, 0] > 0.3
  assert 0 <= result.average_accuracy <= 1
  assert int(result.state.step) == 3 * CONFIG.iters_per_task
  # One compilation per phase (task 1; tasks 2-3), none per task or chunk.
  phases = {steps.Phase.of(t, CONFIG.extractor_trainable_until)
            for t in (1, 2, 3)}
  assert len(phases) == 2
  assert continual.make_chunk_runner(CONFIG).loop._cache_size() == len(phases)


def test_previous_networks_are_parameter_pytrees_of_the_last_task():
  result, snapshots = _run(0)
  state = result.state
  chex.assert_trees_all_equal_structs(state.prev_classifier,
                                      state.classifier.params)
  chex.assert_trees_all_equal(state.prev_classifier, state.classifier.params)
  chex.assert_trees_all_equal(state.prev_generator, state.generator.params)
  # After task 2 the previous networks were task 2's, and task 3 moved on.
  prev_cls_2, prev_gen_2 = snapshots[2]
  assert not np.array_equal(prev_cls_2['head']['kernel'],
                            state.classifier.params['head']['kernel'])
  assert not np.array_equal(prev_gen_2['dec_0']['kernel'],
                            state.generator.params['dec_0']['kernel'])
  assert isinstance(prev_cls_2, dict) and 'fc_1' in prev_cls_2


def test_same_seed_same_result_other_seed_other_result():
  first, _ = _run(0)
  params, train, test = _data()
  again = continual.run(CONFIG, train, test, 0, classifier_params=params)
  np.testing.assert_array_equal(first.accuracy, again.accuracy)
  for a, b in zip(first.losses, again.losses):
    chex.assert_trees_all_equal(a, b)
  chex.assert_trees_all_equal(first.state.classifier, again.state.classifier)
  other, _ = _run(1)
  assert not np.array_equal(first.class_order, other.class_order)
  assert not np.array_equal(first.losses[0]['classifier/loss'],
                            other.losses[0]['classifier/loss'])


def test_class_order_and_task_info():
  order = continual.class_order(0, 6)
  assert sorted(order.tolist()) == list(range(6))
  np.testing.assert_array_equal(order, continual.class_order(0, 6))
  info = steps.task_info(2, order, 3)
  assert int(info.task) == 2
  assert set(np.flatnonzero(info.active)) == set(order[:4].tolist())
  assert set(np.flatnonzero(info.replayed)) == set(order[:2].tolist())
  tasks = continual.task_of_class(order, 3)
  assert tasks[order[0]] == 0 and tasks[order[5]] == 2


# numpy's `np.random.seed(0); np.random.permutation(100)`, computed once with
# numpy 2.x (the legacy generator's stream is fixed): the reference remaps
# CIFAR-100 label y to PERMUTATION_SEED0[y] for seed 0.
PERMUTATION_SEED0 = [
    26, 86, 2, 55, 75, 93, 16, 73, 54, 95, 53, 92, 78, 13, 7, 30, 22, 24, 33,
    8, 43, 62, 3, 71, 45, 48, 6, 99, 82, 76, 60, 80, 90, 68, 51, 27, 18, 56,
    63, 74, 1, 61, 42, 41, 4, 15, 17, 40, 38, 5, 91, 59, 0, 34, 28, 50, 11,
    35, 23, 52, 10, 31, 66, 57, 79, 85, 32, 84, 14, 89, 19, 29, 49, 97, 98,
    69, 20, 94, 72, 77, 25, 37, 81, 46, 39, 65, 58, 12, 88, 70, 87, 36, 21,
    83, 9, 96, 67, 64, 47, 44]


def test_authors_class_order_is_the_references_label_remapping():
  """CIFAR-100, seed 0: class y belongs to task PERMUTATION_SEED0[y] // 10,
  as in the reference (tasks are consecutive groups of remapped labels)."""
  order = continual.class_order(0, 100, 'authors', 'cifar100')
  np.testing.assert_array_equal(continual.task_of_class(order, 10),
                                np.asarray(PERMUTATION_SEED0) // 10)
  assert sorted(order[:10].tolist()) == [2, 14, 19, 22, 26, 40, 44, 49, 52,
                                         94]
  # CIFAR-10 (Table 1) draws its permutation the same way.
  np.testing.assert_array_equal(
      continual.task_of_class(continual.class_order(0, 10, 'authors',
                                                    'cifar10'), 2),
      np.asarray([2, 8, 4, 9, 1, 6, 7, 3, 0, 5]) // 5)
  # Fashion-MNIST keeps the dataset's order below seed 10, not above.
  for seed in (0, 9):
    np.testing.assert_array_equal(
        continual.class_order(seed, 10, 'authors', 'fashion_mnist'),
        np.arange(10))
  np.testing.assert_array_equal(
      continual.task_of_class(continual.class_order(
          12, 10, 'authors', 'fashion_mnist'), 5),
      np.asarray([5, 8, 7, 0, 4, 9, 3, 2, 1, 6]) // 2)
  # The default rule is the authors'.
  np.testing.assert_array_equal(continual.class_order(0, 100), order)


def test_class_order_rules():
  seeded = continual.class_order(1, 10, 'seeded')
  assert not np.array_equal(seeded, np.arange(10))
  assert not np.array_equal(seeded, continual.class_order(1, 10, 'authors'))
  for seed in (0, 1):
    np.testing.assert_array_equal(
        continual.class_order(seed, 10, 'identity'), np.arange(10))
  with pytest.raises(ValueError, match="got 'sorted'"):
    continual.class_order(0, 10, 'sorted')
  with pytest.raises(ValueError, match="got 'bir'"):
    continual.class_order(0, 10, 'bir')


def test_identity_class_order_defines_the_tasks():
  params, train, test = _data()
  config = dataclasses.replace(CONFIG, class_order_rule='identity')
  result = continual.run(config, train, test, 1, classifier_params=params)
  np.testing.assert_array_equal(result.class_order,
                                np.arange(TINY.num_classes))


def test_config_is_validated():
  with pytest.raises(ValueError, match='3 entries but tiny has 2 levels'):
    continual.ContinualConfig(arch=TINY, strategy=(0.5, 0.3, 0.2),
                              num_tasks=3)
  with pytest.raises(ValueError, match='do not split into 4 equal tasks'):
    continual.ContinualConfig(arch=TINY, strategy=(0.5, 0.5), num_tasks=4)
  with pytest.raises(ValueError, match='iters_per_task must be positive'):
    continual.ContinualConfig(arch=TINY, strategy=(0.5, 0.5), num_tasks=3,
                              iters_per_task=0)
  with pytest.raises(ValueError, match='class order must be one of'):
    continual.ContinualConfig(arch=TINY, strategy=(0.5, 0.5), num_tasks=3,
                              class_order_rule='sorted')


def test_buffer_replay_run_compiles_once_and_is_deterministic():
  params, train, test = _data()
  config = continual.ContinualConfig(
      arch=TINY, strategy=(0.3, 0.7), num_tasks=2, iters_per_task=40,
      batch_size=16, replay_size=16, learning_rate=3e-3, chunk_size=20,
      replay='buffer', buffer_size=32)
  result = continual.run(config, train, test, 0, classifier_params=params)
  assert result.state.generator is None
  assert result.accuracy.shape == (2, 2)
  assert np.all(result.losses[1]['classifier/replay_loss'] > 0)
  phases = {steps.Phase.of(t, config.extractor_trainable_until)
            for t in (1, 2)}
  assert continual.make_chunk_runner(config).loop._cache_size() == len(phases)
  again = continual.run(config, train, test, 0, classifier_params=params)
  np.testing.assert_array_equal(result.accuracy, again.accuracy)


def _tiny3_images():
  """48 images of TINY3's shape, 8 per class, the class shifting the pixels."""
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(6), 8)
  images = (rng.normal(size=(48,) + TINY3.image_shape)
            + labels[:, None, None, None] * 0.3).astype(np.float32)
  return images, labels


def test_generative_replay_of_images_freezes_conv_parts_after_task_1():
  """GR with frozen convolutions (Figure 5's gr_frozen) on tiny images."""
  images, labels = _tiny3_images()
  config = continual.ContinualConfig(
      arch=TINY3, strategy=(1.0, 0.0, 0.0), num_tasks=3, iters_per_task=6,
      batch_size=8, replay_size=8, learning_rate=3e-3, chunk_size=6,
      inputs='images', replay='images', extractor_trainable_until=1)
  ends = {}
  result = continual.run(config, (images, labels), (images, labels), 0,
                         hooks=continual.Hooks(
                             on_task_end=lambda t, s: ends.setdefault(
                                 t, jax.device_get(s))))
  assert result.accuracy.shape == (3, 3)
  for task_losses in result.losses:
    assert all(np.all(np.isfinite(v)) for v in task_losses.values())
  assert np.all(result.losses[2]['generator/replay_recon'] > 0)
  after_1, after_3 = ends[1], result.state
  chex.assert_trees_all_equal(after_1.prev_classifier['extractor'],
                              after_3.classifier.params['extractor'])
  for part in ('conv_encoder', 'conv_decoder'):
    chex.assert_trees_all_equal(after_1.prev_generator[part],
                                after_3.generator.params[part])
  assert not np.array_equal(after_1.prev_classifier['head']['kernel'],
                            after_3.classifier.params['head']['kernel'])
  assert not np.array_equal(after_1.prev_generator['dec_0']['kernel'],
                            after_3.generator.params['dec_0']['kernel'])


def test_vmapped_seeds_match_runs_of_each_seed_alone():
  params, train, test = _data()
  evaluated = []
  batched = continual.run_seeds(
      CONFIG, train, test, [0, 1], classifier_params=params,
      hooks=continual.Hooks(
          on_evaluated=lambda t, rows: evaluated.append((t, rows))))
  # One report per task, with each seed's row of its accuracy matrix.
  assert [t for t, _ in evaluated] == [1, 2, 3]
  for t, rows in evaluated:
    chex.assert_shape(rows, (2, CONFIG.num_tasks))
    for i, result in enumerate(batched):
      np.testing.assert_array_equal(rows[i], result.accuracy[t - 1])
  phases = {steps.Phase.of(t, CONFIG.extractor_trainable_until)
            for t in (1, 2, 3)}
  assert (continual.make_chunk_runner(CONFIG, True).loop._cache_size() ==
          len(phases))
  for seed, result in zip([0, 1], batched):
    alone, _ = _run(seed)
    assert_results_close(result, alone)


def assert_results_close(result, expected):
  """Same run up to float reassociation: order, accuracy, losses, params."""
  np.testing.assert_array_equal(result.class_order, expected.class_order)
  np.testing.assert_allclose(result.accuracy, expected.accuracy, atol=0.02)
  for a, b in zip(result.losses, expected.losses):
    for name in a:
      np.testing.assert_allclose(a[name], b[name], rtol=1e-3, atol=1e-4,
                                 err_msg=name)
  chex.assert_trees_all_close(result.state.classifier.params,
                              expected.state.classifier.params,
                              rtol=1e-3, atol=1e-4)
  if expected.state.generator is not None:
    chex.assert_trees_all_close(result.state.generator.params,
                                expected.state.generator.params,
                                rtol=1e-3, atol=1e-4)


def test_host_loop_reports_progress_in_short_chunks():
  """Where the loop runs on the host (convolutions on CPU), chunks are short
  so that progress lines keep coming; the chunking does not change results."""
  if not loops.slow_convolutions(has_convolutions=True):
    pytest.skip('the host loop is used on CPU only')
  images, labels = _tiny3_images()
  base = dict(arch=TINY3, strategy=(1.0, 0.0, 0.0), num_tasks=3,
              iters_per_task=45, batch_size=8, replay_size=8,
              inputs='images', extractor_trainable_until=1)
  reports = []
  long_chunks = continual.run(
      continual.ContinualConfig(chunk_size=500, **base), (images, labels),
      (images, labels), 0,
      hooks=continual.Hooks(on_chunk=lambda t, done: reports.append((t, done))))
  assert reports[:3] == [(1, continual.HOST_LOOP_CHUNK),
                         (1, 2 * continual.HOST_LOOP_CHUNK), (1, 45)]
  short_chunks = continual.run(
      continual.ContinualConfig(chunk_size=7, **base), (images, labels),
      (images, labels), 0)
  np.testing.assert_array_equal(long_chunks.accuracy, short_chunks.accuracy)
  chex.assert_trees_all_close(long_chunks.state.classifier.params,
                              short_chunks.state.classifier.params)


def test_accuracy_after_a_task_predicts_among_seen_classes_only():
  """A class not trained yet cannot win the argmax of an intermediate row;
  with every class seen, the argmax is over all head outputs."""
  params = jax.tree.map(jnp.zeros_like, continual.init_classifier(
      TINY, jax.random.key(0))['params'])
  params = {k: v for k, v in params.items() if k != 'extractor'}
  bias = np.zeros(TINY.num_classes, np.float32)
  bias[[0, 1, 2]] = [1.0, 2.0, 5.0]  # class 2, unseen below, dominates
  params['head']['bias'] = jnp.asarray(bias)
  features = np.zeros((4, TINY.feature_dim), np.float32)
  labels = np.array([1, 1, 2, 2])
  tasks = np.array([0, 0, 1, 1])
  seen = np.zeros(TINY.num_classes, bool)
  seen[[0, 1]] = True
  np.testing.assert_array_equal(
      evaluation.task_accuracies(TINY, params, features, labels, tasks, 2,
                                 seen=seen), [1.0, 0.0])
  np.testing.assert_array_equal(
      evaluation.task_accuracies(TINY, params, features, labels, tasks, 2),
      [0.0, 1.0])


def test_an_unrolled_scan_does_not_change_the_run():
  """Any scan unroll: the same run to float tolerance, with one compilation
  per phase."""
  params, train, test = _data()
  config = dataclasses.replace(CONFIG, scan_unroll=4)
  result = continual.run(config, train, test, 0, classifier_params=params)
  assert_results_close(result, _run(0)[0])
  assert continual.make_chunk_runner(config).loop._cache_size() == 2


def test_progress_reports_each_seeds_accuracy_after_a_task():
  stream = io.StringIO()
  report = progress_lib.Progress(num_tasks=3, iters_per_task=10,
                                 stream=stream)
  report.evaluated(2, np.array([[0.5, 0.25, 0.0], [1.0, 0.0, 0.0]]), [7, 8])
  assert stream.getvalue().splitlines() == [
      '[seed 7] after task 2/3: accuracy per task 50.0 25.0 | average 37.50%',
      '[seed 8] after task 2/3: accuracy per task 100.0 0.0 | average 50.00%']


def test_progress_rate_and_eta_leave_out_each_tasks_first_chunk():
  now = [0.0]
  stream = io.StringIO()
  report = progress_lib.Progress(num_tasks=2, iters_per_task=100,
                                 interval_s=0, stream=stream,
                                 clock=lambda: now[0])
  # Task 1: the first chunk of 50 iterations takes 30 s (compilation), the
  # second 5 s: the steady rate is 10 it/s.
  for t, done, seconds in ((1, 50, 30.0), (1, 100, 5.0)):
    now[0] += seconds
    report(t, done)
  assert report.rate == pytest.approx(10.0)
  last = stream.getvalue().splitlines()[-1]
  assert '10.0 it/s' in last and 'ETA 0m10s' in last, last
  # Task 2's first chunk (a new program, evaluation, checkpoint: 40 s) does
  # not count either: task 1's rate stands. Its second chunk (2.5 s for 50)
  # gives task 2's own rate, 20 it/s (a frozen extractor's tasks run faster
  # than task 1; the later tasks are like this one).
  now[0] += 40.0
  report(2, 50)
  assert report.rate == pytest.approx(10.0)
  now[0] += 2.5
  report(2, 100)
  assert report.rate == pytest.approx(20.0)
  # The process's first chunk compiles: no rate and no ETA from it alone.
  times = iter([0.0, 4.0, 5.0])
  stream = io.StringIO()
  fresh = progress_lib.Progress(num_tasks=2, iters_per_task=10,
                                interval_s=0, stream=stream,
                                clock=lambda: next(times))
  fresh(1, 10)
  assert fresh.rate is None
  assert stream.getvalue().strip().endswith(
      'rate and ETA after the first compiled chunk'), stream.getvalue()
  # A task's first chunk after it: the rate until a steady chunk comes.
  fresh(2, 5)
  assert fresh.rate == pytest.approx(5.0)
  assert stream.getvalue().strip().endswith('5.0 it/s | ETA 0m01s')


@pytest.mark.parametrize('replay', ['generative', 'images'])
def test_seeds_with_convolutions_match_runs_of_each_seed_alone(replay):
  """Seeds in one program on images (Figure 5's setups): vmapped, or on
  XLA:CPU one after another (`loops.slow_convolutions`), each seed's run is
  its run alone."""
  images, labels = _tiny3_images()
  config = continual.ContinualConfig(
      arch=TINY3, strategy=(1.0, 0.0, 0.0), num_tasks=3, iters_per_task=4,
      batch_size=8, replay_size=8, learning_rate=3e-3, chunk_size=4,
      inputs='images', replay=replay, extractor_trainable_until=1)
  data = (images, labels)
  batched = continual.run_seeds(config, data, data, [0, 1])
  for seed, result in zip([0, 1], batched):
    assert_results_close(result, continual.run(config, data, data, seed))


def test_map_unrolled_is_vmap_one_slice_at_a_time():
  fn = lambda x, y, s: (x @ y + s, jnp.sum(x))
  xs = jax.random.normal(jax.random.key(0), (3, 4, 5))
  y = jax.random.normal(jax.random.key(1), (5, 2))
  s = jnp.arange(3.0)
  chex.assert_trees_all_close(
      jax.jit(loops.map_unrolled(fn, (0, None, 0)))(xs, y, s),
      jax.vmap(fn, in_axes=(0, None, 0))(xs, y, s), rtol=1e-6)
  with pytest.raises(ValueError, match='axis 0 only'):
    loops.map_unrolled(fn, (1, None, 0))
  with pytest.raises(ValueError, match='disagree'):
    loops.map_unrolled(fn, (0, None, 0))(xs, y, jnp.arange(2.0))
