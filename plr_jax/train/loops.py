"""Running many iterations of a step: one `lax.scan`, or a host loop.

On accelerators a chunk of iterations is one jit-compiled `lax.scan`, so the
host touches the loop only between chunks. XLA:CPU runs convolutions inside a
while loop, and vmapped ones (grouped convolutions), far slower than at the
top level of a program (benchmarks/RESULTS.md), so where the body convolves
and the backend is the CPU, the host loops over the jitted iteration and
seeds run one after another: the same arithmetic and draws.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp


def slow_convolutions(has_convolutions: bool) -> bool:
  """Whether the program convolves on XLA:CPU: then loop on the host rather
  than scan, and run seeds in sequence (`map_unrolled`) rather than vmapped.
  Programs of dense layers scan and vmap."""
  return has_convolutions and jax.default_backend() == 'cpu'


def map_unrolled(fn: Callable[..., Any], in_axes: tuple[int | None, ...]
                 ) -> Callable[..., Any]:
  """`jax.vmap(fn, in_axes)` computed as a Python loop over the mapped axis.

  Each slice runs the unbatched program (the same arithmetic as a run of its
  own) and the outputs are stacked; the program grows with the axis' size,
  which must be static. Only axis 0 or None (broadcast) are supported.
  """
  if any(axis not in (0, None) for axis in in_axes):
    raise ValueError(f'map_unrolled maps axis 0 only, got {in_axes}')

  def mapped(*args):
    sizes = {jax.tree.leaves(a)[0].shape[0]
             for a, axis in zip(args, in_axes) if axis == 0}
    if len(sizes) != 1:
      raise ValueError(f'mapped arguments disagree on their size: {sizes}')
    outputs = [
        fn(*(a if axis is None else jax.tree.map(lambda x, i=i: x[i], a)
             for a, axis in zip(args, in_axes)))
        for i in range(sizes.pop())]
    return jax.tree.map(lambda *o: jnp.stack(o), *outputs)
  return mapped


def make_loop(iteration: Callable[..., tuple[Any, Any]], host_loop: bool,
              jit: bool = True, unroll: int = 1):
  """`run(carry, *args, length=n) -> (carry, stacked outputs)`.

  Args:
    iteration: `iteration(carry, i, *args) -> (carry, output)`, pure; `i` is
      the iteration's index in the chunk (an int32 scalar).
    host_loop: loop on the host over a jitted iteration instead of a jitted
      `lax.scan` (see `slow_convolutions`).
    jit: False returns the pure scan (for composing under jit or vmap);
      `host_loop` is then ignored.
    unroll: iterations per step of the scan's loop (`lax.scan`'s `unroll`):
      fewer loop-condition round trips on accelerators, a larger program.

  Returns:
    The runner; `carry` is donated, `length` is static. The host loop's
    runner also takes `between`, called before every iteration but the
    first (for example to raise on a stop request; the donated carry is
    then gone, so the caller resumes from its own checkpoint).
  """
  if host_loop and jit:
    jitted = jax.jit(iteration, donate_argnums=0)

    def run(carry, *args, length, between: Callable[[], None] | None = None):
      outputs = []
      for i in range(length):
        if i and between is not None:
          between()
        carry, out = jitted(carry, jnp.int32(i), *args)
        outputs.append(out)
      return carry, jax.tree.map(lambda *o: jnp.stack(o), *outputs)
    return run

  def scanned(carry, *args, length):
    body = lambda c, i: iteration(c, i, *args)
    return jax.lax.scan(body, carry, jnp.arange(length, dtype=jnp.int32),
                        unroll=min(unroll, max(length, 1)))
  if not jit:
    return scanned
  return jax.jit(scanned, static_argnames='length', donate_argnums=0)
