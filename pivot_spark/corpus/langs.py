"""Language codes: every source spells them differently (``en-US``, ``C``, ``zh_CN``, ``pt-br``, ``de-1996``).

Records carry one normalized code (``lang_hint``): the ISO 639-1 primary subtag, except that Traditional Chinese
is ``zh-hant`` so that ``zh`` always means Simplified Chinese (the UDHR-based language-ID test relies on that).
When a source offers several variants of one language (GNOME help has both ``pt`` and ``pt_BR``), the variant
listed first in :data:`PREFERRED_VARIANTS` wins so that a page exists once per normalized language.
"""

from __future__ import annotations

from collections.abc import Iterable

_TRADITIONAL = {"zh-tw", "zh-hk", "zh-mo", "zh-hant"}
_ALIASES = {"c": "en", "posix": "en", "eng": "en", "fra": "fr", "deu": "de", "spa": "es", "rus": "ru",
            "jpn": "ja", "cmn": "zh", "ita": "it", "pol": "pl", "por": "pt", "nld": "nl"}

# Raw spellings tried in order for a normalized code (lower-case, '-' separated; compared after canonicalizing).
PREFERRED_VARIANTS = {
    "en": ["en", "c", "en-us", "en-gb"],
    "zh": ["zh-cn", "zh-hans", "zh-sg", "zh"],
    "pt": ["pt-br", "pt", "pt-pt"],
    "de": ["de", "de-de", "de-1996"],
}


def _canon(raw: str) -> str:
    return raw.strip().replace("_", "-").split("@", 1)[0].lower()


def normalize_lang(raw: str) -> str:
    """``'zh_CN' -> 'zh'``, ``'zh-TW' -> 'zh-hant'``, ``'pt-BR' -> 'pt'``, ``'C' -> 'en'``, ``'de-1996' -> 'de'``."""
    c = _canon(raw)
    if not c:
        raise ValueError("empty language code")
    if c in _TRADITIONAL or c.startswith("zh-hant"):
        return "zh-hant"
    primary = c.split("-", 1)[0]
    return _ALIASES.get(primary, primary)


def pick_variant(available: Iterable[str], lang: str) -> str | None:
    """Choose which raw code of ``available`` to use for normalized ``lang`` (None if the source lacks it)."""
    by_canon: dict[str, str] = {}
    for a in sorted(available, key=lambda a: ("@" in a, a)):  # "sr" before the script variant "sr@latin"
        by_canon.setdefault(_canon(a), a)
    for pref in PREFERRED_VARIANTS.get(lang, [lang]):
        if pref in by_canon:
            return by_canon[pref]
    matches = sorted(a for c, a in by_canon.items() if normalize_lang(c) == lang)
    return matches[0] if matches else None
