"""Shared test helpers: fixture locations and the TensorFlow gate for interop tests."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
EXAMPLES = Path(__file__).parent.parent / "examples"

# Property tests: CI (TFCKPT_REQUIRE_ALL=1) draws the same examples on every run, so whether a
# commit lands never depends on a random seed; elsewhere every run draws fresh ones (search
# wider with `pytest --hypothesis-seed=N` for many N; what a search finds becomes an explicit test).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("TFCKPT_REQUIRE_ALL") else "default")

# The fixture generators need TensorFlow and write files; they are run by hand, never collected.
collect_ignore_glob = ["fixtures/make_*.py", "fixtures/*/make_*.py"]


def optional(module: str) -> Any:
    """Import a test dependency. Missing, it skips the test on a developer's machine, but with
    ``TFCKPT_REQUIRE_ALL=1`` (CI sets it) it is an error: CI never skips a test silently."""
    try:
        return importlib.import_module(module)
    except ImportError:
        required = os.environ.get("TFCKPT_REQUIRE_ALL") or (
            module == "tensorflow" and os.environ.get("TFCKPT_REQUIRE_TF"))
        if required:
            raise
        pytest.skip(f"{module} is not installed (TFCKPT_REQUIRE_ALL=1 makes this an error)",
                    allow_module_level=True)  # also called at import time by whole-module gates


@pytest.fixture(scope="session")
def tf():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return optional("tensorflow")
