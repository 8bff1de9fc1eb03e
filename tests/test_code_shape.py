"""The code stays readable: no function over 60 lines of code or over 8
parameters, unless its docstring says why (a sentence naming its number of
parameters, e.g. "Nine parameters: ...", or "Long: ...")."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES, MAX_PARAMS = 60, 8
REASON = re.compile(r'\b(\w+ parameters|Long):', re.IGNORECASE)


def _code_lines(node, source_lines) -> int:
  """Lines of a function's body that hold code (no docstring, blank lines or
  comments)."""
  body = node.body
  first = body[0]
  if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
      and isinstance(first.value.value, str)):
    start = first.end_lineno + 1
  else:
    start = first.lineno
  return sum(1 for line in source_lines[start - 1:node.end_lineno]
             if line.strip() and not line.strip().startswith('#'))


def _parameters(node) -> int:
  args = node.args
  count = (len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
           + bool(args.vararg) + bool(args.kwarg))
  if args.args and args.args[0].arg in ('self', 'cls'):
    count -= 1
  return count


def _violations(source: str, name: str) -> list[str]:
  lines = source.split('\n')
  out = []
  for node in ast.walk(ast.parse(source, name)):
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      continue
    size, params = _code_lines(node, lines), _parameters(node)
    if size <= MAX_LINES and params <= MAX_PARAMS:
      continue
    if REASON.search(ast.get_docstring(node) or ''):
      continue
    out.append(f'{name}:{node.lineno} {node.name}: {size} lines of code, '
               f'{params} parameters')
  return out


def test_functions_are_short_or_say_why():
  found = []
  for package in ('plr_jax', 'experiments', 'benchmarks'):
    for directory, _, files in os.walk(os.path.join(ROOT, package)):
      for name in files:
        if name.endswith('.py'):
          path = os.path.join(directory, name)
          found += _violations(open(path).read(),
                               os.path.relpath(path, ROOT))
  assert not found, '\n'.join(found)


def test_the_check_finds_a_long_function_and_accepts_a_reason():
  body = ''.join(f'  x{i} = {i}\n' for i in range(61))
  long_one = f'def f():\n  """Does it."""\n{body}'
  assert len(_violations(long_one, 'a.py')) == 1
  many = 'def g(a, b, c, d, e, f, g, h, i):\n  """G."""\n  return a\n'
  assert len(_violations(many, 'b.py')) == 1
  explained = ('def g(a, b, c, d, e, f, g, h, i):\n'
               '  """G. Nine parameters: one per flag."""\n  return a\n')
  assert not _violations(explained, 'c.py')
  method = ('class C:\n  def m(self, a, b, c, d, e, f, g, h):\n'
            '    """M."""\n    return a\n')
  assert not _violations(method, 'd.py')
