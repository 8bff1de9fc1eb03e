r"""Table 1: split CIFAR-10, 2 tasks, buffer replay of 512 stored samples.

  python -m experiments.split_cifar10 --workdir=runs/t1_a1_ir \
      --data_dir=DATA --arch=arch1 --strategy=ir --seeds=0,1,2

The stored first-task samples' representations at every level are recomputed
by the previous classifier and replayed with the strategy; no generator. The
run's configuration is `experiments.configs.table1.config`.
"""

from absl import flags

from experiments import common
from experiments.configs import table1
from plr_jax import run

common.define_run_flags()
common.define_extractor_flags()
common.define_method_flags(recon_levels=False)
flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_string('strategy', 'ir', '"ir", fractions per level, or a '
                    'named rule of the authors\' plr branch (basic, '
                    'cumulative_weights, total_weights, input_size, '
                    'layer_idx; docs/deviations.md).')
flags.DEFINE_string('replay', 'buffer', 'What is replayed: buffer (the '
                    'paper) or none (fine-tuning on each task alone, the '
                    'lower bound; the strategy is then ignored).')
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS


def main():
  config = common.finish(common.preset_config(table1.config,
      FLAGS.arch, FLAGS.strategy, common.seeds(), FLAGS.preset,
      replay_targets=common.replay_targets() or 'soft',
      replay=FLAGS.replay))
  run.run(config, common.workdir(), data_dir=common.run_data_dir(config),
          extractor_dir=FLAGS.extractor_dir, mesh=common.mesh(),
          should_stop=common.STOP)


if __name__ == '__main__':
  common.run_main(main)
