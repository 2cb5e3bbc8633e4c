"""Where a reader's entries and bytes come from: the :class:`Store` protocol and its V2 bundle
implementation (the V1 one is :class:`tfckpt.bundle.v1.V1Store`).

A store answers, for one checkpoint: which tensor names it holds, each name's index record
(and each slice piece's), and the values of stored entries, whole or in part. Everything a
checkpoint means beyond that (partitioned tensors assembled from pieces, partial reads, the
object graph, TF's reader methods) is :class:`tfckpt.bundle.reader.CheckpointReader`'s, the
same for every store.

The V2 store opens the whole ``.index`` at once (O(index), never touching data files) and
keeps entries as raw bytes, decoded when first needed or all at once by one protobuf parse.
Data files are opened on first use and read with positional reads, so one store serves many
threads; after opening one, it checks that ``PREFIX.index`` is still the file it parsed (see
:mod:`tfckpt.bundle.publish` for why that is enough to never pair an old index with new data).
Remote data files are not pinned by opening them, so there the check follows each read (one
metadata request); and a damaged read (a checksum mismatch, a short file) is blamed on a
replacement, and re-raised as :class:`~tfckpt.errors.CheckpointReplacedError`, when the index
has changed meanwhile (a writer that does not publish as tfckpt does, e.g. TensorFlow's
rename of the data file, then of the index).
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import dataclasses
import functools
import itertools
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol, cast

import numpy as np

from ..dtypes import DataType, DType
from ..errors import CheckpointReplacedError, CorruptionError, NotFoundError, TfckptError, UnsupportedError
from ..settings import get_num_threads
from ..storage import ByteSource, FileIdentity, FileSource, path_identity
from ..table.block import Entries
from ..table.reader import TableReader
from . import fast_reads, payload, plan, validate
from .entry import BIG, BundleHeader, TensorInfo, peek
from .fast_entries import PlainEntries, decode_plain_many, peek_many
from .naming import data_filename, index_filename
from .slices import SLICE_KEY_PREFIX, TensorSlice, decode_key, decode_key_texts, describe_key

__all__ = ["MAX_UNUSED_SHARDS_LISTED", "PARALLEL_MIN_BYTES", "READ_WINDOW_BYTES", "REMOTE_FETCHES", "BundleStore",
           "Listing", "QuickReads", "RecordStore", "SourceOpener", "Store"]

SourceOpener = Callable[[str], ByteSource]

PARALLEL_MIN_BYTES = 64 << 20  # below this, local reads on threads cost more than they save
REMOTE_FETCHES = 16  # concurrent ranged requests: enough to hide ~100 ms of latency per request
READ_WINDOW_BYTES = 256 << 20  # fetched ahead of the consumer at most (plus one fetch)
# Data files named by the header that no entry uses, looked for at most (TF opens only the
# files entries use; a header may claim up to 2^31-1 shards in a few bytes): beyond this, only
# the used ones are listed.
MAX_UNUSED_SHARDS_LISTED = 1024


@dataclass(frozen=True)
class Listing:
    """Every tensor's dtype and shape, grouped as a checkpoint repeats few: tensor
    ``names[i]`` has ``kinds[which[i]]`` (cheaper to make than a dict of 10^5 names, and a
    listing makes one shape list per kind, copied per name). ``names`` and ``which`` are
    sequences of atoms, best tuples: the garbage collector stops tracking those, so its full
    collections while a caller builds 10^6 objects from a listing do not traverse them again."""

    names: Sequence[str]
    kinds: list[tuple[DType, tuple[int, ...]]]
    which: Sequence[int]


class QuickReads(Protocol):
    """An optional capability of a store: small fixed-size tensors read in bulk, without
    per-tensor records. A store declares it with :attr:`Store.quick` (``None`` without it)."""

    def quick_sizes(self, names: Sequence[str]) -> list[int]: ...  # -1: not for read_quick

    def read_quick(self, names: Sequence[str]) -> list[np.ndarray]: ...


class Store(Protocol):
    """What a :class:`~tfckpt.bundle.reader.CheckpointReader` needs from a checkpoint format:
    every method below is required; optional capabilities are declared as attributes
    (:attr:`quick`), never probed for."""

    prefix: str
    header: BundleHeader
    index_name: str  # the file named in messages about the index
    verify_checksums: bool

    @property
    def quick(self) -> QuickReads | None: ...  # bulk reads of small tensors, if the format has them

    def names(self) -> Collection[str]: ...  # every tensor name, slice pieces excluded

    def has(self, name: str) -> bool: ...

    def info(self, name: str) -> TensorInfo | None: ...

    def slice_info(self, key: bytes) -> TensorInfo | None: ...

    def peek(self, name: str) -> tuple[DType, tuple[int, ...]]: ...  # without a full decode

    def peek_all(self) -> Listing: ...  # every name and its peek

    def entries(self) -> list[tuple[bytes, TensorInfo]]: ...  # all records, in key order

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]: ...

    def check_stored(self, info: TensorInfo) -> None: ...  # raise unless size and bytes are sane

    def check_entry(self, info: TensorInfo) -> int: ...  # check completely; return bytes checked

    def check_many(self, infos: Iterable[TensorInfo]) -> Iterator[tuple[TensorInfo, int | TfckptError]]: ...

    def read_entry(self, info: TensorInfo) -> np.ndarray: ...

    def read_many(self, infos: Iterable[TensorInfo], max_workers: int | None = None
                  ) -> Iterator[tuple[TensorInfo, np.ndarray]]: ...

    def read_region(self, info: TensorInfo, piece: TensorSlice) -> np.ndarray: ...

    def data_files(self) -> list[tuple[int, str, int | None]]: ...

    def debug_string(self) -> bytes: ...

    def close(self) -> None: ...


class RecordStore(abc.ABC):
    """What stores share whose values are read one record at a time, whole (V1's protobufs, a
    safetensors or ``.npz`` source): entries held in ``_entries`` (name -> record) and
    ``_slice_entries`` (slice key -> record), no quick reads, no data files of their own.
    Subclasses provide the records, :meth:`check_entry`, :meth:`read_entry` and the rest of
    :class:`Store`."""

    quick: QuickReads | None = None  # every read goes through the entry's record
    _entries: dict[str, TensorInfo]
    _slice_entries: dict[bytes, TensorInfo]

    def names(self) -> Collection[str]:
        return self._entries.keys()

    def has(self, name: str) -> bool:
        return name in self._entries

    def info(self, name: str) -> TensorInfo | None:
        return self._entries.get(name)

    def slice_info(self, key: bytes) -> TensorInfo | None:
        return self._slice_entries.get(key)

    def peek(self, name: str) -> tuple[DType, tuple[int, ...]]:
        info = self._entries[name]
        return info.dtype, info.shape

    def peek_all(self) -> Listing:
        kinds = [(info.dtype, info.shape) for info in self._entries.values()]
        return Listing(list(self._entries), kinds, list(range(len(kinds))))

    def entries(self) -> list[tuple[bytes, TensorInfo]]:
        stored = [(name.encode("utf-8", "surrogateescape"), info) for name, info in self._entries.items()]
        return sorted(stored + list(self._slice_entries.items()), key=lambda pair: pair[0])

    @abc.abstractmethod
    def check_entry(self, info: TensorInfo) -> int: ...

    @abc.abstractmethod
    def read_entry(self, info: TensorInfo) -> np.ndarray: ...

    def check_many(self, infos: Iterable[TensorInfo]) -> Iterator[tuple[TensorInfo, int | TfckptError]]:
        for info in infos:
            try:
                yield info, self.check_entry(info)
            except TfckptError as exc:
                yield info, exc

    def read_many(self, infos: Iterable[TensorInfo], max_workers: int | None = None
                  ) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        """Each entry in turn: the values live in records read whole."""
        for info in infos:
            yield info, self.read_entry(info)

    def read_region(self, info: TensorInfo, piece: TensorSlice) -> np.ndarray:
        whole = self.read_entry(info)  # one record: decoded whole
        return whole if piece.covers(info.shape) else whole[piece.index(info.shape)].copy()

    def data_files(self) -> list[tuple[int, str, int | None]]:
        return []  # the values live in the files the records are in


class BundleStore:
    """A V2 tensor bundle: ``PREFIX.index`` and ``PREFIX.data-SSSSS-of-NNNNN``."""

    def __init__(self, prefix: str, *, verify_checksums: bool = True, opener: SourceOpener = FileSource,
                 mmap: bool | Literal["c"] = False) -> None:
        self.prefix = prefix
        self.verify_checksums = verify_checksums
        self.mmap = mmap
        self._opener = opener
        self._shards: dict[int, ByteSource] = {}
        self._lock = threading.Lock()
        self.index_name = index_filename(prefix)
        try:
            index_source = opener(self.index_name)
        except FileNotFoundError:
            raise self._no_index() from None
        self._table = Entries([], b"", np.zeros(0, np.int64), np.zeros(0, np.int64), [])
        # Tensor names in key order: the table's last entries, from row _first_name_row. A tuple
        # of strings, which the garbage collector stops tracking (a list of 10^6 names would be
        # traversed by every full collection while a listing makes its 10^6 shape lists).
        self._names: tuple[str, ...] = ()
        self._first_name_row = 0
        self._row_of: dict[str, int] | None = None  # tensor name -> its entry (made when first asked)
        self._slice_rows: dict[bytes, int] = {}  # slice key -> its entry
        self._plain_entries: PlainEntries | None = None
        self._entries: dict[str, TensorInfo] = {}
        self._slice_entries: dict[bytes, TensorInfo] = {}
        if mmap and index_source.is_remote:
            index_source.close()
            raise UnsupportedError(f"{prefix}: mmap=True maps local files only; this checkpoint is remote "
                                   f"(open it without mmap)")
        self._index_identity: FileIdentity | None = index_source.identity()
        try:
            index_source.prefetch()  # remotely: one request for the whole index, not one per block
            self.header = self._read_index(TableReader(index_source))
        except FileNotFoundError:
            raise self._no_index() from None
        except CorruptionError:
            if index_source.is_remote:  # fetched by size known before: a new one may have come meanwhile
                self._check_not_replaced()
            raise
        finally:
            index_source.close()

    def _no_index(self) -> NotFoundError:
        return NotFoundError(f"no checkpoint at {self.prefix!r}: {self.index_name} does not exist")

    @property
    def quick(self) -> QuickReads:
        """This store reads small plain tensors in bulk (:meth:`quick_sizes`, :meth:`read_quick`)."""
        return self

    def _read_index(self, table: TableReader) -> BundleHeader:
        where = table.name
        entries = self._table = table.scan()
        texts = entries.texts
        if not texts or texts[0] != "":
            raise CorruptionError(f"{where}: missing bundle header (the first key must be the empty "
                                  f"key, found {entries.key(0) if texts else None!r})")
        header = BundleHeader.decode(entries.value(0), where)
        # Keys are strictly increasing, so slice keys (NUL first) come right after the header.
        names = bisect.bisect_left(texts, chr(SLICE_KEY_PREFIX[0] + 1), 1)
        self._slice_rows = {entries.key(row): row for row in range(1, names)}
        self._names = tuple(decode_key_texts(texts[names:]))
        self._first_name_row = names
        # The table keeps the header's and slice keys' texts only: the names are held once.
        self._table = dataclasses.replace(entries, texts=texts[:names])
        self._row_of = None
        return header

    @property
    def _rows(self) -> dict[str, int]:
        """Tensor name -> its entry in the table (listing every name does without it)."""
        if self._row_of is None:
            self._row_of = dict(zip(self._names, itertools.count(self._first_name_row)))
        return self._row_of

    def _value(self, row: int) -> bytes:
        return self._table.value(row)

    # -- records -------------------------------------------------------------------------

    def _checked(self, name: str, info: TensorInfo) -> TensorInfo:
        problem = validate.shard_problem(info, self.header.num_shards)
        if problem is not None:
            raise CorruptionError(f"{self.index_name}: key {describe_key(name)!r} {problem}")
        return info

    def _decode_all(self) -> None:
        """Decode every entry not decoded yet, with one protobuf parse."""
        missing = [(name, self._value(row)) for name, row in self._rows.items() if name not in self._entries]
        if missing:
            for info in TensorInfo.decode_many(missing, self.index_name):
                self._entries[info.name] = self._checked(info.name, info)
        missing_slices = [(decode_key(key), self._value(row)) for key, row in self._slice_rows.items()
                          if key not in self._slice_entries]
        if missing_slices:
            for info in TensorInfo.decode_many(missing_slices, self.index_name):
                self._slice_entries[info.name.encode("utf-8", "surrogateescape")] = self._checked(info.name, info)

    def names(self) -> Collection[str]:
        return self._rows.keys()

    def has(self, name: str) -> bool:
        return name in self._rows

    def info(self, name: str) -> TensorInfo | None:
        info = self._entries.get(name)
        if info is None:
            row = self._rows.get(name)
            if row is None:
                return None
            info = self._entries[name] = self._checked(name, TensorInfo.decode(name, self._value(row),
                                                                               self.index_name))
        return info

    def slice_info(self, key: bytes) -> TensorInfo | None:
        info = self._slice_entries.get(key)
        if info is None and key in self._slice_rows:
            name = decode_key(key)
            info = self._checked(name, TensorInfo.decode(name, self._value(self._slice_rows[key]), self.index_name))
            self._slice_entries[key] = info
        return info

    def peek(self, name: str) -> tuple[DType, tuple[int, ...]]:
        info = self._entries.get(name)
        if info is None:
            peeked = peek(self._value(self._rows[name]))
            if peeked is not None:
                return peeked
            info = self.info(name)
            assert info is not None
        return info.dtype, info.shape

    def peek_all(self) -> Listing:
        first = self._first_name_row
        which, kinds = peek_many(self._table.buffer, self._table.starts[first:], self._table.ends[first:])
        if None in kinds:  # an unusual layout: the full decoder for those entries
            found = [kinds[w] or self.peek(name) for name, w in zip(self._names, which)]
            return Listing(self._names, found, list(range(len(found))))
        return Listing(self._names, cast("list[tuple[DType, tuple[int, ...]]]", kinds), tuple(which))

    def _plain(self) -> PlainEntries:
        """Every name's entry decoded with numpy, once (rows in ``self._rows`` order)."""
        if self._plain_entries is None:
            first = self._first_name_row
            self._plain_entries = decode_plain_many(self._table.buffer, self._table.starts[first:],
                                                    self._table.ends[first:])
        return self._plain_entries

    def _quick_rows(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(row of each name or -1, whether read_quick may read it)``."""
        first = self._first_name_row
        rows = np.fromiter((self._rows.get(name, first - 1) for name in names), dtype=np.int64,
                           count=len(names)) - first
        if self.mmap or self.header.endianness == BIG or not len(rows):
            return rows, np.zeros(len(rows), dtype=bool)

        def local_size(shard_id: int) -> int | None:
            source = self._shard(shard_id)  # remote reads take the planned path (concurrent requests)
            return None if source.is_remote else source.size()
        return rows, fast_reads.quick_rows(self._plain(), rows, self.header.num_shards, local_size)

    def quick_sizes(self, names: Sequence[str]) -> list[int]:
        """For each name: its stored size if :meth:`read_quick` can read it (a small,
        fixed-size tensor in the plain layout of a local little-endian bundle, its bytes
        present; all checked here, vectorised), else -1 (read it through its record)."""
        rows, quick = self._quick_rows(names)
        if not quick.any():
            return [-1] * len(names)
        return cast("list[int]", np.where(quick, self._plain().size[np.where(quick, rows, 0)], -1).tolist())

    def read_quick(self, names: Sequence[str]) -> list[np.ndarray]:
        """The values of ``names`` (each one :meth:`quick_sizes` accepted), read without
        per-tensor records (:func:`tfckpt.bundle.fast_reads.read_rows`)."""
        with self._consistent(remote=False):  # (remote reads take read_many)
            rows, quick = self._quick_rows(names)
            if not quick.all():
                raise ValueError("read_quick: names quick_sizes did not accept")

            def read_into(shard_id: int, start: int, buffer: np.ndarray) -> None:
                self._shard(shard_id).readinto_at(start, buffer.data)

            def reference(i: int) -> None:
                info = self.info(names[i])
                assert info is not None
                self._read_entry(info)
            return fast_reads.read_rows(self._plain(), rows, read_into, self.verify_checksums, reference)

    def entries(self) -> list[tuple[bytes, TensorInfo]]:
        self._decode_all()
        stored = [(name.encode("utf-8", "surrogateescape"), info) for name, info in self._entries.items()]
        stored += list(self._slice_entries.items())
        return sorted(stored, key=lambda pair: pair[0])

    def stored_entries(self) -> Iterator[tuple[str, TensorInfo | CorruptionError | UnsupportedError]]:
        keys = sorted([*((n.encode("utf-8", "surrogateescape"), n, False) for n in self._rows),
                       *((k, decode_key(k), True) for k in self._slice_rows)])
        for raw_key, name, is_slice in keys:
            try:
                info = self.slice_info(raw_key) if is_slice else self.info(name)
                assert info is not None
            except (CorruptionError, UnsupportedError) as exc:
                yield name, exc
                continue
            yield name, info

    # -- data files -----------------------------------------------------------------------

    def _shard(self, shard_id: int) -> ByteSource:
        source = self._shards.get(shard_id)
        if source is not None:
            return source
        with self._lock:
            if shard_id not in self._shards:
                path = data_filename(self.prefix, shard_id, self.header.num_shards)
                try:
                    opened = self._opener(path)
                except FileNotFoundError:
                    self._check_not_replaced()
                    raise NotFoundError(f"data file {path} of checkpoint {self.prefix} does not exist") from None
                try:
                    if not opened.is_remote:  # remote: after each read (see _consistent)
                        self._check_not_replaced()
                except CheckpointReplacedError:
                    opened.close()
                    raise
                self._shards[shard_id] = opened
            return self._shards[shard_id]

    def _check_not_replaced(self) -> None:
        """Raise if ``PREFIX.index`` is no longer the file this store parsed: a data file
        opened now may then belong to a newer save."""
        if self._index_identity is not None and path_identity(self.index_name) != self._index_identity:
            raise CheckpointReplacedError(f"checkpoint {self.prefix} was replaced by a newer save while this "
                                          f"reader was open; open it again")

    @contextlib.contextmanager
    def _consistent(self, remote: bool) -> Iterator[None]:
        """Around a read of data: a damaged read while ``PREFIX.index`` changed is the
        replacement's doing (:class:`CheckpointReplacedError`); after a remote read, the
        index must still be the one parsed (else the bytes may be a newer save's)."""
        try:
            yield
        except CorruptionError:  # ChecksumError included
            self._check_not_replaced()
            raise
        if remote:
            self._check_not_replaced()

    def data_files(self) -> list[tuple[int, str, int | None]]:
        """Each data file the header names; when that is more than the used ones plus
        :data:`MAX_UNUSED_SHARDS_LISTED`, only those entries use (work bounded by the index)."""
        count = self.header.num_shards
        shards: Iterable[int] = range(count)
        if count > MAX_UNUSED_SHARDS_LISTED:
            used = sorted({info.shard_id for _, info in self.stored_entries()
                           if isinstance(info, TensorInfo) and not info.slices})
            if count > len(used) + MAX_UNUSED_SHARDS_LISTED:
                shards = used
        out: list[tuple[int, str, int | None]] = []
        for shard in shards:
            path = data_filename(self.prefix, shard, self.header.num_shards)
            try:
                out.append((shard, path, self._shard(shard).size()))
            except NotFoundError:
                out.append((shard, path, None))
        return out

    def check_stored(self, info: TensorInfo) -> None:
        problem = validate.size_problem(info)  # (a rule that holds builds no message)
        if problem is None:
            problem = validate.bytes_problem(info.offset, info.size, self._shard(info.shard_id).size())
        if problem is not None:
            raise CorruptionError(f"{self.index_name}: key {describe_key(info.name)!r}: {problem}")

    def read_many(self, infos: Iterable[TensorInfo], max_workers: int | None = None
                  ) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        """``(info, value)`` for each stored entry in ``infos``, in storage order, read with as
        few requests as :func:`tfckpt.bundle.plan.plan_fetches` allows.

        Every entry is checked (size rule, dtype readable) before anything is read. Small
        neighbours share one fetched buffer and come back as views of it (aligned fixed-size
        tensors; others are copied out); large ones are read straight into their own arrays.
        Fetches run on up to ``max_workers`` threads (remote: concurrent requests), with at
        most :data:`READ_WINDOW_BYTES` fetched ahead of the caller.
        """
        infos = list(infos)
        with self._consistent(remote=bool(infos) and self._shard(infos[0].shard_id).is_remote):
            yield from self._read_many(infos, max_workers)

    def _read_many(self, infos: list[TensorInfo], max_workers: int | None
                   ) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        for info in infos:
            self._check_readable(info)
        remote = bool(infos) and self._shard(infos[0].shard_id).is_remote
        if self.mmap and not remote:
            for info in infos:
                yield info, self._read_entry(info)
            return
        fetches = plan.plan_fetches(infos, plan.REMOTE if remote else plan.LOCAL)
        total = sum(fetch.size for fetch in fetches)
        if max_workers is None:  # the process-wide setting bounds every pool (see tfckpt.settings)
            threads = get_num_threads()
            if remote:
                max_workers = REMOTE_FETCHES if threads > 1 else 1
            else:
                max_workers = threads if total >= PARALLEL_MIN_BYTES else 1
        if max_workers <= 1 or len(fetches) <= 1:
            for fetch in fetches:
                yield from cast("Iterator[tuple[TensorInfo, np.ndarray]]", self._execute(fetch))
            return
        with ThreadPoolExecutor(max_workers, thread_name_prefix="tfckpt-read") as pool:
            pending: deque[tuple[Future[list[tuple[TensorInfo, np.ndarray]]], int]] = deque()
            ahead = 0
            for fetch in fetches:
                while pending and ahead + fetch.size > READ_WINDOW_BYTES:
                    done, size = pending.popleft()
                    ahead -= size
                    yield from done.result()
                pending.append((pool.submit(self._execute_all, fetch), fetch.size))
                ahead += fetch.size
            while pending:
                yield from pending.popleft()[0].result()

    def _check_readable(self, info: TensorInfo) -> None:
        if not (info.dtype.is_fixed_size or info.dtype.name == "string"):
            raise self._opaque(info)
        if self._shard(info.shard_id).is_remote:  # a remote file's size costs a request: the fetch
            problem = validate.size_problem(info)  # itself shows whether the bytes are there
            if problem is not None:
                raise CorruptionError(f"{self.index_name}: key {describe_key(info.name)!r}: {problem}")
        else:
            self.check_stored(info)

    def _opaque(self, info: TensorInfo) -> UnsupportedError:
        """The error for an entry whose dtype's values tfckpt cannot read."""
        return UnsupportedError(f"{self._where(info)}: tensors of dtype {info.dtype.name} cannot be read by "
                                f"tfckpt (shape {list(info.shape)} listed; values are opaque)")

    def _where(self, info: TensorInfo) -> str:
        return f"{data_filename(self.prefix, info.shard_id, self.header.num_shards)}: key {describe_key(info.name)!r}"

    def _execute_all(self, fetch: plan.Fetch) -> list[tuple[TensorInfo, np.ndarray]]:
        return cast("list[tuple[TensorInfo, np.ndarray]]", list(self._execute(fetch)))

    def _execute(self, fetch: plan.Fetch, forgiving: bool = False
                 ) -> Iterator[tuple[TensorInfo, np.ndarray | TfckptError]]:
        """The values of one fetch's entries; with ``forgiving`` (for checking only), an entry
        that fails its check comes back as its error and the others still come, and string
        tensors are checked without making their values (an empty array stands for them)."""
        if not fetch.coalesced:
            info = fetch.entries[0]
            yield info, self._read_entry(info)
            return
        source = self._shard(fetch.shard_id)
        buffer = np.empty(fetch.size, dtype=np.uint8)
        source.readinto_at(fetch.start, buffer.data)
        big = self.header.endianness == BIG
        verify = self.verify_checksums or forgiving
        for info in fetch.entries:
            at = info.offset - fetch.start
            try:
                if info.dtype.name == "string" and forgiving:
                    payload.check_strings(buffer[at:at + info.size].tobytes(), info.offset, info.num_elements, big,
                                          info.masked_crc32c, functools.partial(self._where, info))
                    yield info, np.empty(0, dtype=object)
                elif info.dtype.name == "string":
                    flat = payload.decode_strings(buffer[at:at + info.size].tobytes(), info.offset,
                                                  info.num_elements, big, verify, info.masked_crc32c,
                                                  functools.partial(self._where, info))
                    yield info, flat.reshape(info.shape)
                else:
                    yield info, payload.cut_fixed(buffer, at, info.shape, info.dtype, big, verify,
                                                  info.masked_crc32c, functools.partial(self._where, info),
                                                  info.offset)
            except TfckptError as exc:
                if not forgiving:
                    raise
                yield info, exc

    def check_many(self, infos: Iterable[TensorInfo]) -> Iterator[tuple[TensorInfo, int | TfckptError]]:
        """:meth:`check_entry` for each entry, with the reads planned as in :meth:`read_many`
        (neighbours checked from one fetched buffer); each entry's outcome on its own: the
        bytes checked, or the error it raised. Memory stays within one fetch."""
        checkable = []
        for info in infos:
            try:
                self.check_stored(info)
            except TfckptError as exc:
                yield info, exc
                continue
            checkable.append(info)
        tuning = plan.REMOTE if checkable and self._shard(checkable[0].shard_id).is_remote else plan.LOCAL
        for fetch in plan.plan_fetches(checkable, tuning):
            if not fetch.coalesced:
                info = fetch.entries[0]
                try:
                    yield info, self.check_entry(info)
                except TfckptError as exc:
                    yield info, exc
                continue
            try:
                values = dict(self._execute_checked(fetch))
            except TfckptError:  # the fetch itself failed: find out entry by entry
                for info in fetch.entries:
                    try:
                        yield info, self.check_entry(info)
                    except TfckptError as exc:
                        yield info, exc
                continue
            for info in fetch.entries:
                yield info, values[id(info)]

    def _execute_checked(self, fetch: plan.Fetch) -> Iterator[tuple[int, int | TfckptError]]:
        outcomes = self._execute(fetch, forgiving=True)
        for info, value in outcomes:
            yield id(info), value if isinstance(value, TfckptError) else info.size

    def check_entry(self, info: TensorInfo) -> int:
        self.check_stored(info)
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {describe_key(info.name)!r}"
        if info.dtype.is_fixed_size:
            payload.check_crc(source, info.offset, info.size, info.masked_crc32c, where)
        elif info.dtype.name == "string":  # check_stored kept the read inside the file
            payload.check_strings(source.read_at(info.offset, info.size), info.offset, info.num_elements,
                                  self.header.endianness == BIG, info.masked_crc32c, where)
        return info.size

    def read_entry(self, info: TensorInfo) -> np.ndarray:
        with self._consistent(remote=self._shard(info.shard_id).is_remote):
            return self._read_entry(info)

    def _read_entry(self, info: TensorInfo) -> np.ndarray:
        source = self._shard(info.shard_id)
        where = f"{source.name}: key {describe_key(info.name)!r}"
        big = self.header.endianness == BIG
        if info.dtype.is_fixed_size or info.dtype.name == "string":
            self.check_stored(info)
        if info.dtype.is_fixed_size:
            return payload.read_fixed(source, info.offset, info.shape, info.dtype, big,
                                      self.verify_checksums, info.masked_crc32c, where, use_mmap=self.mmap)
        if info.dtype.name == "string":
            flat = payload.read_strings(source, info.offset, info.size, info.num_elements, big,
                                        self.verify_checksums, info.masked_crc32c, where)
            return flat.reshape(info.shape)
        raise self._opaque(info)

    def read_region(self, info: TensorInfo, piece: TensorSlice) -> np.ndarray:
        with self._consistent(remote=self._shard(info.shard_id).is_remote):
            return self._read_region(info, piece)

    def _read_region(self, info: TensorInfo, piece: TensorSlice) -> np.ndarray:
        shape = info.shape
        if piece.covers(shape):
            return self._read_entry(info)
        bounds = piece.bounds(shape)
        if not info.dtype.is_fixed_size:  # variable-size layouts must be parsed whole
            return self._read_entry(info)[tuple(slice(lo, hi) for lo, hi in bounds)].copy()
        self.check_stored(info)
        source = self._shard(info.shard_id)
        return payload.read_fixed_region(source, info.offset, shape, info.dtype, bounds,
                                         self.header.endianness == BIG,
                                         f"{source.name}: key {describe_key(info.name)!r}")

    def debug_string(self) -> bytes:
        """TF's ``CheckpointReader.debug_string()``: ``key (DT_NAME) [d0,d1]`` per stored entry.

        Like TensorFlow, this lists raw index keys in byte order, including the keys of slice
        pieces, and leaves out the data-less full entries of partitioned tensors.
        """
        lines = [b"%s (%s) [%s]\n" % (key, DataType(info.dtype.as_datatype_enum).name.encode(),
                                      ",".join(str(d) for d in info.shape).encode())
                 for key, info in self.entries() if not info.slices]
        return b"".join(lines)

    def close(self) -> None:
        with self._lock:
            for source in self._shards.values():
                source.close()
            self._shards.clear()
