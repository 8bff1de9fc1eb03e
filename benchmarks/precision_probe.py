r"""What each `--precision` does on this backend: `python -m benchmarks.precision_probe`.

For each precision name it computes a float32 matmul, as the library's dense
layers do (`layers.matmul`), and a float32 convolution under
`jax.default_matmul_precision(name)` and prints their
relative error against float64 NumPy and the matmul's time. The error tells
which arithmetic the backend really used: about 1e-6 for float32, 5e-4 for
TF32 (10 mantissa bits), 4e-3 for bfloat16 (7 bits). A name the backend
cannot run is reported, not raised.

  python -m benchmarks.precision_probe --json --out=probe.json
"""

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

from plr_jax.io import atomic
from plr_jax import config as config_lib
from plr_jax.models import layers

FLAGS = flags.FLAGS


def _relative_error(value, reference) -> float:
  value = np.asarray(value, np.float64)
  return float(np.abs(value - reference).max() / np.abs(reference).max())


def _conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO',
                                                         'NHWC'))


def _numpy_conv(x, w):
  """SAME, stride-1 NHWC x HWIO convolution in float64."""
  x, w = x.astype(np.float64), w.astype(np.float64)
  kh, kw = w.shape[:2]
  padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  height, width = x.shape[1:3]
  return sum(np.einsum('nhwc,cd->nhwd',
                       padded[:, i:i + height, j:j + width], w[i, j])
             for i in range(kh) for j in range(kw))


def probe(name: str, size: int) -> dict:
  """One record: errors of a matmul and a convolution, the matmul's time."""
  rng = np.random.default_rng(0)
  a = rng.normal(size=(size, size)).astype(np.float32)
  b = rng.normal(size=(size, size)).astype(np.float32)
  x = rng.normal(size=(8, 16, 16, 32)).astype(np.float32)
  w = rng.normal(size=(3, 3, 32, 32)).astype(np.float32)
  record = {'precision': name, 'backend': jax.default_backend(),
            'device': getattr(jax.devices()[0], 'device_kind', ''),
            'jax': jax.__version__}
  try:
    config_lib.check_precision(name)
  except ValueError as e:
    record['error'] = str(e)
    return record
  with jax.default_matmul_precision(name):
    matmul = jax.jit(layers.matmul)
    conv = jax.jit(_conv)
    try:
      on_device = jax.device_put((a, b))  # time the product, not the copy
      product = jax.block_until_ready(matmul(*on_device))
      record['matmul_rel_error'] = _relative_error(
          product, a.astype(np.float64) @ b.astype(np.float64))
      times = []
      for _ in range(10):
        start = time.perf_counter()
        jax.block_until_ready(matmul(*on_device))
        times.append(time.perf_counter() - start)
      seconds = statistics.median(times)
      record['matmul_ms'] = 1000 * seconds
      record['matmul_tflops'] = 2 * size**3 / seconds / 1e12
    except Exception as e:  # pylint: disable=broad-except
      record['matmul_error'] = str(e).splitlines()[0][:200]
    try:
      record['conv_rel_error'] = _relative_error(conv(x, w),
                                                 _numpy_conv(x, w))
    except Exception as e:  # pylint: disable=broad-except
      record['conv_error'] = str(e).splitlines()[0][:200]
  return record


def define_flags() -> None:
  """Flags of the program (not at import: tests import `probe` beside
  benchmarks.run, whose --json and --out have the same names)."""
  flags.DEFINE_list('precisions', ['float32', 'tensorfloat32', 'bfloat16',
                                   'TF32_TF32_F32', 'BF16_BF16_F32'],
                    'Precision names to probe.')
  flags.DEFINE_integer('size', 2048, 'Matmul size (size x size x size).')
  flags.DEFINE_bool('json', False, 'Print JSON records instead of lines.')
  flags.DEFINE_string('out', None, 'Also write the JSON records here.')


def main(argv):
  del argv
  records = [probe(name, FLAGS.size) for name in FLAGS.precisions]
  if FLAGS.out:
    atomic.write_json(FLAGS.out, records)
  if FLAGS.json:
    print(json.dumps(records, indent=1))
    return
  for r in records:
    print(r['precision'], {k: (f'{v:.3g}' if isinstance(v, float) else v)
                           for k, v in r.items() if k != 'precision'})


if __name__ == '__main__':
  define_flags()
  app.run(main)
