"""What a TF2 checkpoint needs besides its tensors, kept in safetensors and ``.npz`` files so
that converting back rebuilds a checkpoint TensorFlow restores by structure.

The record is a string-to-string map (safetensors' ``__metadata__`` holds it as is; an
``.npz`` holds it as a JSON object in the member ``__tfckpt_structure__``)::

    tfckpt.structure: "1"                   the version of this record
    tfckpt.object_graph: base64             the checkpoint's _CHECKPOINTABLE_OBJECT_GRAPH bytes
    tfckpt.tensors: JSON {written name: [checkpoint key, dtype name, [dims...]]}

``tfckpt.tensors`` lists every tensor written with the key, dtype and shape it had in the
checkpoint, so the way back finds the keys again after ``object_paths``/``strip_attributes``/
``rename`` changed the names, and casts a value edited to another dtype back to the one the
checkpoint had. Other metadata keys are left alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..dtypes import DType, as_dtype
from ..errors import CorruptionError, TfckptError
from ..storage import PathLike, filesystem_for
from .npz import STRUCTURE_MEMBER, read_text_member
from .safetensors import MAX_JSON_DEPTH, json_depth, read_header

__all__ = ["STRUCTURE_VERSION", "Structure", "read_structure"]

STRUCTURE_VERSION = "1"
VERSION_KEY = "tfckpt.structure"
GRAPH_KEY = "tfckpt.object_graph"
TENSORS_KEY = "tfckpt.tensors"


@dataclass(frozen=True)
class Structure:
    """A checkpoint's object graph and, for each tensor written under some name, the
    (checkpoint key, dtype, shape) it had in the checkpoint."""

    object_graph: bytes
    tensors: dict[str, tuple[str, DType, tuple[int, ...]]] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """The string map written into a file (see the module docstring)."""
        listed = {name: [key, dtype.name, list(shape)] for name, (key, dtype, shape) in self.tensors.items()}
        return {VERSION_KEY: STRUCTURE_VERSION,
                GRAPH_KEY: base64.b64encode(self.object_graph).decode("ascii"),
                TENSORS_KEY: json.dumps(listed, separators=(",", ":"))}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], where: str) -> Structure | None:
        """The record in ``metadata``, or None if it holds none; a damaged record raises
        :class:`CorruptionError` naming ``where`` and the key."""
        if VERSION_KEY not in metadata:
            return None
        if metadata[VERSION_KEY] != STRUCTURE_VERSION:
            raise CorruptionError(f"{where}: {VERSION_KEY} is {metadata[VERSION_KEY]!r}; this tfckpt reads "
                                  f"version {STRUCTURE_VERSION}")
        for key in (GRAPH_KEY, TENSORS_KEY):
            if not isinstance(metadata.get(key), str):
                raise CorruptionError(f"{where}: {VERSION_KEY} is set but {key} is missing")
        try:
            graph = base64.b64decode(metadata[GRAPH_KEY], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CorruptionError(f"{where}: {GRAPH_KEY} is not base64: {exc}") from None
        text = metadata[TENSORS_KEY].encode("utf-8", "surrogatepass")
        if json_depth(text) > 3:
            raise CorruptionError(f"{where}: {TENSORS_KEY} nests {json_depth(text)} deep; it should map names "
                                  f"to [key, dtype, [dims]]")
        try:
            listed = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptionError(f"{where}: {TENSORS_KEY} is not JSON: {exc}") from None
        if not isinstance(listed, dict):
            raise CorruptionError(f"{where}: {TENSORS_KEY} should be a JSON object, not {type(listed).__name__}")
        tensors = {}
        for name, entry in listed.items():
            what = f"{where}: {TENSORS_KEY} entry {name!r}"
            if (not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str)
                    or not isinstance(entry[1], str) or not isinstance(entry[2], list)
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry[2])):
                raise CorruptionError(f"{what} should be [key, dtype name, [non-negative dims]], not {entry!r:.80}")
            try:
                dtype = as_dtype(entry[1])
            except TfckptError as exc:
                raise CorruptionError(f"{what}: {exc}") from None
            tensors[name] = (entry[0], dtype, tuple(entry[2]))
        return cls(graph, tensors)

    def to_json(self) -> str:
        """The record as one JSON text (an ``.npz`` member)."""
        return json.dumps(self.to_metadata())

    @classmethod
    def from_json(cls, text: str, where: str) -> Structure | None:
        """The inverse of :meth:`to_json`."""
        raw = text.encode("utf-8", "surrogatepass")
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise CorruptionError(f"{where}: {STRUCTURE_MEMBER} nests {json_depth(raw)} deep")
        try:
            metadata = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptionError(f"{where}: {STRUCTURE_MEMBER} is not JSON: {exc}") from None
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise CorruptionError(f"{where}: {STRUCTURE_MEMBER} should map strings to strings")
        return cls.from_metadata(metadata, f"{where}: member {STRUCTURE_MEMBER}")


def read_structure(path: PathLike, fmt: str) -> Structure | None:
    """The structure record kept in the safetensors or ``.npz`` file at ``path``, or None (a
    checkpoint, or a file written by something else)."""
    where = str(path)
    if fmt == "safetensors":
        data = filesystem_for(where).open_source(where)
        try:
            header, _ = read_header(data)
        finally:
            data.close()
        return Structure.from_metadata(header.get("__metadata__", {}), f"{where}: __metadata__")
    if fmt == "npz":
        text = read_text_member(path, STRUCTURE_MEMBER)
        return None if text is None else Structure.from_json(text, where)
    return None
