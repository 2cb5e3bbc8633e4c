"""The names of the file formats ``convert`` reads and writes, in a module that imports nothing:
the command line offers them as choices (``--from``/``--to``) before, or without, loading the
formats themselves (:mod:`tfckpt.formats`), which costs numpy and protobuf."""

__all__ = ["FORMATS"]

FORMATS = ("checkpoint", "safetensors", "npz", "keras")
