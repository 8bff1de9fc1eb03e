"""What a result was computed on, by which code, when and how started."""

import datetime
import os
import shlex
import subprocess
import sys

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


def code_version() -> str:
  """The git commit of the code (with '+changes' when the tree differs from
  it), or 'unknown' outside a git checkout."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                            cwd=root, capture_output=True, text=True,
                            timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--',
                            'plr_jax', 'experiments'], cwd=root,
                           capture_output=True, text=True, timeout=10,
                           check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return 'unknown'
  return commit + ('+changes' if dirty else '') if commit else 'unknown'


def provenance() -> dict:
  """`{'date', 'machine', 'code', 'command'}` for a record."""
  command = ' '.join(shlex.quote(a) for a in sys.argv)
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  if spec is not None and spec.name:  # run as python -m NAME
    command = ' '.join(['python -m', spec.name]
                       + [shlex.quote(a) for a in sys.argv[1:]])
  return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec='seconds'),
          'machine': describe(), 'code': code_version(), 'command': command}
