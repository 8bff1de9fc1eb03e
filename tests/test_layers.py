"""The packages of plr_jax import one way only (issue 28, item 3)."""

import ast
import os


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'plr_jax')
# A module may import its own package and the packages of lower layers.
LAYERS = {'models': 0, 'data': 1, 'io': 1, 'train': 2, 'eval': 3,
          'config': 4, 'prepare': 5, 'run': 6}


def _modules():
  for directory, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith('.py'):
        yield os.path.join(directory, name)


def _unit(path: str) -> str | None:
  """'models', 'train', ... or 'config'/'run' for top-level modules."""
  parts = os.path.relpath(path, PACKAGE).split(os.sep)
  if len(parts) > 1:
    return parts[0]
  name = parts[0][:-3]
  return name if name in LAYERS else None


def _imports(path: str):
  tree = ast.parse(open(path).read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name
    elif isinstance(node, ast.ImportFrom) and node.module:
      if node.module == 'plr_jax':
        for alias in node.names:
          yield f'plr_jax.{alias.name}'
      else:
        yield node.module


def _violations():
  out = []
  for path in _modules():
    unit = _unit(path)
    for name in _imports(path):
      if name.split('.')[0] in ('experiments', 'benchmarks', 'tests'):
        out.append(f'{os.path.relpath(path, ROOT)} imports {name}')
      if unit is None or not name.startswith('plr_jax.'):
        continue
      target = name.split('.')[1]
      if target in LAYERS and target != unit and (
          LAYERS[target] >= LAYERS[unit]):
        out.append(f'{os.path.relpath(path, ROOT)} ({unit}) imports '
                   f'{name} ({target})')
  return out


def test_imports_go_one_way():
  assert not _violations()


def test_the_check_finds_an_upward_import(tmp_path, monkeypatch):
  # The checker itself must fail on what it forbids.
  models = tmp_path / 'models'
  models.mkdir()
  (models / 'bad.py').write_text('from plr_jax.eval import results\n'
                                 'import experiments.common\n')
  monkeypatch.setattr(__import__(__name__, fromlist=['x']), 'PACKAGE',
                      str(tmp_path))
  found = _violations()
  assert len(found) == 2, found
  assert any('(models) imports plr_jax.eval (eval)' in v
             for v in found)
