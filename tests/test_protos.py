import subprocess
import sys
from pathlib import Path

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
