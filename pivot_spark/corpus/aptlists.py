"""Read the private apt lists that :class:`~pivot_spark.corpus.apt.AptCache` downloads: the DDTP
``Translation-<lang>`` files (package descriptions, one per language) and the suites' release dates.

apt stores lists compressed (``.lz4`` here); ``apt-helper cat-file`` decompresses whatever apt chose, so this
module does not depend on a compression library.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from pivot_spark.corpus.apt import AptCache, AptError

APT_HELPER = "/usr/lib/apt/apt-helper"


def read_list_file(path: str | Path) -> str:
    """Decompressed text of an apt list file."""
    proc = subprocess.run([APT_HELPER, "cat-file", str(path)], capture_output=True)
    if proc.returncode != 0:
        raise AptError(f"apt-helper cat-file {path} failed: {proc.stderr.decode('utf-8', 'replace')[-500:]}")
    return proc.stdout.decode("utf-8", "replace")


def _list_name(suite: str, code: str) -> str:
    return f"_dists_{suite}_main_i18n_Translation-{code.replace('_', '%5f')}"


def find_translation_lists(apt: AptCache, suites: tuple[str, ...], codes: list[str]
                           ) -> dict[tuple[str, str], Path]:
    """Translation files present in the private lists, keyed by (suite, DDTP code such as ``zh_CN``)."""
    found: dict[tuple[str, str], Path] = {}
    if not apt.lists.is_dir():
        return found
    names = sorted(p.name for p in apt.lists.iterdir() if p.is_file())
    for suite in suites:
        for code in codes:
            stem = _list_name(suite, code)
            hits = [n for n in names if n.split(stem, 1)[-1] in ("", ".lz4", ".gz", ".xz", ".zst", ".bz2")
                    and stem in n]
            if hits:
                found[(suite, code)] = apt.lists / hits[0]
    return found


def translation_lists(apt: AptCache, suites: tuple[str, ...], codes: list[str]) -> dict[tuple[str, str], Path]:
    """Translation files for ``codes``; runs one ``apt-get update`` with ``Acquire::Languages`` when some are
    missing (a second build finds them and downloads nothing). Languages the DDTP lacks stay missing, and are
    remembered in ``ddtp-languages.json`` so that later builds do not ask again."""
    found = find_translation_lists(apt, suites, codes)
    tried_file = apt.root / "ddtp-languages.json"
    tried = set(json.loads(tried_file.read_text())) if tried_file.exists() else set()
    missing = {code for suite in suites for code in codes if (suite, code) not in found}
    if missing - tried:
        apt.languages = tuple(sorted(set(apt.languages) | set(codes) | {"en"}))
        apt.update(force=True)
        found = find_translation_lists(apt, suites, codes)
        tried_file.write_text(json.dumps(sorted(tried | set(codes))))
    return found


_DATE = re.compile(r"^Date:\s*(.+)$", re.M)


def release_date(apt: AptCache, suite: str) -> str:
    """The ``Date:`` of the suite's InRelease file: the version label of its descriptions."""
    for p in sorted(apt.lists.glob(f"*_dists_{suite}_InRelease")):
        m = _DATE.search(p.read_text("utf-8", "replace"))
        if m:
            return m.group(1).strip()
    return "unknown"
