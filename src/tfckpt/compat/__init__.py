"""The checkpoint half of TensorFlow, without TensorFlow: a stand-in for scripts that read
checkpoints through ``tf.train`` (conversion scripts: "TF checkpoint to PyTorch").

Use it as the ``tf`` module (``from tfckpt.compat import tf``, or ``import tfckpt.compat as
tf``), or run a script unchanged with ``python -m tfckpt.compat script.py args...``, which
resolves ``import tensorflow`` to this module (see :mod:`tfckpt.compat.__main__`). Importing
this package never touches ``sys.modules["tensorflow"]``: a real TensorFlow stays what
``import tensorflow`` gives.

Provided, with TensorFlow's return and error types:

- ``tf.train`` / ``tf.compat.v1.train``: ``list_variables``, ``load_variable``,
  ``load_checkpoint``, ``latest_checkpoint``, ``get_checkpoint_state``, ``checkpoint_exists``,
  ``NewCheckpointReader`` (TF1's names are in ``tf.train`` too, as in TF 1.x)
- ``tf.errors``: ``OpError`` and its subclasses, the error codes
- ``tf.dtypes``, ``tf.DType``, ``tf.as_dtype`` and the constants (``tf.float32``, ...)
- ``tf.io.gfile`` / ``tf.gfile``: ``GFile``, ``exists``, ``glob``, ``listdir``, ``isdir``,
  ``makedirs``, ``mkdir``, ``remove``, ``rename``, ``copy``, ``walk``, ``join``
- ``tf.compat.v1`` and ``tf.compat.v2``: this same module

Any other attribute raises :class:`NotInCompatError`, an ``AttributeError`` naming it.

Examples
--------
>>> from tfckpt.compat import tf
>>> tf.train.list_variables("examples/keras_mlp")[1]
('optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE', [])
>>> tf.nn
Traceback (most recent call last):
    ...
tfckpt.errors.NotInCompatError: tf.nn is not part of tfckpt.compat (the checkpoint half of TensorFlow); install tensorflow for it
"""

from __future__ import annotations

import sys

from . import dtypes, errors, gfile, train
from .dtypes import CONSTANTS, DType, as_dtype
from .namespace import Namespace, NotInCompatError, missing

tf = sys.modules[__name__]  # `from tfckpt.compat import tf`
io = Namespace("tf.io", "tf.io, as far as tfckpt.compat provides it: gfile.", gfile=gfile)
compat = Namespace("tf.compat", "tf.compat: v1 and v2 are tfckpt.compat itself.", v1=tf, v2=tf)

__all__ = ["DType", "NotInCompatError", "as_dtype", "compat", "dtypes", "errors", "gfile", "io", "tf", "train"]


def __getattr__(name: str) -> DType:
    if name in CONSTANTS:  # tf.float32, tf.half, ... (not globals: `bool` must stay the builtin)
        return CONSTANTS[name]
    missing("tf", name)


def __dir__() -> list[str]:
    return sorted([*globals(), *CONSTANTS])
