"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data directory (``recsys.data.resolve_data_dir()``); skips the test where it is absent."""
    from recsys.data import resolve_data_dir

    d = resolve_data_dir()
    if d is None or not d.is_dir():
        pytest.skip(f"real data not found at {d or '../shared/data'}; set RECSYS_DATA_DIR")
    return d
