"""``pivot-spark audit --selection S``: what a model trained on each arm of a selection sees, before any GPU time.

Per arm of ``train_set`` (selection ``S``), over the arm's own documents (their ``doc_tokens``):

- tokens per span language, and the share in code and markup spans (``zxx``);
- occurrences of the evaluation words (``audit.items``: the evaluation data set's items file), each word as its
  token sequences in running text, summed over the spellings ``pair-cooccur`` searches
  (:func:`pivot_spark.pipeline.pair_cooccur.word_variants`);
- co-occurrences of each evaluation pair (the item's words in two languages) within ``audit.window`` tokens
  (default 100, the paper's window), counted as :func:`pivot_spark.steps.cooccur.pair_cooccurrence` counts them.

Tasks count their documents with the steps' functions and Spark sums the counts per arm; the per-word and per-pair
counts come to the driver (a few numbers per evaluation word and pair). The report goes to a JSON file
(``--out``, default ``{lake}/_audit/{selection}.json``), a one-screen table, and the ``runs`` row (the per-arm
totals).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import CatalogEntry
from pivot_spark.pipeline.pair_cooccur import pairs_digest, word_variants
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.langcodes import NO_LINGUISTIC_CONTENT

COUNTS = pa.schema([pa.field("arm", pa.string()), pa.field("kind", pa.string()), pa.field("key", pa.string()),
                    pa.field("count", pa.int64())])
_NAME = re.compile(r"[\w.-]+")

Specs = tuple[list[tuple[str, list[int]]], list[tuple[str, str, list[int], str, list[int]]]]


def read_items(path: str) -> list[dict[str, Any]]:
    """The items of an evaluation data set file (JSON Lines with ``id`` and ``words``: language -> word)."""
    items = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        if line.strip():
            rec = json.loads(line)
            if "id" not in rec or not isinstance(rec.get("words"), dict):
                raise ValueError(f"{path} line {i + 1}: an item needs an id and its words")
            items.append({"id": str(rec["id"]), "words": {str(k): str(v) for k, v in rec["words"].items()}})
    return items


def eval_words(items: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str,
                                                                                                    str, str]]]:
    """``(word_id, lang, word)`` of every item's words and ``(pair_id, lang_a, word_a, lang_b, word_b)`` of every
    unordered language pair of an item (``pair_id`` = ``{item}|{a}|{b}`` with ``a < b``, as ``pivot-eval
    pairs`` writes them)."""
    words, pairs = [], []
    for it in items:
        langs = sorted(it["words"])
        words += [(f"{it['id']}|{lang}", lang, it["words"][lang]) for lang in langs]
        pairs += [(f"{it['id']}|{a}|{b}", a, it["words"][a], b, it["words"][b])
                  for i, a in enumerate(langs) for b in langs[i + 1:]]
    return words, pairs


def count_specs(sp: Any, words: Sequence[tuple[str, str, str]], pairs: Sequence[tuple[str, str, str, str, str]]
                ) -> Specs:
    """Token sequences to count: each word's spellings (``{word_id}#{variant}``) and each pair's spelling
    combinations (``{pair_id}#{variants}``), as ``pair-cooccur`` searches them."""
    variants = {(lang, w): word_variants(sp, w, lang) for _, lang, w in words}
    for _, la, wa, lb, wb in pairs:
        for lang, w in ((la, wa), (lb, wb)):
            if (lang, w) not in variants:
                variants[(lang, w)] = word_variants(sp, w, lang)
    word_specs = [(f"{wid}#{k}", ids) for wid, lang, w in words for k, ids in variants[(lang, w)]]
    pair_specs = [(f"{pid}#{ka}{kb}", la, ia, lb, ib) for pid, la, wa, lb, wb in pairs
                  for ka, ia in variants[(la, wa)] for kb, ib in variants[(lb, wb)]]
    return word_specs, pair_specs


def count_arm_batch(batch: pa.RecordBatch, specs: Specs, window: int) -> pa.RecordBatch:
    """Counts of one batch of an arm's documents (``arm``, ``token_ids``, ``token_langs``): documents, tokens
    per span language, word occurrences and pair co-occurrences per spelling, as :data:`COUNTS` rows."""
    from pivot_spark.steps.cooccur import TokenBatch, pair_cooccurrence, word_occurrences

    word_specs, pair_specs = specs
    out: dict[str, list[Any]] = {n: [] for n in COUNTS.names}

    def add(arm: str, kind: str, keys: Sequence[str], counts: Sequence[int]) -> None:
        out["arm"] += [arm] * len(keys)
        out["kind"] += [kind] * len(keys)
        out["key"] += list(keys)
        out["count"] += [int(c) for c in counts]

    table = pa.Table.from_batches([batch])
    for arm in pc.unique(table["arm"]).to_pylist():
        docs = TokenBatch.from_arrow(table.filter(pc.equal(table["arm"], arm)))
        add(arm, "docs", [""], [docs.n_docs])
        n = np.bincount(docs.langs, minlength=len(docs.lang_names))
        add(arm, "lang", list(docs.lang_names), n.tolist())
        if word_specs:
            w = word_occurrences(docs, word_specs)
            keep = pc.greater(w["count"], 0)
            add(arm, "word", w.filter(keep)["word_id"].to_pylist(), w.filter(keep)["count"].to_pylist())
        if pair_specs:
            p = pair_cooccurrence(docs, pair_specs, window=window)
            keep = pc.greater(p["count"], 0)
            add(arm, "pair", p.filter(keep)["pair_id"].to_pylist(), p.filter(keep)["count"].to_pylist())
    return pa.RecordBatch.from_pydict(out, schema=COUNTS)


def audit(cfg: PivotConfig, selection: str, out: str | None = None, *, quiet: bool = False) -> dict[str, Any]:
    """Audit the arms of ``selection`` (module docstring); returns the run summary (``counts["arms"]``)."""
    if not _NAME.fullmatch(selection):
        raise ValueError(f"selection {selection!r}: letters, digits, '.', '_' and '-' only")
    items = read_items(cfg.audit.items) if cfg.audit.items else []
    words, pairs = eval_words(items)
    identity = {"selection": selection, "items": pairs_digest(items) if items else None,
                "window": cfg.audit.window}

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F

        from pivot_spark.steps.tokenize import get_sp

        train = ctx.read("train_set", partition_filters=[("selection", "=", selection)])
        with ctx.describe("find the selection's tokenizer"):
            toks = [r["tokenizer"] for r in train.select("tokenizer").distinct().collect()]
        if len(toks) != 1:
            raise ValueError(f"selection {selection!r} has {'no rows' if not toks else f'tokenizers {toks}'} in "
                             "train_set: run `pivot-spark select` with select.selection=" + selection)
        tok = toks[0]
        ctx.catalog = CatalogEntry(tokenizer=tok)
        specs = count_specs(get_sp(str(ctx.lake.tokenizer_path(tok))), words, pairs) if items else ([], [])
        specs_b = ctx.spark.sparkContext.broadcast(specs)  # token ids of the evaluation words, not a model
        window = cfg.audit.window
        docs = (train.select("arm", "doc_id")
                .join(ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
                      .select("doc_id", "token_ids", "token_langs"), "doc_id")
                .select("arm", "token_ids", "token_langs"))

        def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for b in batches:
                if b.num_rows:
                    yield count_arm_batch(b, specs_b.value, window)

        from pyspark.sql.pandas.types import from_arrow_schema

        summed = (docs.mapInArrow(count, from_arrow_schema(COUNTS))
                  # spelling ids are "<id>#<variants>": sum the spellings of a word or pair
                  .withColumn("key", F.regexp_replace("key", r"#[^#]*$", ""))
                  .groupBy("arm", "kind", "key").agg(F.sum("count").alias("count")))
        with ctx.describe("count languages, evaluation words and pairs per arm"):
            rows = [r.asDict() for r in summed.collect()]
        report = audit_report(rows, words=[w for w, _, _ in words], pairs=[p for p, *_ in pairs])
        report.update({"selection": selection, "tokenizer": tok, "window": window, "items_file": cfg.audit.items,
                       "items": len(items)})
        where = _write_report(ctx.lake, selection, report, out)
        return {"selection": selection, "tokenizer": tok, "window": window, "items": len(items),
                "report": where, "arms": {a: v["totals"] for a, v in report["arms"].items()}}

    summary = run_job(cfg, "audit", body, input_tables=("train_set", "doc_tokens"), identity=identity,
                      quiet=quiet)
    if not quiet:
        print_audit(summary["counts"])
    return summary


def audit_report(rows: Sequence[Mapping[str, Any]], *, words: Sequence[str], pairs: Sequence[str]
                 ) -> dict[str, Any]:
    """The report from summed counts (``arm, kind, key, count`` rows): per arm, ``totals`` (documents, tokens,
    language shares, the ``zxx`` share, evaluation words seen and their occurrences, pairs co-occurring and
    their co-occurrences) and the non-zero counts of each word and pair."""
    per: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        per[r["arm"]][r["kind"]][r["key"]] = int(r["count"])
    arms = {}
    for arm in sorted(per):
        c = per[arm]
        langs = c.get("lang", {})
        n_tokens = sum(langs.values())
        share = {k: v / n_tokens for k, v in sorted(langs.items(), key=lambda kv: -kv[1]) if v} if n_tokens else {}
        word_counts, pair_counts = c.get("word", {}), c.get("pair", {})
        seen_by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for w in words:
            lang = w.rsplit("|", 1)[-1]
            seen_by_lang[lang][0] += word_counts.get(w, 0) > 0
            seen_by_lang[lang][1] += 1
        totals = {
            "documents": c.get("docs", {}).get("", 0), "tokens": n_tokens,
            "zxx_share": langs.get(NO_LINGUISTIC_CONTENT, 0) / n_tokens if n_tokens else 0.0,
            "lang_share": {k: round(v, 4) for k, v in share.items()},
            "words": len(words), "words_seen": sum(word_counts.get(w, 0) > 0 for w in words),
            "word_occurrences": sum(word_counts.get(w, 0) for w in words),
            "words_seen_by_lang": {k: round(s / n, 4) for k, (s, n) in sorted(seen_by_lang.items())},
            "pairs": len(pairs), "pairs_cooccurring": sum(pair_counts.get(p, 0) > 0 for p in pairs),
            "pair_cooccurrences": sum(pair_counts.get(p, 0) for p in pairs),
        }
        arms[arm] = {"totals": totals, "word_counts": {w: word_counts[w] for w in words if word_counts.get(w)},
                     "pair_counts": {p: pair_counts[p] for p in pairs if pair_counts.get(p)}}
    return {"arms": arms}


def _write_report(lake: Lake, selection: str, report: Mapping[str, Any], out: str | None) -> str:
    data = json.dumps(report, indent=1, ensure_ascii=False, sort_keys=True).encode()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(data)
        return out
    fs, root = lake.store.fs, lake.store.root.rstrip("/")
    fs.create_dir(f"{root}/_audit", recursive=True)
    path = f"{root}/_audit/{selection}.json"
    with fs.open_output_stream(path) as f:
        f.write(data)
    return lake.store.uri(path)


def print_audit(counts: Mapping[str, Any]) -> None:
    """The per-arm totals as one table, each arm's languages, and the code-span share of the pivot arm against
    the random arm."""
    from rich.console import Console
    from rich.table import Table

    arms = counts.get("arms", {})
    t = Table(title=f"audit · selection {counts.get('selection')} · pairs within {counts.get('window')} tokens")
    for col in ("arm", "docs", "tokens", "zxx", "words seen", "occ.", "pairs near", "co-occ."):
        t.add_column(col, justify="left" if col == "arm" else "right", no_wrap=True)
    for arm, v in arms.items():
        t.add_row(arm, _short(v["documents"]), _short(v["tokens"]), f"{v['zxx_share']:.3f}",
                  f"{_short(v['words_seen'])}/{_short(v['words'])}", _short(v["word_occurrences"]),
                  f"{_short(v['pairs_cooccurring'])}/{_short(v['pairs'])}", _short(v["pair_cooccurrences"]))
    con = Console()
    con.print(t)
    for arm, v in arms.items():
        top = " ".join(f"{k} {x:.2f}" for k, x in sorted(v["lang_share"].items(), key=lambda kv: -kv[1])[:8])
        con.print(f"{arm}: {top}", highlight=False)
    if "pivot" in arms and "random" in arms and arms["random"]["zxx_share"] > 0:
        ratio = arms["pivot"]["zxx_share"] / arms["random"]["zxx_share"]
        con.print(f"code-span (zxx) share, pivot arm / random arm: {ratio:.2f}", highlight=False)
    con.print(f"report: {counts.get('report')}", highlight=False, soft_wrap=True)


def _short(n: int) -> str:
    """A count in at most six characters: 987, 12.3k, 4.56M (the report has the exact numbers)."""
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)
