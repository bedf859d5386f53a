"""The word translation data set (the paper's CLWTD), built from dictionaries instead of an LLM.

Pure functions over a :class:`~evaluation.lexicon.Lexicon` and word-frequency tables, so the whole
build is testable on inline dictionary samples. The rules (docs/evaluation.md has the why):

1. English candidates: headwords of the WikDict English->L dictionaries tagged noun, verb or adjective,
   lowercase a-z, longer than 2 letters, known to wordfreq, without a function-word reading (``like``,
   ``other``: pronoun, preposition, determiner, ...); most frequent first.
2. A translation must be attested by both dictionaries of its pair (forward and reversed), in the same part
   of speech where both give one and confirmed in that part of speech by at least one, be a single word and
   be known to wordfreq (Japanese and Chinese: preferred, since wordfreq's lists are segmented by MeCab/jieba
   and miss many compounds; alphabetic words unknown to wordfreq are mostly unaccented misspellings). Each item gets ONE word per
   language: the most frequent attested one not already taken by a more frequent item (two items with the
   same target word would make the reverse direction ambiguous). Required languages must all succeed, else
   the item is dropped with the reason; optional languages are filled where they succeed.
3. Nine distractors per item and language: same part of speech (English candidates as in 1 with attested
   translations in that part of speech in two languages, or the words that are attested translations of
   other English words of that part of speech), nearest in frequency, never a word any
   dictionary lists for the item in any sense (checked in both directions, glosses included), never one of
   the item's own words; sampled with a seeded RNG from the nearest ``neighbourhood`` valid candidates.
4. Every distractor is checked again at the end (:func:`verify_distractors`); the counts go to the manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluation.dictionaries import ADJ, NOUN, VERB
from evaluation.lexicon import CJK_LANGS, Lexicon, is_single_word
from evaluation.sources import WORDFREQ_ATTRIBUTION

DATASET_VERSION = "v1"
POS_ORDER = (NOUN, VERB, ADJ)
MIN_ATTESTED_LANGS = 2
EN_WORD = re.compile(r"^[a-z]{3,}$")
LANG_NAMES = {"en": "English", "fr": "French", "ja": "Japanese", "zh": "Chinese", "de": "German",
              "es": "Spanish", "ru": "Russian"}

Zipf = Callable[[str, str], float]  # (word, lang) -> Zipf frequency, 0 when unknown


@dataclass(frozen=True)
class BuildConfig:
    langs: tuple[str, ...] = ("en", "fr", "ja", "zh", "de", "es", "ru")
    required: tuple[str, ...] = ("en", "fr", "ja", "zh")
    seed: int = 0
    max_items: int = 2000
    n_distractors: int = 9
    neighbourhood: int = 30

    def __post_init__(self) -> None:
        if "en" not in self.langs or "en" not in self.required:
            raise ValueError("English is the pivot of the dictionaries: 'en' must be in --langs")
        unknown = set(self.langs) - set(LANG_NAMES)
        if unknown:
            raise ValueError(f"unsupported languages {sorted(unknown)}; supported: {sorted(LANG_NAMES)}")
        if not set(self.required) <= set(self.langs):
            raise ValueError("required languages must be among --langs")


@dataclass
class Item:
    id: str
    rank: int
    pos: str
    words: dict[str, str]
    alternatives: dict[str, list[str]]
    zipf: dict[str, float]
    distractors: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "rank": self.rank, "pos": self.pos, "words": self.words,
                "distractors": self.distractors, "alternatives": self.alternatives,
                "zipf": {k: round(v, 3) for k, v in self.zipf.items()}}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Item:
        return Item(d["id"], int(d["rank"]), d["pos"], dict(d["words"]), dict(d.get("alternatives", {})),
                    dict(d.get("zipf", {})), {k: list(v) for k, v in d.get("distractors", {}).items()})


@dataclass
class BuildReport:
    examined: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    optional_missing: Counter[str] = field(default_factory=Counter)
    distractor_rejections: Counter[str] = field(default_factory=Counter)
    distractor_candidates_examined: int = 0


def wordfreq_zipf() -> Zipf:
    """Zipf frequency by exact look-up in wordfreq's tables (no tokenizer: wordfreq's Japanese and Chinese
    tokenizers need MeCab/jieba, and a multi-token word would get a made-up combined frequency)."""
    import wordfreq

    tables: dict[str, dict[str, float]] = {}

    def zipf(word: str, lang: str) -> float:
        if lang not in tables:
            tables[lang] = wordfreq.get_frequency_dict(lang)
        f = tables[lang].get(word if lang in ("ja", "zh") else word.lower(), 0.0)
        return math.log10(f) + 9.0 if f > 0 else 0.0

    return zipf


# -- step 1 and 2: items ------------------------------------------------------------------------------------------
def translation_status(lex: Lexicon, en: str, pos: str, lang: str, zipf: Zipf) -> tuple[str, list[str]]:
    """("ok", attested single words by falling frequency) or (reason, [])."""
    ll = lex.langs.get(lang)
    if ll is None:
        return "no_dictionary", []
    fwd, rev = ll.forward(en, pos), ll.reverse(en, pos)
    if not fwd and not rev:
        return "no_entry", []
    if not fwd or not rev:
        return "single_source", []
    both = fwd & rev
    if not both:
        return "unattested", []
    single = [w for w in both if usable_word(w, lang)]
    if not single:
        return "no_usable_single_word", []
    known = [w for w in single if zipf(w, lang) > 0]
    if not known and lang not in CJK_LANGS:
        return "not_in_wordfreq", []
    return "ok", sorted(known or single, key=lambda w: (-zipf(w, lang), w))


def usable_word(word: str, lang: str) -> bool:
    """A single word; capitalised words are proper nouns or demonyms except in German, where nouns are."""
    return is_single_word(word, lang) and (lang == "de" or not word[:1].isupper())


def english_candidates(lex: Lexicon, zipf: Zipf) -> list[str]:
    return sorted(lex.en_pos, key=lambda w: (-zipf(w, "en"), w))


def select_items(lex: Lexicon, cfg: BuildConfig, zipf: Zipf, report: BuildReport,
                 pools: Mapping[tuple[str, str], Pool]) -> list[Item]:
    """Steps 1-3: English words in frequency order -> items with one attested word and nine distractors per
    language."""
    taken: dict[str, set[str]] = {lang: set() for lang in cfg.langs}
    items: list[Item] = []
    others = [lang for lang in cfg.langs if lang != "en"]
    for en in english_candidates(lex, zipf):
        if len(items) >= cfg.max_items:
            break
        report.examined += 1
        if not EN_WORD.match(en):
            report.drops["en_not_lowercase_a_z_len_gt_2"] += 1
            continue
        if zipf(en, "en") <= 0:
            report.drops["en_not_in_wordfreq"] += 1
            continue
        if en in lex.en_closed_class:
            report.drops["en_also_function_word"] += 1
            continue
        best: tuple[float, str, dict[str, list[str]], dict[str, str]] | None = None
        first_failure: tuple[int, str] | None = None
        for pos in POS_ORDER:
            if pos not in lex.en_pos[en]:
                continue
            alts: dict[str, list[str]] = {}
            statuses: dict[str, str] = {}
            for lang in others:
                statuses[lang], found = translation_status(lex, en, pos, lang, zipf)
                if found:
                    alts[lang] = found
            failures = [f"{statuses[lang]}_{lang}" for lang in others if lang in cfg.required and lang not in alts]
            if failures:
                if first_failure is None or len(failures) < first_failure[0]:
                    first_failure = (len(failures), failures[0])
                continue
            score = sum(zipf(alts[lang][0], lang) for lang in cfg.required if lang != "en")
            if best is None or score > best[0]:
                best = (score, pos, alts, statuses)
        if best is None:
            report.drops[first_failure[1] if first_failure else "no_noun_verb_adj"] += 1
            continue
        _, pos, alts, statuses = best
        words = {"en": en}
        dropped = None
        for lang in others:
            free = [w for w in alts.get(lang, []) if w not in taken[lang]]
            if free:
                words[lang] = free[0]
            elif lang in cfg.required:
                dropped = f"duplicate_target_{lang}"
                break
            elif lang in alts:
                report.optional_missing[f"duplicate_target_{lang}"] += 1
            else:
                report.optional_missing[f"{statuses[lang]}_{lang}"] += 1
        if dropped:
            report.drops[dropped] += 1
            continue
        item = Item(f"{en}.{pos}", len(items), pos, words, {lang: alts[lang] for lang in words if lang != "en"},
                    {lang: zipf(w, lang) for lang, w in words.items()})
        for lang in list(words):
            chosen = choose_distractors(item, lang, lex, pools[(lang, pos)], cfg, report)
            if chosen is not None:
                item.distractors[lang] = chosen
            elif lang in cfg.required:
                dropped = f"too_few_distractors_{lang}"
                break
            else:
                report.optional_missing[f"too_few_distractors_{lang}"] += 1
                del item.words[lang], item.alternatives[lang], item.zipf[lang]
        if dropped:
            report.drops[dropped] += 1
            continue
        for lang, w in item.words.items():
            taken[lang].add(w)
        items.append(item)
    return items


# -- step 3: distractors ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pool:
    """Candidate distractors of one language and part of speech, sorted by Zipf frequency."""

    words: tuple[str, ...]
    zipfs: tuple[float, ...]

    def nearest(self, z: float) -> Iterable[str]:
        """Words by increasing frequency distance from ``z`` (ties: the rarer first, then by position)."""
        import bisect

        hi = bisect.bisect_left(self.zipfs, z)
        lo = hi - 1
        while lo >= 0 or hi < len(self.words):
            if hi >= len(self.words) or (lo >= 0 and z - self.zipfs[lo] <= self.zipfs[hi] - z):
                yield self.words[lo]
                lo -= 1
            else:
                yield self.words[hi]
                hi += 1


def build_pools(lex: Lexicon, cfg: BuildConfig, zipf: Zipf) -> dict[tuple[str, str], Pool]:
    """(lang, pos) -> words usable as distractors: English words of that part of speech, and the attested
    single-word translations of English words of that part of speech. An English word counts in a part of
    speech only when it has attested translations in it in ``MIN_ATTESTED_LANGS`` languages: WikDict tags
    rare readings too (``think`` and ``are`` as nouns), and a noun item's distractors should be nouns."""
    members: dict[tuple[str, str], set[str]] = {(lang, pos): set() for lang in cfg.langs for pos in POS_ORDER}
    for en, poses in lex.en_pos.items():
        ok_en = bool(EN_WORD.match(en)) and zipf(en, "en") > 0 and en not in lex.en_closed_class
        for pos in poses:
            attested = 0
            for lang in cfg.langs:
                if lang != "en":
                    found = translation_status(lex, en, pos, lang, zipf)[1]
                    members[(lang, pos)].update(found)
                    attested += bool(found)
            if ok_en and attested >= MIN_ATTESTED_LANGS:
                members[("en", pos)].add(en)
    pools = {}
    for (lang, pos), words in members.items():
        scored = sorted((zipf(w, lang), w) for w in words)
        pools[(lang, pos)] = Pool(tuple(w for _, w in scored), tuple(z for z, _ in scored))
    return pools


def distractor_conflict(item: Item, lang: str, word: str, lex: Lexicon) -> str | None:
    """Why ``word`` cannot be a distractor of ``item`` in ``lang`` (None: it can). Checked against every sense
    and part of speech of every dictionary, in both directions:

    - ``item_word``: it is one of the item's own words (any language);
    - ``listed_translation``: a dictionary lists it as a translation of the item's English word (lang != en),
      or lists the English ``word`` as a translation of one of the item's words (lang == en);
    - ``gloss_mentions_item``: one of its glosses contains the item's English word (lang != en), or one of
      the glosses of the item's words contains ``word`` (lang == en).
    """
    if word in item.words.values():
        return "item_word"
    en = item.words["en"]
    if lang != "en":
        ll = lex.langs[lang]
        if word in ll.all_translations(en):
            return "listed_translation"
        if ll.mentions(word, en):
            return "gloss_mentions_item"
        return None
    for other, w in item.words.items():
        if other == "en" or other not in lex.langs:
            continue
        ll = lex.langs[other]
        if word in ll.fwd_inv.get(w, ()) or w in ll.all_translations(word):
            return "listed_translation"
        if word in ll.gloss_words.get(w, ()):
            return "gloss_mentions_item"
    return None


def choose_distractors(item: Item, lang: str, lex: Lexicon, pool: Pool, cfg: BuildConfig,
                       report: BuildReport) -> list[str] | None:
    """``cfg.n_distractors`` valid words sampled (seeded per item and language) from the ``neighbourhood``
    valid pool words nearest in frequency; None when the pool has too few valid words."""
    valid: list[str] = []
    for cand in pool.nearest(item.zipf[lang]):
        report.distractor_candidates_examined += 1
        reason = distractor_conflict(item, lang, cand, lex)
        if reason:
            report.distractor_rejections[reason] += 1
            continue
        valid.append(cand)
        if len(valid) >= cfg.neighbourhood:
            break
    if len(valid) < cfg.n_distractors:
        return None
    return random.Random(f"{cfg.seed}|{item.id}|{lang}").sample(valid, cfg.n_distractors)


# -- step 4: verification and counts -------------------------------------------------------------------------------
def verify_distractors(items: Iterable[Item], lex: Lexicon, n_distractors: int = 9) -> dict[str, Any]:
    """Re-check every distractor of every item against all dictionary senses; also distinctness and count."""
    checked = 0
    violations: list[str] = []
    for it in items:
        for lang, ds in it.distractors.items():
            if len(ds) != n_distractors or len(set(ds)) != len(ds):
                violations.append(f"{it.id} {lang}: {len(ds)} distractors, {len(set(ds))} distinct")
            for d in ds:
                checked += 1
                reason = distractor_conflict(it, lang, d, lex)
                if reason:
                    violations.append(f"{it.id} {lang}: {d!r} {reason}")
                elif not is_single_word(d, lang):
                    violations.append(f"{it.id} {lang}: {d!r} not a single word")
    return {"distractors_checked": checked, "violations": len(violations), "violation_examples": violations[:20]}


def direction_counts(items: Iterable[Item], langs: Iterable[str]) -> dict[str, int]:
    langs = list(langs)
    counts = {f"{a}->{b}": 0 for a in langs for b in langs if a != b}
    for it in items:
        for a in it.words:
            for b in it.words:
                if a != b and f"{a}->{b}" in counts:
                    counts[f"{a}->{b}"] += 1
    return counts


def build(lex: Lexicon, cfg: BuildConfig, zipf: Zipf) -> tuple[list[Item], BuildReport, dict[str, Any]]:
    report = BuildReport()
    pools = build_pools(lex, cfg, zipf)
    items = select_items(lex, cfg, zipf, report, pools)
    verification = verify_distractors(items, lex, cfg.n_distractors)
    return items, report, verification


# -- files ----------------------------------------------------------------------------------------------------------
def write_dataset(out: Path, items: list[Item], report: BuildReport, verification: dict[str, Any],
                  provenance: list[dict[str, str]], cfg: BuildConfig) -> dict[str, Any]:
    """``items-v1.jsonl`` + ``manifest.json`` + ``ATTRIBUTION.md`` in ``out``, each written to a temporary
    name and renamed. No timestamps: the same seed and sources give byte-identical files."""
    from importlib import metadata

    out.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(it.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for it in items)
    name = f"items-{DATASET_VERSION}.jsonl"
    _atomic_write(out / name, data)
    manifest = {
        "dataset": "clwtd-dictionaries",
        "version": DATASET_VERSION,
        "file": name,
        "sha256": hashlib.sha256(data.encode()).hexdigest(),
        "config": asdict(cfg),
        "n_items": len(items),
        "pos_counts": dict(Counter(it.pos for it in items)),
        "items_per_language": {lang: sum(lang in it.words for it in items) for lang in cfg.langs},
        "items_per_direction": direction_counts(items, cfg.langs),
        "english_words_examined": report.examined,
        "drop_reasons": dict(report.drops.most_common()),
        "optional_language_missing": dict(report.optional_missing.most_common()),
        "distractor_checks": {
            "candidates_examined": report.distractor_candidates_examined,
            "candidates_rejected": dict(report.distractor_rejections.most_common()),
            "final_verification": verification,
        },
        "sources": provenance,
        "wordfreq": {"version": metadata.version("wordfreq"), "attribution": WORDFREQ_ATTRIBUTION},
    }
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    _atomic_write(out / "ATTRIBUTION.md", attribution_markdown(provenance))
    return manifest


def attribution_markdown(provenance: list[dict[str, str]]) -> str:
    lines = ["# Attribution and licences", "",
             "This word list is derived from the dictionaries below and keeps their licences: the items that use "
             "CC-BY-SA sources (WikDict, JMdict/EDICT, CC-CEDICT) are share-alike; those that use GPL sources "
             "(FreeDict eng-fra/fra-eng, Ding) are GPL. Redistribute under the same terms.", "",
             "| source | package | version | licence | attribution |", "|---|---|---|---|---|"]
    for p in provenance:
        lines.append(f"| {p['name']} | {p['registry']}:{p['package']} | {p['version']} | {p['license']} | "
                     f"{p['attribution']} |")
    lines += ["", f"Word frequencies: {WORDFREQ_ATTRIBUTION}.", ""]
    return "\n".join(lines)


def read_items(path: str | Path) -> list[Item]:
    with open(path, encoding="utf-8") as f:
        return [Item.from_json(json.loads(line)) for line in f if line.strip()]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
