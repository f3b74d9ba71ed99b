"""Big input: an interactions CSV imports within the documented memory bound, or is refused with a message.

CI generates ``RECSYS_BIG_CSV_ROWS`` rows (300,000) and lowers ``max_memory`` to exercise the
refusals; the 10-million-row figure in ``benchmarks/results/reliability.md`` comes from
``benchmarks/reliability_big_csv.py --rows 10000000`` (the same code path, the default limit).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import recsys.data.csv_import as ci
from recsys.data.csv_import import CsvImportError, import_csv, memory_needed

from .conftest import count, log_figures

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reliability_big_csv.py"
#: RSS the import may use beyond the documented bound: allocator slack and library code paths first touched.
SLACK_MB = 40


def _bench():
    spec = importlib.util.spec_from_file_location("reliability_big_csv", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, Path, int]:
    rows = count("RECSYS_BIG_CSV_ROWS")
    inter, items = _bench().generate(tmp_path_factory.mktemp("big"), rows)
    return inter, items, rows


@pytest.mark.slow
def test_a_big_file_imports_within_the_documented_memory_bound(big) -> None:
    inter, _, rows = big
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", str(rows), "--work-dir", str(inter.parent)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert "refused" not in res, res
    bound_mb = memory_needed(rows, res["users"], len(f"u{rows // 50}")) / 2**20
    used_mb = res["peak_rss_mb"] - res["rss_before_mb"]
    log_figures("big_import", **res, documented_bound_mb=round(bound_mb, 1), used_mb=round(used_mb, 1))
    assert used_mb <= bound_mb + SLACK_MB, res


def test_a_file_that_would_need_more_memory_is_refused_before_it_is_read(big, monkeypatch) -> None:
    inter, items, rows = big

    def must_not_read(*a, **k):
        raise AssertionError("the file was read although it is refused up front")

    monkeypatch.setattr(ci, "_read_items", must_not_read)
    limit = memory_needed(rows) // 2
    t0 = time.perf_counter()
    with pytest.raises(CsvImportError) as e:
        import_csv(inter, items, max_memory=limit)
    assert e.value.line is None and e.value.file == str(inter)
    assert "refused before reading it" in e.value.problem and "max_memory=" in e.value.problem
    assert time.perf_counter() - t0 < 2.0


def test_the_default_limit_is_a_share_of_the_available_memory(big, monkeypatch) -> None:
    inter, items, rows = big
    monkeypatch.setattr(ci, "available_memory", lambda: memory_needed(rows) // 4)
    with pytest.raises(CsvImportError, match=r"80% of the .* available now"):
        import_csv(inter, items)


def test_an_underestimated_file_stops_as_soon_as_its_rows_need_more(tmp_path) -> None:
    """Long lines first (the size-based estimate is low), then many short ones: the streaming check stops it."""
    items = tmp_path / "items.csv"
    items.write_text("item,title\n" + "".join(f"i{k},Song {k}\n" for k in range(100)))
    inter = tmp_path / "interactions.csv"
    with open(inter, "w") as f:
        f.write("user,item,weight\n")
        pad = "1." + "0" * 200
        f.writelines(f"u{k % 500},i{k % 100},{pad}\n" for k in range(6000))  # ~1.3 MB of long lines
        f.writelines(f"u{k % 500},i{k % 100},1\n" for k in range(200_000))
    estimate = ci._estimate_rows(inter, inter.stat().st_size)
    assert estimate < 100_000  # the premise: the estimate is far too low
    limit = memory_needed(120_000, 500, 4)
    with pytest.raises(CsvImportError) as e:
        import_csv(inter, items, max_memory=limit)
    assert "stopped before running out" in e.value.problem
    assert 120_000 < e.value.line <= 120_000 + ci._CHUNK + 1, str(e.value)  # checked once per chunk of rows
    ds = import_csv(inter, items, max_memory=0)  # 0: no memory check
    assert ds.n_users == 500 and ds.interactions.nnz == 500
