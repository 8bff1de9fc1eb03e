"""No replay: fine-tuning on each task's data alone, the lower bound of a
continual-learning table (`ContinualConfig(replay="none")`).

The classifier trains on the current batch with the plain cross-entropy over
the classes seen so far (the loss of BI-R's code when nothing is replayed:
no 1/t weighting); no generator, nothing stored. The strategy is ignored.
"""

from plr_jax.train import steps
from plr_jax.train import strategy as strategy_lib
from plr_jax.train.replay_kinds import base


class NoReplay(base.ReplayKind):
  name = 'none'
  description = 'no replay: fine-tuning on each task alone (the lower bound)'
  replays = False
  frozen_extractor_cacheable = True

  def validate(self, config):
    if config.inputs == 'images' and config.arch.conv_batch_norm:
      raise ValueError(f'{config.arch.name}: training on images is supported '
                       'for extractors without batch norm only')

  def make_step(self, config, tx, shard):
    del shard  # Nothing is replayed.
    ir = strategy_lib.internal_replay(config.arch.num_levels)
    classifier_step = steps.make_classifier_step(
        config.arch, tx, ir, config.replay_size, inputs=config.inputs,
        jit=False)
    freezes = (config.inputs == 'images'
               and config.extractor_trainable_until is not None)

    def step(state, batch, info):
      trainable = {'extractor': not info.phase.frozen} if freezes else None
      classifier, metrics = classifier_step(state.classifier, batch, None,
                                            info, trainable)
      metrics = {f'classifier/{k}': v for k, v in metrics.items()}
      return state.replace(classifier=classifier,
                           step=state.step + 1), metrics

    return step


KIND = NoReplay()
