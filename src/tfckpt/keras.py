"""TF-format Keras checkpoints (tf.keras / Keras 2, ``tf.train.Checkpoint(model=...)``) to
Keras 3 ``.weights.h5`` files and back, by the models' structure, without Keras.

Neither file alone says how its names meet the other's: a tf-keras checkpoint names layers by
position (``layer_with_weights-3/kernel``) or attribute (``block/conv/kernel``) and variables by
attribute; a ``.weights.h5`` names layers by class (``layers/dense_1``) or attribute and
variables by position (``vars/0``). So the destination's layout comes from a *template* of the
same architecture - ``model.save_weights("template.weights.h5")`` of the Keras 3 model, or a
checkpoint the TF model wrote - and the two trees are walked together:

- an object's own variables pair in order (``kernel, bias`` with ``vars/0, vars/1``; the
  order both Kerases create them in), shapes checked;
- Keras 3's ``layers`` (Sequential / Functional) pairs with tf-keras's ``layer_with_weights-N``
  in order, a list attribute's elements (``extra/dense_1``) with the list's (``extra/1``) in
  order, counting only objects that hold variables; any other child pairs with the child of
  the same attribute name;
- the optimizers pair in order: iterations, learning rate, then the slot variables (both keep
  them in the order of the model's trainable variables). Optimizer state the source lacks is
  left at the template's values; tf-keras's legacy optimizers (slots stored per variable) do
  not map.

Every variable either pairs or is named in one :class:`KerasMappingError`. The ``.weights.h5``
side's order is the order Keras wrote it (:func:`tfckpt.formats.keras_h5.read_layout`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from .api import load_checkpoint
from .bundle.graph import OBJECT_GRAPH_KEY, VARIABLE_VALUE, ObjectGraph
from .bundle.reader import CheckpointReader
from .bundle.writer import BundleWriter
from .dtypes import DType
from .errors import KerasMappingError
from .formats import keras_h5, open_source
from .storage import PathLike

__all__ = ["KerasMapping", "KerasMappingError", "checkpoint_to_weights_h5", "map_checkpoint_to_h5",
           "weights_h5_to_checkpoint"]

_TF_LAYER = re.compile(r"layer_with_weights-(\d+)")  # tf-keras Functional/Sequential: weighted layers in order
_SKIPPED_ROOT_CHILDREN = ("optimizer", "save_counter")


@dataclass
class KerasMapping:
    """How a conversion paired the two files' variables.

    ``pairs`` maps each TF checkpoint key to the ``.weights.h5`` dataset path it was paired
    with; ``kept`` lists destination entries left at the template's values (optimizer state the
    source does not have); ``unused`` lists source entries written nowhere (optimizer state the
    template has no place for)."""

    pairs: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


@dataclass
class _H5Object:
    """One Keras 3 object of a ``.weights.h5``: its variables (``vars/N``, by N) and children."""

    path: str
    rank: int = 0  # where it was written (the HDF5 layout's order): a tie-break only
    saveable: bool = False  # has a ``vars`` group: a layer/model/optimizer, not a list or dict
    variables: list[str] = field(default_factory=list)
    children: dict[str, _H5Object] = field(default_factory=dict)  # in write order

    def holds_variables(self) -> bool:
        return bool(self.variables) or any(child.holds_variables() for child in self.children.values())


def _class_of(path: str) -> tuple[str, int]:
    """``("dense", 2)`` for ``.../dense_2``, ``("dense", 0)`` for ``.../dense``: Keras 3 names a
    container's elements by class, numbered per class in the container's order."""
    name = path.rpartition("/")[2]
    base, _, number = name.rpartition("_")
    return (base, int(number)) if base and number.isdigit() else (name, 0)


def _h5_tree(layout: keras_h5.H5Layout) -> _H5Object:
    root = _H5Object("")
    objects = {"": root}

    def node(path: str) -> _H5Object:
        if path not in objects:
            parent, _, name = path.rpartition("/")
            objects[path] = _H5Object(path, len(objects))
            node(parent).children[name] = objects[path]
        return objects[path]

    for name in layout.order:
        parts = name.split("/")
        if parts[-1] == "vars":
            node("/".join(parts[:-1])).saveable = True
        elif len(parts) >= 2 and parts[-2] == "vars" and parts[-1].isdigit() and name in layout.datasets:
            node("/".join(parts[:-2])).variables.append(name)
        elif name not in layout.datasets:
            node(name)
    for obj in objects.values():
        obj.variables.sort(key=lambda name: int(name.rpartition("/")[2]))
    return root


class _Pairing:
    """The walk of a TF object graph and a ``.weights.h5`` tree side by side."""

    def __init__(self, graph: ObjectGraph, tf_shapes: dict[str, tuple[int, ...]],
                 h5: keras_h5.H5Layout, tf_name: str, h5_name: str) -> None:
        self.graph, self.tf_shapes, self.h5 = graph, tf_shapes, h5
        self.tf_name, self.h5_name = tf_name, h5_name
        self.pairs: dict[str, str] = {}
        self.problems: list[str] = []
        self._holds: dict[int, bool] = {}

    def variable_key(self, node_id: int) -> str | None:
        attribute = self.graph.nodes[node_id].attribute(VARIABLE_VALUE)
        return attribute.checkpoint_key if attribute is not None and attribute.checkpoint_key in self.tf_shapes else None

    def tf_variables(self, node_id: int) -> list[tuple[str, str]]:
        """(local name, key) of the node's variables, in stored (creation) order."""
        out = []
        for child in self.graph.nodes[node_id].children:
            key = self.variable_key(child.node_id)
            if key is not None:
                out.append((child.local_name, key))
        return out

    def tf_holds(self, node_id: int) -> bool:
        """Whether a variable is reachable below the node (iteratively: graphs have cycles)."""
        if node_id in self._holds:
            return self._holds[node_id]
        seen, todo, found = {node_id}, [node_id], False
        while todo and not found:
            current = todo.pop()
            for child in self.graph.nodes[current].children:
                if self.variable_key(child.node_id) is not None:
                    found = True
                    break
                if child.node_id not in seen:
                    seen.add(child.node_id)
                    todo.append(child.node_id)
        self._holds[node_id] = found
        return found

    def tf_child(self, node_id: int, name: str) -> int | None:
        reference = self.graph.nodes[node_id].child(name)
        return reference.node_id if reference is not None else None

    def variables(self, tf: list[tuple[str, str]], h5: list[str], where: str) -> None:
        if len(tf) != len(h5):
            self.problems.append(
                f"{where}: {len(tf)} variables in the {self.tf_name} ({', '.join(name for name, _ in tf) or 'none'}) "
                f"but {len(h5)} in the {self.h5_name} ({', '.join(h5) or 'none'})")
            return
        for (_, key), name in zip(tf, h5):
            tf_shape, h5_shape = self.tf_shapes[key], self.h5.datasets[name][1]
            if tf_shape != h5_shape:
                self.problems.append(f"{key} {list(tf_shape)} vs {name} {list(h5_shape)}: shapes differ")
            else:
                self.pairs[key] = name

    def tf_shapes_below(self, node_id: int) -> list[tuple[int, ...]]:
        """Shapes of every variable reachable below the node, sorted: what a layer holds."""
        shapes, seen, todo = [], {node_id}, [node_id]
        while todo:
            for child in self.graph.nodes[todo.pop()].children:
                key = self.variable_key(child.node_id)
                if key is not None:
                    shapes.append(self.tf_shapes[key])
                elif child.node_id not in seen:
                    seen.add(child.node_id)
                    todo.append(child.node_id)
        return sorted(shapes)

    def h5_shapes_below(self, obj: _H5Object) -> list[tuple[int, ...]]:
        return sorted(self.h5.datasets[name][1] for name in _h5_model_names(obj, False))

    def elements(self, tf_ids: list[int], h5_objects: list[_H5Object], where: str) -> None:
        """Pair a container's elements: the TF side is in order (``layer_with_weights-N``, list
        indices); the Keras 3 side is in order within each class (``dense``, ``dense_1``, ...)
        only, so each TF element takes the next element of the class whose variables have its
        shapes (the earlier written first, when two classes would fit)."""
        h5_objects = [obj for obj in h5_objects if obj.holds_variables()]
        tf_ids = [node_id for node_id in tf_ids if self.tf_holds(node_id)]
        if len(tf_ids) != len(h5_objects):
            self.problems.append(f"{where}: {len(tf_ids)} objects with variables in the {self.tf_name} but "
                                 f"{len(h5_objects)} in the {self.h5_name} ({', '.join(o.path for o in h5_objects)})")
            return
        chains: dict[str, list[_H5Object]] = {}
        for obj in h5_objects:
            chains.setdefault(_class_of(obj.path)[0], []).append(obj)
        for chain in chains.values():
            chain.sort(key=lambda obj: _class_of(obj.path)[1])
        for position, node_id in enumerate(tf_ids):
            shapes = self.tf_shapes_below(node_id)
            fitting = [chain for chain in chains.values() if chain and self.h5_shapes_below(chain[0]) == shapes]
            if not fitting:
                heads = ", ".join(f"{chain[0].path} {[list(s) for s in self.h5_shapes_below(chain[0])]}"
                                  for chain in chains.values() if chain)
                self.problems.append(f"{where}: element {position} of the {self.tf_name} holds "
                                     f"{[list(s) for s in shapes]}, which no next layer of the {self.h5_name} "
                                     f"holds (next of each class: {heads})")
                return
            self.pair(node_id, min(fitting, key=lambda chain: chain[0].rank).pop(0))

    def pair(self, node_id: int, obj: _H5Object) -> None:
        where = obj.path or "the model"
        self.variables(self.tf_variables(node_id), obj.variables, where)
        for name, child in obj.children.items():
            if not child.holds_variables():
                continue
            tf_id = self.tf_child(node_id, name)
            if name == "layers" and not child.saveable and tf_id is None:
                numbered = sorted((int(match.group(1)), ref.node_id) for ref in self.graph.nodes[node_id].children
                                  if (match := _TF_LAYER.fullmatch(ref.local_name)))
                self.elements([node for _, node in numbered], list(child.children.values()), child.path)
            elif tf_id is None:
                self.problems.append(f"{child.path}: the {self.tf_name} has no object {name!r} there")
            elif not child.saveable:  # a list or dict attribute: its elements in order
                refs = self.graph.nodes[tf_id].children
                ordered = sorted(refs, key=lambda ref: (0, int(ref.local_name)) if ref.local_name.isdigit() else (1, 0))
                self.elements([ref.node_id for ref in ordered], list(child.children.values()), child.path)
            else:
                self.pair(tf_id, child)

    def optimizer(self, node_id: int, obj: _H5Object) -> None:
        """Iterations, learning rate, then ``_variables/N`` (N > 0) with ``vars/0, 1, 2, ...``."""
        ordered: list[tuple[str, str]] = []
        seen: set[int] = set()
        for name in ("_iterations", "_learning_rate"):
            child = self.tf_child(node_id, name)
            if child is not None and self.variable_key(child) is not None:
                ordered.append((name, self.variable_key(child) or ""))
                seen.add(child)
        listed = self.tf_child(node_id, "_variables")
        if listed is None:
            self.problems.append(f"optimizer: the {self.tf_name}'s optimizer keeps no _variables list (a tf-keras "
                                 f"legacy optimizer?), so its state cannot be paired; pass optimizer=False")
            return
        refs = [ref for ref in self.graph.nodes[listed].children if ref.local_name.isdigit()]
        for ref in sorted(refs, key=lambda ref: int(ref.local_name)):
            key = self.variable_key(ref.node_id)
            if key is not None and ref.node_id not in seen:
                ordered.append((ref.local_name, key))
                seen.add(ref.node_id)
        self.variables(ordered, obj.variables, "optimizer")


def _model_node(graph: ObjectGraph, tree: _H5Object) -> int:
    """The TF object that is the model: the root (``model.save_weights``) or its child ``model``
    (``tf.train.Checkpoint(model=...)``)."""
    root = graph.nodes[0]
    model = root.child("model")
    if model is not None and "model" not in tree.children and not any(
            _TF_LAYER.fullmatch(ref.local_name) for ref in root.children):
        return model.node_id
    return 0


def _tf_model_keys(pairing: _Pairing, model_id: int) -> set[str]:
    """Every variable key reachable from the model object, not passing through its optimizer."""
    keys: set[str] = set()
    seen, todo = {model_id}, [model_id]
    while todo:
        current = todo.pop()
        for child in pairing.graph.nodes[current].children:
            if current == model_id and child.local_name in _SKIPPED_ROOT_CHILDREN:
                continue
            key = pairing.variable_key(child.node_id)
            if key is not None:
                keys.add(key)
            elif child.node_id not in seen:
                seen.add(child.node_id)
                todo.append(child.node_id)
    return keys


def _h5_model_names(obj: _H5Object, skip_optimizer: bool) -> Iterator[str]:
    yield from obj.variables
    for name, child in obj.children.items():
        if not (skip_optimizer and name == "optimizer"):
            yield from _h5_model_names(child, False)


def map_checkpoint_to_h5(checkpoint: CheckpointReader, h5: keras_h5.H5Layout, *, optimizer: bool = True,
                         tf_name: str = "checkpoint", h5_name: str = ".weights.h5") -> KerasMapping:
    """Pair the variables of an open TF checkpoint with the datasets of a ``.weights.h5``
    layout (see the module docstring); raise :class:`KerasMappingError` naming every variable
    of the model that does not pair."""
    graph = checkpoint.object_graph
    if graph is None:
        raise KerasMappingError(f"{checkpoint.prefix}: a checkpoint without an object graph (TF1 names only): "
                                f"Keras structure cannot be read from it")
    shapes = {name: tuple(shape) for name, shape in checkpoint.get_variable_to_shape_map().items()}
    tree = _h5_tree(h5)
    pairing = _Pairing(graph, shapes, h5, tf_name, h5_name)
    model_id = _model_node(graph, tree)
    pairing.pair(model_id, _H5Object("", 0, True, tree.variables,
                                     {k: v for k, v in tree.children.items() if k != "optimizer"}))
    tf_keys, h5_names = _tf_model_keys(pairing, model_id), set(_h5_model_names(tree, True))
    missing_tf = sorted(tf_keys - set(pairing.pairs))
    missing_h5 = sorted(h5_names - set(pairing.pairs.values()))
    problems = list(pairing.problems)
    if missing_tf:
        problems.append(f"not paired in the {tf_name}: {', '.join(missing_tf)}")
    if missing_h5:
        problems.append(f"not paired in the {h5_name}: {', '.join(missing_h5)}")
    if problems:
        raise KerasMappingError("the checkpoint and the .weights.h5 do not hold the same model:\n  "
                                + "\n  ".join(dict.fromkeys(problems)))
    mapping = KerasMapping(dict(pairing.pairs))
    tf_optimizer = graph.nodes[0].child("optimizer")
    h5_optimizer = tree.children.get("optimizer")
    if optimizer and tf_optimizer is not None and h5_optimizer is not None and h5_optimizer.variables:
        before = len(pairing.problems)
        pairing.optimizer(tf_optimizer.node_id, h5_optimizer)
        if len(pairing.problems) > before:
            raise KerasMappingError("the optimizer states do not pair (optimizer=False leaves them out):\n  "
                                    + "\n  ".join(pairing.problems[before:]))
        mapping.pairs = dict(pairing.pairs)
    return mapping


def _cast(value: np.ndarray, dtype: DType, what: str) -> np.ndarray:
    """``value`` as the destination's dtype; integers must keep their values (iterations are
    int64 in TF, int32 in Keras 3 on JAX)."""
    target = dtype.as_numpy_dtype
    assert target is not None
    out = np.asarray(value).astype(target)
    if np.asarray(value).dtype.kind in "iu" and not np.array_equal(out, value):
        raise KerasMappingError(f"{what}: {value!r} does not fit {dtype.name}")
    return out


def checkpoint_to_weights_h5(checkpoint: PathLike, path: PathLike, *, like: PathLike,
                             optimizer: bool = True) -> KerasMapping:
    """Write the Keras 3 weights file ``path`` (``.weights.h5``) from a tf-keras / TF-format
    checkpoint, in the layout of ``like`` - a ``.weights.h5`` (or ``.keras``) the target Keras 3
    model wrote: ``model.save_weights("template.weights.h5")``. Keras 3 then loads it with
    ``model.load_weights(path)`` on any backend.

    Variables pair by the models' structure (module docstring); every variable that does not
    pair is named in one :class:`KerasMappingError` and nothing is written. ``optimizer=False``
    leaves the optimizer state at the template's values. Returns the pairing.

    Examples
    --------
    >>> import os, tempfile, tfckpt.keras
    >>> out = os.path.join(tempfile.mkdtemp(), "model.weights.h5")
    >>> mapping = tfckpt.keras.checkpoint_to_weights_h5(
    ...     "examples/keras3/tf_keras_run/ckpt", out, like="examples/keras3/template.weights.h5")
    >>> mapping.pairs["layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    'layers/dense/vars/0'
    """
    layout = keras_h5.read_layout(like)
    with load_checkpoint(checkpoint) as reader:
        mapping = map_checkpoint_to_h5(reader, layout, optimizer=optimizer,
                                       h5_name=f"template {os.fspath(like)}")
        values = dict(reader.read_arrays(list(mapping.pairs)))
        unused = [name for name in reader.get_variable_to_shape_map()
                  if name not in mapping.pairs and name != OBJECT_GRAPH_KEY]
    out = {name: _cast(values[key], layout.datasets[name][0], f"{key} -> {name}")
           for key, name in mapping.pairs.items()}
    keras_h5.write_like(like, path, out)
    mapping.kept = sorted(set(layout.datasets) - set(out))
    mapping.unused = sorted(unused)
    return mapping


def weights_h5_to_checkpoint(weights: PathLike, prefix: PathLike, *, like: PathLike,
                             optimizer: bool = True) -> KerasMapping:
    """Write a TF checkpoint at ``prefix`` from a Keras 3 ``.weights.h5`` (or ``.keras``), with
    the object graph and keys of ``like`` - a checkpoint the TF model wrote
    (``tf.train.Checkpoint(model=m).write(...)`` or tf-keras ``model.save_weights(...)``), whose
    values it replaces. TensorFlow restores the result into that model by structure
    (``tf.train.Checkpoint(model=m).read(prefix).assert_consumed()``, ``model.load_weights``).

    Pairing and errors as for :func:`checkpoint_to_weights_h5`; template entries that pair with
    nothing (``save_counter``, optimizer state the weights file lacks) keep the template's values.
    """
    layout = keras_h5.read_layout(weights)
    with load_checkpoint(like) as reader:
        mapping = map_checkpoint_to_h5(reader, layout, optimizer=optimizer,
                                       tf_name=f"template {os.fspath(like)}", h5_name=os.fspath(weights))
        dtypes = reader.get_variable_to_dtype_map()
        template = dict(reader.read_arrays(list(dtypes)))
    with ExitStack() as stack:
        sources = {tensor.name: tensor for tensor in open_source(weights, stack, "keras")}
        writer = BundleWriter(os.fspath(prefix))
        try:
            for key in dtypes:
                if key in mapping.pairs:
                    name = mapping.pairs[key]
                    value = _cast(sources[name].read(), dtypes[key], f"{name} -> {key}")
                else:
                    value = template[key]
                writer.add(key, value, dtypes[key])
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    mapping.kept = sorted(key for key in dtypes if key not in mapping.pairs and key != OBJECT_GRAPH_KEY)
    mapping.unused = sorted(set(layout.datasets) - set(mapping.pairs.values()))
    return mapping
