"""Replay kinds, one module each, found by name: `generative` (the paper's
generated features), `buffer` (stored features, Table 1), `images` (standard
generative replay of images) and `none` (no replay, the lower bound).

`get(name)` imports the module of that name and returns its `KIND`, a
`base.ReplayKind`; a new kind is one new module here (docs/library.md).
"""

import functools
import importlib
import pkgutil

from plr_jax.train.replay_kinds.base import ReplayKind

# Modules of the package that are not kinds.
_NOT_KINDS = ('base',)


def names() -> tuple[str, ...]:
  """Every kind's name: the modules of this package, in a fixed order (the
  paper's kinds first)."""
  return _names(tuple(__path__))


@functools.lru_cache(maxsize=None)
def _names(paths: tuple[str, ...]) -> tuple[str, ...]:
  found = sorted(m.name for m in pkgutil.iter_modules(paths)
                 if m.name not in _NOT_KINDS)
  first = [n for n in ('generative', 'buffer', 'images', 'none') if n in found]
  return tuple(first + [n for n in found if n not in first])


def get(name: str) -> ReplayKind:
  """The kind `ContinualConfig.replay` names; ValueError for an unknown one."""
  if name not in names():
    raise ValueError(f'replay must be one of {", ".join(names())}, got '
                     f'{name!r}')
  kind = importlib.import_module(f'{__name__}.{name}').KIND
  if kind.name != name:
    raise ValueError(f'replay kind module {name} holds a kind named '
                     f'{kind.name!r}')
  return kind
