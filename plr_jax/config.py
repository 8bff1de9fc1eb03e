"""One value describes a run: `RunConfig`.

A `RunConfig` holds everything that decides what a run computes: the
protocol (dataset, tasks, replay kind, inputs, freezing), the networks, the
strategy, sizes and lengths, the method's options, how the classes split
into tasks, how a missing extractor is pretrained, mFID, the seeds and the
matmul precision; and, apart from those, the loop options that change how a
run executes but not its results (how it compiles, checkpoints and spreads
seeds). It is a frozen dataclass, validated once where it is built, hashable
(compiled task loops are cached per configuration) and written whole into
`results.json`; a workdir is resumed only by a run whose `identity()` equals
the one recorded there.

Frozen dataclasses rather than `ml_collections.ConfigDict`: the values are
typed and immutable, nested configs are plain fields, and equality and
hashing come for free, which the jit caches need; `dataclasses.replace`
gives a changed copy. Named presets of the paper's tables and figures live
in `experiments/configs/`.
"""

import dataclasses
import hashlib
import json
from typing import Any

import jax

from plr_jax import errors
from plr_jax.models import arch as arch_lib
from plr_jax.train import continual
from plr_jax.train import pretrain as pretrain_lib
from plr_jax.train import replay_kinds

PROTOCOLS = {
    # protocol: (dataset, extractor: pretrained and frozen or trained on the
    # task images)
    'split_cifar100': ('cifar100', 'pretrained'),
    'split_cifar10': ('cifar10', 'pretrained'),
    'fashion_mnist': ('fashion_mnist', 'trained'),
}

# Matmul precisions: JAX's coarse levels (on NVIDIA GPUs "bfloat16" is
# Precision.DEFAULT, which XLA runs as TF32 for float32 operands) and its
# exact dot algorithms ("BF16_BF16_F32": bfloat16 operands, float32
# accumulation); benchmarks/precision_probe.py shows what each does on a
# backend.
PRECISIONS = ('float32', 'tensorfloat32', 'bfloat16') + tuple(
    p.name for p in jax.lax.DotAlgorithmPreset if p.name != 'DEFAULT')

DATA_LABELS = ('exact', 'jpeg', 'fake', 'unknown')


def check_precision(name: str) -> None:
  """ValueError unless `name` is one of `PRECISIONS`."""
  if name not in PRECISIONS:
    raise ValueError(f'precision must be float32, tensorfloat32, bfloat16 '
                     f'or a jax.lax.DotAlgorithmPreset name, got {name!r}')


@dataclasses.dataclass(frozen=True)
class MfidConfig:
  """mFID of each seed's generator (docs/design.md, "Protocols").

  Attributes:
    samples: generated level-0 samples embedded (and test images: all).
    reference_epochs: epochs of the reference classifier's hidden stack.
  """
  samples: int = 10_000
  reference_epochs: int = 20

  def __post_init__(self):
    for name in ('samples', 'reference_epochs'):
      if getattr(self, name) < 1:
        raise ValueError(f'mfid {name} must be positive, got '
                         f'{getattr(self, name)}')


@dataclasses.dataclass(frozen=True)
class LoopOptions:
  """How a run checkpoints and groups its seeds. Results do not depend on
  these (bit for bit; vmapped seeds equal separate ones to float
  tolerance), so a run may be resumed with other values. The task loop's
  own execution options (`ContinualConfig.LOOP_FIELDS`) are likewise left
  out of a run's identity.

  Attributes:
    checkpoint_every: checkpoint every this many iterations within a task
      (0: only at task ends).
    checkpoint_min_secs: skip a mid-task checkpoint when the last one is
      more recent than this.
    vmap_seeds: all seeds as one vmapped program (else one after another).
    log_every: the losses in `WORKDIR/logs/` are means over blocks of this
      many iterations.
  """
  checkpoint_every: int = 1000
  checkpoint_min_secs: float = 60.0
  vmap_seeds: bool = True
  log_every: int = 10

  def __post_init__(self):
    if self.checkpoint_every < 0:
      raise ValueError(f'checkpoint_every must be >= 0, got '
                       f'{self.checkpoint_every}')
    if self.log_every < 1:
      raise ValueError(f'log_every must be positive, got {self.log_every}')
    if self.checkpoint_min_secs < 0:
      raise ValueError(f'checkpoint_min_secs must be >= 0, got '
                       f'{self.checkpoint_min_secs}')


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything that defines a run of one protocol over some seeds.

  Attributes:
    protocol: one of `PROTOCOLS` (the dataset and how the extractor is
      obtained follow from it).
    continual: the task loop's configuration: architecture (head sized to
      the benchmark's classes), strategy, tasks, sizes and lengths, replay
      kind, inputs, freezing, the method's options and the class order.
    seeds: the runs' seeds, distinct.
    name: what tables call the run (None: the strategy's name).
    extractor: how the frozen extractor is pretrained when none is given
      (protocols with a pretrained extractor only).
    extractor_classes: CIFAR-10 classes the extractor is pretrained on
      (Figure 4; 0: no pretraining, a randomly initialised frozen
      extractor), the first K of a permutation drawn from
      `extractor_seed`.
    extractor_seed: the pretraining's seed (initialisation, batches,
      augmentation, the class subset).
    mfid: mFID of each seed's generator (None: not computed).
    precision: JAX's default matmul precision for the run (`PRECISIONS`).
    data_label: what the data is (`DATA_LABELS`); None: read from the files.
    loop: how the run executes (not part of its identity).
    departures: how the run's sizes, lengths or settings depart from the
      paper's (e.g. 'tiny preset ...'), set by the binaries; () for the
      paper's. Every output of the run says so. Descriptive: not part of
      its identity.
  """
  protocol: str
  continual: continual.ContinualConfig
  seeds: tuple[int, ...]
  name: str | None = None
  extractor: pretrain_lib.PretrainConfig | None = None
  extractor_classes: int = 10
  extractor_seed: int = 0
  mfid: MfidConfig | None = None
  precision: str = 'float32'
  data_label: str | None = None
  loop: LoopOptions = LoopOptions()
  departures: tuple[str, ...] = ()

  def __post_init__(self):
    if self.protocol not in PROTOCOLS:
      raise ValueError(f'unknown protocol {self.protocol!r}; choose one of '
                       f'{", ".join(PROTOCOLS)}')
    dataset, extractor = PROTOCOLS[self.protocol]
    if self.continual.dataset != dataset:
      raise ValueError(f'{self.protocol} runs on {dataset}, but the task '
                       f'loop is configured for {self.continual.dataset}')
    if not self.seeds:
      raise errors.FieldError('seeds',
                              'no seeds: give at least one, e.g. 0,1,2')
    object.__setattr__(self, 'seeds', tuple(int(s) for s in self.seeds))
    object.__setattr__(self, 'departures', tuple(self.departures))
    repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
    if repeated:
      raise errors.FieldError('seeds', f'seeds must be distinct; repeated: '
                              f'{",".join(map(str, repeated))}')
    check_precision(self.precision)
    if self.data_label is not None and self.data_label not in DATA_LABELS:
      raise ValueError(f'data label must be one of {", ".join(DATA_LABELS)}'
                       f', got {self.data_label!r}')
    pretrained = extractor == 'pretrained'
    if pretrained != (self.continual.inputs == 'features'):
      raise ValueError(f'{self.protocol}: inputs must be '
                       f'{"features" if pretrained else "images"}')
    if not pretrained and (self.extractor is not None or self.mfid):
      raise ValueError(f'{self.protocol} trains its extractor on the task '
                       'images: no extractor pretraining or mFID')
    if pretrained and self.extractor is None:
      raise ValueError(f'{self.protocol} needs an extractor pretraining '
                       'config (used when no extractor is given)')
    if not 0 <= self.extractor_classes <= 10:
      raise ValueError(f'extractor classes must be in 0..10 (CIFAR-10), got '
                       f'{self.extractor_classes}')
    if self.mfid and not replay_kinds.get(
        self.continual.replay).generates_features:
      raise ValueError('mFID needs a feature generator (generative replay)')

  @property
  def dataset(self) -> str:
    return self.continual.dataset

  @property
  def arch(self) -> arch_lib.ArchConfig:
    return self.continual.arch

  def identity(self) -> dict:
    """What the run computes: the configuration without its loop options
    and label, as JSON-ready data. Two runs with equal identities compute
    the same results."""
    return identity_of(to_json(self))

  def extractor_id(self) -> str:
    """A name for the extractor this run pretrains (the architecture and a
    hash of what shapes the pretraining), so that runs which would pretrain
    the same one can share it."""
    spec = {'arch': to_json(self.arch), 'extractor': to_json(self.extractor),
            'classes': self.extractor_classes, 'seed': self.extractor_seed}
    spec['arch'].pop('num_classes')  # pretraining has a head of its own
    for name in pretrain_lib.PretrainConfig.ARITHMETIC_FIELDS:
      spec['extractor'].pop(name, None)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    return f'{self.arch.name}_{digest.hexdigest()[:8]}'

  def replace(self, **changes) -> 'RunConfig':
    return dataclasses.replace(self, **changes)


def to_json(value: Any) -> Any:
  """A (nested) config as plain JSON data: dataclasses as dicts, tuples as
  lists."""
  if dataclasses.is_dataclass(value):
    value = dataclasses.asdict(value)
  return json.loads(json.dumps(value))


def identity_of(tree: dict) -> dict:
  """A `RunConfig` as JSON data without what does not change its results
  (loop options, the name, the departures); see `RunConfig.identity`."""
  tree = {k: v for k, v in tree.items()
          if k not in ('loop', 'name', 'departures')}
  tree['continual'] = {k: v for k, v in tree['continual'].items()
                       if k not in continual.ContinualConfig.LOOP_FIELDS}
  if isinstance(tree.get('extractor'), dict):
    tree['extractor'] = {
        k: v for k, v in tree['extractor'].items()
        if k not in pretrain_lib.PretrainConfig.ARITHMETIC_FIELDS}
  return tree


def fill_defaults(tree: dict, config: Any) -> dict:
  """`tree` (a recorded config as JSON data, of `config`'s type) with the
  fields it lacks set to their defaults (JSON data too), so a record made
  before a field existed compares equal to a config with that field at its
  default. Fields without a default stay missing."""
  if not dataclasses.is_dataclass(config) or not isinstance(tree, dict):
    return tree
  out = dict(tree)
  for field in dataclasses.fields(config):
    if field.name in out:
      out[field.name] = fill_defaults(out[field.name],
                                      getattr(config, field.name))
    elif field.default is not dataclasses.MISSING:
      out[field.name] = to_json(field.default)
    elif field.default_factory is not dataclasses.MISSING:
      out[field.name] = to_json(field.default_factory())
  return out


def override(config: RunConfig, assignments: list[str]) -> RunConfig:
  """`config` with `field.sub=value` assignments applied and validated.

  The value is parsed as JSON where it can be (numbers, true/false, null,
  lists), else taken as a string: `continual.scan_unroll=4`,
  `loop.vmap_seeds=false`, `mfid=null`, `continual.recon_levels=used`.
  """
  for assignment in assignments:
    path, sep, text = assignment.partition('=')
    if not sep or not path:
      raise ValueError(f'override {assignment!r} is not of the form '
                       'field=value (e.g. continual.scan_unroll=4)')
    try:
      value = json.loads(text)
    except json.JSONDecodeError:
      value = text
    config = _set(config, path.split('.'), value, path)
  return config


def _set(node, names: list[str], value, path: str):
  name = names[0]
  fields = {f.name: f for f in dataclasses.fields(node)}
  if name not in fields:
    raise ValueError(f'unknown config field {path!r}; {type(node).__name__} '
                     f'has {", ".join(fields)}')
  if len(names) > 1:
    child = getattr(node, name)
    if not dataclasses.is_dataclass(child):
      raise ValueError(f'config field {path!r}: {name} has no sub-fields')
    value = _set(child, names[1:], value, path)
  else:
    value = _typed(getattr(node, name), value, path)
  return dataclasses.replace(node, **{name: value})


def _typed(current, value, path: str):
  """`value` for a field now holding `current`, if of the same kind."""
  if dataclasses.is_dataclass(current) and value is not None:
    raise ValueError(f'config field {path!r} is a group: set its fields '
                     f'({path}.<field>=...)')
  if isinstance(value, list):
    value = tuple(value)
  if current is None or value is None:
    return value
  kinds = ((bool, 'true or false'), (int, 'an integer'),
           (float, 'a number'), (str, 'a string'), (tuple, 'a list'))
  for kind, wanted in kinds:
    if isinstance(current, kind):
      ok = (isinstance(value, kind) if kind is not float else
            isinstance(value, (int, float)) and not isinstance(value, bool))
      if kind is int and isinstance(value, bool):
        ok = False
      if not ok:
        raise ValueError(f'config field {path!r} takes {wanted}, got '
                         f'{json.dumps(value)}')
      return float(value) if kind is float else value
  return value
