"""Generate tfckpt's protobuf modules from ``protos/`` (the one documented command).

Usage (from the repository root)::

    python tools/gen_protos.py          # regenerate src/tfckpt/_proto/*_pb2.py
    python tools/gen_protos.py --check  # exit 1 if the committed modules are out of date

Why a pinned, old protoc: gencode from protoc >= 26 calls ``ValidateProtobufRuntimeVersion``
and refuses any runtime older than itself, which would force every user onto the newest
protobuf. Gencode from protoc 21 (grpcio-tools 1.51.3) imports on every runtime from 4.21.12
through 7.x, which is the range tfckpt declares and CI tests at both ends.

If the running interpreter lacks that exact grpcio-tools, the script makes a private venv
under ``build/protoc-venv`` (ignored by git), installs it there, and re-runs itself with it.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

GRPCIO_TOOLS = "1.51.3"  # bundles protoc 21.x; see the module docstring
PROTOBUF_FOR_TOOLS = "4.21.12"
ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("tfckpt") / "_proto"
OUTPUT_DIR = ROOT / "src" / PACKAGE_DIR
TOOLS_VENV = ROOT / "build" / "protoc-venv"
REEXEC_MARKER = "TFCKPT_GEN_PROTOS_IN_TOOLS_VENV"
INIT_TEXT = '"""Generated protobuf modules (see tools/gen_protos.py); private to tfckpt."""\n'


def _have_pinned_tools() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("grpcio-tools") == GRPCIO_TOOLS
    except PackageNotFoundError:
        return False


def _reexec_in_tools_venv(argv: list[str]) -> int:
    if os.environ.get(REEXEC_MARKER):
        # Already re-executed once and the tools are still missing: never recurse.
        raise SystemExit(f"grpcio-tools {GRPCIO_TOOLS} is missing from {TOOLS_VENV}; delete that directory "
                         f"and run again")
    python = TOOLS_VENV / "bin" / "python"
    ready = TOOLS_VENV / ".ready"  # written last, so a half-built venv is never used
    if not ready.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS_VENV)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q",
             f"grpcio-tools=={GRPCIO_TOOLS}", f"protobuf=={PROTOBUF_FOR_TOOLS}", "setuptools"],
            check=True,
        )
        ready.write_text(f"grpcio-tools=={GRPCIO_TOOLS}\n")
    env = {**os.environ, REEXEC_MARKER: "1"}
    return subprocess.run([str(python), __file__, *argv], check=False, env=env).returncode


def generate(out_root: Path) -> list[Path]:
    """Run protoc on every .proto under protos/ and write the modules below ``out_root``."""
    from grpc_tools import protoc

    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out_root}",
            f"--pyi_out={out_root}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out_dir = out_root / PACKAGE_DIR
    (out_dir / "__init__.py").write_text(INIT_TEXT)
    return sorted([*out_dir.glob("*.py"), *out_dir.glob("*.pyi")])


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [p.name for p in fresh if not (OUTPUT_DIR / p.name).exists()
                 or not filecmp.cmp(p, OUTPUT_DIR / p.name, shallow=False)]
        committed = {p.name for p in [*OUTPUT_DIR.glob("*.py"), *OUTPUT_DIR.glob("*.pyi")]}
        extra = sorted(committed - {p.name for p in fresh})
    if stale or extra:
        print(f"protobuf modules out of date: differ={stale} not generated={extra}; "
              "run: python tools/gen_protos.py", file=sys.stderr)
        return 1
    print("protobuf modules are up to date")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if not _have_pinned_tools():
        return _reexec_in_tools_venv(argv)
    if args.check:
        return check()
    for stale in [*OUTPUT_DIR.glob("*_pb2.py"), *OUTPUT_DIR.glob("*_pb2.pyi")]:
        stale.unlink()
    written = generate(ROOT / "src")
    print("wrote", ", ".join(p.name for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
