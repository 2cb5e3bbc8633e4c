"""TF-shaped namespaces whose missing attributes say what is missing and why.

``tfckpt.compat`` stands in for the checkpoint half of TensorFlow only. Every other name a
script asks for (``tf.nn``, ``tf.keras``, ``tf.constant``) raises one
:class:`NotInCompatError`: an ``AttributeError``, so ``hasattr`` and ``getattr(..., default)``
behave as for any missing attribute, whose message names the attribute as the script wrote it.
"""

from __future__ import annotations

import types
from typing import Any, NoReturn

from ..errors import NotInCompatError

__all__ = ["Namespace", "NotInCompatError", "missing"]


def missing(namespace: str, name: str) -> NoReturn:
    """Raise :class:`NotInCompatError` for ``namespace.name`` (``namespace`` as TF spells it: ``tf.io``)."""
    raise NotInCompatError(f"{namespace}.{name} is not part of tfckpt.compat (the checkpoint half of "
                           f"TensorFlow); install tensorflow for it")


class Namespace(types.ModuleType):
    """A module-like namespace (``tf.io``, ``tf.compat``) holding the given attributes.

    Examples
    --------
    >>> io = Namespace("tf.io", "stand-in for tf.io", gfile=None)
    >>> hasattr(io, "gfile"), hasattr(io, "decode_png")
    (True, False)
    """

    def __init__(self, tf_name: str, doc: str, **attributes: Any) -> None:
        super().__init__(tf_name, doc)
        self.__dict__.update(attributes)

    def __getattr__(self, name: str) -> NoReturn:
        missing(self.__name__, name)
