"""Merging bundles into one, as TensorFlow's ``MergeV2Checkpoints`` op.

For each source prefix in order: its header's ``num_shards`` adds to the total (endianness
and version must agree); each entry is taken over with its data file renumbered (data files
numbered 0, 1, ... in order of first use); a key seen before is an error unless both are
partitioned, in which case the new slices are appended to the full entry. Then the data files
are renamed to ``DEST.data-0000k-of-M``, ``DEST.index`` is written, the source indexes are
deleted and, with ``delete_old_dirs``, their directories too if they are now empty.

The data files and the new index reach the destination through
:func:`tfckpt.bundle.publish.publish`: a checkpoint already at the destination stays whole
until the merged one is, and if the merge fails the sources are left as they were.

The destination may be one of the sources (TensorFlow then deletes the merged index with the
sources' ones and leaves no checkpoint): that source's data files are staged as hard links (or
copies) under temporary names, so its checkpoint stays whole until the merged one replaces it,
and its index, now the merged one, is kept. On object storage that merge is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .. import storage
from ..errors import InvalidArgumentError, UnsupportedError
from ..storage import Filesystem, temporary_name
from .entry import BundleHeader, TensorInfo
from .naming import data_filename, index_filename
from .publish import publish
from .reader import CheckpointReader
from .writer import write_index

__all__ = ["merge_bundles"]


def merge_bundles(prefixes: Sequence[str], destination: str, *, allow_missing_files: bool = False,
                  delete_old_dirs: bool = True, sync: bool = True) -> str:
    """Merge the bundles at ``prefixes`` into one at ``destination``; return ``destination``."""
    destination = str(destination)
    fs = storage.filesystem_for(destination)
    sources = [str(p) for p in prefixes]
    into_source = [p for p in sources if _same_prefix(fs, p, destination)]
    if into_source and not fs.hard_links:
        raise InvalidArgumentError(f"cannot merge into {destination}: it is also one of the sources, which "
                                   f"the {fs.name} filesystem (no hard links) cannot do safely; merge into another "
                                   f"prefix")
    for prefix in sources:
        # The sources' data files are moved (or copied server-side) into place: a file on
        # another filesystem is neither, and its path means nothing to this one.
        source_fs = storage.filesystem_for(prefix)
        if source_fs.name != fs.name:
            raise UnsupportedError(f"cannot merge {prefix} into {destination}: merging moves data files within "
                                   f"one filesystem, and {source_fs.name} is not {fs.name}; copy the checkpoint "
                                   f"there first (e.g. with convert_checkpoint)")
    directory = fs.dirname(destination)
    if directory and not fs.is_remote:
        fs.makedirs(directory)
    header: BundleHeader | None = None
    merged: dict[bytes, TensorInfo] = {}
    renames: dict[str, int] = {}  # source data file -> new shard id
    from_destination: set[str] = set()  # those of a source that is the destination
    used: list[str] = []
    for prefix in sources:
        if not fs.exists(index_filename(prefix)):  # the sources share the destination's filesystem
            if allow_missing_files:
                continue
            raise InvalidArgumentError(f"allow_missing_files was set to false and {prefix} did not exist.")
        with CheckpointReader(prefix, opener=fs.open_source) as reader:
            source_header = reader.header
            if header is None:
                header = source_header
            elif source_header.endianness != header.endianness:
                raise InvalidArgumentError(f"Merging bundles with conflicting endianness; inputs corrupted? ({prefix})")
            elif (source_header.producer, source_header.min_consumer, source_header.bad_consumers) != (
                    header.producer, header.min_consumer, header.bad_consumers):
                raise InvalidArgumentError(f"Merging bundles with different format versions ({prefix})")
            for key, info in reader.store.entries():
                existing = merged.get(key)
                if existing is not None:
                    if not existing.slices:
                        raise InvalidArgumentError(f"Duplicate tensor keyed by {info.name} encountered, when "
                                                   f"merging prefix: {prefix}")
                    if not info.slices:
                        raise InvalidArgumentError(f"Duplicate tensor keyed by {info.name}; attempting to merge "
                                                   f"in a non-slice bundle entry")
                    if existing.dtype != info.dtype or existing.shape != info.shape:
                        raise InvalidArgumentError(f"partitioned tensor {info.name} has different dtypes or "
                                                   f"shapes in the bundles being merged ({prefix})")
                    merged[key] = dataclasses.replace(existing, slices=existing.slices + info.slices)
                    continue
                source_file = data_filename(prefix, info.shard_id, source_header.num_shards)
                if source_file not in renames:
                    renames[source_file] = len(renames)
                    if prefix in into_source:
                        from_destination.add(source_file)
                merged[key] = dataclasses.replace(info, shard_id=renames[source_file])
        used.append(prefix)
    if header is None:
        raise InvalidArgumentError("At least one prefix checkpoint file must exist, but none existed.")
    count = len(renames)
    # TensorFlow's header says the sum of the sources' shard counts; that equals the number of
    # data files whenever every source file holds an entry. Writing the file count keeps the
    # result readable in the other case too.
    merged_header = dataclasses.replace(header, num_shards=count)
    staged: list[str] = []
    made: list[str] = []  # temporaries of our own
    try:
        for source_file in renames:
            temp = temporary_name(data_filename(destination, len(staged), count))
            if not fs.exists(source_file):  # a full entry of a partitioned tensor may name an unused file
                made.append(temp)
                fs.create_exclusive(temp, b"")
                source_file = temp
            elif source_file in from_destination:
                # The destination's own data: a new name, so that its checkpoint stays whole
                # until the commit (the merged files may take its files' names in another order).
                made.append(temp)
                _link_or_copy(fs, source_file, temp)
                source_file = temp
            staged.append(source_file)
        # The sources are kept at their names if the merge fails: their checkpoints stay whole.
        publish(destination, staged, lambda out: write_index(out, merged_header, merged.values()), sync=sync,
                keep_staged_on_failure=True, fs=fs)
    finally:
        # After a failure: ours to remove. After success too: renaming a hard link onto its
        # own file's other name (a shard that kept its number) leaves the link in place.
        for temp in made:
            fs.remove(temp)
    for prefix in used:
        if prefix in into_source:
            continue  # its index is the merged one now
        fs.remove(index_filename(prefix))
        if fs.is_remote:
            continue  # object stores have no directories to delete
        source_dir = fs.dirname(prefix)
        if delete_old_dirs and fs.abspath(source_dir) != fs.abspath(directory or "."):
            try:
                fs.rmdir(source_dir)
            except OSError:
                pass  # not empty, or already gone: TensorFlow only logs this too
    return destination


def _same_prefix(fs: Filesystem, a: str, b: str) -> bool:
    """Whether two prefixes name the same checkpoint (``d/./a`` and ``d/a``, symlinked dirs)."""
    if not storage.same_filesystem(a, b):
        return False
    return fs.same_file_name(a, b)


def _link_or_copy(fs: Filesystem, source: str, target: str) -> None:
    try:
        fs.link(source, target)
    except OSError:  # no hard links on this filesystem: pay for a copy
        fs.copy(source, target)
