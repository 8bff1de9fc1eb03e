"""The PLR classifier: a convolutional extractor, hidden layers, a head.

Level n (n = 0 .. N-1) is the input of hidden layer fc_{n+1}: level 0 is the
flattened extractor output, level n >= 1 the post-ReLU output of fc_n. Every
entry point is an ordinary method, called through

    model.apply(variables, h, 1, method=Classifier.classify_from)

Only the layers a method runs need to be present in `variables`, so a step
that starts at level 0 needs no extractor parameters.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

from plr_jax.models import arch as arch_lib
from plr_jax.models import layers


class ConvExtractor(nn.Module):
  """3x3 convolutions, each but the last with optional batch norm and ReLU."""
  channels: tuple[int, ...]
  strides: tuple[int, ...]
  batch_norm: bool
  last_relu: bool
  conv_backward: str = 'xla'

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    x = images
    last = len(self.channels) - 1
    for i, (channels, stride) in enumerate(zip(self.channels, self.strides)):
      x = layers.Conv(channels, stride, self.conv_backward,
                      name=f'conv_{i + 1}')(x)
      if i < last and self.batch_norm:
        # PyTorch's BatchNorm2d: momentum 0.1 on the running stats, eps 1e-5.
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         epsilon=1e-5, name=f'bn_{i + 1}')(x)
      if i < last or self.last_relu:
        x = nn.relu(x)
    return x.reshape(x.shape[0], -1)


class Classifier(nn.Module):
  """Extractor, hidden layers `fc_1 .. fc_H` (ReLU) and a linear head.

  `conv_backward` picks how the extractor's convolutions are differentiated
  (`layers.conv3x3`: 'xla' or 'patches'); it changes no parameter or output.
  """
  arch: arch_lib.ArchConfig
  conv_backward: str = 'xla'

  def setup(self):
    arch = self.arch
    self.extractor = ConvExtractor(arch.conv_channels, arch.conv_strides,
                                   arch.conv_batch_norm, arch.conv_last_relu,
                                   self.conv_backward)
    # A dict attribute names the submodules fc_1 .. fc_H.
    self.fc = {str(j): layers.Dense(width)
               for j, width in enumerate(arch.hidden, start=1)}
    self.head = layers.Dense(arch.num_classes)

  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Logits [B, classes] for images [B, H, W, C]."""
    return self.classify_from(self.extract(images, train), 0)

  def extract(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Level-0 features [B, D_0]; batch norm uses batch stats if `train`."""
    layers.check_rows(images, self.arch.image_shape,
                      f'{self.arch.name} images')
    return self.extractor(images, train)

  def levels(self, features: jax.Array
             ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Logits and the features at every level, from level-0 features.

    Args:
      features: level-0 features [B, D_0].

    Returns:
      `(logits, (level_0, .., level_{N-1}))`.
    """
    layers.check_rows(features, (self.arch.feature_dim,),
               f'{self.arch.name} level-0 features')
    out = [features]
    h = features
    for j in range(1, self.arch.num_levels + 1):
      h = nn.relu(self.fc[str(j)](h))
      out.append(h)
    return self.head(h), tuple(out[:-1])

  def embed(self, features: jax.Array) -> jax.Array:
    """The last hidden layer's output (the head's input) from level 0."""
    h = features
    for j in range(1, self.arch.num_levels + 1):
      h = nn.relu(self.fc[str(j)](h))
    return h

  def classify_from(self, features: jax.Array, level: int) -> jax.Array:
    """Logits from level-`level` features: runs fc_{level+1} .. fc_H, head.

    Args:
      features: [B, D_level].
      level: a Python int in [0, N); it selects the layers, so it is static.
    """
    if not 0 <= level < self.arch.num_levels:
      raise ValueError(
          f'level {level} out of range for {self.arch.name} '
          f'({self.arch.num_levels} levels)')
    layers.check_rows(features, (self.arch.level_dims[level],),
               f'{self.arch.name} level-{level} features')
    h = features
    for j in range(level + 1, self.arch.num_levels + 1):
      h = nn.relu(self.fc[str(j)](h))
    return self.head(h)

  def classify_injected(self, features: jax.Array | None,
                        injected: tuple[jax.Array | None, ...]) -> jax.Array:
    """Logits of rows that enter the stack at different levels, in one pass.

    Rows injected at level n join, after fc_n, the rows coming from below,
    so every layer runs one matmul over all the rows that reach it. Injected
    rows are constants for autodiff (replayed features): no gradient flows
    into them, and none is computed (`layers.matmul`'s `constant_rows`), so
    the pass costs the FLOPs of separate `classify_from` passes. Row for row
    the same logits as `classify_from` of each group.

    Args:
      features: level-0 rows that gradients may flow into (the current
        batch), [B, D_0], or None.
      injected: one entry per level: constant rows entering at level n,
        [B_n, D_n], or None.

    Returns:
      Logits [B + sum B_n, classes]: `features`' rows first, then level 0's
      injected rows, level 1's, ...
    """
    if len(injected) != self.arch.num_levels:
      raise ValueError(f'{len(injected)} injected levels for '
                       f'{self.arch.name} ({self.arch.num_levels} levels)')
    h = features
    for n, rows in enumerate(injected):
      constant = 0
      if rows is not None:
        constant = rows.shape[0]
        h = rows if h is None else jnp.concatenate([h, rows])
      if h is not None:
        h = nn.relu(self.fc[str(n + 1)](h, constant))
    if h is None:
      raise ValueError('classify_injected needs rows at some level')
    return self.head(h)


def layer_names(arch: arch_lib.ArchConfig) -> tuple[str, ...]:
  """Top-level parameter names: extractor, fc_1 .. fc_H, head."""
  return (('extractor',)
          + tuple(f'fc_{j}' for j in range(1, arch.num_levels + 1))
          + ('head',))
