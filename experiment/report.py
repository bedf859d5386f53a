"""The experiment's report: ``results.json`` gathered from the workdir, ``results.md``, plots, a console table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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
        bj = evals / "behaviours" / "behaviours.json"
        if bj.exists():
            b = json.loads(bj.read_text())
            m["behaviours"] = {"mean_auc": b.get("mean_auc"), "label_counts": b.get("label_counts"),
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


def _clwtd_brief(c: dict[str, Any]) -> dict[str, Any]:
    return {"mean": c.get("mean"), "mean_ci95": c.get("mean_ci95"), "n_items": c.get("n_items"),
            "directions": {d: {k: v.get(k) for k in ("n", "mean", "ci95", "share_positive", "p_correct_mean")}
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
    lines += ["## Models", "", "| run | train tokens seen | final loss | eval loss | CLWTD mean [95% CI] | "
              "subset mean [95% CI] | behaviour AUC (mean over directions) | labels |", "|---|---|---|---|---|---|---|---|"]
    for name, m in res["models"].items():
        t, c, s, b = m.get("train", {}), m.get("clwtd", {}), m.get("clwtd_subset", {}), m.get("behaviours", {})
        lines.append(f"| {name} | {t.get('tokens') or 'n/a'} | {_f(t.get('loss'), 3)} | {_f(t.get('eval_loss'), 3)} | "
                     f"{_f(c.get('mean'))} {_ci(c.get('mean_ci95'))} | {_f(s.get('mean'))} {_ci(s.get('mean_ci95'))} "
                     f"(n={s.get('n_items', 'n/a')}) | {_f(b.get('mean_auc'), 3)} | {b.get('label_counts', 'n/a')} |")
    lines.append("")
    dirs = sorted({d for m in res["models"].values() for d in m.get("clwtd", {}).get("directions", {})})
    if dirs:
        lines += ["## CLWTD per direction (mean S over items)", "",
                  "| run | " + " | ".join(dirs) + " |", "|---" * (len(dirs) + 1) + "|"]
        for name, m in res["models"].items():
            per = m.get("clwtd", {}).get("directions", {})
            lines.append(f"| {name} | " + " | ".join(_f(per.get(d, {}).get("mean")) for d in dirs) + " |")
        lines += ["", "## Behaviour AUC per direction (log co-occurrence frequency -> co-occurrence behaviour)", "",
                  "| run | " + " | ".join(dirs) + " |", "|---" * (len(dirs) + 1) + "|"]
        for name, m in res["models"].items():
            per = m.get("behaviours", {}).get("directions", {})
            lines.append(f"| {name} | " + " | ".join(_f(per.get(d, {}).get("auc"), 3) for d in dirs) + " |")
        lines.append("")
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            lines += [f"## Comparison `{name}` ({'all items' if scope == 'all' else 'corpus-occurring items'}, "
                      f"n={rep['n_items']}, reference `{rep['reference']}`)", "",
                      "| difference | mean diff | 95% CI items+seeds | 95% CI items |", "|---|---|---|---|"]
            for k, v in rep["differences"].items():
                mm = v["mean"]
                lines.append(f"| {k} | {_f(mm['diff'])} | {_ci(mm['ci95_items_seeds'])} | {_ci(mm['ci95_items'])} |")
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
    """Per-run CLWTD mean with its item-bootstrap CI (all items and subset), and the behaviour AUC per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, m in res["models"].items() if "clwtd" in m]
    if not names:
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(names) + 1.6), sharey=True)
    for ax, key, title in ((axes[0], "clwtd", "all items"), (axes[1], "clwtd_subset", "corpus-occurring items")):
        if not any(res["models"][n].get(key) for n in names):
            ax.text(0.5, 0.5, "no scores", ha="center", transform=ax.transAxes)
        for y, n in enumerate(names):
            c = res["models"][n].get(key)
            if not c or c.get("mean") is None:
                continue
            lo, hi = c["mean_ci95"]
            ax.errorbar(c["mean"], y, xerr=[[c["mean"] - lo], [hi - c["mean"]]], fmt="o",
                        color=_arm_color(res["models"][n]["arm"], res["models"][n]["variant"]))
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"CLWTD mean S, {title}")
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
    for c in ("run", "tokens", "eval loss", "CLWTD", "subset", "AUC"):
        t.add_column(c)
    for name, m in res["models"].items():
        t.add_row(name, str(m.get("train", {}).get("tokens", "-")), _f(m.get("train", {}).get("eval_loss"), 3),
                  _f(m.get("clwtd", {}).get("mean")), _f(m.get("clwtd_subset", {}).get("mean")),
                  _f(m.get("behaviours", {}).get("mean_auc"), 3))
    out = Console()
    out.print(t)
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            for k, v in rep["differences"].items():
                mm = v["mean"]
                out.print(f"{scope:6s} {name:18s} {k:28s} {_f(mm['diff'])}  CI items+seeds "
                          f"{_ci(mm['ci95_items_seeds'])}  CI items {_ci(mm['ci95_items'])}")
    out.print(f"results: {res['workdir']}/results/results.json and results.md")


