"""Dictionary parsers on small inline samples of each real format (copied from the Debian/PyPI packages)."""

from __future__ import annotations

import gzip

import pytest

from evaluation import dictionaries as D

# WikDict eng-jpn 2024.11.01, article "kite": numbered senses with translations, a nested sense appended to
# the translation line ("... 紙鳶 2.") and a bare nested sense (" 3."); definitions follow translation lines.
WIKDICT_KITE = """kite //kaɪt// <n>
1. 鳶, トビ
A bird of prey of the family Accipitridae.
2. 凧, いか, てんばた, 楊子, 紙鳶 2.
(geometry) A polygon resembling the shape of a traditional toy kite (sense 3): a quadrilateral having two pairs of edges of equal length, the edges of each pair touching each other at one end.
 3.
(sailing, dated) In a square-rigged ship: originally a sail positioned above a topsail; later a lightweight sail set above the topgallants, such as a studding sail or a jib topsail.
3. 願箋
(US, prison slang) A (usually concealed) letter or oral message, especially one passed illegally into, within, or out of a prison.
"""

# WikDict eng-zho, article "house" (n): unnumbered first translation line with an appended nested sense.
WIKDICT_HOUSE = """house //haʊs// //huːs// //hʌʊs// <n>
房子 2.
A structure built or serving as an abode of human beings. [from 9th c.]
 3.
A place of business; a company or organisation, especially a printing press, a publishing company, or a couturier. [from 10th c.]
"""

WIKDICT_RUS = """educational //ˌɛdjʊˈkeɪʃənəl// <adj>
1. образова́тельный, уче́бный
Of, or relating to education.
"""


def test_wikdict_nested_senses_keep_definitions_apart():
    e = D.parse_wikdict("kite", WIKDICT_KITE)
    assert e.pos == D.NOUN and e.headword == "kite"
    assert e.translations() == ["鳶", "トビ", "凧", "いか", "てんばた", "楊子", "紙鳶", "願箋"]
    defs = [d for s in e.senses for d in s.definitions]
    assert any(d.startswith("(geometry)") for d in defs) and any(d.startswith("(sailing") for d in defs)
    assert not any("bird" in t or "polygon" in t or t.endswith("2.") for t in e.translations())
    # the bare nested sense has a definition and no translation
    assert any(not s.translations and s.definitions for s in e.senses)


def test_wikdict_unnumbered_first_sense_with_appended_marker():
    e = D.parse_wikdict("house", WIKDICT_HOUSE)
    assert e.translations() == ["房子"]
    assert len([d for s in e.senses for d in s.definitions]) == 2


def test_wikdict_russian_stress_marks_removed():
    e = D.parse_wikdict("educational", WIKDICT_RUS)
    assert e.pos == D.ADJ
    assert e.translations() == ["образовательный", "учебный"]
    assert D.strip_stress("ёлка й été") == "ёлка й été"  # letters, not stress marks


def test_plain_freedict_and_ding():
    fr = D.parse_plain("grand", "grand /gʀɑ̃/ <adj>\nbig, great, large\n")
    assert (fr.pos, fr.translations()) == (D.ADJ, ["big", "great", "large"])
    en = D.parse_plain("run", "run /rʌn/\n1. fonctionner\n2. fuite\n3. s'élancer, se précipiter\n4. courir\n")
    assert en.pos is None and en.translations() == ["fonctionner", "fuite", "s'élancer", "se précipiter", "courir"]
    noun = D.parse_plain("eau", "eau /o/ <n, fem>\nwater\n")
    assert noun.pos == D.NOUN
    ding = D.parse_plain("domelike", "domelike /dˈəʊmlaɪk/\nkuppelförmig, kalottenförmig, domartig <adj> [geol.]\n"
                                     "   Synonyms: {dome-shaped}, {domed}, {domal}\n\n")
    assert ding.translations() == ["kuppelförmig", "kalottenförmig", "domartig"] and ding.pos == D.ADJ
    de = D.parse_plain("nephrit", "Nephrit /neːfrˈɪt/ <masc, n, sg>\n [min.] nephrite <n>, jade <n>\n")
    assert de.headword == "Nephrit" and de.pos == D.NOUN and de.translations() == ["nephrite", "jade"]
    verb = D.parse_plain("lösen", "lösen /lˈøːzən/ <v, trans>\n [min.] breast <v>\n         Note: out\n")
    assert verb.pos == D.VERB and verb.translations() == ["breast"]


def test_pos_normalisation():
    assert D.normalize_pos("n, fem") == D.NOUN
    assert D.normalize_pos("vt") == D.VERB
    assert D.normalize_pos("preposition") == "other"
    assert D.normalize_pos("pn") == "other"
    assert D.normalize_pos(None) is None


def test_edict_lines():
    e = D.parse_edict_line("家 [いえ] /(n) (1) house/residence/dwelling/(n) (2) family/household/(n) (3) lineage/"
                           "family name/(P)/")
    assert e.forms == ("家", "いえ")
    assert [s.glosses for s in e.senses] == [("house", "residence", "dwelling"), ("family", "household"),
                                             ("lineage", "family name")]
    assert all(s.pos_tags == ("n",) for s in e.senses)
    v = D.parse_edict_line("走る(P);奔る;趨る [はしる(P)] /(v5r,vi) (1) to run/(2) to travel (movement of vehicles)/"
                           "(3) (uk) to hurry to/EntL1404975X/")
    assert v.forms == ("走る", "奔る", "趨る", "はしる")
    assert v.senses[0].pos_tags == ("v5r", "vi") and v.senses[2].pos_tags == ("v5r", "vi")
    assert v.senses[2].glosses == ("to hurry to",)
    assert D.edict_pos(v.senses[0].pos_tags, True) == D.VERB
    assert D.edict_pos(("adj-i",), False) == D.ADJ
    assert D.edict_pos(("suf",), False) is None
    assert D.parse_edict_line("\u3000？？？ /EDICT, EDICT_SUB(P), EDICT2 Japanese-English Electronic Dictionary/") is None
    with pytest.raises(ValueError):
        D.parse_edict_line("４° [しど] /")


def test_edict_file_is_euc_jp(tmp_path):
    p = tmp_path / "edict"
    p.write_bytes("水 [みず] /(n) (1) water (esp. cool, fresh water)/(P)/\n４° [しど] /\n".encode("euc_jp"))
    rejected: list[str] = []
    entries = list(D.read_edict(p, rejected))
    assert [e.forms for e in entries] == [("水", "みず")] and len(rejected) == 1
    assert D.english_key(entries[0].senses[0].glosses[0]) == ("water", False)


def test_cedict_lines(tmp_path):
    text = ("# CC-CEDICT\n#! date=2023-11-07T06:42:16Z\n"
            "大 大 [da4] /big; large; great/older (than another person)/\n"
            "跑 跑 [pao3] /to run/to run away; to escape/\n"
            "風箏 风筝 [feng1 zheng5] /kite/CL:隻|只[zhi1],個|个[ge4]/\n")
    p = tmp_path / "cedict.txt.gz"
    p.write_bytes(gzip.compress(text.encode()))
    entries = list(D.read_cedict(p))
    assert [e.simplified for e in entries] == ["大", "跑", "风筝"]
    assert entries[0].glosses == ("big; large; great", "older (than another person)")
    assert D.cedict_header(p)["date"] == "2023-11-07T06:42:16Z"
    with pytest.raises(ValueError):
        D.parse_cedict_line("broken line")


def test_dictd_container_roundtrip(tmp_path):
    articles = [("house", WIKDICT_HOUSE), ("kite", WIKDICT_KITE)]
    blob, index = b"", []
    for head, text in [("00databaseinfo", "info"), *articles]:
        data = text.encode()
        index.append(f"{head}\t{_b64(len(blob))}\t{_b64(len(data))}\n")
        blob += data
    (tmp_path / "d.index").write_text("".join(index), encoding="utf-8")
    (tmp_path / "d.dict.dz").write_bytes(gzip.compress(blob))
    assert list(D.read_dictd(tmp_path / "d")) == articles
    assert D.b64_number("B") == 1 and D.b64_number("BA") == 64 and D.b64_number("c/") == 28 * 64 + 63


def _b64(n: int) -> str:
    out = ""
    while True:
        out = D.B64[n % 64] + out
        n //= 64
        if n == 0:
            return out
