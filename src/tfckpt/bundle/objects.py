"""Reading TF2 checkpoints by object structure: key <-> object path, slots, a nested view.

Optimizer state is recognised the way TensorFlow's own objects lay it out: an optimizer is a
node that lists ``slot_variables`` (TF1-style and legacy Keras optimizers) or the target of a
child edge named ``optimizer`` or ``_optimizer`` (Keras 3 models and ``tf.train.Checkpoint``
conventions). Keras 3 optimizers keep their slots as ordinary variables under
``optimizer/_variables``; those are optimizer state, not ``slot_variables``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .graph import (
    SLOT_MARKER,
    VARIABLE_VALUE,
    GraphWalk,
    ObjectGraph,
    ObjectPath,
    ObjectReference,
    display_path,
)

__all__ = [
    "KERAS_OPTIMIZER_LISTS",
    "OPTIMIZER_EDGE_NAMES",
    "SAVE_COUNTER",
    "ObjectTensor",
    "SlotLink",
    "SlotVariable",
    "canonical_walk",
    "longest_prefixes",
    "nested",
    "object_tensors",
    "optimizer_nodes",
    "slot_links",
    "slot_variables",
    "unmatched_keys",
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


def canonical_walk(graph: ObjectGraph, *, optimizer: bool = True) -> GraphWalk:
    """The walk every object view shares: routes around optimizers preferred (Keras 3 lists
    model weights under its optimizer too), optimizers not entered at all if not ``optimizer``."""
    optimizers = optimizer_nodes(graph)
    return graph.walk(detour=optimizers) if optimizer else graph.walk(avoid=optimizers)


def _slot_path(walk: GraphWalk, link: SlotLink) -> ObjectPath:
    # TF names a slot after its variable and optimizer (it has no parent edge of its own).
    return walk.path(link.variable) + (SLOT_MARKER,) + walk.path(link.optimizer) + (link.slot_name,)


def object_tensors(graph: ObjectGraph, keys: Collection[str]) -> dict[str, ObjectTensor]:
    """Every bundle key that an attribute of the graph names, keyed by bundle key.

    Legacy saveables store their tensor under ``checkpoint_key + suffix``; those keys are
    matched by prefix (the longest attribute key that prefixes a key wins), in
    O((keys + attributes) log) comparisons.
    """
    walk = canonical_walk(graph)
    owners: list[tuple[int, ObjectPath]] = [(node_id, walk.path(node_id)) for node_id in walk.order
                                            if graph.nodes[node_id].attributes]
    slot_nodes = set()
    for link in slot_links(graph, walk):
        if not link.keras and link.slot not in walk and link.slot not in slot_nodes:
            slot_nodes.add(link.slot)
            owners.append((link.slot, _slot_path(walk, link)))
    by_prefix: dict[str, ObjectTensor] = {}
    out: dict[str, ObjectTensor] = {}
    for node_id, path in owners:
        for attribute in graph.nodes[node_id].attributes:
            info = ObjectTensor(attribute.checkpoint_key, path, attribute.name, attribute.full_name, node_id,
                                optimizer_state=node_id in walk.detoured or node_id in slot_nodes)
            if attribute.checkpoint_key in keys:
                out[attribute.checkpoint_key] = info
            else:
                by_prefix[attribute.checkpoint_key] = info
    if by_prefix:
        for key, prefix in longest_prefixes(by_prefix, (key for key in keys if key not in out)).items():
            info = by_prefix[prefix]
            out[key] = ObjectTensor(key, info.path, info.attribute, info.full_name, info.node_id,
                                    info.optimizer_state)
    return out


def longest_prefixes(prefixes: Iterable[str], keys: Iterable[str]) -> dict[str, str]:
    """``{key: the longest of prefixes that starts it}`` for each key some prefix starts.

    One merge of both sorted lists: the prefixes that start a string form a chain, and every
    string sorted between a prefix and a string it starts has that prefix too, so a stack of
    the chain so far answers each key; each prefix is pushed and popped once.
    """
    merged = sorted([(text, 0) for text in prefixes] + [(text, 1) for text in keys])
    chain: list[str] = []
    found: dict[str, str] = {}
    for text, is_key in merged:
        while chain and not text.startswith(chain[-1]):
            chain.pop()
        if is_key:
            if chain:
                found[text] = chain[-1]
        else:
            chain.append(text)
    return found


def unmatched_keys(graph: ObjectGraph, keys: Collection[str]) -> list[str]:
    """The checkpoint keys the graph's attributes name that no key is or starts with
    (legacy saveables store theirs under ``checkpoint_key + suffix``), sorted."""
    named = {a.checkpoint_key for node in graph.nodes for a in node.attributes}
    ordered = sorted(keys)
    out = []
    for prefix in sorted(named.difference(keys)):
        at = bisect.bisect_left(ordered, prefix)  # the first key >= prefix starts with it, if any does
        if at == len(ordered) or not ordered[at].startswith(prefix):
            out.append(prefix)
    return out


def optimizer_nodes(graph: ObjectGraph) -> set[int]:
    found = {i for i, node in enumerate(graph.nodes) if node.slot_variables}
    for node in graph.nodes:
        found.update(ref.node_id for ref in node.children if ref.local_name in OPTIMIZER_EDGE_NAMES)
    return found


@dataclass(frozen=True)
class SlotLink:
    """One optimizer slot in the graph: node ids of the optimizer, the variable, the slot."""

    optimizer: int
    variable: int
    slot_name: str
    slot: int
    keras: bool = False  # a Keras 3 slot: an ordinary child of its optimizer, not a slot_variables entry


KERAS_OPTIMIZER_LISTS = frozenset({"_variables", "_trainable_variables"})  # not slots


def slot_links(graph: ObjectGraph, walk: GraphWalk) -> list[SlotLink]:
    """Every slot of a reached optimizer whose variable is reached.

    TF1 and legacy Keras optimizers list theirs in ``slot_variables``. Keras 3 optimizers
    keep each kind of slot as a list child (``_momentums``, ``momentums``, ``_velocities``,
    ...) parallel to ``_trainable_variables``: item i belongs to variable i, and its
    ``full_name`` is the optimizer's name, the variable's path with ``/`` as ``_``, and the
    slot's name (``adam/sequential_dense_kernel_momentum`` for ``sequential/dense/kernel``).
    A list is taken for slots only if every item's name says so.
    """
    out = []
    nodes = graph.nodes
    for optimizer_id in walk.order:
        for slot in nodes[optimizer_id].slot_variables:
            if slot.original_variable_node_id in walk:
                out.append(SlotLink(optimizer_id, slot.original_variable_node_id, slot.slot_name,
                                    slot.slot_variable_node_id))
    for optimizer_id in sorted(optimizer_nodes(graph)):
        if optimizer_id not in walk:
            continue
        lists = {ref.local_name: ref.node_id for ref in nodes[optimizer_id].children}
        trainable = lists.get("_trainable_variables")
        if trainable is None:
            continue
        variables = _indexed(nodes[trainable].children)
        for name, list_id in lists.items():
            items = _indexed(nodes[list_id].children)
            if name in KERAS_OPTIMIZER_LISTS or not variables or len(items) != len(variables):
                continue
            names = [_keras_slot_name(graph, variable, item) for variable, item in zip(variables, items)]
            if all(names) and all(variable in walk for variable in variables):
                out += [SlotLink(optimizer_id, variable, slot_name, item, keras=True)
                        for variable, item, slot_name in zip(variables, items, names) if slot_name]
    return out


def _indexed(children: Iterable[ObjectReference]) -> list[int]:
    """The node ids of a list's items (children named 0..n-1 in order), else []."""
    refs = list(children)
    return [ref.node_id for ref in refs] if all(ref.local_name == str(i) for i, ref in enumerate(refs)) else []


def _keras_slot_name(graph: ObjectGraph, variable: int, item: int) -> str | None:
    owner = graph.nodes[variable].attribute()
    slot = graph.nodes[item].attribute()
    if owner is None or slot is None or not owner.full_name:
        return None
    stem = owner.full_name.replace("/", "_") + "_"
    last = slot.full_name.rsplit("/", 1)[-1]
    if not last.startswith(stem) or last == stem:
        return None
    return last[len(stem):]


def slot_variables(graph: ObjectGraph) -> list[SlotVariable]:
    walk = canonical_walk(graph)
    out = []
    for link in slot_links(graph, walk):
        attribute = graph.nodes[link.slot].attribute()
        if attribute is not None:
            out.append(SlotVariable(walk.path(link.variable), walk.path(link.optimizer), link.slot_name,
                                    attribute.checkpoint_key))
    return out


def nested(graph: ObjectGraph, read_many: Callable[[list[str]], Mapping[str, Any]], *, optimizer: bool = True,
           slots: bool = True, save_counter: bool = True) -> dict[str, Any]:
    """The checkpoint as nested dicts (lists where children are named 0..n-1) of values.

    The structure is found first; then ``read_many(keys)`` reads every leaf in one call (one
    read plan), mapping each checkpoint key to its value. Nodes with no values are left out.
    An object reachable along several routes appears at each of them as the *same* value
    (one dict, list or array, built and read once), so the result holds each object once
    however many routes lead to it; an edge that closes a cycle is left out.
    """
    nodes = graph.nodes
    skip = set() if optimizer else optimizer_nodes(graph)
    skip.update(i for i, node in enumerate(nodes) if node.has_checkpoint_values is False and i)
    if not save_counter:
        skip.update(ref.node_id for ref in nodes[0].children if ref.local_name == SAVE_COUNTER)
    leaves = {i: (node.attribute(VARIABLE_VALUE) or node.attributes[0]).checkpoint_key
              for i, node in enumerate(nodes) if node.attributes}
    walk = graph.walk(avoid=skip, stop=leaves)
    done, kept = walk.acyclic_order()
    slot_groups: dict[int, dict[str, dict[str, str]]] = {}  # optimizer -> variable path -> slot -> key
    if slots:
        paths = canonical_walk(graph, optimizer=optimizer)
        for link in slot_links(graph, paths):
            attribute = nodes[link.slot].attribute()
            if not link.keras and attribute is not None and link.optimizer in walk and link.optimizer not in leaves:
                slot_groups.setdefault(link.optimizer, {}).setdefault(
                    display_path(paths.path(link.variable)), {})[link.slot_name] = attribute.checkpoint_key
    wanted = [leaves[i] for i in done if i in leaves]
    wanted += [key for group in slot_groups.values() for by_slot in group.values() for key in by_slot.values()]
    values = read_many(list(dict.fromkeys(wanted)))
    built: dict[int, Any] = {}
    for node_id in done:  # children before parents
        if node_id in leaves:
            built[node_id] = values[leaves[node_id]]
            continue
        children: dict[str, Any] = {}
        for index in kept[node_id]:
            ref = nodes[node_id].children[index]
            value = built.get(ref.node_id)
            if value is not None:
                children[ref.local_name] = value
        group = slot_groups.get(node_id)
        if group:
            children[SLOT_MARKER] = {variable: {name: values[key] for name, key in by_slot.items()}
                                     for variable, by_slot in group.items()}
        if not children:
            continue
        names = list(children)
        built[node_id] = ([children[name] for name in names] if names == [str(i) for i in range(len(names))]
                          else children)
    result = built.get(0)
    return result if isinstance(result, dict) else {}
