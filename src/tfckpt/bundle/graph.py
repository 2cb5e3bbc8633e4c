"""The object graph of TF2 checkpoints: the value of the ``_CHECKPOINTABLE_OBJECT_GRAPH`` key.

``TrackableObjectGraph`` (``protos/tfckpt/_proto/trackable_object_graph.proto``)::

    nodes: repeated TrackableObject = 1       node 0 is the root
    TrackableObject:
      children: repeated {node_id: int32 = 1, local_name: string = 2}   = 1 (names unescaped)
      attributes: repeated {name = 1, full_name = 2, checkpoint_key = 3} = 2 (tensors it owns)
      slot_variables: repeated {original_variable_node_id = 1, slot_name = 2,
                                slot_variable_node_id = 3}               = 3 (optimizers only)
      registered_saver: {name = 1, object_name = 2}                      = 4
      has_checkpoint_values: BoolValue                                   = 5

A node's *path* is the list of local names along the first breadth-first route from the root
(children in stored order). Bundle keys are built from it: each local name escaped (``.`` ->
``..`` first, then ``/`` -> ``.S``), joined with ``/``, then ``/.ATTRIBUTES/<escaped attribute
name>``; e.g. ``net/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from .._proto import trackable_object_graph_pb2
from ..errors import CorruptionError

__all__ = [
    "ATTRIBUTES_MARKER",
    "OBJECT_GRAPH_KEY",
    "SLOT_MARKER",
    "VARIABLE_VALUE",
    "GraphWalk",
    "ObjectGraph",
    "ObjectPath",
    "ObjectReference",
    "SerializedTensor",
    "SlotVariableReference",
    "TrackableObject",
    "attribute_key",
    "display_path",
    "escape_local_name",
    "path_prefix",
    "unescape_local_name",
]

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"  # tensorflow trackable/constants.py
VARIABLE_VALUE = "VARIABLE_VALUE"
ATTRIBUTES_MARKER = ".ATTRIBUTES"
SLOT_MARKER = ".OPTIMIZER_SLOT"

ObjectPath = tuple[str, ...]


def escape_local_name(name: str) -> str:
    """Escape one local name for use in a key (``a/b`` -> ``a.Sb``, ``x.y`` -> ``x..y``)."""
    return name.replace(".", "..").replace("/", ".S")


def unescape_local_name(escaped: str, where: str = "") -> str:
    out = []
    i = 0
    while i < len(escaped):
        char = escaped[i]
        if char == ".":
            following = escaped[i + 1:i + 2]
            if following == ".":
                out.append(".")
            elif following == "S":
                out.append("/")
            else:
                raise CorruptionError(f"{where}: bad escape '.{following}' in {escaped!r}")
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def path_prefix(path: ObjectPath) -> str:
    """The escaped key prefix of an object path (``("table", "b/c")`` -> ``table/b.Sc``)."""
    return "/".join(escape_local_name(name) for name in path)


def attribute_key(path: ObjectPath, attribute: str = VARIABLE_VALUE) -> str:
    prefix = path_prefix(path)
    suffix = f"{ATTRIBUTES_MARKER}/{escape_local_name(attribute)}"
    return f"{prefix}/{suffix}" if prefix else suffix


def display_path(path: ObjectPath) -> str:
    """A readable path: local names as they are, joined with ``/``."""
    return "/".join(path)


@dataclass(frozen=True)
class ObjectReference:
    node_id: int
    local_name: str


@dataclass(frozen=True)
class SerializedTensor:
    name: str
    full_name: str
    checkpoint_key: str


@dataclass(frozen=True)
class SlotVariableReference:
    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


@dataclass(frozen=True)
class TrackableObject:
    children: tuple[ObjectReference, ...] = ()
    attributes: tuple[SerializedTensor, ...] = ()
    slot_variables: tuple[SlotVariableReference, ...] = ()
    registered_saver: str | None = None
    has_checkpoint_values: bool | None = None

    def child(self, local_name: str) -> ObjectReference | None:
        for ref in self.children:
            if ref.local_name == local_name:
                return ref
        return None

    def attribute(self, name: str = VARIABLE_VALUE) -> SerializedTensor | None:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        return None


@dataclass(frozen=True)
class ObjectGraph:
    """A decoded ``TrackableObjectGraph``; node 0 is the root.

    Examples
    --------
    >>> import tfckpt
    >>> graph = tfckpt.load_checkpoint("examples/keras_mlp").object_graph
    >>> len(graph.nodes) > 5, [ref.local_name for ref in graph.nodes[0].children]
    (True, ['model', 'optimizer', 'save_counter'])
    """

    nodes: tuple[TrackableObject, ...]

    def encode(self) -> bytes:
        proto = trackable_object_graph_pb2.TrackableObjectGraph()
        for node in self.nodes:
            out = proto.nodes.add()
            for ref in node.children:
                out.children.add(node_id=ref.node_id, local_name=ref.local_name)
            for attribute in node.attributes:
                out.attributes.add(name=attribute.name, full_name=attribute.full_name,
                                   checkpoint_key=attribute.checkpoint_key)
            for slot in node.slot_variables:
                out.slot_variables.add(original_variable_node_id=slot.original_variable_node_id,
                                       slot_name=slot.slot_name, slot_variable_node_id=slot.slot_variable_node_id)
            if node.registered_saver is not None:
                out.registered_saver.name = node.registered_saver
            if node.has_checkpoint_values is not None:
                out.has_checkpoint_values.value = node.has_checkpoint_values
        return proto.SerializeToString()

    @classmethod
    def decode(cls, data: bytes, where: str) -> ObjectGraph:
        try:
            proto = trackable_object_graph_pb2.TrackableObjectGraph.FromString(data)
        except DecodeError as exc:
            raise CorruptionError(f"{where}: {OBJECT_GRAPH_KEY} is not a TrackableObjectGraph: {exc}") from exc
        count = len(proto.nodes)
        if count == 0:
            raise CorruptionError(f"{where}: the object graph has no root node")

        def node_id(value: int, what: str) -> int:
            if not 0 <= value < count:
                raise CorruptionError(f"{where}: object graph {what} refers to node {value} of {count}")
            return value

        nodes = []
        for index, node in enumerate(proto.nodes):
            nodes.append(TrackableObject(
                children=tuple(ObjectReference(node_id(c.node_id, f"node {index} child"), c.local_name)
                               for c in node.children),
                attributes=tuple(SerializedTensor(a.name, a.full_name, a.checkpoint_key) for a in node.attributes),
                slot_variables=tuple(SlotVariableReference(
                    node_id(s.original_variable_node_id, f"node {index} slot"), s.slot_name,
                    node_id(s.slot_variable_node_id, f"node {index} slot")) for s in node.slot_variables),
                registered_saver=node.registered_saver.name if node.HasField("registered_saver") else None,
                has_checkpoint_values=(node.has_checkpoint_values.value
                                       if node.HasField("has_checkpoint_values") else None)))
        return cls(tuple(nodes))

    def paths(self, avoid: frozenset[int] | set[int] = frozenset()) -> dict[int, ObjectPath]:
        """Each node reachable through children, with its first breadth-first path; nodes in
        ``avoid`` are neither entered nor passed through. Every path is materialised: prefer
        :meth:`walk` and :meth:`GraphWalk.path` for the few paths a caller needs."""
        walk = self.walk(avoid=avoid)
        return {node_id: walk.path(node_id) for node_id in walk.order}

    def walk(self, *, avoid: Collection[int] = frozenset(), detour: Collection[int] = frozenset(),
             stop: Collection[int] = frozenset()) -> GraphWalk:
        """The one traversal of the graph (see :class:`GraphWalk`): breadth-first from the
        root, iterative, each node entered once, O(nodes + children) time and memory.

        ``avoid``: nodes neither entered nor passed through. ``detour``: nodes entered only
        once everything reachable without them has been found, so that a node reachable both
        ways gets its path around them (Keras 3 models' weights, also listed by their
        optimizer). ``stop``: nodes entered but not passed through (leaves of a view).
        """
        return GraphWalk(self, avoid, detour, stop)


class GraphWalk:
    """Which nodes the root reaches, and the one *canonical* route to each.

    A node's canonical route is the first breadth-first one (children in stored order), the
    route TensorFlow names keys by; ``parents`` holds its last edge, so a path costs its own
    length, never more (a chain of n nodes is O(n), not O(n^2)). Every other edge into a
    node is a *shared* reference to it: views say so (``tree``) or reuse the same value
    (``nested``) instead of expanding the node again, so "diamonds" (two routes to each next
    level) cost O(nodes), not O(2^depth), and cycles end.

    Examples
    --------
    >>> graph = ObjectGraph((TrackableObject(children=(ObjectReference(1, "a"), ObjectReference(2, "b"))),
    ...                      TrackableObject(children=(ObjectReference(2, "c"),)), TrackableObject()))
    >>> walk = graph.walk()
    >>> walk.order, walk.path(2), walk.is_canonical(1, 0)
    ((0, 1, 2), ('b',), False)
    """

    def __init__(self, graph: ObjectGraph, avoid: Collection[int], detour: Collection[int],
                 stop: Collection[int]) -> None:
        self.graph = graph
        self.avoid = frozenset(avoid)
        self.stop = frozenset(stop)
        nodes = graph.nodes
        parents: dict[int, tuple[int, int]] = {0: (-1, -1)}
        order = [0]
        later: list[int] = []  # detour nodes met while they were still closed
        queue = deque([0])
        closed = frozenset(detour)
        first_phase = 0
        for phase in (0, 1):
            if phase:  # reopen the detours: continue the breadth-first search through them
                first_phase = len(order)
                closed = frozenset()
                queue.extend(later)
            while queue:
                current = queue.popleft()
                if current in self.stop:
                    continue
                for index, ref in enumerate(nodes[current].children):
                    child = ref.node_id
                    if child in parents or child in self.avoid:
                        continue
                    if child in closed:
                        later.append(current)
                        continue
                    parents[child] = (current, index)
                    order.append(child)
                    queue.append(child)
        self.parents = parents
        self.order = tuple(order)
        self.detoured = frozenset(order[first_phase:])  # reached only through a detour

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.parents

    def path(self, node_id: int) -> ObjectPath:
        """The canonical path of a reached node (local names from the root)."""
        names = []
        nodes = self.graph.nodes
        while node_id != 0:
            node_id, index = self.parents[node_id]
            names.append(nodes[node_id].children[index].local_name)
        return tuple(reversed(names))

    def is_canonical(self, parent: int, index: int) -> bool:
        """Whether child edge ``index`` of ``parent`` is its target's canonical route."""
        return self.parents.get(self.graph.nodes[parent].children[index].node_id) == (parent, index)

    def edges(self, node_id: int) -> Iterator[tuple[int, ObjectReference]]:
        """``(index, reference)`` of each child edge the walk follows out of a reached node."""
        if node_id in self.stop:
            return
        for index, ref in enumerate(self.graph.nodes[node_id].children):
            if ref.node_id not in self.avoid:
                yield index, ref

    def acyclic_order(self) -> tuple[list[int], dict[int, list[int]]]:
        """Reached nodes children-first, and the edges (child indexes) of each node that
        close no cycle: a depth-first search drops each edge back to a node on its own
        route, what remains is acyclic, so values can be built once per node, bottom-up."""
        done: list[int] = []
        kept: dict[int, list[int]] = {}
        state: dict[int, int] = {}  # 1: on the current route, 2: finished
        stack: list[tuple[int, Iterator[tuple[int, ObjectReference]]]] = [(0, self.edges(0))]
        state[0] = 1
        kept[0] = []
        while stack:
            node_id, edges = stack[-1]
            for index, ref in edges:
                seen = state.get(ref.node_id)
                if seen == 1:
                    continue  # back to its own route: a cycle
                kept[node_id].append(index)
                if seen is None:
                    state[ref.node_id] = 1
                    kept[ref.node_id] = []
                    stack.append((ref.node_id, self.edges(ref.node_id)))
                    break
            else:
                stack.pop()
                state[node_id] = 2
                done.append(node_id)
        return done, kept
