"""The data set build on parsed dictionary samples: attestation, distractor checks (with planted violations),
determinism and the output files."""

from __future__ import annotations

import json

import pytest

from evaluation import dictionaries as D
from evaluation.dataset import (
    BuildConfig,
    Item,
    build,
    distractor_conflict,
    verify_distractors,
    wordfreq_zipf,
    write_dataset,
)
from evaluation.lexicon import Lexicon, normalizer

WORDS = {  # English noun -> (Japanese, French)
    "house": ("家", "maison"), "dog": ("犬", "chien"), "cat": ("猫", "chat"), "family": ("家族", "famille"),
    "tree": ("木", "arbre"), "water": ("水", "eau"), "book": ("本", "livre"), "car": ("車", "voiture"),
    "city": ("都市", "ville"), "door": ("扉", "porte"), "money": ("金", "argent"), "window": ("窓", "fenêtre"),
}


def wikdict(en: str, ja: str, extra: str = "") -> D.Entry:
    text = f"{en} //x// <n>\n1. {ja}\nA definition of {en} mentioning house and family.\n{extra}"
    return D.parse_wikdict(en, text)


def lexicon() -> Lexicon:
    lex = Lexicon()
    eng_jpn = [wikdict(en, ja) for en, (ja, _) in WORDS.items()]
    eng_jpn.append(D.parse_wikdict("like", "like //x// <preposition>\n1. 様な\nSimilar to.\n"))
    eng_jpn.append(D.parse_wikdict("like", "like //x// <v>\n1. 好む\nTo enjoy.\n"))
    lex.add_english_pos(eng_jpn)
    ja = lex.lang("ja")
    ja.add_forward(eng_jpn, normalizer("ja"), "wikdict-eng-jpn")
    edict = [D.parse_edict_line(f"{ja_w} [よみ] /(n) (1) {en}/(P)/") for en, (ja_w, _) in WORDS.items()]
    edict.append(D.parse_edict_line("好む [このむ] /(v5m,vt) (1) to like/to prefer/(P)/"))
    ja.add_edict(edict, "edict")
    # eng-fra: "house" has a second sense "famille" (a dynasty): famille must never be a distractor of house
    eng_fra = [D.parse_plain(en, f"{en} /x/\n{fr}\n") for en, (_, fr) in WORDS.items() if en != "house"]
    eng_fra.append(D.parse_plain("house", "house /haus/\n1. maison\n2. famille\n"))
    eng_fra.append(D.parse_plain("like", "like /laik/\ncomme\n"))
    fr = lex.lang("fr")
    fr.add_forward(eng_fra, normalizer("fr"), "freedict-eng-fra")
    fra_eng = [D.parse_plain(fr_w, f"{fr_w} /x/ <n, fem>\n{en}\n") for en, (_, fr_w) in WORDS.items()]
    # a gloss that mentions the item without being the item: "porte" (door) glossed "house door" here
    fra_eng.append(D.parse_plain("porte", "porte /pɔʀt/ <n, fem>\nhouse door, gate\n"))
    fra_eng.append(D.parse_plain("comme", "comme /kɔm/\nlike, as\n"))
    fr.add_reverse(fra_eng, normalizer("fr"), "freedict-fra-eng")
    return lex


CFG = BuildConfig(langs=("en", "ja", "fr"), required=("en", "ja", "fr"), seed=3, max_items=20, n_distractors=3,
                  neighbourhood=8)


@pytest.fixture(scope="module")
def built():
    lex = lexicon()
    items, report, verification = build(lex, CFG, wordfreq_zipf())
    return lex, items, report, verification


def test_items_attested_by_both_dictionaries(built):
    lex, items, report, _ = built
    by_en = {it.words["en"]: it for it in items}
    assert set(by_en) == set(WORDS)  # "like" is dropped: it has a function-word (preposition) reading
    assert report.drops["en_also_function_word"] == 1
    for en, (ja, fr) in WORDS.items():
        assert by_en[en].words == {"en": en, "ja": ja, "fr": fr}
        assert by_en[en].pos == D.NOUN and len(by_en[en].distractors) == 3
    assert [it.rank for it in items] == list(range(len(items)))


def test_pos_less_pairs_need_a_confirmed_part_of_speech():
    lex = lexicon()
    assert lex.langs["fr"].forward("like", D.VERB) == {"comme"}  # compatible on both sides (no POS given)
    assert lex.langs["fr"].reverse("like", D.VERB) == {"comme"}
    assert lex.langs["fr"].attested("like", D.VERB) == set()  # but neither dictionary says it is a verb
    assert lex.langs["ja"].attested("like", D.VERB) == {"好む"}


def test_every_distractor_is_checked_against_all_senses(built):
    lex, items, report, verification = built
    house = next(it for it in items if it.words["en"] == "house")
    # planted: famille is a translation of house only in its second eng-fra sense
    assert distractor_conflict(house, "fr", "famille", lex) == "listed_translation"
    assert distractor_conflict(house, "fr", "porte", lex) == "gloss_mentions_item"
    assert distractor_conflict(house, "fr", "maison", lex) == "item_word"
    assert distractor_conflict(house, "fr", "chien", lex) is None
    assert distractor_conflict(house, "en", "family", lex) is None
    assert "famille" not in house.distractors["fr"] and "porte" not in house.distractors["fr"]
    assert verification == {"distractors_checked": len(items) * 3 * 3, "violations": 0, "violation_examples": []}
    assert report.distractor_rejections["listed_translation"] >= 1
    assert report.distractor_rejections["gloss_mentions_item"] >= 1
    # the final check is real: plant violations and it reports them
    bad = Item(house.id, 0, house.pos, dict(house.words), {}, dict(house.zipf),
               {"fr": ["famille", "chien", "chien"], "ja": list(house.distractors["ja"]),
                "en": ["dog", "cat", "tree house"]})
    v = verify_distractors([bad], lex, 3)
    assert v["violations"] == 3
    assert any("famille" in x and "listed_translation" in x for x in v["violation_examples"])
    assert any("2 distinct" in x for x in v["violation_examples"])
    assert any("tree house" in x and "single word" in x for x in v["violation_examples"])


def test_english_distractors_checked_against_the_items_words(built):
    lex, items, _, _ = built
    door = next(it for it in items if it.words["en"] == "door")
    # fra-eng lists "house door" for porte: "house" appears in a gloss of door's French word
    assert distractor_conflict(door, "en", "house", lex) == "gloss_mentions_item"
    assert "house" not in door.distractors["en"]


def test_deterministic_for_a_seed(built, tmp_path):
    lex, items, report, verification = built
    again, report2, verification2 = build(lexicon(), CFG, wordfreq_zipf())
    assert [it.to_json() for it in again] == [it.to_json() for it in items]
    m1 = write_dataset(tmp_path / "a", items, report, verification, [], CFG)
    m2 = write_dataset(tmp_path / "b", again, report2, verification2, [], CFG)
    assert (tmp_path / "a" / "items-v1.jsonl").read_bytes() == (tmp_path / "b" / "items-v1.jsonl").read_bytes()
    assert m1["sha256"] == m2["sha256"]
    other, _, _ = build(lexicon(), BuildConfig(**{**CFG.__dict__, "seed": 4}), wordfreq_zipf())
    assert [it.words for it in other] == [it.words for it in items]
    assert [it.distractors for it in other] != [it.distractors for it in items]


def test_output_files(built, tmp_path):
    lex, items, report, verification = built
    m = write_dataset(tmp_path, items, report, verification, [], CFG)
    assert m["items_per_direction"]["en->ja"] == len(items) == m["n_items"]
    assert m["distractor_checks"]["final_verification"]["violations"] == 0
    lines = (tmp_path / "items-v1.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["words"]["en"] == items[0].words["en"]
    assert json.loads((tmp_path / "manifest.json").read_text())["version"] == "v1"
    assert "CC-BY-SA" in (tmp_path / "ATTRIBUTION.md").read_text()


def test_config_validation():
    with pytest.raises(ValueError):
        BuildConfig(langs=("fr", "ja"), required=("fr",))
    with pytest.raises(ValueError):
        BuildConfig(langs=("en", "xx"), required=("en",))
