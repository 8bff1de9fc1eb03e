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


def spans_processes(mesh: Mesh | None) -> bool:
  """Whether `mesh` has devices of other processes (a multi-host run)."""
  return mesh is not None and any(
      d.process_index != jax.process_index() for d in mesh.devices.flat)


def replicate(mesh: Mesh | None, tree):
  """`tree` placed whole on every device of `mesh` (unchanged without one).

  Across processes every process passes the same values (each holds the
  whole dataset and the same initial state) and places its own copies."""
  if mesh is None:
    return tree
  sharding = NamedSharding(mesh, P())
  if not spans_processes(mesh):
    return jax.device_put(tree, sharding)

  def place(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(place(jax.random.key_data(x)),
                                      impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding,
                                        lambda index: host[index])
  return jax.tree.map(place, tree)


def to_host(tree):
  """Numpy copies of `tree`'s arrays; an array replicated over devices of
  several processes is read from this process's first copy."""
  def fetch(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_shards[0].data)
    return np.asarray(x) if isinstance(x, jax.Array) else x
  return jax.tree.map(fetch, tree)


def constrain_batch(mesh: Mesh, tree):
  """Shards every array of `tree` along its leading (batch) axis."""
  sharding = NamedSharding(mesh, P(AXIS))
  return jax.tree.map(
      lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)
