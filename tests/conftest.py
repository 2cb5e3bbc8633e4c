"""Shared test helpers: fixture locations and the TensorFlow gate for interop tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
EXAMPLES = Path(__file__).parent.parent / "examples"

# The generator needs TensorFlow and writes files; it is run by hand, never collected.
collect_ignore = ["fixtures/make_fixtures.py"]


def _import_tensorflow():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        if os.environ.get("TFCKPT_REQUIRE_TF"):
            raise  # CI sets this: interop tests must run there, never silently skip
        pytest.skip("TensorFlow is not installed (set TFCKPT_REQUIRE_TF=1 to make this an error)")
    return tf


@pytest.fixture(scope="session")
def tf():  # type: ignore[no-untyped-def]
    return _import_tensorflow()
