"""Reading TF2 checkpoints by object structure: key <-> object path, slots, a nested view.

Optimizer state is recognised the way TensorFlow's own objects lay it out: an optimizer is a
node that lists ``slot_variables`` (TF1-style and legacy Keras optimizers) or the target of a
child edge named ``optimizer`` or ``_optimizer`` (Keras 3 models and ``tf.train.Checkpoint``
conventions). Keras 3 optimizers keep their slots as ordinary variables under
``optimizer/_variables``; those are optimizer state, not ``slot_variables``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .graph import SLOT_MARKER, VARIABLE_VALUE, ObjectGraph, ObjectPath, display_path

__all__ = [
    "OPTIMIZER_EDGE_NAMES",
    "SAVE_COUNTER",
    "ObjectTensor",
    "SlotVariable",
    "nested",
    "object_tensors",
    "optimizer_nodes",
    "slot_variables",
]

OPTIMIZER_EDGE_NAMES = frozenset({"optimizer", "_optimizer"})
SAVE_COUNTER = "save_counter"


@dataclass(frozen=True)
class ObjectTensor:
    """One bundle key seen through the object graph.

    ``path`` prefers a route that avoids optimizers: Keras 3 stores model weights under the
    optimizer's shorter path (``optimizer/_trainable_variables/0``), but they are reached from
    the model too (``model/.../_kernel``). ``optimizer_state`` is true only for what nothing
    but an optimizer leads to (its own variables and slots).

    Examples
    --------
    >>> import tfckpt
    >>> described = tfckpt.load_checkpoint("examples/keras_mlp").object_tensors()
    >>> described["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"].optimizer_state
    True
    """

    key: str
    path: ObjectPath  # local names from the root; slots: variable path + SLOT_MARKER + ...
    attribute: str
    full_name: str
    node_id: int
    optimizer_state: bool = False


@dataclass(frozen=True)
class SlotVariable:
    """An optimizer slot (e.g. Adam's ``m``) and the variable it belongs to.

    Examples
    --------
    >>> import tfckpt
    >>> slots = tfckpt.load_checkpoint("tests/fixtures/tf/tf2_slots").slot_variables()
    >>> sorted({(slot.slot_name, "/".join(slot.variable_path)) for slot in slots})[:2]
    [('m', 'model/b'), ('m', 'model/w')]
    """

    variable_path: ObjectPath
    optimizer_path: ObjectPath
    slot_name: str
    key: str


def _node_paths(graph: ObjectGraph) -> dict[int, ObjectPath]:
    paths = graph.paths()
    # Slot variables have no parent edge; TF names them after their variable and optimizer.
    for optimizer_id, node in enumerate(graph.nodes):
        if optimizer_id not in paths:
            continue
        for slot in node.slot_variables:
            variable_path = paths.get(slot.original_variable_node_id)
            if variable_path is not None and slot.slot_variable_node_id not in paths:
                paths[slot.slot_variable_node_id] = (
                    variable_path + (SLOT_MARKER,) + paths[optimizer_id] + (slot.slot_name,))
    return paths


def object_tensors(graph: ObjectGraph, keys: Collection[str]) -> dict[str, ObjectTensor]:
    """Every bundle key that an attribute of the graph names, keyed by bundle key.

    Legacy saveables store their tensor under ``checkpoint_key + suffix``; those keys are
    matched by prefix.
    """
    by_prefix: dict[str, ObjectTensor] = {}
    out: dict[str, ObjectTensor] = {}
    outside_optimizers = graph.paths(avoid=optimizer_nodes(graph))
    for node_id, path in _node_paths(graph).items():
        preferred = outside_optimizers.get(node_id, path)
        for attribute in graph.nodes[node_id].attributes:
            info = ObjectTensor(attribute.checkpoint_key, preferred, attribute.name, attribute.full_name, node_id,
                                optimizer_state=node_id not in outside_optimizers)
            if attribute.checkpoint_key in keys:
                out[attribute.checkpoint_key] = info
            else:
                by_prefix[attribute.checkpoint_key] = info
    if by_prefix:
        for key in keys:
            if key in out:
                continue
            for prefix, info in by_prefix.items():
                if key.startswith(prefix):
                    out[key] = ObjectTensor(key, info.path, info.attribute, info.full_name, info.node_id,
                                            info.optimizer_state)
    return out


def optimizer_nodes(graph: ObjectGraph) -> set[int]:
    found = {i for i, node in enumerate(graph.nodes) if node.slot_variables}
    for node in graph.nodes:
        found.update(ref.node_id for ref in node.children if ref.local_name in OPTIMIZER_EDGE_NAMES)
    return found


def slot_variables(graph: ObjectGraph) -> list[SlotVariable]:
    paths = _node_paths(graph)
    out = []
    for optimizer_id, node in enumerate(graph.nodes):
        for slot in node.slot_variables:
            attribute = graph.nodes[slot.slot_variable_node_id].attribute()
            variable_path = paths.get(slot.original_variable_node_id)
            if attribute is None or variable_path is None or optimizer_id not in paths:
                continue
            out.append(SlotVariable(variable_path, paths[optimizer_id], slot.slot_name, attribute.checkpoint_key))
    return out


def nested(graph: ObjectGraph, read_many: Callable[[list[str]], Mapping[str, Any]], *, optimizer: bool = True,
           slots: bool = True, save_counter: bool = True) -> dict[str, Any]:
    """The checkpoint as nested dicts (lists where children are named 0..n-1) of values.

    The structure is built first; then ``read_many(keys)`` reads every leaf in one call (one
    read plan), mapping each checkpoint key to its value. Nodes with no values are left out.
    An object reachable along several routes appears at each of them (read once).
    """
    skip = optimizer_nodes(graph) if not optimizer else set()
    wanted: dict[str, _Leaf] = {}

    def leaf(key: str) -> _Leaf:
        return wanted.setdefault(key, _Leaf(key))

    def build(node_id: int, ancestors: frozenset[int]) -> Any:
        node = graph.nodes[node_id]
        attribute = node.attribute(VARIABLE_VALUE) or (node.attributes[0] if node.attributes else None)
        if attribute is not None:
            return leaf(attribute.checkpoint_key)
        children: dict[str, Any] = {}
        for ref in node.children:
            if ref.node_id in ancestors or ref.node_id in skip:
                continue
            if node_id == 0 and ref.local_name == SAVE_COUNTER and not save_counter:
                continue
            if graph.nodes[ref.node_id].has_checkpoint_values is False:
                continue
            value = build(ref.node_id, ancestors | {ref.node_id})
            if value is not None:
                children[ref.local_name] = value
        if slots and node.slot_variables and node_id not in skip:
            by_variable: dict[str, dict[str, Any]] = {}
            paths = _node_paths(graph)
            for slot in node.slot_variables:
                slot_attribute = graph.nodes[slot.slot_variable_node_id].attribute()
                variable_path = paths.get(slot.original_variable_node_id)
                if slot_attribute is not None and variable_path is not None:
                    by_variable.setdefault(display_path(variable_path), {})[slot.slot_name] = leaf(
                        slot_attribute.checkpoint_key)
            if by_variable:
                children[SLOT_MARKER] = by_variable
        if not children:
            return None
        names = list(children)
        if names == [str(i) for i in range(len(names))]:
            return [children[name] for name in names]
        return children

    result = build(0, frozenset({0}))
    if not isinstance(result, dict):
        return {}
    filled: dict[str, Any] = _fill_leaves(result, read_many(list(wanted)))
    return filled


@dataclass(frozen=True)
class _Leaf:
    """A place in a tree being built whose value is read later, with all the others."""

    key: str


def _fill_leaves(tree: Any, values: Mapping[str, Any]) -> Any:
    """``tree`` with each :class:`_Leaf` replaced by its key's value."""
    if isinstance(tree, _Leaf):
        return values[tree.key]
    if isinstance(tree, dict):
        return {name: _fill_leaves(child, values) for name, child in tree.items()}
    if isinstance(tree, list):
        return [_fill_leaves(child, values) for child in tree]
    return tree
