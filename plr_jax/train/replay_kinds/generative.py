"""Generative PLR: a VAE generates features at every level of the classifier
(the paper's method; `steps.make_plr_step`)."""

from plr_jax.models import init as model_init
from plr_jax.train import steps
from plr_jax.train.replay_kinds import base


class Generative(base.ReplayKind):
  name = 'generative'
  description = ('a VAE generates features of the earlier classes at every '
                 'level (the paper)')
  generates_features = True
  frozen_extractor_cacheable = True

  def strategy_in_first_task(self, config):
    # The generator learns only the levels the strategy replays at.
    return config.recon_levels == 'used'

  def init_generator(self, config, key):
    return model_init.init_generator(config.arch, key)

  def make_step(self, config, tx, shard):
    return steps.make_plr_step(
        config.arch, config.strategy, config.replay_size, tx, tx,
        inputs=config.inputs,
        extractor_trainable_until=config.extractor_trainable_until,
        recon_levels=config.recon_levels,
        replay_targets=config.replay_targets,
        targets_after_update=config.targets_after_update, shard=shard,
        jit=False)


KIND = Generative()
