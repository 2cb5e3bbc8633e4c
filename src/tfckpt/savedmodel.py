"""Inspecting a SavedModel's ``saved_model.pb`` without TensorFlow: tag sets and signatures.

``SavedModel`` (``protos/tfckpt/_proto/saved_model.proto``, the fields used here)::

    meta_graphs: repeated MetaGraphDef = 2
    MetaGraphDef: meta_info_def {tags: repeated string = 4} = 1
                  signature_def: map<string, SignatureDef> = 5
    SignatureDef: inputs = 1, outputs = 2 (map<string, TensorInfo>), method_name = 3
    TensorInfo:   name = 1 (or coo_sparse = 4 / composite_tensor = 5), dtype = 2, tensor_shape = 3

The ``show_*`` functions return exactly what ``saved_model_cli show`` prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ._proto import saved_model_pb2
from .bundle.naming import SAVED_MODEL_PB, SAVED_MODEL_PBTXT
from .dtypes import DataType
from .errors import CorruptionError, InvalidArgumentError, NotFoundError
from .storage import PathLike

__all__ = ["MetaGraph", "Signature", "SignatureTensor", "get_meta_graph", "read_saved_model", "show_all",
           "show_signature", "show_signature_keys", "show_tag_sets"]


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
class MetaGraph:
    tags: tuple[str, ...]  # in stored order
    signatures: dict[str, Signature]


def read_saved_model(directory: PathLike) -> list[MetaGraph]:
    """The meta graphs of the SavedModel in ``directory`` (``saved_model.pb`` or ``.pbtxt``)."""
    directory = os.fspath(directory)
    proto = saved_model_pb2.SavedModel()
    binary, text = os.path.join(directory, SAVED_MODEL_PB), os.path.join(directory, SAVED_MODEL_PBTXT)
    try:
        if os.path.isfile(binary):
            with open(binary, "rb") as f:
                proto.ParseFromString(f.read())
        elif os.path.isfile(text):
            with open(text, encoding="utf-8") as f:
                text_format.Parse(f.read(), proto, allow_unknown_field=True)
        else:
            raise NotFoundError(f"SavedModel file does not exist at: {directory}{os.sep}"
                                f"{{{SAVED_MODEL_PBTXT}|{SAVED_MODEL_PB}}}")
    except (DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        raise CorruptionError(f"{directory}: cannot parse the SavedModel: {exc}") from exc
    return [MetaGraph(tuple(mg.meta_info_def.tags),
                      {key: _signature(sig) for key, sig in mg.signature_def.items()})
            for mg in proto.meta_graphs]


def _tensor(info: saved_model_pb2.SignatureTensorInfo) -> SignatureTensor:
    try:
        dtype = DataType(info.dtype).name
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


def show_all(meta_graphs: list[MetaGraph]) -> str:
    """``saved_model_cli show --all`` up to (not including) the op list and the concrete
    functions, which need TensorFlow to load."""
    out = []
    for meta_graph in sorted(meta_graphs, key=lambda m: list(m.tags)):
        out.append(f"\nMetaGraphDef with tag-set: '{', '.join(meta_graph.tags)}' contains the following SignatureDefs:\n")
        for key in sorted(meta_graph.signatures):
            out.append(f"\nsignature_def['{key}']:\n")
            out.append(show_signature(meta_graph, key, indent=1))
    return "".join(out)
