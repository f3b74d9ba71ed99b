"""Fixtures for the AppTest tests: a small registry (Popularity, EASE, SVD, MLP) and an app runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys.data.synthetic import generate_synthetic
from recsys.defaults import DefaultModel, build_default_registry
from recsys.projection import pca_reducer
from recsys.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
MODEL_IDS = ("ease-synthetic", "mlp-synthetic", "popularity-synthetic", "svd-synthetic")
#: Small, fast versions of the demo's models (the ids are the demo's).
SMALL_MODELS = [
    DefaultModel("popularity-synthetic", "popularity"),
    DefaultModel("ease-synthetic", "ease", {"l2": 100.0}),
    DefaultModel("svd-synthetic", "svd", {"n_factors": 16, "n_epochs": 10}),
    DefaultModel("mlp-synthetic", "mlp", {"epochs": 30, "latent_dim": 16, "hidden_dim": 64}),
]
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def built_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Popularity, EASE, SVD and an MLP fitted on a small synthetic set (built once, never modified)."""
    root = tmp_path_factory.mktemp("registry")
    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    build_default_registry(Registry(root), dataset=small, models=SMALL_MODELS, reducer_factory=pca_reducer)
    return root


@pytest.fixture
def registry_copy(built_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the small registry that a test may damage."""
    return Path(shutil.copytree(built_registry, tmp_path / "models"))


@pytest.fixture
def run_page(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, str | None], AppTest]:
    """``run_page(registry_dir, "pages/models.py")``: the app run on that registry, switched to the page."""

    def run(registry_dir: Path, page: str | None = None) -> AppTest:
        monkeypatch.setenv("RECSYS_MODELS_DIR", str(registry_dir))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
        if page is not None:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def flip_byte(path: Path, offset: int = -10) -> None:
    """Corrupt a file in place without changing its size (only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
