"""Replay kinds, one module each, found by name: `generative` (the paper's
generated features), `buffer` (stored features, Table 1), `images` (standard
generative replay of images) and `none` (no replay, the lower bound).

`get(name)` returns a kind's `base.ReplayKind`; docs/library.md shows how to
add one.
"""

from plr_jax.train.replay_kinds import buffer
from plr_jax.train.replay_kinds import generative
from plr_jax.train.replay_kinds import images
from plr_jax.train.replay_kinds import none
from plr_jax.train.replay_kinds.base import ReplayKind

KINDS: dict[str, ReplayKind] = {
    module.KIND.name: module.KIND
    for module in (generative, buffer, images, none)}


def get(name: str) -> ReplayKind:
  """The kind `ContinualConfig.replay` names; ValueError for an unknown one."""
  if name not in KINDS:
    raise ValueError(f'replay must be one of {", ".join(KINDS)}, got '
                     f'{name!r}')
  return KINDS[name]
