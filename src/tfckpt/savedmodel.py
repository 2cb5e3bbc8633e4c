"""Inspecting a SavedModel's ``saved_model.pb`` (or a TF1 ``.meta`` file) without TensorFlow.

``SavedModel`` (``protos/tfckpt/_proto/saved_model.proto``, the fields used here)::

    meta_graphs: repeated MetaGraphDef = 2
    MetaGraphDef: meta_info_def {tags = 4, tensorflow_version = 5} = 1 | graph_def = 2
                  | saver_def = 3 | collection_def = 4 | signature_def = 5 | object_graph_def = 7
    SignatureDef: inputs = 1, outputs = 2 (map<string, TensorInfo>), method_name = 3
    TensorInfo:   name = 1 (or coo_sparse = 4 / composite_tensor = 5), dtype = 2, tensor_shape = 3

The ``show_*`` functions return exactly what ``saved_model_cli show`` prints, ``--all``
included: the ops a graph uses (its nodes, and the library functions they call, as
TensorFlow's ``ops_used_by_graph_def`` collects them) and the "Concrete Functions" of a TF2
SavedModel, read from its object graph: each function child of the root object with each
traced signature (:mod:`tfckpt.structured`). TensorFlow gets the latter by loading the model;
the SavedModel records all of it, so no loading (and no TensorFlow) is needed here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message

from . import storage
from ._proto import graph_pb2, saved_model_pb2, saved_object_graph_pb2
from .bundle.naming import SAVED_MODEL_PB, SAVED_MODEL_PBTXT
from .dtypes import BY_ENUM, DataType
from .errors import CorruptionError, InvalidArgumentError, NotFoundError
from .filetypes import nesting_depth
from .storage import PathLike
from .structured import TensorSpec, decode_structure

__all__ = [
    "MAX_TEXT_DEPTH",
    "ConcreteFunction",
    "MetaGraph",
    "SavedFunction",
    "SaverInfo",
    "Signature",
    "SignatureTensor",
    "VariableInfo",
    "get_meta_graph",
    "load_order",
    "ops_used",
    "read_meta_graph_file",
    "read_saved_model",
    "show_all",
    "show_meta_graph_file",
    "show_ops",
    "show_signature",
    "show_signature_keys",
    "show_tag_sets",
    "text_depth",
]


@dataclass(frozen=True)
class SignatureTensor:
    """One input or output of a signature."""

    name: str
    dtype: str  # DataType enum name, e.g. "DT_FLOAT"
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, SignatureTensor]
    outputs: dict[str, SignatureTensor]
    method_name: str


@dataclass(frozen=True)
class ConcreteFunction:
    """One traced signature of a function: its canonical name and ``(args, kwargs)``
    (``None`` when the SavedModel records none; then ``argument_keywords`` may name them)."""

    name: str
    input_signature: Any
    argument_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedFunction:
    """A function the root object of a TF2 SavedModel exposes (``model.f`` after loading)."""

    name: str
    concrete_functions: tuple[ConcreteFunction, ...]


@dataclass(frozen=True)
class SaverInfo:
    """A TF1 graph's ``SaverDef``: how ``tf.compat.v1.train.Saver`` saves and restores it."""

    filename_tensor_name: str
    save_tensor_name: str
    restore_op_name: str
    max_to_keep: int
    sharded: bool
    keep_checkpoint_every_n_hours: float
    version: str  # "LEGACY", "V1" or "V2"


@dataclass(frozen=True)
class VariableInfo:
    """A variable of a TF1 graph's ``variables`` collection, with dtype and shape taken from
    its node (``None`` when the graph does not say)."""

    name: str
    dtype: str | None
    shape: tuple[int, ...] | None
    trainable: bool


@dataclass(frozen=True)
class MetaGraph:
    tags: tuple[str, ...]  # in stored order
    signatures: dict[str, Signature]
    ops: frozenset[str] = frozenset()  # the ops the graph uses (see ops_used)
    functions: tuple[SavedFunction, ...] | None = None  # None: no object graph (a TF1 export)
    saver: SaverInfo | None = None
    variables: tuple[VariableInfo, ...] = ()
    tensorflow_version: str = ""


def _version_name(version: int) -> str:
    """A SaverDef's format version by name (LEGACY, V1, V2), its number if it has none."""
    try:
        return saved_model_pb2.SaverDef.CheckpointFormatVersion.Name(version)
    except ValueError:
        return str(version)


def _meta_graph(proto: saved_model_pb2.MetaGraphDef) -> MetaGraph:
    saver = None
    if proto.HasField("saver_def"):
        sd = proto.saver_def
        saver = SaverInfo(sd.filename_tensor_name, sd.save_tensor_name, sd.restore_op_name, sd.max_to_keep,
                          sd.sharded, sd.keep_checkpoint_every_n_hours,
                          _version_name(sd.version))
    return MetaGraph(tuple(proto.meta_info_def.tags),
                     {key: _signature(sig) for key, sig in proto.signature_def.items()},
                     ops_used(proto.graph_def),
                     _functions(proto.object_graph_def, proto.graph_def.library) if proto.HasField("object_graph_def") else None,
                     saver, _variables(proto), proto.meta_info_def.tensorflow_version)


def ops_used(graph: graph_pb2.GraphDef) -> frozenset[str]:
    """The op types a graph uses: its nodes' ops and, following calls, those of the library
    functions they reach (a node whose op is a function name, or a ``PartitionedCall`` /
    ``StatefulPartitionedCall`` through its ``f`` attribute); function names themselves are
    not ops. The same set TensorFlow's ``ops_used_by_graph_def`` returns."""
    functions = {f.signature.name: f for f in graph.library.function}
    used: set[str] = set()
    pending: list[graph_pb2.FunctionDef] = []

    def use(op: str) -> None:
        if op not in used and op in functions:
            pending.append(functions[op])
        used.add(op)

    def visit(nodes: Iterable[graph_pb2.NodeDef]) -> None:
        for node in nodes:
            use(node.op)
            if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
                use(node.attr["f"].func.name if "f" in node.attr else "")

    visit(graph.node)
    while pending:
        visit(pending.pop().node_def)
    return frozenset(op for op in used if op not in functions)


def load_order(library: graph_pb2.FunctionDefLibrary) -> dict[str, int]:
    """Each library function's position in the order TensorFlow's loader creates them:
    dependencies first, otherwise a stack over the library's order (later ones first).

    ``saved_model_cli`` lists a function's traces sorted by the names the loader gives them,
    which carry increasing numbers in this order; so this is its order too, except where the
    numbers it happens to hand out change digit count (``_98`` sorts after ``_102``), which
    depends on the loading process, not on the file.
    """
    names = [f.signature.name for f in library.function]
    known = set(names)
    deps: dict[str, set[str]] = {}
    for function in library.function:
        found: set[str] = set()
        for node in function.node_def:
            if node.op in known:
                found.add(node.op)
            for value in node.attr.values():
                if value.func.name in known:
                    found.add(value.func.name)
                found.update(f.name for f in value.list.func if f.name in known)
        deps[function.signature.name] = found
    edges: dict[str, list[str]] = {}
    waiting = dict.fromkeys(names, 0)
    for name, needed in deps.items():
        for dep in needed:
            edges.setdefault(dep, []).append(name)
            waiting[name] += 1
    ready = [name for name in names if waiting[name] == 0]
    order: dict[str, int] = {}
    while ready:
        name = ready.pop()
        order.setdefault(name, len(order))
        for dest in edges.get(name, ()):
            waiting[dest] -= 1
            if waiting[dest] == 0:
                ready.append(dest)
    return order


def _functions(graph: saved_object_graph_pb2.SavedObjectGraph,
               library: graph_pb2.FunctionDefLibrary) -> tuple[SavedFunction, ...]:
    """The function children of the root object, each with its traced signatures."""
    if not graph.nodes:
        return ()
    order = load_order(library)

    def concrete(name: str, keywords: tuple[str, ...] = ()) -> ConcreteFunction:
        saved = graph.concrete_functions.get(name)
        signature = None
        if saved is not None and saved.HasField("canonicalized_input_signature"):
            try:
                signature = decode_structure(saved.canonicalized_input_signature)
            except CorruptionError as exc:
                raise CorruptionError(f"concrete function {name!r}: input signature: {exc}") from None
            if signature is not None and not (isinstance(signature, tuple) and len(signature) == 2
                                              and isinstance(signature[0], (tuple, list, type(None)))
                                              and isinstance(signature[1], (dict, type(None)))):
                raise CorruptionError(f"concrete function {name!r}: the input signature is not an (args, kwargs) "
                                      f"pair but {type(signature).__name__} {_shown(signature)}")
        return ConcreteFunction(name, signature, keywords)

    def traces(node_id: int) -> tuple[ConcreteFunction, ...] | None:
        node = graph.nodes[node_id]
        kind = node.WhichOneof("kind")
        if kind == "function":
            cfs = tuple(concrete(name) for name in node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            bare = node.bare_concrete_function
            cfs = (concrete(bare.concrete_function_name, tuple(bare.argument_keywords)),)
        else:
            return None
        return tuple(sorted(cfs, key=lambda c: (order.get(c.name, len(order)), c.name)))

    # Traces per node, decoded and sorted once: many children may name one node with many
    # traces, which done per child is children x traces of work for a file of children + traces.
    found: dict[int, tuple[ConcreteFunction, ...] | None] = {}
    out = []
    for child in graph.nodes[0].children:
        if not 0 <= child.node_id < len(graph.nodes):
            continue
        if child.node_id not in found:
            found[child.node_id] = traces(child.node_id)
        cfs = found[child.node_id]
        if cfs is not None:
            out.append(SavedFunction(child.local_name, cfs))
    return tuple(sorted(out, key=lambda f: f.name))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _variables(proto: saved_model_pb2.MetaGraphDef) -> tuple[VariableInfo, ...]:
    collection = proto.collection_def.get("variables")
    if collection is None or collection.WhichOneof("kind") != "bytes_list":
        return ()
    nodes = {node.name: node for node in proto.graph_def.node}
    out = []
    for raw in collection.bytes_list.value:
        try:
            variable = saved_model_pb2.VariableDef.FromString(raw)
        except DecodeError:
            continue
        node = nodes.get(variable.variable_name.split(":")[0])
        dtype = shape = None
        if node is not None:
            if "dtype" in node.attr:
                found = BY_ENUM.get(node.attr["dtype"].type)
                dtype = found.name if found is not None else str(node.attr["dtype"].type)
            if "shape" in node.attr and not node.attr["shape"].shape.unknown_rank:
                shape = tuple(d.size for d in node.attr["shape"].shape.dim)
        out.append(VariableInfo(variable.variable_name.split(":")[0], dtype, shape, variable.trainable))
    return tuple(out)


def read_saved_model(directory: PathLike) -> list[MetaGraph]:
    """The meta graphs of the SavedModel in ``directory`` (``saved_model.pb`` or ``.pbtxt``)."""
    directory = os.fspath(directory)
    fs = storage.filesystem_for(directory)
    proto = saved_model_pb2.SavedModel()
    binary, text = fs.join(directory, SAVED_MODEL_PB), fs.join(directory, SAVED_MODEL_PBTXT)
    try:
        if (data := fs.read_bytes(binary)) is not None:
            proto.ParseFromString(data)
        elif (data := fs.read_bytes(text)) is not None:
            _parse_text(data, proto, text)
        else:
            raise NotFoundError(f"SavedModel file does not exist at: {fs.join(directory, '')}"
                                f"{{{SAVED_MODEL_PBTXT}|{SAVED_MODEL_PB}}}")
    except (DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        raise CorruptionError(f"{directory}: cannot parse the SavedModel: {exc}") from exc
    return _meta_graphs(proto, directory)


def _meta_graphs(proto: saved_model_pb2.SavedModel, where: str) -> list[MetaGraph]:
    try:
        return [_meta_graph(mg) for mg in proto.meta_graphs]
    except CorruptionError as exc:
        raise CorruptionError(f"{where}: {exc}") from None


MAX_TEXT_DEPTH = 100  # protobuf's own nesting limit for binary messages (kDefaultRecursionLimit)
# Quoted strings (either quote, backslash escapes) and comments: brackets in them are not nesting.
_TEXT_NOT_NESTING = re.compile(rb"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|#[^\n]*")


def text_depth(data: bytes) -> int:
    """How deep messages and lists (``{}``, ``<>``, ``[]``) nest in a text-format protobuf,
    brackets inside strings and comments not counted."""
    return nesting_depth(_TEXT_NOT_NESTING.sub(b"", data), b"{<[", b"}>]")


def _parse_text(data: bytes, proto: Message, where: str, allow_unknown: bool = True) -> None:
    """Parse a text-format protobuf, refusing nesting deeper than binary messages may have
    before the (recursive) parser sees it."""
    depth = text_depth(data)
    if depth > MAX_TEXT_DEPTH:
        raise CorruptionError(f"{where}: text protobuf nests {depth} levels deep (at most {MAX_TEXT_DEPTH})")
    text_format.Parse(data.decode("utf-8"), proto, allow_unknown_field=allow_unknown)


# The first byte of a binary SavedModel: field 1 (saved_model_schema_version) as a varint. A
# MetaGraphDef's field 1 (meta_info_def) is a message, so no MetaGraphDef starts so.
_SAVED_MODEL_FIRST_TAG = b"\x08"


def _saved_model(data: bytes, where: str) -> saved_model_pb2.SavedModel | None:
    """``data`` parsed as a SavedModel (binary or text) if it is one; ``None`` otherwise."""
    proto = saved_model_pb2.SavedModel()
    if data[:1] == _SAVED_MODEL_FIRST_TAG:
        try:
            proto.ParseFromString(data)
        except DecodeError as exc:
            raise CorruptionError(f"{where}: opens as a SavedModel (schema version field) but does not parse as "
                                  f"one: {exc}") from exc
        return proto
    try:  # strictly: a text MetaGraphDef's first field is no SavedModel field
        _parse_text(data, proto, where, allow_unknown=False)
    except (text_format.ParseError, UnicodeDecodeError):
        return None
    return proto if proto.meta_graphs else None


def read_meta_graph_file(path: PathLike, tag_set: str | None = None) -> MetaGraph:
    """The ``MetaGraphDef`` of a TF1 ``.meta`` file (what ``Saver.save`` writes beside a
    checkpoint; binary, or text if it does not parse as binary).

    A SavedModel's ``saved_model.pb``/``.pbtxt`` is read too: its meta graph with the
    comma-separated tags ``tag_set``, by default its first. ``tag_set`` on a ``.meta`` file,
    which holds one meta graph, raises :class:`InvalidArgumentError`."""
    path = os.fspath(path)
    data = storage.filesystem_for(path).read_bytes(path)
    if data is None:
        raise NotFoundError(f"no MetaGraph file at {path}")
    saved_model = _saved_model(data, path)
    if saved_model is not None:
        meta_graphs = _meta_graphs(saved_model, path)
        if not meta_graphs:
            raise CorruptionError(f"{path}: a SavedModel without any MetaGraphDef")
        return get_meta_graph(meta_graphs, tag_set) if tag_set is not None else meta_graphs[0]
    if tag_set is not None:
        raise InvalidArgumentError(f"{path}: tag_set selects a MetaGraphDef of a SavedModel; "
                                   "this is a .meta file, which holds one")
    proto = saved_model_pb2.MetaGraphDef()
    try:
        proto.ParseFromString(data)
    except DecodeError:
        try:
            _parse_text(data, proto, path)
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise CorruptionError(f"{path}: not a MetaGraphDef (binary or text): {exc}") from exc
    try:
        return _meta_graph(proto)
    except CorruptionError as exc:
        raise CorruptionError(f"{path}: {exc}") from None


def _tensor(info: saved_model_pb2.SignatureTensorInfo) -> SignatureTensor:
    try:
        dtype = DataType(info.dtype).name  # DT_FLOAT_REF too
    except ValueError:
        dtype = str(info.dtype)
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return SignatureTensor(info.name, dtype, shape)


def _signature(sig: saved_model_pb2.SignatureDef) -> Signature:
    return Signature({k: _tensor(v) for k, v in sig.inputs.items()},
                     {k: _tensor(v) for k, v in sig.outputs.items()}, sig.method_name)


def get_meta_graph(meta_graphs: list[MetaGraph], tag_set: str) -> MetaGraph:
    """The meta graph whose tags are exactly the comma-separated ``tag_set``."""
    wanted = {tag.strip() for tag in tag_set.split(",") if tag.strip()}
    if not wanted:
        raise InvalidArgumentError("tag_set must be a non-empty, comma-separated list of tags")
    for meta_graph in meta_graphs:
        if set(meta_graph.tags) == wanted:
            return meta_graph
    raise NotFoundError(f"MetaGraphDef associated with tag-set {tag_set!r} could not be found in SavedModel; "
                        f"available tag-sets: {[', '.join(sorted(m.tags)) for m in meta_graphs]}")


def show_tag_sets(meta_graphs: list[MetaGraph]) -> str:
    lines = ["The given SavedModel contains the following tag-sets:"]
    lines += [repr(", ".join(sorted(tags))) for tags in sorted(list(m.tags) for m in meta_graphs)]
    return "\n".join(lines) + "\n"


def show_signature_keys(meta_graph: MetaGraph) -> str:
    lines = ["The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:"]
    lines += [f'SignatureDef key: "{key}"' for key in sorted(meta_graph.signatures)]
    return "\n".join(lines) + "\n"


def _tensor_lines(tensor: SignatureTensor, indent: str) -> list[str]:
    shape = "unknown_rank" if tensor.shape is None else "(" + ", ".join(str(d) for d in tensor.shape) + ")"
    return [f"{indent}    dtype: {tensor.dtype}", f"{indent}    shape: {shape}", f"{indent}    name: {tensor.name}"]


def show_signature(meta_graph: MetaGraph, key: str, indent: int = 0) -> str:
    if key not in meta_graph.signatures:
        raise NotFoundError(f'Could not find signature "{key}". Please choose from: '
                            f'{", ".join(meta_graph.signatures)}')
    signature = meta_graph.signatures[key]
    pad = "  " * indent
    lines = [f"{pad}The given SavedModel SignatureDef contains the following input(s):"]
    for name, tensor in sorted(signature.inputs.items()):
        lines.append(f"{pad}  inputs['{name}'] tensor_info:")
        lines += _tensor_lines(tensor, pad + "  ")
    lines.append(f"{pad}The given SavedModel SignatureDef contains the following output(s):")
    for name, tensor in sorted(signature.outputs.items()):
        lines.append(f"{pad}  outputs['{name}'] tensor_info:")
        lines += _tensor_lines(tensor, pad + "  ")
    lines.append(f"{pad}Method name is: {signature.method_name}")
    return "\n".join(lines) + "\n"


def show_ops(meta_graph: MetaGraph) -> str:
    """saved_model_cli's op line: the tags as a list, the ops as a set (sorted here; TensorFlow's
    set order varies from run to run)."""
    ops = "{" + ", ".join(repr(op) for op in sorted(meta_graph.ops)) + "}" if meta_graph.ops else "set()"
    return f"The MetaGraph with tag set {list(meta_graph.tags)!r} contains the following ops: {ops}\n"


def show_all(meta_graphs: list[MetaGraph]) -> str:
    """``saved_model_cli show --all``: every meta graph's signatures and ops, then the
    concrete functions of a TF2 SavedModel."""
    out = []
    for meta_graph in sorted(meta_graphs, key=lambda m: list(m.tags)):
        out.append(f"\nMetaGraphDef with tag-set: '{', '.join(meta_graph.tags)}' contains the following SignatureDefs:\n")
        for key in sorted(meta_graph.signatures):
            out.append(f"\nsignature_def['{key}']:\n")
            out.append(show_signature(meta_graph, key, indent=1))
        out.append(show_ops(meta_graph))
    with_functions = [m for m in meta_graphs if m.functions is not None]
    if with_functions:
        out.append("\nConcrete Functions:")  # saved_model_cli ends this line only if functions follow
        # Functions sharing one node share its traces (the same tuple): render them once.
        rendered: dict[int, str] = {}
        for function in with_functions[0].functions or ():
            shared = id(function.concrete_functions)
            if shared not in rendered:
                rendered[shared] = _show_traces(function.concrete_functions)
            out.append(f"\n  Function Name: '{function.name}'" + rendered[shared] + "\n")
    return "".join(out)


def _show_traces(traces: tuple[ConcreteFunction, ...]) -> str:
    lines = [""]
    for index, concrete in enumerate(traces, 1):
        args: Any = None
        kwargs: Any = None
        if concrete.input_signature:
            args, kwargs = concrete.input_signature
        elif concrete.argument_keywords:
            args = concrete.argument_keywords
        if args:
            lines += [f"    Option #{index}", "      Callable with:"]
            lines += _argument_lines(args, "Argument")
        if kwargs:
            lines += _argument_lines(kwargs, "Named Argument")
    return "\n".join(lines)


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _argument_lines(arguments: Iterable[Any], kind: str) -> list[str]:
    """Arguments as saved_model_cli prints them, backspaces included (it prints ``, `` after
    every element of a collection, then two backspaces and the closing bracket)."""
    pad = "        "
    lines = []
    for index, element in enumerate(arguments, 1):
        lines.append(f"{pad}{kind} #{index}")
        if isinstance(element, str):
            lines.append(f"{pad}  {element}")
        elif isinstance(element, TensorSpec):
            lines.append(f"{pad}  {element.name}: {element!r}")
        elif isinstance(element, dict):
            items = "".join(f"'{key}': {_quoted(value)}, " for key, value in element.items())
            lines += [f"{pad}  DType: dict", f"{pad}  Value: {{{items}\b\b}}"]
        elif isinstance(element, Iterable):
            items = "".join(f"{_quoted(value)}, " for value in element)
            lines += [f"{pad}  DType: {type(element).__name__}", f"{pad}  Value: [{items}\b\b]"]
        else:
            lines += [f"{pad}  DType: {type(element).__name__}", f"{pad}  Value: {element}"]
    return lines


def show_meta_graph_file(meta_graph: MetaGraph) -> str:
    """What ``tfckpt meta show FILE.meta`` prints: tags, TensorFlow version, the saver, the
    variables collection, the signatures (as saved_model_cli prints them) and the ops."""
    out = [f"MetaGraphDef with tags: {list(meta_graph.tags)!r}"
           + (f" (TensorFlow {meta_graph.tensorflow_version})" if meta_graph.tensorflow_version else "") + "\n"]
    saver = meta_graph.saver
    if saver is None:
        out.append("\nSaverDef: none\n")
    else:
        out.append(f"\nSaverDef: version {saver.version}, max_to_keep {saver.max_to_keep}, "
                   f"keep_checkpoint_every_n_hours {saver.keep_checkpoint_every_n_hours:g}, sharded {saver.sharded}\n"
                   f"  filename tensor: {saver.filename_tensor_name}\n  save tensor: {saver.save_tensor_name}\n"
                   f"  restore op: {saver.restore_op_name}\n")
    out.append(f"\nVariables ({len(meta_graph.variables)}):\n")
    rows = [(v.name, v.dtype or "?", "?" if v.shape is None else "[" + ", ".join(str(d) for d in v.shape) + "]",
             "" if v.trainable else "  (not trainable)") for v in meta_graph.variables]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    for name, dtype, shape, trainable in rows:
        out.append(f"  {name:<{widths[0]}}  {dtype:<{widths[1]}}  {shape:<{widths[2]}}{trainable}".rstrip() + "\n")
    out.append(f"\nSignatureDefs ({len(meta_graph.signatures)}):\n")
    for key in sorted(meta_graph.signatures):
        out.append(f"\nsignature_def['{key}']:\n")
        out.append(show_signature(meta_graph, key, indent=1))
    out.append("\n" + show_ops(meta_graph))
    return "".join(out)
