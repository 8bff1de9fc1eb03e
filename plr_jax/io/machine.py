"""What a result was computed on: the host CPU and the accelerator."""

import os

import jax

from plr_jax.models import layers


def host_cpu() -> str:
  """The host CPU's model name, its cores and its bfloat16 matmul
  instructions (from /proc/cpuinfo; '' where there is none): CPU timings
  depend on all three."""
  try:
    with open('/proc/cpuinfo') as fh:
      info = fh.read()
  except OSError:
    return ''
  names = [line.split(':', 1)[1].strip() for line in info.splitlines()
           if line.startswith('model name')]
  return ', '.join(names[:1] + [f'{os.cpu_count()} cores']
                   + list(layers.cpu_bfloat16_instructions()))


def describe() -> str:
  """e.g. 'cpu (AMD EPYC, 2 cores, avx512_bf16), jax 0.10.2' or
  'NVIDIA H100 80GB HBM3 (host: ...), jax 0.11.2'."""
  device = jax.local_devices()[0]
  name = ('cpu' if device.platform == 'cpu'
          else getattr(device, 'device_kind', device.platform))
  return f'{name} ({host_cpu() or "unknown host CPU"}), jax {jax.__version__}'
