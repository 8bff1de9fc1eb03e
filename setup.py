"""Installs plr_jax: `pip install -e .` (add `[test]` for the test tools)."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _requirements():
  lines = (HERE / 'requirements.txt').read_text().splitlines()
  return [line.strip() for line in lines
          if line.strip() and not line.startswith('#')]


setuptools.setup(
    name='plr_jax',
    version='0.1.0',
    description='Progressive Latent Replay for continual learning, in JAX.',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(
        include=['plr_jax', 'plr_jax.*', 'experiments', 'experiments.*',
                 'benchmarks']),
    license='Apache-2.0',
    python_requires='>=3.10',
    install_requires=_requirements(),
    extras_require={
        'test': ['pytest>=7', 'pytest-xdist>=3', 'scipy>=1.10'],
        'tfds': ['tensorflow-datasets>=4.9', 'tensorflow'],
    },
)
