"""A bounded run of the coverage-guided fuzzer (the long run is documented in fuzz/fuzz_reader.py)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import optional

ROOT = Path(__file__).resolve().parent.parent


def test_atheris_finds_no_crash_in_a_bounded_run(tmp_path: Path) -> None:
    optional("atheris")
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "tests" / "fuzz_seeds", corpus)  # libFuzzer adds units to this directory
    result = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "fuzz_reader.py"), str(corpus), "-atheris_runs=30000"],
        capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]  # a crash exits non-zero with the input saved
    assert "Done 30000" in output
