"""Training thread count: 1 on small machines, the environment wins, the old count comes back."""

from __future__ import annotations

import pytest
import torch

from recsys import threads


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (4, 2), (16, 8), (None, 1)])
def test_default_threads_by_cores(monkeypatch, cores, expected) -> None:
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    assert threads.training_threads() == expected


def test_environment_overrides_and_is_checked(monkeypatch) -> None:
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.training_threads() == 3
    monkeypatch.setenv(threads.ENV, "zero")
    with pytest.raises(ValueError, match="RECSYS_TORCH_THREADS must be a positive integer"):
        threads.training_threads()


def test_the_previous_count_is_restored_even_on_error(monkeypatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(threads.ENV, str(before + 1))
    with pytest.raises(RuntimeError), threads.training_torch_threads() as n:
        assert n == before + 1 and torch.get_num_threads() == before + 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
