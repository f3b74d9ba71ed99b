"""The helpers behind the pages, without Streamlit's runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.app_support import (
    BUILD_COMMAND,
    build_command,
    files_signature,
    model_statuses,
    registry_table,
)
from recsys.registry import Registry
from recsys.steering import Steerer, SteeringError

from .conftest import flip_byte


def test_build_command_names_the_registry_in_use(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RECSYS_MODELS_DIR", raising=False)
    assert build_command() == BUILD_COMMAND
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path))
    assert build_command() == f"RECSYS_MODELS_DIR={tmp_path} {BUILD_COMMAND}"


def test_picks_become_a_history_in_the_models_column_order(built_registry: Path) -> None:
    steerer = Steerer.from_loaded(Registry(built_registry).load("ease-synthetic"))
    items = steerer.items
    picks = [items["item_id"].iloc[7], items["item_id"].iloc[2], items["item_id"].iloc[7]]
    x = steerer.history(picks)
    assert x.shape == (1, len(items))
    assert x.indices.tolist() == [2, 7] and x.data.tolist() == [1.0, 1.0]
    with pytest.raises(SteeringError, match="no-such-song"):
        steerer.history(["no-such-song"])


def test_signature_changes_when_a_file_changes(registry_copy: Path) -> None:
    registry = Registry(registry_copy)
    before = files_signature(registry, "ease-synthetic")
    flip_byte(registry_copy / "ease-synthetic" / "items.json", offset=-3)
    assert files_signature(registry, "ease-synthetic") != before
    assert files_signature(registry, "not-there") == ()


def test_statuses_report_every_problem(registry_copy: Path) -> None:
    flip_byte(registry_copy / "ease-synthetic" / "items.json", offset=-3)
    (registry_copy / "popularity-synthetic" / "manifest.json").unlink()
    statuses = {s.model_id: s for s in model_statuses(Registry(registry_copy))}
    assert not statuses["ease-synthetic"].ok and "items.json" in statuses["ease-synthetic"].problems[0]
    assert statuses["popularity-synthetic"].manifest is None
    table = registry_table(list(statuses.values()))
    assert table.loc["popularity-synthetic", "family"] == "?"
    assert table.loc["popularity-synthetic", "NDCG@100"] == "–"


def test_a_column_is_off_the_dial_only_beyond_half_a_song_of_its_own_list() -> None:
    from recsys.app_support import off_dial_text

    assert off_dial_text(0.40, 0.45, 5) is None  # 2 of 5 is the nearest a 5-song list gets to 45 %
    assert off_dial_text(0.40, 0.45, 20) == "-5% vs dial"  # a 20-song list could have had 9
    assert off_dial_text(0.15, 0.40, 20) == "-25% vs dial"
    assert off_dial_text(0.40, None, 20) is None and off_dial_text(float("nan"), 0.4, 20) is None


def test_the_registry_is_named_without_temporary_paths(monkeypatch, tmp_path: Path) -> None:
    from recsys.app_support import registry_label

    monkeypatch.delenv("RECSYS_REGISTRY_LABEL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert registry_label(Registry(tmp_path / "models_store")) == "models_store"
    assert registry_label(Registry(tmp_path)) == "."
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir("/")  # a working directory of / names nothing: relative to ~ instead
    assert registry_label(Registry(tmp_path / "home" / "m")) == "~/m"
    assert registry_label(Registry("/nonexistent-x/models")) == "/nonexistent-x/models"
    monkeypatch.setenv("RECSYS_REGISTRY_LABEL", "models_store")
    assert registry_label(Registry(tmp_path / "elsewhere")) == "models_store"
