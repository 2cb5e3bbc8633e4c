import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_generated_modules_are_up_to_date() -> None:
    # Regenerates from protos/ with the pinned protoc (in a private venv if need be) and compares.
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_proto_has_a_module() -> None:
    protos = {p.stem for p in (ROOT / "protos" / "tfckpt" / "_proto").glob("*.proto")}
    modules = {p.stem[: -len("_pb2")] for p in (ROOT / "src" / "tfckpt" / "_proto").glob("*_pb2.py")}
    assert protos == modules


def test_messages_live_in_a_private_package() -> None:
    from tfckpt._proto import tensor_bundle_pb2
    assert tensor_bundle_pb2.BundleEntryProto.DESCRIPTOR.full_name == "tfckpt.BundleEntryProto"


def test_generator_never_re_executes_itself_twice(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    import pytest
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "tools" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    gen_protos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_protos)
    monkeypatch.setenv(gen_protos.REEXEC_MARKER, "1")  # as if already re-executed once
    with pytest.raises(SystemExit, match="delete that directory"):
        gen_protos._reexec_in_tools_venv(["--check"])


TF_MODULES = {  # our proto file -> TensorFlow's module holding the same messages
    "struct": "tensorflow.core.protobuf.struct_pb2",
    "saved_object_graph": "tensorflow.core.protobuf.saved_object_graph_pb2",
    "saved_model": "tensorflow.core.protobuf.meta_graph_pb2",
    "graph": "tensorflow.core.framework.graph_pb2",
    "types": "tensorflow.core.framework.types_pb2",
    "tensor_bundle": "tensorflow.core.protobuf.tensor_bundle_pb2",
}
TF_ELSEWHERE = {  # our message name -> TensorFlow's module, where it lives in another file
    "NodeDef": "tensorflow.core.framework.node_def_pb2", "FunctionDefLibrary": "tensorflow.core.framework.function_pb2",
    "FunctionDef": "tensorflow.core.framework.function_pb2", "OpDef": "tensorflow.core.framework.op_def_pb2",
    "AttrValue": "tensorflow.core.framework.attr_value_pb2", "NameAttrList": "tensorflow.core.framework.attr_value_pb2",
    "SaverDef": "tensorflow.core.protobuf.saver_pb2", "VariableDef": "tensorflow.core.framework.variable_pb2",
    "SavedModel": "tensorflow.core.protobuf.saved_model_pb2", "SignatureTensorInfo": "tensorflow.core.protobuf.meta_graph_pb2",
}
TF_RENAMED = {"SignatureTensorInfo": "TensorInfo"}


@pytest.mark.tf
def test_every_field_has_tensorflows_number_and_type(tf) -> None:  # type: ignore[no-untyped-def]
    """Our .proto copies are wire-compatible: each field we declare exists in TensorFlow's
    message of the same name with the same number and wire type; enums have TF's values."""
    import importlib

    checked = 0
    for ours_name, tf_module in TF_MODULES.items():
        ours = importlib.import_module(f"tfckpt._proto.{ours_name}_pb2")
        for message in ours.DESCRIPTOR.message_types_by_name.values():
            if message.name in ("Opaque", "BundleEntryList"):
                continue  # our own placeholders
            module = importlib.import_module(TF_ELSEWHERE.get(message.name, tf_module))
            theirs = getattr(module, TF_RENAMED.get(message.name, message.name)).DESCRIPTOR
            checked += _compare(message, theirs)
        for enum in ours.DESCRIPTOR.enum_types_by_name.values():
            tf_enum = importlib.import_module(tf_module).DESCRIPTOR.enum_types_by_name[enum.name]
            assert {v.name: v.number for v in enum.values} == {v.name: v.number for v in tf_enum.values}
            checked += 1
    assert checked > 40


def _compare(ours, theirs, seen: set[str] | None = None) -> int:  # type: ignore[no-untyped-def]
    seen = set() if seen is None else seen
    if ours.full_name in seen:  # recursive messages (StructuredValue)
        return 0
    seen.add(ours.full_name)
    count = 1
    for field in ours.fields:
        match = theirs.fields_by_number.get(field.number)
        assert match is not None, f"{ours.full_name}.{field.name}: TF has no field {field.number}"
        assert (match.name, match.type, match.is_repeated) == (field.name, field.type, field.is_repeated) or (
            field.type == field.TYPE_MESSAGE and match.type == match.TYPE_MESSAGE), f"{ours.full_name}.{field.name}"
        if field.type == field.TYPE_MESSAGE and field.message_type.name != "Opaque" and not field.message_type.GetOptions().map_entry:
            count += _compare(field.message_type, match.message_type, seen)
    for nested in ours.nested_types:
        if not nested.GetOptions().map_entry and nested.name in theirs.nested_types_by_name:
            count += _compare(nested, theirs.nested_types_by_name[nested.name], seen)
    return count
