"""A checkpoint as a tree: what ``tfckpt tree`` prints.

A TF2 checkpoint is an object graph: the tree follows it from the root (model -> layers ->
variables), with each variable's optimizer slots hung under it, dtype and shape at the leaves,
and an object reachable along several routes expanded once and marked as shared at the
others. Branches holding no tensors are left out. A name-based (TF1) checkpoint becomes the
tree of its ``/``-separated names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bundle.graph import VARIABLE_VALUE, ObjectGraph
from .bundle.objects import optimizer_nodes
from .bundle.reader import CheckpointReader
from .errors import TfckptError

__all__ = ["TreeNode", "checkpoint_tree", "render_tree"]


@dataclass
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
        return (self.dtype is not None) + sum(child.tensors() for child in self.children)


def checkpoint_tree(reader: CheckpointReader, *, optimizer: bool = True) -> TreeNode:
    """The tree of the checkpoint ``reader`` reads (see the module docstring).

    Examples
    --------
    >>> import tfckpt
    >>> tree = checkpoint_tree(tfckpt.load_checkpoint("examples/keras_mlp"), optimizer=False)
    >>> [child.name for child in tree.children]
    ['model', 'save_counter']
    """
    try:
        graph = reader.object_graph
    except TfckptError:
        graph = None
    root = TreeNode(reader.prefix)
    if graph is None:
        for name in reader:
            node = root
            parts = name.split("/")
            for part in parts[:-1]:
                found = next((c for c in node.children if c.name == part and c.dtype is None), None)
                if found is None:
                    found = TreeNode(part)
                    node.children.append(found)
                node = found
            info = reader.tensor_info(name)
            node.children.append(TreeNode(parts[-1], info.dtype.name, info.shape))
        return root
    return _object_tree(reader, graph, root, optimizer)


def _object_tree(reader: CheckpointReader, graph: ObjectGraph, root: TreeNode, optimizer: bool) -> TreeNode:
    skip = optimizer_nodes(graph) if not optimizer else set()
    slots: dict[int, list[tuple[str, int]]] = {}
    if optimizer:
        for node in graph.nodes:
            for slot in node.slot_variables:
                slots.setdefault(slot.original_variable_node_id, []).append(
                    (slot.slot_name, slot.slot_variable_node_id))
    seen: dict[int, str] = {}

    def leaf_info(node_id: int) -> tuple[str, tuple[int, ...]] | None:
        attribute = graph.nodes[node_id].attribute(VARIABLE_VALUE)
        if attribute is None or attribute.checkpoint_key not in reader:
            return None
        info = reader.tensor_info(attribute.checkpoint_key)
        return info.dtype.name, info.shape

    holds: dict[int, bool] = {}

    def holds_tensors(node_id: int) -> bool:
        """Whether anything saved is reachable from ``node_id`` (cycle-safe)."""
        if node_id not in holds:
            holds[node_id] = False  # while visiting: a cycle adds nothing
            node = graph.nodes[node_id]
            holds[node_id] = (any(a.checkpoint_key in reader for a in node.attributes)
                              or any(leaf_info(slot_id) is not None for _, slot_id in slots.get(node_id, []))
                              or any(holds_tensors(r.node_id) for r in node.children
                                     if r.node_id not in skip and 0 <= r.node_id < len(graph.nodes)))
        return holds[node_id]

    def build(node_id: int, name: str, path: str) -> TreeNode | None:
        if not holds_tensors(node_id):
            return None  # nothing saved below this object
        if node_id in seen:
            return TreeNode(name, shared_with=seen[node_id])
        seen[node_id] = path
        node = graph.nodes[node_id]
        out = TreeNode(name)
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
        for ref in node.children:
            if ref.node_id in skip or not 0 <= ref.node_id < len(graph.nodes):
                continue
            child = build(ref.node_id, ref.local_name, f"{path}/{ref.local_name}" if path else ref.local_name)
            if child is not None:
                out.children.append(child)
        return out

    built = build(0, root.name, "")
    if built is not None:
        root.children = built.children
    return root


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

    def walk(node: TreeNode, indent: str, level: int) -> None:
        for index, child in enumerate(node.children):
            last = index == len(node.children) - 1
            line = describe(child)
            if depth is not None and level >= depth and child.children:
                line += f"  ... ({child.tensors()} tensors)"
                lines.append(f"{indent}{'└── ' if last else '├── '}{line}")
                continue
            lines.append(f"{indent}{'└── ' if last else '├── '}{line}")
            walk(child, indent + ("    " if last else "│   "), level + 1)

    walk(root, "", 1)
    return "\n".join(lines) + "\n"
