"""Tables: concurrent creation, versions a table lacks, repairing repeated texts, vacuuming orphans."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import FileEntry, Lake
from pivot_spark.lake.reader import VersionNotFound
from pivot_spark.pipeline.repair import duplicate_rows, repair
from pivot_spark.pipeline.vacuum import parse_keep, vacuum
from pivot_spark.schemas import TRAIN_SET
from tests.support.reliability import document_rows, pivot_spark, program, runs_row


def _cfg(lake, *extra):
    return load_config("smoke", [f"lake.uri={lake}", *extra])


@pytest.mark.parametrize("how", ["arrow", "files"])
def test_writers_creating_one_table_at_once_all_land(tmp_path, how):
    """Each round, six writers create the same new table at the same moment (driver-side writes and bridge
    commits of task-written files): every row lands, none fails."""
    errors: list[str] = []
    for k in range(4):
        uri = str(tmp_path / f"lake{k}")
        start = threading.Barrier(6)

        def write(i: int, uri: str = uri, start: threading.Barrier = start) -> None:
            lake = Lake(uri)
            data = document_rows([f"text {i}"], run_id=f"r{i}", snapshot="s")
            entry = None
            if how == "files":
                folder = Path(uri) / "documents" / "snapshot=s"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(data.drop(["snapshot"]), folder / f"w{i}.parquet")
                entry = FileEntry(f"snapshot=s/w{i}.parquet", (folder / f"w{i}.parquet").stat().st_size,
                                  {"snapshot": "s"}, 1)
            start.wait()
            try:
                if entry is None:
                    lake.write_arrow("documents", data, mode="append", app_id=f"w/{i}")
                else:
                    lake.commit_files("documents", [entry], mode="append", app_id=f"w/{i}")
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(Lake(uri).read_arrow("documents").column("text").to_pylist()) == [f"text {i}" for i in range(6)]


def test_a_version_the_table_lacks_is_one_clear_error(lake_path, tmp_path):
    lake = Lake(str(lake_path))
    lake.write_arrow("train_set", TRAIN_SET.empty_table(), mode="append", app_id="setup")
    with pytest.raises(VersionNotFound, match=r"table train_set of lake .* has no version 7 \(its newest is 0"):
        lake.delta("train_set", 7)
    res = program("training.cli", "--lake", str(lake_path), "--selection", "main", "--arm", "pivot",
                  "--table-version", "7", "--out", str(tmp_path / "out"), "--max-steps", "1")
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert "has no version 7" in line and "pivot-spark status" in line


def _damaged(lake: Lake) -> list[str]:
    """Two ingests that ran at once before the lease: their shared texts are in the table twice."""
    shared = [f"shared text {i}" for i in range(5)]
    a = shared + [f"only in a {i}" for i in range(3)]
    b = [f"only in b {i}" for i in range(2)] + shared
    lake.write_arrow("documents", document_rows(a, run_id="a", snapshot="snap-a"), mode="append", app_id="a")
    lake.write_arrow("documents", document_rows(b, run_id="b", snapshot="snap-b", source="u"), mode="append",
                     app_id="b")
    return sorted(set(a + b))


def test_repair_keeps_the_first_row_per_text_in_one_commit_and_is_idempotent(lake_path):
    lake = Lake(str(lake_path))
    distinct = _damaged(lake)
    assert lake.read_arrow("documents").num_rows == len(distinct) + 5
    before = lake.version("documents")
    assert before is not None
    s = repair(_cfg(lake.uri), quiet=True)
    assert s["counts"]["duplicates"] == 5 and s["counts"]["kept"] == len(distinct)
    assert lake.version("documents") == before + 1  # one commit
    docs = lake.read_arrow("documents").to_pylist()
    assert sorted(d["text"] for d in docs) == distinct
    # the first occurrence stays: the shared texts keep the rows of run a, committed first
    assert {d["run_id"] for d in docs if d["text"].startswith("shared")} == {"a"}
    again = repair(_cfg(lake.uri), quiet=True)
    assert again["counts"]["duplicates"] == 0 and lake.version("documents") == before + 1
    # the rewritten files are plain, readable Parquet of the table's schema
    assert ds.dataset(lake.file_uris("documents")).count_rows() == len(distinct)


def test_repair_as_a_command(lake_path):
    lake = Lake(str(lake_path))
    distinct = _damaged(lake)
    res = pivot_spark("repair", "--config", "smoke", "--lake", str(lake_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert lake.read_arrow("documents").num_rows == len(distinct)


def test_duplicate_rows_follow_commit_order_then_row_order():
    files = [pa.array(["x", "y", "x"]), pa.array(["y", "z"]), pa.array([], pa.string()), pa.array(["z", "w"])]
    assert duplicate_rows(files) == [[2], [0], [], [0]]


def _orphan(lake: Lake, table: str) -> str:
    """A file a killed job left in the table folder: written, never committed (a copy of a committed one)."""
    path = lake.file_uris(table)[0]
    name = path.rsplit("/", 1)[0] + "/part-killed-job-00000.parquet"
    shutil.copy(path.removeprefix("file://"), name.removeprefix("file://"))
    return name.rsplit("/", 1)[-1]


def test_vacuum_lists_then_deletes_orphans_and_keeps_what_versions_need(lake_path):
    lake = Lake(str(lake_path))
    lake.write_arrow("documents", document_rows(["one", "two"], run_id="a", snapshot="s"), mode="append",
                     app_id="a")
    lake.write_arrow("runs", runs_row("r"), mode="append", app_id="r")
    orphan = _orphan(lake, "documents")
    folder = str(lake_path / "documents")
    assert ds.dataset(folder, partitioning="hive").count_rows() == 4  # a plain Parquet read counts the orphan
    dry = vacuum(_cfg(lake.uri), retention_hours=0, dry_run=True, quiet=True)
    assert [f.rsplit("/", 1)[-1] for f in dry["files"]["documents"]] == [orphan]
    assert ds.dataset(folder, partitioning="hive").count_rows() == 4  # a dry run deletes nothing
    young = vacuum(_cfg(lake.uri), retention_hours=1, quiet=True)  # the orphan is younger than an hour
    assert young["counts"] == {"documents": 0, "runs": 0}
    done = vacuum(_cfg(lake.uri), retention_hours=0, quiet=True)
    assert done["status"] == "ok" and done["counts"]["documents"] == 1
    assert ds.dataset(folder, partitioning="hive").count_rows() == 2 == lake.row_count("documents")
    assert [r["job"] for r in lake.read_arrow("runs").to_pylist()].count("vacuum") == 2  # the real ones


def test_vacuum_keeps_the_files_of_a_pinned_version(lake_path):
    lake = Lake(str(lake_path))
    lake.write_arrow("documents", document_rows(["old"], run_id="a", snapshot="s"), mode="append", app_id="a")
    lake.write_arrow("documents", document_rows(["new"], run_id="b", snapshot="s"), mode="overwrite", app_id="b")
    vacuum(_cfg(lake.uri), retention_hours=0, keep={"documents": [0]}, quiet=True)
    assert lake.read_arrow("documents", 0).column("text").to_pylist() == ["old"]  # version 0 still reads
    vacuum(_cfg(lake.uri), retention_hours=0, quiet=True)
    with pytest.raises(Exception, match="(?i)not found|no such file"):
        lake.read_arrow("documents", 0)


def test_vacuum_command_dry_run_and_bad_keep(lake_path):
    lake = Lake(str(lake_path))
    lake.write_arrow("documents", document_rows(["one"], run_id="a", snapshot="s"), mode="append", app_id="a")
    orphan = _orphan(lake, "documents")
    res = pivot_spark("vacuum", "--config", "smoke", "--lake", str(lake_path), "--retention-hours", "0",
                      "--dry-run", "--table", "documents")
    assert res.returncode == 0, res.stderr[-2000:]
    assert orphan in res.stdout and "dry run: nothing deleted" in res.stdout
    bad = pivot_spark("vacuum", "--config", "smoke", "--lake", str(lake_path), "--keep", "train_set")
    assert bad.returncode == 2 and "use TABLE=VERSION" in bad.stderr
    assert parse_keep(["train_set=12", "train_set=13"]) == {"train_set": [12, 13]}
