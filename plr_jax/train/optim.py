"""Optimizers and per-layer gated updates.

PLR's partial updates need more than `stop_gradient`: a layer that gets a zero
gradient still moves under Adam once its moments are non-zero, and its moments
decay. A *gate* per layer (top-level parameter name) says whether the layer
takes part in a step; a closed gate leaves the layer's parameters and its
optimizer state bit-for-bit as they were. Gates are boolean arrays, so they
can change from step to step without recompiling, or Python bools, fixed
when the step is traced (a closed one costs nothing).
"""

from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp
import optax

Params = Any


def adam(learning_rate: float = 1e-4, b1: float = 0.9,
         b2: float = 0.999) -> optax.GradientTransformation:
  """The paper's optimizer: Adam(1e-4, (0.9, 0.999)), eps as in PyTorch."""
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=1e-8)


def gate_tree(params: Params, gates: Mapping[str, Any]) -> Params:
  """A params-shaped tree holding each leaf's layer gate.

  Args:
    params: a dict of layers (top-level names such as `fc_1`).
    gates: bool (array or Python) per top-level name; every layer of
      `params` must be covered, so a renamed layer cannot slip through.
  """
  missing = sorted(set(params) - set(gates))
  if missing:
    raise ValueError(f'no gate for layers {missing}; gates cover '
                     f'{sorted(gates)}')
  return {name: jax.tree.map(lambda _, g=_gate(gates[name]): g, sub)
          for name, sub in params.items()}


def _gate(gate):
  """Python bools are kept (decided at trace time), the rest made arrays."""
  return gate if isinstance(gate, bool) else jnp.asarray(gate)


def combine_gates(static: Mapping[str, bool], params,
                  trainable: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
  """Per layer of `params`, a step's gate: open where the layer is given data
  (`static`, Python bools fixed when the step is traced; missing names are
  open) and `trainable` (bools or bool arrays, e.g. a freeze after task 1;
  missing names are open) both say so. Python bools stay Python bools, so a
  gate closed at trace time leaves the layer's gradient unused and XLA never
  computes it."""
  trainable = trainable or {}

  def combine(name):
    fixed, varying = static.get(name, True), trainable.get(name, True)
    if isinstance(varying, bool):
      return fixed and varying
    return jnp.logical_and(fixed, varying)
  return {name: combine(name) for name in params}


def gated_update(tx: optax.GradientTransformation, grads: Params,
                 params: Params, opt_state: optax.OptState,
                 gates: Mapping[str, Any]) -> tuple[Params, optax.OptState]:
  """One optimizer step in which layers with a closed gate do not change.

  Args:
    tx: an optax transformation whose state holds params-shaped trees (Adam,
      SGD with momentum, ...); its step counters advance as usual.
    grads, params, opt_state: as for `tx.update`.
    gates: bool per top-level layer name (see `gate_tree`).

  Returns:
    New parameters and optimizer state.
  """
  updates, new_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  param_gates = gate_tree(params, gates)
  state_gates = optax.tree_utils.tree_map_params(
      tx, lambda _, g: g, opt_state, param_gates,
      transform_non_params=lambda _: None)
  def select(g, new, old):
    if g is None or g is True:
      return new
    return old if g is False else jnp.where(g, new, old)
  new_params = jax.tree.map(select, param_gates, new_params, params)
  new_state = jax.tree.map(select, state_gates, new_state, opt_state,
                           is_leaf=lambda x: x is None)
  chex.assert_trees_all_equal_shapes_and_dtypes(new_state, opt_state)
  return new_params, new_state
