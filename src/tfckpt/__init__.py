"""tfckpt: read and write TensorFlow checkpoints without TensorFlow.

Examples
--------
>>> import tfckpt, numpy as np, tempfile, os
>>> prefix = tfckpt.save({"dense/kernel": np.ones((2, 2), np.float32)},
...                      os.path.join(tempfile.mkdtemp(), "model.ckpt"))
>>> tfckpt.list_variables(prefix)
[('dense/kernel', [2, 2])]
"""

# Not typing.TYPE_CHECKING: importing typing alone takes longer than the rest of this module,
# all of which runs before the command line can catch Ctrl-C (mypy and ruff know the name).
TYPE_CHECKING = False
if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported on first use
    from . import distributed
    from .api import (
        list_variables,
        load,
        load_checkpoint,
        load_variable,
        merge_checkpoints,
        resolve_prefix,
        save,
    )
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


# Where each public name is defined: (module, name there). Importing everything costs seconds
# (numpy, protobuf, ml_dtypes), so ``import tfckpt`` imports none of it and ``tfckpt.save``
# imports what ``save`` needs on first use (PEP 562); a command-line ``tfckpt --version`` is
# instant. The TYPE_CHECKING imports above say the same for type checkers: test_startup checks
# that the two agree.
_HOMES: dict[str, tuple[str, str]] = {
    "distributed": ("distributed", ""),  # the module itself
    **dict.fromkeys(["list_variables", "load", "load_checkpoint", "load_variable", "merge_checkpoints",
                     "resolve_prefix", "save"], ("api", "")),
    **dict.fromkeys(["AsyncSave", "CheckpointOptions"], ("asyncsave", "")),
    "TensorInfo": ("bundle.entry", ""),
    "ObjectGraph": ("bundle.graph", ""),
    **dict.fromkeys(["ObjectTensor", "SlotVariable"], ("bundle.objects", "")),
    **dict.fromkeys(["CheckpointReader", "SliceView"], ("bundle.reader", "")),
    "TensorSlice": ("bundle.slices", ""),
    "CheckpointWriter": ("bundle.writer", "BundleWriter"),
    **dict.fromkeys(["Checkpoint", "CheckpointLoadStatus", "CheckpointMismatchError"], ("checkpoint", "")),
    "ConvertReport": ("convert", ""),
    "convert_checkpoint": ("convert", "convert"),
    **dict.fromkeys(["DiffReport", "ValueDiff", "diff_checkpoints"], ("diff", "")),
    **dict.fromkeys(["MergeConflictError", "PartsTimeoutError"], ("distributed", "")),
    **dict.fromkeys(["DataType", "DType", "as_dtype"], ("dtypes", "")),
    **dict.fromkeys(["ArgumentTypeError", "CheckpointReplacedError", "ChecksumError", "ConcurrentSaveError",
                     "CorruptionError", "InvalidArgumentError", "NotFoundError", "TfckptError",
                     "UnsupportedError"], ("errors", "")),
    "CheckpointManager": ("manager", ""),
    **dict.fromkeys(["Rules", "load_rules"], ("rules", "")),
    "Saver": ("saver", ""),
    **dict.fromkeys(["get_num_threads", "set_num_threads"], ("settings", "")),
    **dict.fromkeys(["CheckpointState", "checkpoint_exists", "get_checkpoint_mtimes", "get_checkpoint_state",
                     "latest_checkpoint", "remove_checkpoint", "update_checkpoint_state"], ("state", "")),
    **dict.fromkeys(["ModuleStats", "StatsReport", "TensorStats", "checkpoint_stats"], ("stats", "")),
    **dict.fromkeys(["TreeNode", "checkpoint_tree", "render_tree"], ("tree", "")),
    "Variable": ("variables", ""),
    **dict.fromkeys(["VerifyProblem", "VerifyReport", "verify_checkpoint"], ("verify", "")),
}


def __dir__() -> list[str]:
    """The public names and the module's dunders: an implementation submodule stays out even
    once something imports it (which binds it on this package)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


if not TYPE_CHECKING:  # for type checkers, tfckpt has its public names only

    def __getattr__(name: str) -> object:
        """A public name, imported from its module on first use (then bound here, so this runs
        once per name); or an implementation submodule that is already imported (``import
        tfckpt.coding``, then ``tfckpt.coding``), which the import system binds on its package
        only when it first loads it."""
        import importlib
        import sys

        home = _HOMES.get(name)
        if home is not None:
            module_name, attribute = home
            module = importlib.import_module(f"{__name__}.{module_name}")
            value = module if module_name == name else getattr(module, attribute or name)
            globals()[name] = value
            return value
        module = sys.modules.get(f"{__name__}.{name}")
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return module


del TYPE_CHECKING  # not a name of tfckpt
