"""Progressive Latent Replay in JAX."""

from plr_jax.config import ArchConfig, PRESETS, get_arch
from plr_jax.strategy import (parse_strategy, relative_cost, split_batch,
                              check_strategy)

__version__ = '0.1.0'
