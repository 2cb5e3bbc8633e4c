"""TF2-style object-based ``Checkpoint``: save Python structures, restore them by structure.

A structure is a tree of *trackable* values, as TensorFlow sees ``tf.Module`` trees:

- leaves: :class:`Variable` objects, numpy arrays and torch tensors (restored in place), JAX
  arrays, and, as values of dicts, lists or keyword children, Python numbers and lists of
  numbers (saved as ``save`` would; these two and JAX arrays are immutable, so they cannot be
  restored into);
- dicts (keys are the local names), lists and tuples (local names ``"0"``, ``"1"``, ...);
- any other object: its attributes (``vars(obj)``, in assignment order) that hold leaves
  or containers of them, like the attributes of a ``tf.Module`` (numbers there are settings,
  not state, and are not saved).

Saving numbers nodes breadth-first from the root and writes each leaf under
``<escaped path>/.ATTRIBUTES/VARIABLE_VALUE``, then the graph itself under
``_CHECKPOINTABLE_OBJECT_GRAPH``. Restoring walks the Python structure and the checkpoint's
graph together, matching children by local name, so keys never have to agree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import storage
from .api import read_consistently
from .arguments import path_argument
from .asyncsave import Background, CheckpointOptions, is_async
from .bundle.graph import (
    OBJECT_GRAPH_KEY,
    VARIABLE_VALUE,
    ObjectGraph,
    ObjectPath,
    ObjectReference,
    SerializedTensor,
    TrackableObject,
    attribute_key,
    display_path,
)
from .bundle.objects import SAVE_COUNTER
from .bundle.reader import CheckpointReader
from .bundle.writer import BundleWriter, prepare
from .dtypes import STRING
from .errors import CheckpointMismatchError, InvalidArgumentError
from .restore import PlannedRestore, Target, commit_restore, plan_restore
from .state import update_checkpoint_state
from .storage import PathLike
from .values import is_plain_data, is_tensor
from .variables import Variable

__all__ = ["Checkpoint", "CheckpointLoadStatus", "CheckpointMismatchError", "build_graph",
           "match_structure"]


def _is_leaf(value: Any) -> bool:
    return isinstance(value, (Variable, np.ndarray)) or is_tensor(value) or is_plain_data(value)


def _children(value: Any) -> list[tuple[str, Any]]:
    """The trackable children of one Python value, in TF's order."""
    if isinstance(value, Checkpoint):
        return value._root_children()
    if isinstance(value, Mapping):
        items = []
        for key, child in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"dict keys in a checkpoint structure must be strings, got {key!r}")
            items.append((key, child))
        return items
    if isinstance(value, (list, tuple)):
        return [(str(i), child) for i, child in enumerate(value)]
    if _is_leaf(value) or isinstance(value, (str, bytes, int, float, complex, bool, type(None))):
        return []
    attributes = getattr(value, "__dict__", None)
    if attributes is None:
        return []
    return [(name, child) for name, child in attributes.items()
            if not is_plain_data(child) and _holds_leaves(child, set())]


def _holds_leaves(value: Any, seen: set[int]) -> bool:
    if _is_leaf(value):
        return True
    if id(value) in seen:
        return False
    seen.add(id(value))
    return any(_holds_leaves(child, seen) for _, child in _children(value))


@dataclass
class _PyNode:
    value: Any
    path: ObjectPath
    children: list[tuple[str, int]] = field(default_factory=list)


def build_graph(root: Any) -> tuple[ObjectGraph, list[tuple[str, Target]]]:
    """Number the structure's objects breadth-first; return the graph and ``(key, leaf)``
    pairs in node order. An object reachable along several routes is one node."""
    ids: dict[object, int] = {id(root): 0}
    nodes = [_PyNode(root, ())]
    queue = deque([0])
    while queue:
        current = nodes[queue.popleft()]
        if _is_leaf(current.value):
            continue
        for name, child in _children(current.value):
            if not _holds_leaves(child, set()):
                continue
            # Numbers are immutable and may be interned: equal ones are separate values, never
            # one object reachable along two routes.
            identity = ("data", len(nodes)) if is_plain_data(child) else id(child)
            if identity not in ids:
                ids[identity] = len(nodes)
                nodes.append(_PyNode(child, current.path + (name,)))
                queue.append(ids[identity])
            current.children.append((name, ids[identity]))
    leaves: list[tuple[str, Target]] = []
    out = []
    for node in nodes:
        attributes: tuple[SerializedTensor, ...] = ()
        if _is_leaf(node.value):
            key = attribute_key(node.path)
            full_name = node.value.name or "" if isinstance(node.value, Variable) else ""
            attributes = (SerializedTensor(VARIABLE_VALUE, full_name, key),)
            leaves.append((key, node.value))
        out.append(TrackableObject(children=tuple(ObjectReference(i, n) for n, i in node.children),
                                   attributes=attributes, has_checkpoint_values=True))
    return ObjectGraph(tuple(out)), leaves


@dataclass
class _Match:
    targets: dict[str, Target] = field(default_factory=dict)  # bundle key -> leaf
    labels: dict[str, str] = field(default_factory=dict)  # bundle key -> object path
    matched_nodes: set[int] = field(default_factory=set)
    unmatched_python: list[str] = field(default_factory=list)


def match_structure(root: Any, graph: ObjectGraph, reader: CheckpointReader) -> _Match:
    """Pair every leaf of ``root`` with a checkpoint node by local names."""
    result = _Match()
    seen: set[int] = set()
    queue: deque[tuple[Any, int, ObjectPath]] = deque([(root, 0, ())])
    while queue:
        value, node_id, path = queue.popleft()
        if id(value) in seen:
            continue
        seen.add(id(value))
        result.matched_nodes.add(node_id)
        node = graph.nodes[node_id]
        if _is_leaf(value):
            attribute = node.attribute(VARIABLE_VALUE)
            if attribute is None:
                raise InvalidArgumentError(f"cannot restore {display_path(path)!r} from {reader.prefix}: "
                                           f"the checkpoint's object there holds no variable value")
            key = attribute.checkpoint_key
            if key not in reader:
                marker = key.find(".ATTRIBUTES/")
                key = key[: marker + len(".ATTRIBUTES/")] + VARIABLE_VALUE if marker >= 0 else key
            result.targets[key] = value
            result.labels[key] = display_path(path)
            continue
        for name, child in _children(value):
            if not _holds_leaves(child, set()):
                continue
            ref = node.child(name)
            if ref is None:
                result.unmatched_python.append(display_path(path + (name,)))
                continue
            queue.append((child, ref.node_id, path + (name,)))
    return result


class CheckpointLoadStatus:
    """What a restore matched, with TensorFlow's assertions (they raise
    :class:`CheckpointMismatchError`, an ``AssertionError``).

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> ckpt = tfckpt.Checkpoint(w=np.ones(2))
    >>> status = ckpt.restore(ckpt.save(os.path.join(tempfile.mkdtemp(), "ck")))
    >>> status.assert_consumed().save_path.endswith("ck-1")
    True
    """

    def __init__(self, prefix: str | None, graph: ObjectGraph | None, match: _Match | None,
                 python_leaves: list[str]) -> None:
        self.save_path = prefix
        self._graph = graph
        self._match = match
        self._python_leaves = python_leaves

    def _require_checkpoint(self) -> tuple[ObjectGraph, _Match]:
        if self._graph is None or self._match is None:
            raise CheckpointMismatchError("No checkpoint specified (save_path=None); nothing is being restored.")
        return self._graph, self._match

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Every value in the checkpoint and every variable in the structure were matched."""
        graph, match = self._require_checkpoint()
        unresolved = [i for i, node in enumerate(graph.nodes) if node.attributes and i not in match.matched_nodes]
        if unresolved:
            paths = graph.paths()
            names = [display_path(paths[i]) if i in paths else f"node {i}" for i in unresolved]
            raise CheckpointMismatchError(f"Unresolved object in checkpoint {self.save_path}: {names}")
        slots = [s for node in graph.nodes for s in node.slot_variables]
        if slots:
            raise CheckpointMismatchError(f"Unresolved slot restorations in {self.save_path}: "
                                          f"{len(slots)} optimizer slot variables have no Python counterpart")
        return self.assert_existing_objects_matched()

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """Every variable of the Python structure got a value from the checkpoint."""
        _, match = self._require_checkpoint()
        restored = set(match.labels.values())
        missing = [p for p in self._python_leaves if p not in restored]
        if missing:
            raise CheckpointMismatchError(f"Some objects were not bound to checkpointed values in "
                                          f"{self.save_path}: {missing}")
        return self

    def assert_nontrivial_match(self) -> CheckpointLoadStatus:
        """At least one variable was restored."""
        _, match = self._require_checkpoint()
        if not match.targets:
            raise CheckpointMismatchError(f"Nothing in {self.save_path} matched the structure")
        return self

    def expect_partial(self) -> CheckpointLoadStatus:
        """Accept a partial match silently (tfckpt never warns about one)."""
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Nothing to run: values were assigned when restore() returned (TF compatibility)."""


def _python_leaf_paths(root: Any) -> list[str]:
    graph, leaves = build_graph(root)
    paths = graph.paths()
    by_key = {attribute_key(path): display_path(path) for path in paths.values()}
    return [by_key[key] for key, _ in leaves]


class Checkpoint:
    """Saves and restores a structure of variables by object paths, like ``tf.train.Checkpoint``.

    Parameters
    ----------
    **children:
        Named roots of the structure: :class:`Variable` objects, numpy arrays and torch tensors
        (restored in place), JAX arrays, numbers and lists of numbers (saved, not restored
        into), dicts/lists/tuples of them, or objects whose attributes hold them.

    Examples
    --------
    >>> import tfckpt, numpy as np, tempfile, os
    >>> class Dense:
    ...     def __init__(self):
    ...         self.kernel = tfckpt.Variable(np.ones((2, 3), np.float32))
    ...         self.bias = np.zeros(3, np.float32)
    >>> layer = Dense()
    >>> ckpt = tfckpt.Checkpoint(model=layer, step=tfckpt.Variable(np.int64(7)))
    >>> path = ckpt.save(os.path.join(tempfile.mkdtemp(), "ckpt"))
    >>> os.path.basename(path)
    'ckpt-1'
    >>> layer.bias[:] = 5
    >>> ckpt.restore(path).assert_consumed().save_path == path
    True
    >>> layer.bias
    array([0., 0., 0.], dtype=float32)
    """

    def __init__(self, **children: Any) -> None:
        if SAVE_COUNTER in children:
            raise InvalidArgumentError("'save_counter' is reserved for the checkpoint's own counter")
        for name, child in children.items():
            if not _holds_leaves(child, set()):
                raise InvalidArgumentError(f"Checkpoint child {name!r} holds no values to save "
                                           f"({type(child).__name__} {child!r:.60}): pass variables, numpy "
                                           f"arrays, torch tensors, JAX arrays, numbers or lists of numbers, "
                                           f"or containers or objects holding them")
        self._children = dict(sorted(children.items()))  # TF sorts keyword children by name
        self._save_counter: Variable | None = None
        self._saves = Background()  # asynchronous saves: one in flight, snapshot buffers

    @property
    def save_counter(self) -> Variable:
        """The int64 number of ``save()`` calls, saved with the checkpoint (created on first use)."""
        if self._save_counter is None:
            self._save_counter = Variable(np.int64(0), name=SAVE_COUNTER)
        return self._save_counter

    def _root_children(self) -> list[tuple[str, Any]]:
        items = list(self._children.items())
        if self._save_counter is not None:
            items.append((SAVE_COUNTER, self._save_counter))
        return items

    def write(self, file_prefix: PathLike, options: CheckpointOptions | None = None, *,
              asynchronous: bool = False) -> str:
        """Write the structure at ``file_prefix`` exactly; no counter, no state file.

        With ``asynchronous=True`` (or ``options=CheckpointOptions(enable_async=True)``) it
        returns once the values are snapshotted and writes in the background; :meth:`wait`
        waits for it (see :mod:`tfckpt.asyncsave`).
        """
        return self._write(path_argument(file_prefix, "file_prefix"), is_async(options, asynchronous))

    def _write(self, prefix: str, asynchronous: bool, after: Callable[[], None] | None = None) -> str:
        """Write (or snapshot and start writing) the structure at ``prefix``; then ``after()``
        (in the background for an asynchronous save)."""
        graph, leaves = build_graph(self)
        # Every value is checked and converted before the first byte is written (breadth-first
        # node order, the graph last: as TensorFlow).
        prepared = [prepare(key, leaf.value() if isinstance(leaf, Variable) else leaf,
                            dtype=leaf.dtype if isinstance(leaf, Variable) else None) for key, leaf in leaves]
        prepared.append(prepare(OBJECT_GRAPH_KEY, np.array(graph.encode(), dtype=object), dtype=STRING))
        with (self._saves.writer(prefix, after=after) if asynchronous else BundleWriter(prefix)) as writer:
            for key, array, dtype in prepared:
                writer.add_prepared(key, array, dtype)
        if after is not None and not asynchronous:
            after()
        return prefix

    def save(self, file_prefix: PathLike, options: CheckpointOptions | None = None, *,
             asynchronous: bool = False) -> str:
        """Increment ``save_counter``, write ``<file_prefix>-<counter>`` and make it the
        directory's latest checkpoint in the ``checkpoint`` state file.

        ``asynchronous`` and ``options`` as for :meth:`write`: the state file is updated in
        the background after the write.
        """
        file_prefix = path_argument(file_prefix, "file_prefix")  # before the counter moves
        asynchronous = is_async(options, asynchronous)
        if asynchronous:
            self._saves.check_open(file_prefix)  # refused after close(), before the counter moves
        self._saves.wait()  # the previous save's failure, before the counter moves
        counter = self.save_counter
        counter.assign(counter.numpy() + 1)
        path = f"{file_prefix}-{int(counter.numpy())}"

        def record() -> None:
            update_checkpoint_state(storage.dirname(path), path, [path], save_relative_paths=True)

        return self._write(path, asynchronous, after=record)

    def wait(self) -> str | None:
        """Wait for an asynchronous save in flight; return its prefix (``None`` if there was
        none) or raise its error (once: the next save then starts afresh)."""
        return self._saves.wait()

    def close(self) -> str | None:
        """Wait for an asynchronous save in flight (return its prefix or raise its error, as
        :meth:`wait`) and refuse later asynchronous saves; synchronous saves and restores
        still work. For the end of a training loop, so no save is left running."""
        return self._saves.close()

    def _restore(self, save_path: PathLike | None) -> CheckpointLoadStatus:
        self._saves.wait()  # an asynchronous save in flight is what the caller expects to find
        leaves = _python_leaf_paths(self)
        if save_path is None:
            return CheckpointLoadStatus(None, None, None, leaves)
        save_path = path_argument(save_path, "save_path")

        def plan(reader: CheckpointReader) -> tuple[CheckpointLoadStatus, PlannedRestore]:
            graph = reader.object_graph
            if graph is None:
                raise InvalidArgumentError(
                    f"{reader.prefix} is a name-based (TF1) checkpoint without an object graph; "
                    f"restore it with tfckpt.Saver and explicit names")
            match = match_structure(self, graph, reader)
            return (CheckpointLoadStatus(reader.prefix, graph, match, leaves),
                    plan_restore(reader, match.targets, labels=match.labels))

        status, planned = read_consistently(save_path, plan)
        commit_restore(planned)
        return status

    def restore(self, save_path: PathLike | None) -> CheckpointLoadStatus:
        """Restore by object structure (creating ``save_counter`` so it is restored too).

        ``save_path`` may be a prefix, a directory (its latest checkpoint) or a SavedModel
        directory. All matched values are checked first and assigned only if every shape
        and dtype agrees; ``None`` restores nothing (the status's assertions then fail).
        """
        self.save_counter  # noqa: B018 - created so that it is matched and restored
        return self._restore(save_path)

    def read(self, save_path: PathLike | None) -> CheckpointLoadStatus:
        """Like :meth:`restore`, for checkpoints made by :meth:`write` (no ``save_counter``)."""
        return self._restore(save_path)
