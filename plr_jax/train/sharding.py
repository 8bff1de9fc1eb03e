"""Data parallelism with `jax.sharding`: one mesh axis, "data".

The current and replay batches are split over the mesh's devices along their
batch axis; parameters, optimizer states and the cached features are
replicated. Everything else (the gradient all-reduce) is left to XLA's SPMD
partitioner, so the steps stay the same pure functions. Over several hosts,
call `initialize_distributed` first: the mesh then spans every process's
devices.
"""

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = 'data'


def initialize_distributed(coordinator_address: str | None,
                           num_processes: int | None,
                           process_id: int | None) -> None:
  """`jax.distributed.initialize` for multi-host runs (no-op without address)."""
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes,
                               process_id=process_id)


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (AXIS,))


def check_divisible(mesh: Mesh | None, **batch_sizes: int) -> None:
  """One-line error if a batch does not split evenly over the mesh."""
  if mesh is None:
    return
  count = mesh.devices.size
  for name, size in batch_sizes.items():
    if size % count:
      raise ValueError(f'{name} {size} does not split over {count} devices; '
                       f'use a multiple of {count} or --data_parallel=false')


def replicate(mesh: Mesh | None, tree):
  """`tree` placed whole on every device of `mesh` (unchanged without one)."""
  if mesh is None:
    return tree
  return jax.device_put(tree, NamedSharding(mesh, P()))


def constrain_batch(mesh: Mesh, tree):
  """Shards every array of `tree` along its leading (batch) axis."""
  sharding = NamedSharding(mesh, P(AXIS))
  return jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)
