"""Fetch Debian packages into a private cache without installing anything.

A private apt configuration (own sources file, lists and cache under ``cache_dir``) lets us ``apt-get download``
data packages (translated manuals, dictionaries) and unpack them with ``dpkg-deb -x``. The system's apt state is
never touched. Everything is cached: a second call for the same packages downloads nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEBIAN_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class AptError(RuntimeError):
    """A package could not be fetched; the message names the package and the apt output."""


@dataclass(frozen=True)
class FetchedPackage:
    name: str
    version: str
    suite: str
    root: Path  # folder the .deb was unpacked into


class AptCache:
    """A private apt configuration rooted at ``cache_dir``.

    ``fetch("manpages-fr")`` or ``fetch("dict-freedict-eng-fra", suite="trixie")`` returns the folder the package
    was unpacked into. The manifest ``packages.json`` records name, suite and version of every package fetched.
    """

    def __init__(self, cache_dir: str | Path, *, suites: tuple[str, ...] = ("bookworm", "trixie"),
                 languages: tuple[str, ...] = ()) -> None:
        self.root = Path(cache_dir).resolve()
        self.suites = suites
        self.languages = languages
        self.lists = self.root / "lists"
        self.cache = self.root / "cache"
        self.debs = self.root / "debs"
        self.unpacked = self.root / "unpacked"
        self.sources = self.root / "etc" / "debian.sources"
        self.manifest_path = self.root / "packages.json"
        self._updated = False

    # -- apt plumbing -------------------------------------------------------------------------------------------
    def _opts(self) -> list[str]:
        langs = ",".join(self.languages) if self.languages else "none"
        return [
            "-o", f"Dir::Etc::SourceList={self.sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={self.lists}",
            "-o", f"Dir::Cache={self.cache}",
            "-o", f"Acquire::Languages={langs}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
        ]

    def _run(self, args: list[str], cwd: Path | None = None) -> str:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AptError(f"{' '.join(args[:3])} ... failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def update(self, *, force: bool = False) -> None:
        """Write the private sources file and run ``apt-get update`` once (skipped when lists exist)."""
        if self._updated and not force:
            return
        for d in (self.lists / "partial", self.cache / "archives" / "partial", self.debs, self.unpacked,
                  self.sources.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.sources.write_text(
            "Types: deb deb-src\n"
            f"URIs: {DEBIAN_MIRROR}\n"
            f"Suites: {' '.join(self.suites)}\n"
            "Components: main\n"
            f"Signed-By: {KEYRING}\n"
        )
        have_lists = any("_Packages" in p.name for p in self.lists.iterdir())
        if force or not have_lists:
            log.info("apt-get update (private lists in %s)", self.lists)
            self._run(["apt-get", *self._opts(), "update"])
        self._updated = True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the manifest across processes (several builds may share one cache)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _manifest(self) -> dict[str, dict[str, str]]:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text())
        return {}

    def _save_manifest(self, m: dict[str, dict[str, str]]) -> None:
        tmp = self.manifest_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(m, indent=1, sort_keys=True))
        tmp.replace(self.manifest_path)

    # -- public API ---------------------------------------------------------------------------------------------
    def fetch(self, name: str, *, suite: str | None = None) -> FetchedPackage:
        """Download and unpack ``name`` (from ``suite`` if given), reusing the cache when present."""
        key = f"{name}/{suite}" if suite else name
        manifest = self._manifest()
        entry = manifest.get(key)
        if entry and Path(entry["root"]).is_dir():
            return FetchedPackage(name, entry["version"], entry["suite"], Path(entry["root"]))
        self.update()
        target = self.unpacked / key.replace("/", "@")
        tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Each fetch downloads into a folder of its own, so concurrent fetches into one cache never pick up
        # each other's .deb files.
        dl = Path(tempfile.mkdtemp(prefix=f".dl-{name}-", dir=self.debs))
        try:
            self._run(["apt-get", *self._opts(), "download", key], cwd=dl)
            got = sorted(dl.glob("*.deb"))
            if not got:
                raise AptError(f"apt-get download {key} produced no .deb")
            deb = self.debs / got[-1].name
            got[-1].replace(deb)
        finally:
            shutil.rmtree(dl, ignore_errors=True)
        self._run(["dpkg-deb", "-x", str(deb), str(tmp)])
        version = self._run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        with self._locked():
            manifest = self._manifest()
            manifest[key] = {"version": version, "suite": suite or "default", "root": str(target),
                             "deb": deb.name}
            self._save_manifest(manifest)
        return FetchedPackage(name, version, suite or "default", target)

    def fetch_many(self, names: list[str], *, suite: str | None = None, missing_ok: bool = False
                   ) -> dict[str, FetchedPackage]:
        out: dict[str, FetchedPackage] = {}
        for n in names:
            try:
                out[n] = self.fetch(n, suite=suite)
            except AptError:
                if not missing_ok:
                    raise
                log.warning("package %s not available, skipped", n)
        return out

    def versions(self) -> dict[str, str]:
        return {k: v["version"] for k, v in self._manifest().items()}
