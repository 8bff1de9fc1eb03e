"""Standard generative replay: an image VAE generates images of the earlier
classes, replayed through the whole classifier (Figure 5's GR;
`steps.make_gr_step`)."""

from plr_jax.models import init as model_init
from plr_jax.train import steps
from plr_jax.train.replay_kinds import base


class Images(base.ReplayKind):
  name = 'images'
  description = ('an image VAE generates images of the earlier classes '
                 '(standard generative replay, GR)')

  def validate(self, config):
    if config.inputs != 'images':
      raise ValueError('replaying images needs inputs="images"')

  def init_generator(self, config, key):
    return model_init.init_image_generator(config.arch, key)

  def make_step(self, config, tx, shard):
    return steps.make_gr_step(
        config.arch, config.replay_size, tx, tx,
        frozen_after=config.extractor_trainable_until,
        replay_targets=config.replay_targets,
        bernoulli=not config.standardise_images,
        classifier_on_reconstructions=config.classifier_on_reconstructions,
        shard=shard, jit=False)


KIND = Images()
