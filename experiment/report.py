"""The experiment's report: ``results.json`` gathered from the workdir, ``results.md``, plots, a console table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evaluation.metrics import CHANCE, seed_t_interval
from experiment.plan import ModelRun
from experiment.recipe import MAIN


def model_results(work: Path, runs: list[ModelRun]) -> dict[str, Any]:
    """Per model (run name): its training end, CLWTD (all items and the corpus subset) and behaviours, as the
    workdir ``work`` has them."""
    models: dict[str, Any] = {}
    for run in runs:
        m: dict[str, Any] = {"variant": run.variant, "arm": run.arm, "seed": run.seed, "selection": run.selection}
        final = work / "models" / run.name / "final" / "pivot_train.json"
        metrics = work / "models" / run.name / "metrics.jsonl"
        if final.exists():
            t = json.loads(final.read_text())
            m["train"] = {k: t.get(k) for k in ("step", "tokens", "loss", "eval_loss")}
            m["train"]["train_docs"] = t.get("data", {}).get("train_docs")
            m["train"]["train_tokens"] = t.get("data", {}).get("train_tokens")
        elif metrics.exists():
            m["train"] = _metrics_end(metrics)
        evals = work / "evals" / run.name
        cj = evals / "clwtd" / "clwtd.json"
        if cj.exists():
            c = json.loads(cj.read_text())
            m["clwtd"] = _clwtd_brief(c)
            if "subset" in c:
                m["clwtd_subset"] = _clwtd_brief(c["subset"])
        ij = evals / "clwtd-indomain" / "clwtd.json"
        if ij.exists():
            m["clwtd_indomain"] = _clwtd_brief(json.loads(ij.read_text()))
        bj = evals / "behaviours" / "behaviours.json"
        if bj.exists():
            b = json.loads(bj.read_text())
            m["behaviours"] = {"mean_auc": b.get("mean_auc"), "label_counts": b.get("label_counts"),
                               "own_mean_auc": b.get("own_training_documents", {}).get("mean_auc"),
                               "window": b.get("window"), "pairs_missing_in_lake": b.get("pairs_missing_in_lake"),
                               "directions": {d: {k: v.get(k) for k in ("auc", "n", "n_cooccurrence", "n_pivot")}
                                              for d, v in b.get("directions", {}).items()}}
        models[run.name] = m
    return models


def write(results: dict[str, Any], out: Path) -> None:
    """``results.json``, ``results.md`` and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
    (out / "results.md").write_text(results_markdown(results), encoding="utf-8")
    plots(results, out)


def control_result(work: Path, runs: list[ModelRun]) -> dict[str, Any] | None:
    """The positive control: per seed the acc@1 of the injected and the matched items; t-intervals over seeds of
    each and of their paired difference; it passes when the injected items' interval lies above chance."""
    if not runs:
        return None
    seeds: dict[str, dict[str, Any]] = {}
    for run in runs:
        p = work / "evals" / run.name / "clwtd" / "clwtd.json"
        if p.exists():
            sc = json.loads(p.read_text())["scopes"]
            seeds[run.name] = {k: sc[k]["metrics"]["acc1"]["mean"] for k in ("injected", "matched")} | \
                {f"{k}_ci95_items": sc[k]["metrics"]["acc1"]["ci95"] for k in ("injected", "matched")} | \
                {f"{k}_mrr": sc[k]["metrics"]["rr"]["mean"] for k in ("injected", "matched")} | \
                {"n_records": sc["injected"]["n_records"]}
    if not seeds:
        return {"runs": [m.name for m in runs], "evaluated": 0}
    inj = [v["injected"] for v in seeds.values()]
    mat = [v["matched"] for v in seeds.values()]
    t_inj = seed_t_interval(inj)
    lower = t_inj["ci95"][0] if len(inj) > 1 else seeds[next(iter(seeds))]["injected_ci95_items"][0]
    return {"runs": [m.name for m in runs], "evaluated": len(seeds), "per_seed": seeds, "chance": CHANCE["acc1"],
            "injected": t_inj, "matched": seed_t_interval(mat),
            "difference": seed_t_interval([a - b for a, b in zip(inj, mat, strict=True)]),
            "interval": "t over seeds" if len(inj) > 1 else "item bootstrap (one seed)",
            "passes": bool(lower > CHANCE["acc1"])}


def _clwtd_brief(c: dict[str, Any]) -> dict[str, Any]:
    return {"mean": c.get("mean"), "mean_ci95": c.get("mean_ci95"), "n_items": c.get("n_items"),
            "scopes": {k: {m: v["metrics"][m] for m in ("acc1", "rr", "llr")} | {"n_records": v["n_records"]}
                       for k, v in c.get("scopes", {}).items()},
            "directions": {d: {k: v.get(k) for k in ("n", "mean", "ci95", "share_positive", "p_correct_mean")}
                           | {"acc1": v.get("metrics", {}).get("acc1", {}).get("mean")}
                           for d, v in c.get("directions", {}).items()}}


def _metrics_end(path: Path) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "end":
            last = {k: rec.get(k) for k in ("step", "tokens", "loss", "eval_loss")}
    return last


def _f(x: Any, nd: int = 4) -> str:
    """Fixed point; scientific below 1e-3, where tiny models' scores live (0.0000 would hide the sign)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.{nd}f}"


def _ci(ci: Any) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]" if ci else "n/a"


def results_markdown(res: dict[str, Any]) -> str:
    """The generated summary of ``results.json`` as Markdown."""
    r = res["recipe"]
    lines = [f"# Experiment `{r['name']}`", "",
             f"lake `{res['lake']}`, workdir `{res['workdir']}`, data set `{res['dataset']}`, "
             f"{res['seconds']:.0f} s in this invocation.", ""]
    corpus = res["facts"].get("corpus")
    if corpus:
        lines += [f"Corpus: {corpus['documents']:,} scored documents, {corpus['tokens']:,} tokens.", "",
                  "| language | documents | tokens |", "|---|---|---|"]
        lines += [f"| {k} | {v['documents']:,} | {v['tokens']:,} |" for k, v in corpus["per_language"].items()]
        lines.append("")
    for vname, sel in res["facts"].get("selections", {}).items():
        lines += [f"Selection `{sel.get('selection')}` ({vname}, pivot set `{sel.get('pivot_set')}`, budget "
                  f"{sel.get('token_budget'):,} tokens):", "", "| arm | documents | tokens | mean pivot proportion "
                  "| language mix |", "|---|---|---|---|---|"]
        lines += [f"| {a} | {v['documents']:,} | {v['tokens']:,} | {v['mean_pivot_proportion']} | {v['lang_mix']} |"
                  for a, v in sel.get("arms", {}).items()]
        lines.append("")
    ctl = res.get("control")
    if ctl and ctl.get("evaluated"):
        verdict = "passes" if ctl["passes"] else "FAILS"
        lines += ["## Positive control (glossary-injected pairs)", "",
                  f"acc@1 of the injected items vs matched items that were not injected; chance {ctl['chance']}. "
                  f"Interval: {ctl['interval']}. The control **{verdict}** (injected interval above chance).", "",
                  "| run | injected acc@1 [95% CI items] | matched acc@1 [95% CI items] | injected MRR | matched MRR |",
                  "|---|---|---|---|---|"]
        for name, v in ctl["per_seed"].items():
            lines.append(f"| {name} | {_f(v['injected'])} {_ci(v['injected_ci95_items'])} | {_f(v['matched'])} "
                         f"{_ci(v['matched_ci95_items'])} | {_f(v['injected_mrr'])} | {_f(v['matched_mrr'])} |")
        lines += ["", "| over seeds | mean | 95% t-interval | n seeds |", "|---|---|---|---|"]
        for k in ("injected", "matched", "difference"):
            v = ctl[k]
            lines.append(f"| {k} | {_f(v['diff'])} | {_ci(v['ci95'])} | {v['n_seeds']} |")
        lines.append("")
    lines += ["## Models", "", "| run | train tokens seen | final loss | eval loss | acc@1 general [95% CI items] | "
              "MRR general | acc@1 in-domain non-copyable [95% CI items] | S general (paper) | behaviour AUC corpus; "
              "own docs | labels |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in res["models"].items():
        t, c, i, b = m.get("train", {}), m.get("clwtd", {}), m.get("clwtd_indomain", {}), m.get("behaviours", {})
        ga = c.get("scopes", {}).get("all", {})
        ia = i.get("scopes", {}).get("non_copyable", {})
        lines.append(f"| {name} | {t.get('tokens') or 'n/a'} | {_f(t.get('loss'), 3)} | {_f(t.get('eval_loss'), 3)} | "
                     f"{_f(ga.get('acc1', {}).get('mean'))} {_ci(ga.get('acc1', {}).get('ci95'))} | "
                     f"{_f(ga.get('rr', {}).get('mean'))} | {_f(ia.get('acc1', {}).get('mean'))} "
                     f"{_ci(ia.get('acc1', {}).get('ci95'))} | {_f(c.get('mean'))} | {_f(b.get('mean_auc'), 3)}; "
                     f"{_f(b.get('own_mean_auc'), 3)} | {b.get('label_counts', 'n/a')} |")
    lines.append("")
    dirs = sorted({d for m in res["models"].values() for d in m.get("clwtd", {}).get("directions", {})})
    if dirs:
        lines += ["## acc@1 per direction (general set)", "",
                  "| run | " + " | ".join(dirs) + " |", "|---" * (len(dirs) + 1) + "|"]
        for name, m in res["models"].items():
            per = m.get("clwtd", {}).get("directions", {})
            lines.append(f"| {name} | " + " | ".join(_f(per.get(d, {}).get("acc1")) for d in dirs) + " |")
        lines.append("")
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            noncopy = ", non-copyable records" if rep.get("exclude_copyable") else ""
            lines += [f"## Comparison `{name}` on {rep.get('metric_label', 'acc@1')} (scope `{scope}`{noncopy}, "
                      f"n={rep['n_items']} items, reference `{rep['reference']}`, chance {rep.get('chance')})", "",
                      "| difference | mean diff | 95% t-interval paired by seed (n seeds) | 95% CI items, given the "
                      "seeds |", "|---|---|---|---|"]
            for k, v in rep["differences"].items():
                mm = v["mean"]
                t = mm["paired_by_seed"]
                lines.append(f"| {k} | {_f(mm['diff'])} | {_ci(t['ci95'])} ({t['n_seeds']}) | "
                             f"{_ci(mm['ci95_items_given_seeds'])} |")
            lines += ["", "Arm means: " + ", ".join(f"{a} {_f(v['mean'])} (seeds "
                                                    f"{', '.join(_f(x) for x in v['seed_means'])})"
                                                    for a, v in rep["arms"].items()), ""]
            if rep.get("missing_runs"):
                lines += [f"Not evaluated (not in this comparison): {', '.join(rep['missing_runs'])}.", ""]
    unrun = [m for m, v in res["models"].items() if "clwtd" not in v]
    if unrun:
        lines += [f"Models without evaluations (not trained, or stopped by the time budget): {', '.join(unrun)}.", ""]
    return "\n".join(lines)


def plots(res: dict[str, Any], out: Path) -> list[Path]:
    """Per-run acc@1 with its item-bootstrap CI (general set; in-domain non-copyable), and the behaviour AUC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, m in res["models"].items() if "clwtd" in m]
    if not names:
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(names) + 1.6), sharey=True)
    panels = ((axes[0], "clwtd", "all", "general set"), (axes[1], "clwtd_indomain", "non_copyable",
                                                          "in-domain set, non-copyable"))
    for ax, key, scope, title in panels:
        if not any(res["models"][n].get(key) for n in names):
            ax.text(0.5, 0.5, "no scores", ha="center", transform=ax.transAxes)
        for y, n in enumerate(names):
            acc = res["models"][n].get(key, {}).get("scopes", {}).get(scope, {}).get("acc1")
            if not acc or acc.get("mean") is None:
                continue
            lo, hi = acc["ci95"]
            ax.errorbar(acc["mean"], y, xerr=[[acc["mean"] - lo], [hi - acc["mean"]]], fmt="o",
                        color=_arm_color(res["models"][n]["arm"], res["models"][n]["variant"]))
        ax.axvline(CHANCE["acc1"], color="grey", lw=0.8)
        ax.set_title(f"acc@1 (chance 0.1), {title}")
        ax.set_yticks(range(len(names)), names)
    fig.tight_layout()
    p = out / "clwtd-runs.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    auc = [(n, res["models"][n].get("behaviours", {}).get("mean_auc")) for n in names]
    auc = [(n, a) for n, a in auc if a is not None and not math.isnan(a)]
    if auc:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(auc) + 1.4))
        ax.barh(range(len(auc)), [a - 0.5 for _, a in auc], left=0.5,
                color=[_arm_color(res["models"][n]["arm"], res["models"][n]["variant"]) for n, _ in auc])
        ax.axvline(0.5, color="grey", lw=0.8)
        ax.set_yticks(range(len(auc)), [n for n, _ in auc])
        ax.set_xlim(0, 1)
        ax.set_title("AUC of log co-occurrence frequency (mean over directions)")
        fig.tight_layout()
        p = out / "behaviour-auc.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths


def _arm_color(arm: str, variant: str) -> str:
    if variant != MAIN:
        return "tab:purple"
    return {"pivot": "tab:red", "random": "tab:blue", "langmatch": "tab:green"}.get(arm, "tab:grey")


def print_summary(res: dict[str, Any]) -> None:
    t = Table(title=f"experiment {res['recipe']['name']} · {len(res['models'])} models")
    for c in ("run", "tokens", "eval loss", "acc@1 general", "acc@1 in-domain non-copyable", "S general", "AUC"):
        t.add_column(c)
    for name, m in res["models"].items():
        ga = m.get("clwtd", {}).get("scopes", {}).get("all", {}).get("acc1", {})
        ia = m.get("clwtd_indomain", {}).get("scopes", {}).get("non_copyable", {}).get("acc1", {})
        t.add_row(name, str(m.get("train", {}).get("tokens", "-")), _f(m.get("train", {}).get("eval_loss"), 3),
                  _f(ga.get("mean")), _f(ia.get("mean")), _f(m.get("clwtd", {}).get("mean")),
                  _f(m.get("behaviours", {}).get("mean_auc"), 3))
    out = Console()
    out.print(t)
    ctl = res.get("control")
    if ctl and ctl.get("evaluated"):
        out.print(f"control: injected acc@1 {_f(ctl['injected']['diff'])} {_ci(ctl['injected']['ci95'])}, matched "
                  f"{_f(ctl['matched']['diff'])}, chance {ctl['chance']}: {'passes' if ctl['passes'] else 'FAILS'}")
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            for k, v in rep["differences"].items():
                mm = v["mean"]
                out.print(f"{scope:17s} {name:18s} {k:24s} {rep['metric']} {_f(mm['diff'])}  paired by seed "
                          f"{_ci(mm['paired_by_seed']['ci95'])}  items given seeds {_ci(mm['ci95_items_given_seeds'])}")
    out.print(f"results: {res['workdir']}/results/results.json and results.md")
