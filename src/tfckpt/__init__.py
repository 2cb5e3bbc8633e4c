"""tfckpt: read and write TensorFlow checkpoints without TensorFlow.

Examples
--------
>>> import tfckpt, numpy as np, tempfile, os
>>> prefix = tfckpt.save({"dense/kernel": np.ones((2, 2), np.float32)},
...                      os.path.join(tempfile.mkdtemp(), "model.ckpt"))
>>> tfckpt.list_variables(prefix)
[('dense/kernel', [2, 2])]
"""

from . import distributed
from .api import list_variables, load, load_checkpoint, load_variable, merge_checkpoints, resolve_prefix, save
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
    CheckpointReplacedError,
    ChecksumError,
    CorruptionError,
    InvalidArgumentError,
    NotFoundError,
    TfckptError,
    UnsupportedError,
)
from .manager import CheckpointManager
from .rules import Rules, load_rules
from .saver import Saver
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

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)

__all__ = [
    "Checkpoint",
    "CheckpointLoadStatus",
    "CheckpointManager",
    "CheckpointMismatchError",
    "CheckpointReader",
    "CheckpointReplacedError",
    "CheckpointState",
    "CheckpointWriter",
    "ChecksumError",
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
    "update_checkpoint_state",
    "verify_checkpoint",
]
