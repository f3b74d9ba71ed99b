"""Fixtures for the real data sets (skipped with the reason where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.data import dataset_path


def _folder(name: str, data_dir: Path) -> Path:
    folder = dataset_path(name, data_dir)
    if folder is None:
        pytest.skip(f"real data not found at {data_dir} ({name}); set RECSYS_DATA_DIR")
    return folder


@pytest.fixture(scope="session")
def lastfm_dir(data_dir: Path) -> Path:
    return _folder("lastfm-2k", data_dir)


@pytest.fixture(scope="session")
def ml1m_dir(data_dir: Path) -> Path:
    return _folder("ml-1m", data_dir)
