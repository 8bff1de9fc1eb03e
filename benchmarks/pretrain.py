r"""Speed of extractor pretraining against its FLOP floor.

  python -m benchmarks.pretrain                     # ARCH1 and ARCH2, float32
  python -m benchmarks.pretrain --precision=float32,BF16_BF16_F32 \
      --conv_backward=patches,xla --json --out=benchmarks/records/x.json

For each architecture, matmul precision and convolution backward it runs
one pretraining epoch exactly as `experiments.pretrain` does (50,000 random
32 x 32 images, batch 256, augmentation on, host loop over the jitted step,
after a compiled warm-up) and reports:

  epoch_s            wall time of the epoch (195 steps).
  step_flops         XLA's cost analysis of one step.
  floor_s            195 x step_flops at the machine's measured matmul
                     throughput (a [512, 2000] x [2000, 2000] matmul in the
                     same precision): the epoch's FLOP floor.
  of_floor           epoch_s / floor_s.
  parts_ms           where a step's time goes, each part timed alone
                     (median): the batch (gather, normalise, augment),
                     extractor forward, extractor forward + backward, the
                     dense layers' forward + backward (on level-0
                     features), the optimizer update; `step` is the whole.

The images' values do not change the speed. Do not run it beside other
work: it measures the whole machine.
"""

import datetime
import json
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from plr_jax.io import machine
from plr_jax.models import arch as arch_lib
from plr_jax.models import classifier as classifier_lib
from plr_jax.models import init as model_init
from plr_jax.train import pretrain as pretrain_lib

flags.DEFINE_list('archs', ['arch1', 'arch2'], 'Architectures.')
flags.DEFINE_list('precision', ['float32'], 'Matmul precisions (float32, '
                  'BF16_BF16_F32, ...).')
flags.DEFINE_list('conv_backward', ['patches'], 'Convolution backward '
                  'passes: patches, xla.')
flags.DEFINE_integer('images', 50_000, 'Training images (an epoch).')
flags.DEFINE_integer('repeats', 10, 'Timed calls of each part (median).')
flags.DEFINE_bool('epoch', True, 'Time a whole epoch (else the parts only).')
flags.DEFINE_bool('json', False, 'Print JSON records.')
flags.DEFINE_string('out', None, 'Also write the JSON records here.')
FLAGS = flags.FLAGS


def _median_ms(fn, *args, repeats):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def matmul_gflops(repeats: int) -> float:
  """Measured throughput of a [512, 2000] x [2000, 2000] matmul in the
  current default precision (through `layers.matmul`, as the model's)."""
  from plr_jax.models import layers  # pylint: disable=g-import-not-at-top
  a = jnp.ones((512, 2000), jnp.float32)
  b = jnp.ones((2000, 2000), jnp.float32)
  ms = _median_ms(jax.jit(layers.matmul), a, b, repeats=max(repeats, 20))
  return 2 * 512 * 2000 * 2000 / (ms * 1e-3) / 1e9


def _parts_ms(parts, carry, step, batch_args, repeats: int) -> dict:
  """Median milliseconds of a step's parts: gathering the batch, the
  extractor forward (and backward), the dense layers forward and backward,
  the optimizer, and the whole step."""
  params, stats, opt_state = carry
  model = parts.model
  x, y = jax.jit(parts.batch)(*batch_args)
  features = model.apply({'params': params, 'batch_stats': stats}, x,
                         method=classifier_lib.Classifier.extract)

  def extract(p, s, x):
    return model.apply({'params': p, 'batch_stats': s}, x, True,
                       mutable=['batch_stats'],
                       method=classifier_lib.Classifier.extract)[0]

  def dense(p, f, y):
    logits = model.apply({'params': p}, f, 0,
                         method=classifier_lib.Classifier.classify_from)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits),
                                         y[:, None], 1))

  def update(grads, opt_state, params):
    return parts.tx.update(grads, opt_state, params)

  timed = {
      'batch': (jax.jit(parts.batch), batch_args),
      'extractor_forward': (jax.jit(extract), (params, stats, x)),
      'extractor_forward_backward': (
          jax.jit(jax.grad(lambda p, s, x: jnp.sum(extract(p, s, x)))),
          (params, stats, x)),
      'dense_forward_backward': (jax.jit(jax.grad(dense)),
                                 (params, features, y)),
      'optimizer': (jax.jit(update), (params, opt_state, params)),
      'step': (step, (carry, *batch_args)),
  }
  return {name: _median_ms(fn, *args, repeats=repeats)
          for name, (fn, args) in timed.items()}


def measure(arch_name: str, precision: str, conv_backward: str,
            images: int, repeats: int, epoch: bool) -> dict:
  arch = arch_lib.with_classes(arch_lib.get_arch(arch_name), 10)
  config = pretrain_lib.PretrainConfig(conv_backward=conv_backward)
  parts = pretrain_lib.make_step(arch, config)
  rng = np.random.default_rng(0)
  data = jnp.asarray(rng.integers(0, 256, (images,) + arch.image_shape,
                                  np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, images).astype(np.int32))
  mean = jnp.full(arch.image_shape[-1:], 0.48, jnp.float32)
  std = jnp.full(arch.image_shape[-1:], 0.25, jnp.float32)
  key = jax.random.key(0)
  perm = jax.random.permutation(key, images)
  variables = model_init.init_classifier(arch, jax.random.key(1))
  params, stats = variables['params'], variables['batch_stats']
  carry = (params, stats, parts.tx.init(params))
  steps = images // config.batch_size
  i = jnp.int32(0)
  with jax.default_matmul_precision(precision):
    step = jax.jit(parts.step)
    flops = step.lower(carry, i, perm, data, labels, mean, std,
                       key).compile().cost_analysis()
    flops = float((flops[0] if isinstance(flops, list) else flops)['flops'])
    gflops = matmul_gflops(repeats)
    parts_ms = _parts_ms(parts, carry, step,
                         (i, perm, data, labels, mean, std, key), repeats)
    record = {
        'arch': arch_name, 'precision': precision,
        'conv_backward': conv_backward, 'images': images,
        'steps_per_epoch': steps, 'step_flops': flops,
        'matmul_gflops': gflops,
        'floor_s': steps * flops / (gflops * 1e9),
        'parts_ms': parts_ms,
    }
    if epoch:
      # pylint: disable-next=protected-access
      epoch_fn = pretrain_lib._make_epoch(arch, config, steps)[1]
      carry, _ = epoch_fn(carry, data, labels, mean, std, key)  # compiles
      jax.block_until_ready(carry)
      start = time.perf_counter()
      carry, losses = epoch_fn(carry, data, labels, mean, std,
                               jax.random.fold_in(key, 1))
      jax.block_until_ready((carry, losses))
      record['epoch_s'] = time.perf_counter() - start
      record['of_floor'] = record['epoch_s'] / record['floor_s']
  return record


def main(argv):
  del argv
  records = []
  for arch_name in FLAGS.archs:
    for precision in FLAGS.precision:
      for backward in FLAGS.conv_backward:
        record = measure(arch_name, precision, backward, FLAGS.images,
                         FLAGS.repeats, FLAGS.epoch)
        records.append(record)
        if not FLAGS.json:
          parts = ', '.join(f'{k} {v:.1f}' for k, v in
                            record['parts_ms'].items())
          epoch = (f'epoch {record["epoch_s"]:.1f} s = '
                   f'{record["of_floor"]:.2f} x floor; '
                   if 'epoch_s' in record else '')
          print(f'{arch_name} {precision} {backward}: {epoch}floor '
                f'{record["floor_s"]:.1f} s ({record["step_flops"] / 1e9:.1f}'
                f' GFLOP/step at {record["matmul_gflops"]:.0f} GFLOP/s); '
                f'ms: {parts}', flush=True)
  meta = {'date': datetime.date.today().isoformat(),
          'machine': machine.describe(), 'command': ' '.join(sys.argv)}
  out = [{**meta, **r} for r in records]
  if FLAGS.json:
    print(json.dumps(out, indent=2))
  if FLAGS.out:
    with open(FLAGS.out, 'w') as fh:
      json.dump(out, fh, indent=2)
      fh.write('\n')


if __name__ == '__main__':
  app.run(main)
