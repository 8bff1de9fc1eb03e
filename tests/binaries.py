"""Many short binary invocations from one interpreter.

A binary started with `python -m experiments.NAME` spends about 4 CPU
seconds importing jax, flax, optax and orbax (2-core AMD EPYC VM,
2026-12-02) before it reads a flag, so tests that only check how a binary
answers bad input or `--help` would spend most of their time importing.
`run_many` starts one helper process (this module) that imports those
libraries once and forks a child per invocation; the child runs the module
exactly as `python -m` does (`runpy`, `__main__`, the given argv and
working directory) with its stdout and stderr in files, and its exit code
is the binary's. Each invocation gets fresh absl flags: flags are defined
when the child imports the binary.
"""

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Result:
  returncode: int
  stdout: str
  stderr: str


def run_many(invocations, cwd=ROOT, timeout=600):
  """Runs `invocations`, each `(module, [arg, ...])` as `python -m module
  arg ...` would (e.g. `('experiments.pretrain', ['--help'])`), one after
  another.

  Returns:
    A `Result` per invocation, in order.
  """
  env = {**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'}
  request = json.dumps([[module, list(args)] for module, args in invocations])
  proc = subprocess.run([sys.executable, '-m', 'tests.binaries'], cwd=cwd,
                        env=env, input=request, capture_output=True,
                        text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return [Result(**r) for r in json.loads(proc.stdout)]


def run_commands(commands, **kwargs):
  """`run_many` for commands spelt `[sys.executable, '-m', module, arg,
  ...]`, as `subprocess` would take them."""
  for command in commands:
    assert command[:2] == [sys.executable, '-m'], command
  return run_many([(command[2], command[3:]) for command in commands],
                  **kwargs)


def _run_in_child(module, args, out_path, err_path):
  """In a forked child: `python -m module args`."""
  import runpy  # pylint: disable=g-import-not-at-top
  with open(out_path, 'w') as out, open(err_path, 'w') as err:
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
  code = 0
  try:
    sys.argv = [module, *args]
    runpy.run_module(module, run_name='__main__', alter_sys=True)
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except BaseException:  # pylint: disable=broad-except
    import traceback  # pylint: disable=g-import-not-at-top
    traceback.print_exc()
    code = 1
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def main():
  invocations = json.load(sys.stdin)
  # What every binary imports first; importing it initialises no backend,
  # so forking afterwards is safe.
  for name in ('jax', 'flax.linen', 'optax', 'orbax.checkpoint',
               'experiments.common'):
    importlib.import_module(name)
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  started = xla_bridge._backends  # pylint: disable=protected-access
  assert not started, 'a backend started before the fork'
  results = []
  with tempfile.TemporaryDirectory() as scratch:
    for i, (module, args) in enumerate(invocations):
      out_path = os.path.join(scratch, f'{i}.out')
      err_path = os.path.join(scratch, f'{i}.err')
      sys.stdout.flush()
      sys.stderr.flush()
      pid = os.fork()
      if pid == 0:
        _run_in_child(module, args, out_path, err_path)
      _, status = os.waitpid(pid, 0)
      with open(out_path) as out, open(err_path) as err:
        results.append({'returncode': os.waitstatus_to_exitcode(status),
                        'stdout': out.read(), 'stderr': err.read()})
  json.dump(results, sys.stdout)


if __name__ == '__main__':
  main()
