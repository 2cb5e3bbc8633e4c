"""Every code block of README.md, executed: a renamed keyword breaks this test, not the user.

Python blocks run in order in one namespace (as a reader pastes them into one session), in a
scratch directory holding what they name: `examples/`, a `big_run/` with an embedding, a
`tf1_run/`, a `keras_run/`, `tmp/part-*`, a SavedModel `my_model`, a `.meta` file, an
S3-protocol server with a bucket `bucket`, and an HTTP server standing in for
`https://example.com`. A few names stand for the reader's own data (`w1`, `part0`,
`my_tensors`, ...): PLACEHOLDERS gives them values. Shell blocks run with bash, the
placeholders of the command-line block (`CKPT`, `A B`) replaced by real paths. The set-up
blocks run in a copy of the repository with a fresh virtualenv; `bash .ci/run` is this CI
itself and is only checked to be the command CI runs.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, FIXTURES

import tfckpt

pytestmark = pytest.mark.tf  # the Keras block needs TensorFlow; CI's first stage has all

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SAVEDMODELS = Path(__file__).parent / "fixtures" / "savedmodels" / "2.21.0"


DOCS = ROOT / "docs"


def blocks(path: Path = README) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of every fenced block of a Markdown file."""
    out = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.fullmatch(r"```(\w+)", lines[i])
        if match:
            end = lines.index("```", i + 1)
            out.append((match.group(1), "\n".join(lines[i + 1:end]) + "\n", i + 1))
            i = end
        i += 1
    return out


def placeholders() -> dict[str, object]:
    rng = np.random.default_rng(0)
    return {
        "w1": rng.standard_normal((4, 3)).astype(np.float32), "b1": np.zeros(3, np.float32),
        "w2": rng.standard_normal((3, 2)).astype(np.float32), "b2": np.zeros(2, np.float32),
        "part0": np.zeros((500, 64), np.float32), "part1": np.ones((500, 64), np.float32),
        "my_tensors": {"layer/w": np.arange(6.0).reshape(2, 3)}, "tensors": {"w": np.arange(3.0)},
        "rank": 0, "world_size": 1,
    }


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "examples").symlink_to(EXAMPLES)
    embedding = np.arange(100_300 * 4, dtype=np.float32).reshape(100_300, 4)
    tfckpt.save({"embedding": embedding}, tmp_path / "big_run" / "model")
    tfckpt.Saver({"dense/kernel": np.ones((4, 3), np.float32)}).save(tmp_path / "tf1_run" / "model.ckpt", 1)
    shutil.copytree(EXAMPLES / "keras_mlp", tmp_path / "keras_run")
    tfckpt.save({"a": np.arange(3)}, tmp_path / "tmp" / "part-0")
    tfckpt.save({"b": np.arange(4)}, tmp_path / "tmp" / "part-1")
    shutil.copytree(SAVEDMODELS / "keras3", tmp_path / "my_model", ignore=shutil.ignore_patterns("expected"))
    shutil.copy(SAVEDMODELS / "tf1_ref.meta", tmp_path / "model.ckpt-1000.meta")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def services(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An S3 server with `bucket`, an HTTP server for example.com, a one-process torch group."""
    import threading
    from http.server import ThreadingHTTPServer

    from conftest import optional
    moto_server = optional("moto.server")
    optional("s3fs")
    optional("torch")
    from test_remote import RangeHandler

    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        monkeypatch.setenv(key, value)
    import fsspec
    import s3fs
    s3fs.S3FileSystem.clear_instance_cache()
    fsspec.filesystem("s3").mkdir("bucket")
    web = sandbox / "web"
    tfckpt.save({"conv/kernel": np.ones((3, 3), np.float32)}, web / "models" / "resnet" / "model.ckpt-100")
    http = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: RangeHandler(*a, directory=str(web), **k))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port), "RANK": "0",
                       "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    try:
        yield {"https://example.com": f"http://127.0.0.1:{http.server_address[1]}"}
    finally:
        http.shutdown()
        http.server_close()
        s3.stop()
        s3fs.S3FileSystem.clear_instance_cache()
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def test_every_python_block_runs(services: dict[str, str]) -> None:
    namespace: dict[str, object] = dict(placeholders())
    ran = 0
    for language, code, line in blocks():
        if language != "python":
            continue
        for url, local in services.items():
            code = code.replace(url, local)
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102 - the README's own code
        except Exception as exc:
            raise AssertionError(f"README.md block at line {line} failed: {exc!r}\n{code}") from exc
        ran += 1
    assert ran >= 11
    # What the blocks promise, checked on what they made.
    assert tfckpt.load("out/merged")["b"].tolist() == [0, 1, 2, 3]
    assert tfckpt.latest_checkpoint("train") == "train/model.ckpt-1000"
    assert tfckpt.load("s3://bucket/run/model-100")["layer/w"].shape == (2, 3)


SHELL_SUBSTITUTIONS = {
    "CKPT": "examples/keras_mlp", " A B ": " examples/keras_mlp examples/keras_mlp ",
}
SETUP_BLOCKS = {  # run in a copy of the repository, in a fresh virtualenv
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/tfckpt examples/keras_mlp\n",
    ('pip install .            # from a checkout\npip install ".[remote]"  # plus fsspec, for s3://, gs://, '
     'http(s):// ... paths\npip install ".[test]"    # plus what the test suite uses\n'),
}


def test_every_shell_block_runs(sandbox: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for language, code, line in blocks():
        if language != "bash" or code in SETUP_BLOCKS:
            continue
        if code == "bash .ci/run\n":
            assert "README's test command" in (ROOT / ".ci" / "run").read_text()
            continue
        for placeholder, value in SHELL_SUBSTITUTIONS.items():
            code = code.replace(placeholder, value)
        for command in code.splitlines():
            command = command.split("  #", 1)[0].strip()
            if not command or command.startswith("#"):
                continue
            result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300,
                                    check=False, env=env)
            allowed = (0, 1) if " --nan" in command or command.startswith("tfckpt diff") else (0,)
            assert result.returncode in allowed and "Traceback" not in result.stderr, (
                f"README.md:{line}: {command}\n{result.stdout[-1000:]}{result.stderr[-2000:]}")
            ran += 1
    assert ran >= 17


def test_the_setup_blocks_work_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    """The README's first command and its install lines, in a copy of the checkout."""
    found = {code for language, code, _ in blocks() if language == "bash"}
    assert SETUP_BLOCKS <= found, "a set-up block of README.md changed: update this test with it"
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not files:  # not a git checkout (the sdist): its manifest is the whole tree
        shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(".venv*", "build", "__pycache__"))
    else:
        for name in files:
            target = checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, target)
    first = next(code for code in SETUP_BLOCKS if code.startswith("python3"))
    result = subprocess.run(["bash", "-c", first.replace("python3", sys.executable, 1)], cwd=checkout,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "# 16 tensors" in result.stdout and "examples/keras_mlp/ckpt-1" in result.stdout
    venv_bin = checkout / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    installs = next(code for code in SETUP_BLOCKS if code.startswith("pip"))
    for command in installs.splitlines():
        command = command.split("  #", 1)[0].strip().replace("pip install", "pip install -q", 1)
        done = subprocess.run(["bash", "-c", command], cwd=checkout, capture_output=True, text=True, timeout=900,
                              check=False, env=env)
        assert done.returncode == 0, (command, done.stderr[-3000:])
        if ".[remote]" in command:  # what that line promises, before ".[test]" installs more
            assert_reads_over_http(venv_bin / "python", tmp_path / "web")
    check = subprocess.run([str(venv_bin / "python"), "-c", "import fsspec, hypothesis, tfckpt; print(tfckpt.__version__)"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.stdout.strip() == tfckpt.__version__, check.stderr
    assert FIXTURES.exists()


def assert_reads_over_http(python: Path, web: Path) -> None:
    """``python`` (a fresh venv's) reads a checkpoint from an ``http://`` URL."""
    import threading
    from http.server import ThreadingHTTPServer

    from test_remote import RangeHandler

    tfckpt.save({"w": np.arange(3.0)}, web / "model")
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: RangeHandler(*a, directory=str(web), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model"
        read = subprocess.run([str(python), "-c", f"import tfckpt; print(tfckpt.load({url!r})['w'].tolist())"],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert read.stdout.strip() == "[0.0, 1.0, 2.0]", read.stderr[-2000:]


RUN_LANGUAGES = ("python", "bash")  # what test_the_site_pages_own_blocks_run executes
SHOWN_LANGUAGES = ("text",)  # output and error messages, shown only


def test_every_code_block_of_the_guides_is_run() -> None:
    """A guide's code in a block of another language (```py, ```sh) would be skipped unseen."""
    skipped = [f"{page.relative_to(ROOT)}:{line} ```{language}" for page in sorted((DOCS / "guides").glob("*.md"))
               for language, _, line in blocks(page) if language not in RUN_LANGUAGES + SHOWN_LANGUAGES]
    assert skipped == []


def test_the_site_pages_own_blocks_run(sandbox: Path) -> None:
    """The guides' own examples (the rest of the site includes README's text, run above)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for page in sorted(DOCS.rglob("*.md")):
        namespace: dict[str, object] = {}
        for language, code, line in blocks(page):
            where = f"{page.relative_to(ROOT)}:{line}"
            if language == "python":
                try:
                    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's own code
                except Exception as exc:
                    raise AssertionError(f"{where} failed: {exc!r}\n{code}") from exc
                ran += 1
            elif language == "bash":
                for command in code.splitlines():
                    command = command.split("  #", 1)[0].strip()
                    if command:
                        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300,
                                                check=False, env=env)
                        assert result.returncode == 0, f"{where}: {command}\n{result.stderr[-2000:]}"
                        ran += 1
    assert ran >= 6
