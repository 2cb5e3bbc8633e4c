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
import io
import os
import posixpath
import shutil
from collections.abc import Sequence

from .. import storage
from ..errors import InvalidArgumentError
from ..storage import FileSource
from .entry import BundleHeader, TensorInfo
from .naming import data_filename, index_filename
from .publish import publish, remove_quietly, temporary_name
from .reader import CheckpointReader
from .writer import write_index

__all__ = ["merge_bundles"]


def merge_bundles(prefixes: Sequence[str], destination: str, *, allow_missing_files: bool = False,
                  delete_old_dirs: bool = True, sync: bool = True) -> str:
    """Merge the bundles at ``prefixes`` into one at ``destination``; return ``destination``."""
    destination = os.fspath(destination)
    remote = storage.is_url(destination)
    into_source = [p for p in map(os.fspath, prefixes) if _same_prefix(p, destination)]
    if into_source and remote:
        raise InvalidArgumentError(f"cannot merge into {destination}: it is also one of the sources, which "
                                   f"object storage (no hard links) cannot do safely; merge into another prefix")
    directory = storage.dirname(destination)
    if directory and not remote:
        os.makedirs(directory, exist_ok=True)
    header: BundleHeader | None = None
    merged: dict[bytes, TensorInfo] = {}
    renames: dict[str, int] = {}  # source data file -> new shard id
    from_destination: set[str] = set()  # those of a source that is the destination
    used: list[str] = []
    for prefix in map(os.fspath, prefixes):
        if not storage.exists(index_filename(prefix)):
            if allow_missing_files:
                continue
            raise InvalidArgumentError(f"allow_missing_files was set to false and {prefix} did not exist.")
        opener = storage.open_source if storage.is_url(prefix) else FileSource
        with CheckpointReader(prefix, opener=opener) as reader:
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
    if remote:
        _publish_remote(destination, list(renames), merged_header, list(merged.values()))
    else:
        staged: list[str] = []
        made: list[str] = []  # temporaries of our own
        try:
            for source_file in renames:
                temp = temporary_name(data_filename(destination, len(staged), count))
                if not os.path.exists(source_file):  # a full entry of a partitioned tensor may name an unused file
                    made.append(temp)
                    open(temp, "xb").close()
                    source_file = temp
                elif source_file in from_destination:
                    # The destination's own data: a new name, so that its checkpoint stays whole
                    # until the commit (the merged files may take its files' names in another order).
                    made.append(temp)
                    _link_or_copy(source_file, temp)
                    source_file = temp
                staged.append(source_file)
            publish(destination, staged, lambda out: write_index(out, merged_header, merged.values()), sync=sync,
                    keep_staged_on_failure=True)
        finally:
            # After a failure: ours to remove. After success too: renaming a hard link onto its
            # own file's other name (a shard that kept its number) leaves the link in place.
            for temp in made:
                remove_quietly(temp)
    for prefix in used:
        if prefix in into_source:
            continue  # its index is the merged one now
        if remote:
            storage.remove(index_filename(prefix))
            continue  # object stores have no directories to delete
        remove_quietly(index_filename(prefix))
        source_dir = os.path.dirname(prefix)
        if delete_old_dirs and os.path.abspath(source_dir) != os.path.abspath(directory or "."):
            try:
                os.rmdir(source_dir)
            except OSError:
                pass  # not empty, or already gone: TensorFlow only logs this too
    return destination


def _same_prefix(a: str, b: str) -> bool:
    """Whether two prefixes name the same checkpoint (``d/./a`` and ``d/a``, symlinked dirs)."""
    if storage.is_url(a) or storage.is_url(b):
        return posixpath.normpath(a) == posixpath.normpath(b)
    return os.path.realpath(a) == os.path.realpath(b)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # no hard links on this filesystem: pay for a copy
        shutil.copyfile(source, target)


def _publish_remote(destination: str, sources: list[str], header: BundleHeader, entries: list[TensorInfo]) -> None:
    """Move the data files to their merged names with the filesystem's own move (no download),
    then write the index; if a move fails, the moved files go back so the parts stay whole."""
    count = len(sources)
    moved: list[tuple[str, str]] = []
    try:
        if storage.exists(index_filename(destination)):
            storage.remove(index_filename(destination))  # never let an old index describe new data
        for number, source_file in enumerate(sources):
            target = data_filename(destination, number, count)
            if storage.exists(source_file):
                storage.move(source_file, target)
                moved.append((source_file, target))
            else:
                storage.write_bytes_remote(target, b"")
        index = io.BytesIO()
        write_index(index, header, entries)
        storage.write_bytes_remote(index_filename(destination), index.getvalue())
    except BaseException:
        for source_file, target in reversed(moved):
            try:
                storage.move(target, source_file)
            except OSError:
                pass
        raise
