"""Progressive Latent Replay in JAX."""

from plr_jax.models.arch import ArchConfig, PRESETS, get_arch
from plr_jax.train.strategy import (parse_strategy, relative_cost,
                                    split_batch, check_strategy)

__version__ = '0.1.0'
