"""Start-up: what ``import tfckpt`` and the command line import before they are needed, and
Ctrl-C at any moment of a command (its imports included) ending it with one line, status 130.

Each check runs a fresh interpreter: ``sys.modules`` of this test process has everything."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tfckpt

SRC = Path(__file__).resolve().parent.parent / "src"
HEAVY = ("numpy", "ml_dtypes", "google.protobuf")
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
# What the ``tfckpt`` console script runs (pyproject's [project.scripts]), telling the parent
# when it is ready: the moment tfckpt's handler takes over SIGINT, the first thing its main does.
# Before it, interpreter start-up and the script's own line run with Python's default: no code
# of tfckpt has run yet that could catch Ctrl-C (a few microseconds after the import, but a
# parent reading "ready" at once and signalling does land there: 2 runs of 880 here, when
# "ready" came before main()).
SCRIPT = ("import signal, sys\n"
          "real_signal = signal.signal\n"
          "def announcing(signum, handler):\n"
          "    previous = real_signal(signum, handler)\n"
          "    if signum == signal.SIGINT:\n"
          "        signal.signal = real_signal\n"
          "        print('ready', flush=True)\n"
          "    return previous\n"
          "signal.signal = announcing\n"
          "from tfckpt.__main__ import main\n"
          "sys.exit(main())\n")


def loaded_by(code: str) -> dict[str, bool]:
    """Which of HEAVY modules a fresh interpreter has loaded after running ``code``."""
    probe = (f"import json, sys\ntry:\n{''.join('    ' + line + chr(10) for line in code.splitlines())}"
             f"except SystemExit:\n    pass\n"
             f"print('LOADED' + json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, check=True).stdout
    loaded: dict[str, bool] = json.loads(out[out.index("LOADED") + len("LOADED"):])
    return loaded


@pytest.mark.parametrize("argv", [["--version"], ["--help"], [], ["convert", "--help"], ["ls", "--bogus"]])
def test_the_command_line_imports_no_numpy_until_a_command_runs(argv: list[str]) -> None:
    code = f"sys.argv = ['tfckpt', *{argv!r}]\nfrom tfckpt.__main__ import main\nmain()"
    assert loaded_by(code) == dict.fromkeys(HEAVY, False)


def test_import_tfckpt_imports_nothing_heavy_and_a_name_only_its_module() -> None:
    assert loaded_by("import tfckpt") == dict.fromkeys(HEAVY, False)
    assert loaded_by("from tfckpt import TfckptError, get_num_threads") == dict.fromkeys(HEAVY, False)
    assert loaded_by("from tfckpt import CheckpointReader, save, as_dtype\nas_dtype('float32').max") \
        == {"numpy": True, "ml_dtypes": False, "google.protobuf": True}


def test_ls_of_a_checkpoint_without_its_types_does_not_import_ml_dtypes(tmp_path: Path) -> None:
    plain = tfckpt.save({"w": np.ones((2, 3), np.float32), "n": np.int64(3)}, tmp_path / "plain")
    assert loaded_by(f"from tfckpt.cli import main\nassert main(['ls', {plain!r}]) == 0") \
        == {"numpy": True, "ml_dtypes": False, "google.protobuf": True}


def test_dtypes_resolve_ml_dtypes_types_on_first_use_unchanged() -> None:
    """Every DType answers name, code, size, hash and equality without ml_dtypes; its numpy
    dtype, limits and kind are ml_dtypes' once used; as_dtype maps ml_dtypes' types back even
    when nothing resolved them before (ml_dtypes imported by the caller)."""
    code = """
import sys
from tfckpt import dtypes
assert "ml_dtypes" not in sys.modules
table = [(d.name, d.as_datatype_enum, d.itemsize, d.is_fixed_size, hash(d), d == d.name, d == d.as_datatype_enum)
         for d in dtypes.BY_ENUM.values()]
assert "ml_dtypes" not in sys.modules, "answered without ml_dtypes"
import ml_dtypes, numpy as np
for name in ("bfloat16", "float8_e4m3fn", "int4", "uint2", "float4_e2m1fn"):
    assert dtypes.as_dtype(getattr(ml_dtypes, name)) is dtypes.BY_NAME[name], name
    assert dtypes.as_dtype(np.dtype(getattr(ml_dtypes, name))) == name
for d in dtypes.BY_ENUM.values():
    if d.is_fixed_size:
        assert d.itemsize == d.as_numpy_dtype.itemsize, d
bf16 = dtypes.BY_NAME["bfloat16"]
assert bf16.as_numpy_dtype == np.dtype(ml_dtypes.bfloat16) and bf16.as_numpy_dtype.type is ml_dtypes.bfloat16
assert dtypes.BY_NAME["bfloat16_ref"].as_numpy_dtype == bf16.as_numpy_dtype
assert (bf16.is_floating, bf16.max) == (True, ml_dtypes.finfo(ml_dtypes.bfloat16).max)
assert (dtypes.BY_NAME["int4"].is_integer, dtypes.BY_NAME["uint4"].is_unsigned, dtypes.BY_NAME["int4"].min) \\
    == (True, True, -8)
assert dtypes.BY_NAME["float8_e5m2"].is_floating and not dtypes.BY_NAME["float8_e5m2"].is_integer
f32 = dtypes.BY_NAME["float32"]
assert (f32.is_floating, f32.min, type(f32.max)) == (True, np.finfo(np.float32).min, np.float32)
assert (dtypes.BY_NAME["uint8"].is_unsigned, dtypes.BY_NAME["int64"].max) == (True, 2**63 - 1)
assert dtypes.BY_NAME["complex64"].is_complex and not dtypes.BY_NAME["qint8"].is_integer
print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=ENV)
    assert out.stdout == "OK\n", out.stderr


def test_every_public_name_is_the_one_its_type_checking_import_names() -> None:
    """The package's TYPE_CHECKING imports (what mypy and IDEs see) and what each name loads
    at run time are the same objects, for every name of ``__all__``."""
    tree = ast.parse((SRC / "tfckpt" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    declared = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            declared[alias.asname or alias.name] = (node.module, alias.name)
    assert sorted(declared) == sorted(tfckpt.__all__)
    import importlib
    for public, (module, name) in declared.items():
        home = importlib.import_module(f"tfckpt.{module}" if module else f"tfckpt.{name}")
        assert getattr(tfckpt, public) is (home if module is None else getattr(home, name)), public


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """SIGINT handled (not ignored) in this process while the test starts children: a shell
    without job control starts background jobs (a test run with ``&``) with SIGINT ignored,
    children inherit an ignored signal, and Ctrl-C would then never reach the command. A
    handled one is reset to the default in the child, which Python turns into KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupted(command: list[str], delay: float) -> tuple[int, str]:
    """(exit status, stderr) of ``command`` sent SIGINT ``delay`` seconds after it said ready
    (or its own status, if it finished first)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_at_any_moment_exits_130_with_one_line(tmp_path: Path) -> None:
    """SIGINT while the modules load, while the checkpoint is read and while the table is
    printed: every run ends either finished (0) or interrupted (130, one line), never with a
    traceback. Runs go in parallel, so together they take about as long as one."""
    prefix = tfckpt.save({f"layer_{i}/kernel": np.zeros(2, np.float32) for i in range(6000)}, tmp_path / "many")
    delays = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5)
    # (``python -m tfckpt`` runs the same main, after runpy has found it: no moment to signal
    # "ready" exists between runpy's own code, where Ctrl-C is Python's, and tfckpt's.)
    commands = [[sys.executable, "-c", SCRIPT, command, prefix] for command in ("ls", "stats")]
    outcomes: dict[tuple[int, float], tuple[int, str]] = {}

    def run(index: int, delay: float) -> None:
        outcomes[index, delay] = interrupted(commands[index], delay)

    threads = [threading.Thread(target=run, args=(index, delay)) for index in range(2) for delay in delays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == len(threads)
    for (index, delay), (status, err) in outcomes.items():
        assert (status, err) in ((0, ""), (130, "tfckpt: interrupted\n")), (commands[index][3], delay, status, err)
    assert (130, "tfckpt: interrupted\n") in outcomes.values()  # the interrupts did land


@pytest.mark.parametrize(("interrupt", "status", "message"), [
    (True, 130, "tfckpt: interrupted\n"),
    (False, 1, "tfckpt: error: ImportError: numpy is broken (run with --debug for the traceback)\n")])
@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_that_an_import_turns_into_an_import_error_is_still_an_interrupt(
        tmp_path: Path, interrupt: bool, status: int, message: str) -> None:
    """numpy's import, interrupted inside its C code, reports an ImportError, not the
    KeyboardInterrupt: the command still says "interrupted", as for any other moment. (A
    stand-in numpy, first on the path, does what numpy does, deterministically.)"""
    fake = tmp_path / "numpy"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        f"    if {interrupt}:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(10)\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "raise ImportError('numpy is broken')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SRC)])}
    out = subprocess.run([sys.executable, "-m", "tfckpt", "ls", str(tmp_path / "any")], capture_output=True,
                         text=True, env=env, check=False)
    assert (out.returncode, out.stderr) == (status, message)


# A Ctrl-C landing where Python cannot raise it (a weakref callback, as importlib's module-lock
# cleanup in CI's failed run, or a ``__del__``): Python prints "Exception ignored" and runs on.
SWALLOWED_INTERRUPT = (
    "import os, signal, sys, time\n"
    "module, prefix = sys.argv[1:]\n"
    "class Swallows:\n"
    "    def __del__(self):\n"
    "        os.kill(os.getpid(), signal.SIGINT)\n"
    "        time.sleep(10)  # interrupted at once: KeyboardInterrupt inside __del__, reported, dropped\n"
    "class Finder:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == module:\n"
    "            Swallows()\n"
    "        return None\n"
    "sys.meta_path.insert(0, Finder())\n"
    "sys.argv = ['tfckpt', 'ls', prefix]\n")
PROGRAM = "from tfckpt.__main__ import main\nsys.exit(main())\n"
CALLED_FROM_PYTHON = "from tfckpt.cli import main\nsys.exit(main())\n"  # KeyboardInterrupt, not an exit


@pytest.mark.parametrize(("while_importing", "entry"), [
    ("tfckpt.cli", PROGRAM), ("tfckpt.stats", PROGRAM), ("tfckpt.stats", CALLED_FROM_PYTHON)])
@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_that_python_swallows_still_ends_the_command_with_130(tmp_path: Path, while_importing: str,
                                                                     entry: str) -> None:
    """The interrupt lands while the command line loads (tfckpt.cli) or once it runs (tfckpt.stats,
    imported by every command): status 130 and one line, not status 0 after a traceback. Where
    Ctrl-C raises KeyboardInterrupt (cli.main called from Python), Python swallows this one."""
    prefix = tfckpt.save({"w": np.zeros(2, np.float32)}, tmp_path / "ck")
    out = subprocess.run([sys.executable, "-c", SWALLOWED_INTERRUPT + entry, while_importing, prefix],
                         capture_output=True, text=True, env=ENV, check=False, timeout=60)
    assert (out.returncode, out.stderr) == (130, "tfckpt: interrupted\n")


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_after_the_command_finished_changes_nothing(tmp_path: Path) -> None:
    """SIGINT while the interpreter shuts down (an atexit callback, as thread joins are) after
    the command is done: its output and status stand, no traceback follows them."""
    prefix = tfckpt.save({"w": np.zeros(2, np.float32)}, tmp_path / "ck")
    script = ("import atexit, os, signal, sys, time\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.5)))\n"
              f"sys.argv = ['tfckpt', 'ls', {prefix!r}]\n"
              "from tfckpt.__main__ import main\n"
              "sys.exit(main())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, check=False,
                         timeout=60)
    assert (out.returncode, out.stderr) == (0, "") and "1 tensor" in out.stdout


# A stand-in finder that sends Ctrl-C while ``module`` is found, and says so if the interrupt
# unwound through it (as KeyboardInterrupt would, through a half-loaded C extension).
INTERRUPTED_IMPORT = (
    "import os, signal, sys, time\n"
    "module, prefix = sys.argv[1:]\n"
    "class Finder:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == module:\n"
    "            try:\n"
    "                os.kill(os.getpid(), signal.SIGINT)\n"
    "                time.sleep(10)\n"
    "            finally:\n"
    "                print('unwound', file=sys.stderr)\n"
    "        return None\n"
    "sys.meta_path.insert(0, Finder())\n"
    "sys.argv = ['tfckpt', 'ls', prefix]\n"
    "from tfckpt.__main__ import main\n"
    "sys.exit(main())\n")


@pytest.mark.parametrize("while_importing", ["tfckpt.cli", "numpy", "google.protobuf", "tfckpt._proto.graph_pb2",
                                             "tfckpt.stats"])
@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_while_the_program_loads_unwinds_nothing(tmp_path: Path, while_importing: str) -> None:
    """The program ends at once: no code runs after the interrupt (protobuf 4.21.12's message
    classes, interrupted while being built, crash the interpreter with SIGSEGV about one time in
    twenty; numpy's Cython modules warn), and the output is the one line."""
    prefix = tfckpt.save({"w": np.zeros(2, np.float32)}, tmp_path / "ck")
    out = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, while_importing, prefix], capture_output=True,
                         text=True, env=ENV, check=False, timeout=60)
    assert (out.returncode, out.stderr) == (130, "tfckpt: interrupted\n")


HELD_LS = (  # `tfckpt ls` held in the middle of its work, saying whether an interrupt unwound through it
    "import sys, time\n"
    "import tfckpt.cli as cli\n"
    "def held(args):\n"
    "    try:\n"
    "        print('in the middle', flush=True)\n"
    "        time.sleep(60)\n"
    "    finally:\n"
    "        print('unwound', file=sys.stderr)\n"
    "cli.cmd_ls = held\n"
    "from tfckpt.__main__ import main\n"
    "sys.exit(main())\n")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_ends_a_reading_command_at_once_and_debug_shows_where(tmp_path: Path, debug: bool) -> None:
    """A command that writes nothing has nothing to undo: the program ends at once. With
    ``--debug`` Ctrl-C raises KeyboardInterrupt instead, and the traceback shows where it landed."""
    prefix = tfckpt.save({"w": np.zeros(2, np.float32)}, tmp_path / "ck")
    process = subprocess.Popen([sys.executable, "-c", HELD_LS, "ls", prefix, *(["--debug"] if debug else [])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert process.stdout is not None and process.stdout.readline() == "in the middle\n"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if debug:  # Python's own ending for an uncaught KeyboardInterrupt: killed by SIGINT, after the stack
        assert process.returncode == -signal.SIGINT, err
        assert err.startswith("unwound\nTraceback") and "in held" in err and err.endswith("KeyboardInterrupt\n"), err
    else:
        assert (process.returncode, err) == (130, "tfckpt: interrupted\n")
