r"""Table 2: split CIFAR-100, 10 tasks, generative PLR against IR.

  python -m experiments.split_cifar100 --workdir=runs/a1_03_07 \
      --data_dir=DATA --arch=arch1 --strategy=0.3,0.7 --seeds=0,1,2

Without an extractor checkpoint (--extractor_dir, default WORKDIR/extractor)
it first pretrains one on CIFAR-10 there, so one command does the whole job.
The run's configuration is `experiments.configs.table2.config`.
"""

from absl import flags

from experiments import common
from experiments.configs import table2
from plr_jax import run

common.define_run_flags()
common.define_extractor_flags()
common.define_method_flags()
flags.DEFINE_string('arch', 'arch1', 'arch1 or arch2.')
flags.DEFINE_string('strategy', 'ir', '"ir", fractions per level, e.g. '
                    '0.3,0.7 (ARCH1) or 0.5,0.3,0.2 (ARCH2), or a named '
                    'rule of the authors\' plr branch computed from the '
                    'architecture (basic, cumulative_weights, total_weights, '
                    'input_size, layer_idx; docs/deviations.md).')
flags.DEFINE_bool('mfid', True, "Compute mFID of each seed's generator.")
flags.DEFINE_string('replay', 'generative', 'What is replayed: generative '
                    '(the paper) or none (fine-tuning on each task alone, '
                    'the lower bound; no mFID, the strategy is ignored).')
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS


def main():
  config = common.finish(common.preset_config(table2.config,
      FLAGS.arch, FLAGS.strategy, common.seeds(), FLAGS.preset,
      mfid=FLAGS.mfid, recon_levels=common.recon_levels() or 'all',
      replay_targets=common.replay_targets() or 'soft',
      replay=FLAGS.replay))
  run.run(config, common.workdir(), data_dir=common.run_data_dir(config),
          extractor_dir=FLAGS.extractor_dir, mesh=common.mesh(),
          should_stop=common.STOP)


if __name__ == '__main__':
  common.run_main(main)
