"""tfckpt: read and write TensorFlow checkpoints without TensorFlow.

Examples
--------
>>> import tfckpt, numpy as np, tempfile, os
>>> prefix = tfckpt.save({"dense/kernel": np.ones((2, 2), np.float32)},
...                      os.path.join(tempfile.mkdtemp(), "model.ckpt"))
>>> tfckpt.list_variables(prefix)
[('dense/kernel', [2, 2])]
"""

import types
from typing import TYPE_CHECKING

from . import distributed
from .api import list_variables, load, load_checkpoint, load_variable, merge_checkpoints, resolve_prefix, save
from .asyncsave import AsyncSave, CheckpointOptions
from .bundle.entry import TensorInfo
from .bundle.graph import ObjectGraph
from .bundle.objects import ObjectTensor, SlotVariable
from .bundle.reader import CheckpointReader, SliceView
from .bundle.slices import TensorSlice
from .bundle.writer import BundleWriter as CheckpointWriter
from .checkpoint import Checkpoint, CheckpointLoadStatus, CheckpointMismatchError
from .convert import ConvertReport
from .convert import convert as convert_checkpoint
from .diff import DiffReport, ValueDiff, diff_checkpoints
from .distributed import MergeConflictError, PartsTimeoutError
from .dtypes import DataType, DType, as_dtype
from .errors import (
    ArgumentTypeError,
    CheckpointReplacedError,
    ChecksumError,
    ConcurrentSaveError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)
from .manager import CheckpointManager
from .rules import Rules, load_rules
from .saver import Saver
from .settings import get_num_threads, set_num_threads
from .state import (
    CheckpointState,
    checkpoint_exists,
    get_checkpoint_mtimes,
    get_checkpoint_state,
    latest_checkpoint,
    remove_checkpoint,
    update_checkpoint_state,
)
from .stats import ModuleStats, StatsReport, TensorStats, checkpoint_stats
from .tree import TreeNode, checkpoint_tree, render_tree
from .variables import Variable
from .verify import VerifyProblem, VerifyReport, verify_checkpoint

__version__ = "0.3.0"  # the one place the version is written (pyproject.toml reads it)

__all__ = [
    "ArgumentTypeError",
    "AsyncSave",
    "Checkpoint",
    "CheckpointLoadStatus",
    "CheckpointManager",
    "CheckpointMismatchError",
    "CheckpointOptions",
    "CheckpointReader",
    "CheckpointReplacedError",
    "CheckpointState",
    "CheckpointWriter",
    "ChecksumError",
    "ConcurrentSaveError",
    "ConvertReport",
    "CorruptionError",
    "DType",
    "DataType",
    "DiffReport",
    "InvalidArgumentError",
    "MergeConflictError",
    "ModuleStats",
    "NotFoundError",
    "ObjectGraph",
    "ObjectTensor",
    "PartsTimeoutError",
    "Rules",
    "Saver",
    "SliceView",
    "SlotVariable",
    "StatsReport",
    "TensorInfo",
    "TensorSlice",
    "TensorStats",
    "TfckptError",
    "TreeNode",
    "UnsupportedError",
    "ValueDiff",
    "Variable",
    "VerifyProblem",
    "VerifyReport",
    "as_dtype",
    "checkpoint_exists",
    "checkpoint_stats",
    "checkpoint_tree",
    "convert_checkpoint",
    "diff_checkpoints",
    "distributed",
    "get_checkpoint_mtimes",
    "get_checkpoint_state",
    "get_num_threads",
    "latest_checkpoint",
    "list_variables",
    "load",
    "load_checkpoint",
    "load_rules",
    "load_variable",
    "merge_checkpoints",
    "remove_checkpoint",
    "render_tree",
    "resolve_prefix",
    "save",
    "set_num_threads",
    "update_checkpoint_state",
    "verify_checkpoint",
]


def __dir__() -> list[str]:
    """The public names and the module's dunders: an implementation submodule stays out even
    once something imports it (which binds it on this package)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


if not TYPE_CHECKING:  # for type checkers, tfckpt has its public names only

    def __getattr__(name: str) -> types.ModuleType:
        """An implementation submodule that is already imported (``import tfckpt.coding``,
        then ``tfckpt.coding``): the import system binds a submodule on its package only when
        it first loads it, and this package unbinds those its own imports loaded."""
        import sys

        module = sys.modules.get(f"{__name__}.{name}")
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return module


# Importing the names above bound every module they come from (api, bundle, convert, ...) on
# this package; only the public names stay (``tfckpt.convert`` would be a module, not the
# function ``convert_checkpoint``).
for _name in [name for name, value in globals().items() if isinstance(value, types.ModuleType)
              and name not in __all__]:
    del globals()[_name]
del _name, TYPE_CHECKING
