r"""Figure 5: Fashion-MNIST, 5 tasks of 2 classes, without pretraining.

  python -m experiments.fashion_mnist --workdir=runs/fm_ir_frozen \
      --setup=ir_frozen --seeds=0,1,2

The authors' Fashion-MNIST command (their README: "should give about 76%"),
exactly:

  python -m experiments.fashion_mnist --workdir=runs/fm_gr_authors \
      --setup=gr --preset=authors --seeds=0

--preset=authors is that command's configuration (arch fmnist_scripts: one
hidden layer of 100 units, z 10; batch 128 + 128 replayed, 2000 iterations
per task, Adam 1e-4, hard replay targets, raw pixels in [0, 1], classes in
the dataset's order for seeds below 10) for any --setup. --preset=paper
(default) is the paper's text: the 3 x 50 network (fmnist), batch 256 + 256,
2000 iterations per task. Setups: gr (standard generative replay of images),
ir_frozen (IR or a PLR strategy, extractor frozen after task 1), gr_frozen
(GR, convolutions frozen after task 1), ir_naive (IR, nothing frozen). The
run's configuration is `experiments.configs.fig5.config`. Fashion-MNIST is
found in --data_dir or /usr/share/datasets/fashion-mnist.
"""

from absl import flags

from experiments import common
from experiments.configs import fig5
from plr_jax import run

common.define_run_flags()
common.define_method_flags()
flags.DEFINE_string('setup', 'ir_frozen', ', '.join(fig5.SETUPS) + '.')
flags.DEFINE_string('arch', None, 'fmnist (the paper: 3 x 50 hidden), '
                    "fmnist_scripts (the authors' scripts: 1 x 100) or "
                    'fmnist_mlp (3 x 50 on the flat image, no convolutions). '
                    'Default: fmnist_scripts with --preset=authors, fmnist '
                    'otherwise.')
flags.DEFINE_string('strategy', 'ir', '"ir", fractions per level, or a '
                    'named rule of the authors\' plr branch (basic, '
                    'cumulative_weights, total_weights, input_size, '
                    'layer_idx); ir_frozen only.')
flags.DEFINE_integer('num_tasks', 5, 'Tasks the 10 classes split into.')
flags.DEFINE_string('pixels', 'raw', 'Inputs raw in [0, 1] (the reference; '
                    'the GR image VAE is then Bernoulli) or standardised per '
                    'channel (its VAE then linear with a squared error).')
flags.adopt_module_key_flags(common)
FLAGS = flags.FLAGS


def main():
  config = common.finish(common.preset_config(fig5.config,
      FLAGS.setup, FLAGS.strategy, common.seeds(), FLAGS.preset,
      arch=FLAGS.arch, num_tasks=FLAGS.num_tasks,
      replay_targets=common.replay_targets(),
      recon_levels=common.recon_levels(), pixels=FLAGS.pixels))
  run.run(config, common.workdir(), data_dir=common.run_data_dir(config),
          mesh=common.mesh(), should_stop=common.STOP)


if __name__ == '__main__':
  common.run_main(main)
