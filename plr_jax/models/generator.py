"""The PLR generator: a VAE that yields the classifier's features at every level.

The reference's VAE (the authors' `models/vae.py`). The encoder has the shape
of the classifier's hidden stack (level-0 features in, ReLU layers of the
hidden sizes), then linear heads to the latent mean and log-variance (the
latter without a bias). The decoder starts with `from_z` (z to the last
hidden size, ReLU; its output is no replay level) and then mirrors the hidden
stack: `dec_n` produces the level-n features, deepest level first, ReLU for
levels >= 1 and linear for level 0 (extractor outputs are not rectified).
ARCH1: z -> 2000 (`from_z`) -> 2000 (level 1) -> 1024 (level 0). Decoding "to
level n" stops there, so the decoder layers below level n are never run. The
prior is a Gaussian mixture, one learnable mode per class, means and
log-variances both initialised N(0, 1) as the reference's.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn

from plr_jax.models import arch as arch_lib
from plr_jax.models import layers


class Generator(nn.Module):
  """VAE over level-0 features whose decoder yields every level."""
  arch: arch_lib.ArchConfig

  def setup(self):
    arch = self.arch
    self.enc = {str(j): layers.Dense(width)
                for j, width in enumerate(arch.hidden, start=1)}
    self.to_mean = layers.Dense(arch.z_dim)
    self.to_logvar = layers.Dense(arch.z_dim, use_bias=False)
    self.from_z = layers.Dense(arch.hidden[-1])
    self.dec = {str(n): layers.Dense(width)
                for n, width in enumerate(arch.level_dims)}
    self.prior_mean, self.prior_logvar = gaussian_mixture_prior(self, arch)

  def __call__(self, features: jax.Array, key: jax.Array
               ) -> tuple[jax.Array, jax.Array, jax.Array,
                          tuple[jax.Array, ...]]:
    """Encodes, samples z with `key` and decodes every level.

    Returns:
      `(mean, logvar, z, levels)` with `levels` ordered level 0 first, to line
      up with `Classifier.levels`.
    """
    return self.reconstruct(features, latent_noise(self.arch, key, features))

  def reconstruct(self, features: jax.Array, eps: jax.Array
                  ) -> tuple[jax.Array, jax.Array, jax.Array,
                             tuple[jax.Array, ...]]:
    """`__call__` with the standard normal noise `eps` [B, z] given."""
    mean, logvar = self.encode(features)
    z = mean + jnp.exp(0.5 * layers.clip_logvar(logvar)) * eps
    return mean, logvar, z, self.decode(z)[::-1]

  def encode(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Latent mean and log-variance [B, z] of level-0 features [B, D_0]."""
    layers.check_rows(features, (self.arch.feature_dim,),
                      f'{self.arch.name} level-0 features')
    h = features
    for j in range(1, self.arch.num_levels + 1):
      h = nn.relu(self.enc[str(j)](h))
    return self.to_mean(h), self.to_logvar(h)

  def decode(self, z: jax.Array, to_level: int = 0) -> tuple[jax.Array, ...]:
    """Features of levels N-1 down to `to_level`, deepest first.

    Args:
      z: latents [B, z].
      to_level: the shallowest level to produce (static); the decoder layers
        below it are skipped.
    """
    if not 0 <= to_level < self.arch.num_levels:
      raise ValueError(
          f'level {to_level} out of range for {self.arch.name} '
          f'({self.arch.num_levels} levels)')
    out = []
    h = nn.relu(self.from_z(z))
    for n in range(self.arch.num_levels - 1, to_level - 1, -1):
      h = self.dec[str(n)](h)
      if n > 0:
        h = nn.relu(h)
      out.append(h)
    return tuple(out)

  def prior(self) -> tuple[jax.Array, jax.Array]:
    """Per-class prior means and log-variances, each [classes, z]."""
    return self.prior_mean, self.prior_logvar

  def sample(self, key: jax.Array, class_mask: jax.Array, num: int,
             to_level: int = 0) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Samples `num` examples of classes drawn uniformly from `class_mask`.

    Args:
      key: PRNG key.
      class_mask: bool [classes], the classes allowed (at least one).
      num: number of samples (static).
      to_level: shallowest level to decode (static).

    Returns:
      `(classes [num], levels)`, with `levels` ordered `to_level` first up to
      level N-1, each [num, D_n].
    """
    class_key, z_key = jax.random.split(key)
    logits = jnp.where(class_mask, 0.0, -jnp.inf)
    classes = jax.random.categorical(class_key, logits, shape=(num,))
    mean = self.prior_mean[classes]
    std = jnp.exp(0.5 * layers.clip_logvar(self.prior_logvar[classes]))
    z = mean + std * jax.random.normal(z_key, mean.shape, mean.dtype)
    return classes, self.decode(z, to_level)[::-1]


def gaussian_mixture_prior(module: nn.Module, arch: arch_lib.ArchConfig
                           ) -> tuple[jax.Array, jax.Array]:
  """The per-class prior modes' means and log-variances, [classes, z] each,
  as parameters of `module`, both drawn from N(0, 1) (the reference's
  `normal_()` on both)."""
  shape = (arch.num_classes, arch.z_dim)
  return (module.param('prior_mean', nn.initializers.normal(1.0), shape),
          module.param('prior_logvar', nn.initializers.normal(1.0), shape))


def latent_noise(arch: arch_lib.ArchConfig, key: jax.Array,
                 inputs: jax.Array) -> jax.Array:
  """The reparameterisation noise [B, z] a VAE draws with `key` for a batch
  of `inputs` (its first axis is the batch)."""
  return jax.random.normal(key, (inputs.shape[0], arch.z_dim), inputs.dtype)


def layer_names(arch: arch_lib.ArchConfig) -> tuple[str, ...]:
  """Top-level parameter names of the generator."""
  return (tuple(f'enc_{j}' for j in range(1, arch.num_levels + 1))
          + ('to_mean', 'to_logvar', 'from_z')
          + tuple(f'dec_{n}' for n in range(arch.num_levels))
          + ('prior_mean', 'prior_logvar'))
