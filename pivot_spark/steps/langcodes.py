"""The one place where language labels become the codes stored in the lake.

Every table that carries a language (``doc_lang.lang``, span languages, ``doc_tokens.token_langs``,
``token_stats.lang``, ``cooccurrence.lang_a``/``lang_b``) holds codes made here, so labels from fastText
(``__label__zh``), from corpus metadata (``zh_CN``, ``pt-br``, ``en-us``) and from UDHR (``cmn``, ``nb``) compare
equal. Rules, in order:

* ``__label__`` prefixes and surrounding space go; ``_`` becomes ``-``; the tag is parsed as BCP 47 by the
  ``langcodes`` library, which also maps deprecated and 3-letter codes to ISO 639-1 where one exists
  (``eng`` -> ``en``, ``iw`` -> ``he``, ``cmn`` -> ``zh``). Region and variant are dropped (``en-US`` -> ``en``,
  ``pt-BR`` -> ``pt``, ``de-1901`` -> ``de``).
* Script is kept only where it splits one written language in two: Chinese. ``zh-Hant``, ``zh-TW``, ``zh-HK`` and
  ``zh-MO`` give ``zh-Hant``; everything else Chinese (``zh``, ``zh-CN``, ``zh-Hans``, ``zh-SG``) gives ``zh``,
  which therefore means Simplified Chinese (the paper's ``zh``).
* Norwegian: ``nb`` (Bokmål) gives ``no``, because fastText's ``lid.176`` labels Bokmål ``no`` and the
  Debian translations use ``nb``; ``nn`` (Nynorsk) stays ``nn``, a separate fastText label. Tagalog stays ``tl``
  (ISO 639-1, fastText's label) although CLDR aliases it to ``fil``.
* fastText labels are Wikipedia edition codes; where those differ from ISO 639 they are mapped first:
  ``als`` (Alemannic Wikipedia) -> ``gsw`` (not ISO ``als``, Tosk Albanian), ``sh`` stays ``sh``
  (Serbo-Croatian, which fastText keeps apart from ``sr``/``hr``/``bs``).
* Anything empty, unparsable or ``und`` gives :data:`UNDETERMINED`.

Imports neither pyspark nor torch.
"""

from __future__ import annotations

from functools import lru_cache

UNDETERMINED = "und"
# ISO 639-2 "no linguistic content": the span language of code, commands, markup and tables (steps/codelines.py)
NO_LINGUISTIC_CONTENT = "zxx"

_FASTTEXT_LABEL_PREFIX = "__label__"
# Wikipedia edition codes (fastText labels) whose ISO reading would be wrong.
_WIKI_CODES = {"als": "gsw", "sh": "sh"}
_TRADITIONAL_REGIONS = {"TW", "HK", "MO"}
_SAME_LANGUAGE = {"nb": "no", "fil": "tl"}


@lru_cache(maxsize=4096)
def normalize_lang(label: str | None) -> str:
    """Normalize one language label (fastText label, BCP 47 / POSIX locale tag, ISO 639 code) to a lake code."""
    if not label:
        return UNDETERMINED
    tag = label.strip().removeprefix(_FASTTEXT_LABEL_PREFIX).strip().replace("_", "-")
    tag = tag.split(".", 1)[0].split("@", 1)[0]  # POSIX locales: zh_CN.UTF-8, sr_RS@latin
    if not tag:
        return UNDETERMINED
    if tag.lower() in _WIKI_CODES:
        return _WIKI_CODES[tag.lower()]
    import langcodes  # here, not at module level: the trainer's machines import this module without it

    try:
        lang = langcodes.Language.get(langcodes.standardize_tag(tag, macro=True), normalize=True)
    except (ValueError, LookupError):
        return UNDETERMINED
    code = lang.language
    if not code or code == UNDETERMINED:
        return UNDETERMINED
    code = _SAME_LANGUAGE.get(code, code)
    if code == "zh" and (lang.script == "Hant" or (lang.script is None and lang.territory in _TRADITIONAL_REGIONS)):
        return "zh-Hant"
    return code

