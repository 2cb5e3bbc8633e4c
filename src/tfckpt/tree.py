"""A checkpoint as a tree: what ``tfckpt tree`` prints.

A TF2 checkpoint is an object graph: the tree follows it from the root (model -> layers ->
variables), with each variable's optimizer slots hung under it, dtype and shape at the leaves,
and an object reachable along several routes expanded once, at the path ``object_paths()``
gives it, and marked as shared at the others. Branches holding no tensors are left out. A name-based (TF1) checkpoint becomes the
tree of its ``/``-separated names.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .bundle.graph import VARIABLE_VALUE, ObjectGraph, display_path
from .bundle.objects import canonical_walk, slot_links
from .bundle.reader import CheckpointReader
from .formats import reading
from .storage import PathLike

__all__ = ["TreeNode", "checkpoint_tree", "render_tree"]


@dataclass(slots=True)
class TreeNode:
    """One line of the tree: a name, a tensor's dtype and shape (leaves), children.

    Examples
    --------
    >>> leaf = TreeNode("kernel", "float32", (4, 3))
    >>> TreeNode("dense", children=[leaf]).tensors()
    1
    """

    name: str
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    children: list[TreeNode] = field(default_factory=list)
    shared_with: str | None = None  # set on a repeated object: the path where it is expanded
    slot: bool = False  # an optimizer slot of its parent variable

    def tensors(self) -> int:
        """The tensors in this subtree (iteratively: trees can be thousands of levels deep)."""
        count, pending = 0, [self]
        while pending:
            node = pending.pop()
            count += node.dtype is not None
            pending += node.children
        return count


def checkpoint_tree(path: PathLike | CheckpointReader, *, optimizer: bool = True) -> TreeNode:
    """The tree of the checkpoint at ``path`` (or read by the reader ``path``; see the module
    docstring).

    A damaged object graph raises (a :class:`~tfckpt.CorruptionError`), as everywhere the
    graph is used: the tree of its raw keys would hide the damage. Time and memory are
    O(objects + edges + tensors), whatever the graph's depth and sharing.

    Examples
    --------
    >>> import tfckpt
    >>> tree = checkpoint_tree("examples/keras_mlp", optimizer=False)
    >>> [child.name for child in tree.children]
    ['model', 'save_counter']
    """
    with reading(path) as reader, _collector_paused():
        return _tree(reader, optimizer)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a tree is built: the tree holds no cycles, yet
    each full collection walks every node built so far, and their number grows with the tree
    (2x the build's time at 10^6 tensors, and a superlinear curve). Mercurial pauses it the
    same way to parse its dirstate. Process-wide: another thread's cyclic garbage waits until
    the build ends; a collector the caller had paused stays paused."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _tree(reader: CheckpointReader, optimizer: bool) -> TreeNode:
    graph = reader.object_graph
    root = TreeNode(reader.prefix)
    if graph is None:
        # Dtypes and shapes from the index's listing, not one full record per tensor: records
        # are kept by the store, and 10^6 of them made the collector's passes superlinear.
        listing = reader.store.peek_all()
        names, kinds, which = listing.names, listing.kinds, listing.which
        # In sorted order the names under one folder are consecutive (strings sharing a prefix
        # always are), so the open folders are a stack: no lookup table of every folder.
        opened: list[tuple[str, TreeNode]] = []  # (name, folder) from the root down
        for row in sorted(range(len(names)), key=names.__getitem__):  # the reader's order
            *folders, leaf = names[row].split("/")
            kept = 0
            while kept < len(opened) and kept < len(folders) and opened[kept][0] == folders[kept]:
                kept += 1
            del opened[kept:]
            node = opened[-1][1] if opened else root
            for part in folders[kept:]:
                folder = TreeNode(part)
                node.children.append(folder)
                opened.append((part, folder))
                node = folder
            dtype, shape = kinds[which[row]]
            node.children.append(TreeNode(leaf, dtype.name, shape))
        return root
    return _object_tree(reader, graph, root, optimizer)


def _object_tree(reader: CheckpointReader, graph: ObjectGraph, root: TreeNode, optimizer: bool) -> TreeNode:
    """Each object expanded once, at its canonical path (the one ``object_paths`` reports),
    and marked as shared wherever else an edge leads to it; built children-first."""
    nodes = graph.nodes
    walk = canonical_walk(graph, optimizer=optimizer)
    slots: dict[int, list[tuple[str, int]]] = {}
    if optimizer:
        for link in slot_links(graph, walk):
            if not link.keras:  # Keras 3 slots are ordinary children of their optimizer
                slots.setdefault(link.variable, []).append((link.slot_name, link.slot))

    def leaf_info(node_id: int) -> tuple[str, tuple[int, ...]] | None:
        attribute = nodes[node_id].attribute(VARIABLE_VALUE)
        if attribute is None or attribute.checkpoint_key not in reader:
            return None
        info = reader.tensor_info(attribute.checkpoint_key)
        return info.dtype.name, info.shape

    # Whether anything saved is reachable from a node: backwards from the nodes holding tensors.
    holds = {node_id for node_id in walk.order
             if any(a.checkpoint_key in reader for a in nodes[node_id].attributes)
             or any(leaf_info(slot_id) is not None for _, slot_id in slots.get(node_id, []))}
    callers: dict[int, list[int]] = {}
    for node_id in walk.order:
        for _, ref in walk.edges(node_id):
            callers.setdefault(ref.node_id, []).append(node_id)
    pending = list(holds)
    while pending:
        for caller in callers.get(pending.pop(), []):
            if caller not in holds:
                holds.add(caller)
                pending.append(caller)

    built: dict[int, TreeNode] = {}
    for node_id in reversed(walk.order):  # children before parents
        if node_id not in holds:
            continue  # nothing saved below this object
        node = nodes[node_id]
        out = built[node_id] = TreeNode("")
        found = leaf_info(node_id)
        if found is not None:
            out.dtype, out.shape = found
        for attribute in node.attributes:
            if attribute.name != VARIABLE_VALUE and attribute.checkpoint_key in reader:
                info = reader.tensor_info(attribute.checkpoint_key)
                out.children.append(TreeNode(attribute.name, info.dtype.name, info.shape))
        for slot_name, slot_id in slots.get(node_id, []):
            slot_info = leaf_info(slot_id)
            if slot_info is not None:
                out.children.append(TreeNode(slot_name, slot_info[0], slot_info[1], slot=True))
        for index, ref in walk.edges(node_id):
            if ref.node_id not in holds:
                continue
            if walk.is_canonical(node_id, index):
                child = built[ref.node_id]
                child.name = ref.local_name
            else:
                child = TreeNode(ref.local_name, shared_with=display_path(walk.path(ref.node_id)))
            out.children.append(child)
    if 0 in built:
        root.children = built[0].children
    return root


# Levels drawn with their own indent; deeper ones keep the last indent and say their level, so a
# 3,000-deep chain prints O(depth) characters, not O(depth**2).
DRAWN_LEVELS = 64


def render_tree(root: TreeNode, *, depth: int | None = None) -> str:
    """The tree as text with box-drawing branches; ``depth`` cuts it after that many levels
    (a cut branch says how many tensors it holds).

    Examples
    --------
    >>> print(render_tree(TreeNode("ckpt", children=[TreeNode("dense", children=[TreeNode("w", "float32", (2,))])])))
    ckpt
    └── dense
        └── w  float32[2]
    <BLANKLINE>
    """
    lines = [root.name]

    def describe(node: TreeNode) -> str:
        text = f"(slot) {node.name}" if node.slot else node.name
        if node.shared_with is not None:
            return f"{text}  -> same object as {node.shared_with}"
        if node.dtype is not None:
            text += f"  {node.dtype}[{', '.join(str(d) for d in node.shape or ())}]"
        return text

    # Depth first without recursion: a stack of (node, its indent, its level), last child on top.
    pending = [(child, "", 1, index == len(root.children) - 1) for index, child in enumerate(root.children)]
    pending.reverse()
    while pending:
        child, indent, level, last = pending.pop()
        line = describe(child)
        if depth is not None and level >= depth and child.children:
            lines.append(f"{indent}{'└── ' if last else '├── '}{line}  ... ({child.tensors()} tensors)")
            continue
        if level > DRAWN_LEVELS:
            line = f"[level {level}] {line}"
        lines.append(f"{indent}{'└── ' if last else '├── '}{line}")
        inner = indent + ("    " if last else "│   ") if level < DRAWN_LEVELS else indent
        count = len(child.children)
        pending += [(grandchild, inner, level + 1, index == count - 1)
                    for index, grandchild in reversed(list(enumerate(child.children)))]
    return "\n".join(lines) + "\n"
