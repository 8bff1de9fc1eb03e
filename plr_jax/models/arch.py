"""Architecture configurations and the paper's named presets.

An `ArchConfig` fixes everything that shapes the networks: the convolutional
extractor, the hidden stack `fc_1 .. fc_H`, the head and the generator's latent
size. Presets reproduce docs/design.md, "Architectures"; `tiny` is for tests and laptops.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ArchConfig:
  """Shape of a PLR classifier and its generator.

  Attributes:
    name: preset name, used in run ids and error messages.
    image_shape: (height, width, channels) of an input image.
    conv_channels: output channels of each 3x3 convolution of the extractor;
      empty for a fully connected classifier (level 0 is the flat image).
    conv_strides: stride of each convolution (padding is always 1).
    conv_batch_norm: batch norm after every convolution but the last.
    conv_last_relu: whether the last convolution is followed by a ReLU.
    hidden: sizes of the hidden layers `fc_1 .. fc_H`.
    num_classes: head outputs, one per class of the whole benchmark.
    z_dim: latent size of the generator.
  """
  name: str
  image_shape: tuple[int, int, int]
  conv_channels: tuple[int, ...]
  conv_strides: tuple[int, ...]
  conv_batch_norm: bool
  conv_last_relu: bool
  hidden: tuple[int, ...]
  num_classes: int
  z_dim: int

  def __post_init__(self):
    if len(self.conv_channels) != len(self.conv_strides):
      raise ValueError(
          f'{self.name}: {len(self.conv_channels)} conv channels but '
          f'{len(self.conv_strides)} strides')
    if not self.hidden:
      raise ValueError(f'{self.name}: at least one hidden layer is needed')

  @property
  def input_size(self) -> int:
    """C * H * W of an input image: the VAE latent loss's normaliser (the
    reference divides by it even when the VAE models internal features)."""
    height, width, channels = self.image_shape
    return height * width * channels

  @property
  def num_levels(self) -> int:
    """N: one level per hidden layer (level n is the input of fc_{n+1})."""
    return len(self.hidden)

  @property
  def spatial_shapes(self) -> tuple[tuple[int, int], ...]:
    """(height, width) of the image and after each convolution."""
    shapes = [tuple(self.image_shape[:2])]
    for stride in self.conv_strides:
      # 3x3 kernel, padding 1: out = floor((in + 2 - 3) / stride) + 1.
      shapes.append(tuple((d - 1) // stride + 1 for d in shapes[-1]))
    return tuple(shapes)

  @property
  def extractor_output_shape(self) -> tuple[int, int, int]:
    """(height, width, channels) of the extractor's output before it is
    flattened (the image itself when there are no convolutions)."""
    channels = (self.conv_channels[-1] if self.conv_channels
                else self.image_shape[2])
    return self.spatial_shapes[-1] + (channels,)

  @property
  def feature_dim(self) -> int:
    """Size of the flattened extractor output (level 0)."""
    height, width, channels = self.extractor_output_shape
    return height * width * channels

  @property
  def level_dims(self) -> tuple[int, ...]:
    """Width of the features at every level 0 .. N-1."""
    return (self.feature_dim,) + tuple(self.hidden[:-1])

  @property
  def fc_param_counts(self) -> tuple[int, ...]:
    """Weights plus biases of fc_1 .. fc_H and then the head."""
    widths = (self.feature_dim,) + tuple(self.hidden) + (self.num_classes,)
    return tuple(a * b + b for a, b in zip(widths[:-1], widths[1:]))


_CIFAR_5CONV = dict(
    image_shape=(32, 32, 3),
    conv_channels=(16, 32, 64, 128, 256),
    conv_strides=(1, 2, 2, 2, 2),
    conv_batch_norm=True,
    conv_last_relu=False,
)

# The authors' Fashion-MNIST scripts: no batch norm, the last convolution
# linear (their conv stack's final layer has no non-linearity), as CIFAR's.
_FMNIST_3CONV = dict(
    image_shape=(28, 28, 1),
    conv_channels=(16, 32, 64),
    conv_strides=(1, 2, 2),
    conv_batch_norm=False,
    conv_last_relu=False,
)

PRESETS: dict[str, ArchConfig] = {
    'arch1': ArchConfig('arch1', hidden=(2000, 2000), num_classes=100,
                        z_dim=100, **_CIFAR_5CONV),
    'arch2': ArchConfig('arch2', hidden=(1000, 1000, 1000), num_classes=100,
                        z_dim=100, **_CIFAR_5CONV),
    # The paper's text: three hidden layers of 50 units.
    'fmnist': ArchConfig('fmnist', hidden=(50, 50, 50), num_classes=10,
                         z_dim=10, **_FMNIST_3CONV),
    # The authors' Fashion-MNIST scripts: one hidden layer of 100 units.
    'fmnist_scripts': ArchConfig('fmnist_scripts', hidden=(100,),
                                 num_classes=10, z_dim=10, **_FMNIST_3CONV),
    # No convolutions: the paper's 3 x 50 hidden layers on the flat image
    # (as BI-R's MNIST networks), for Figure 5's GR baseline.
    'fmnist_mlp': ArchConfig('fmnist_mlp', hidden=(50, 50, 50),
                             num_classes=10, z_dim=10,
                             **{**_FMNIST_3CONV, 'conv_channels': (),
                                'conv_strides': ()}),
    # Seconds on a laptop CPU; the same code paths as arch1.
    'tiny': ArchConfig('tiny', image_shape=(8, 8, 3), conv_channels=(4, 8),
                       conv_strides=(1, 2), conv_batch_norm=True,
                       conv_last_relu=False, hidden=(16, 16), num_classes=6,
                       z_dim=4),
}


def get_arch(arch: 'str | ArchConfig') -> ArchConfig:
  """Returns the preset named `arch`, or `arch` itself if it is a config."""
  if isinstance(arch, ArchConfig):
    return arch
  try:
    return PRESETS[arch]
  except KeyError:
    raise ValueError(
        f'unknown architecture {arch!r}; choose one of '
        f'{", ".join(sorted(PRESETS))}') from None


def with_classes(arch: ArchConfig, num_classes: int) -> ArchConfig:
  """The same architecture with another head size (e.g. 10 for CIFAR-10)."""
  if num_classes < 1:
    raise ValueError(f'num_classes must be positive, got {num_classes}')
  return dataclasses.replace(arch, num_classes=num_classes)
