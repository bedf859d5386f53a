"""pivot-train's command line and outputs: a fast --help, no silent reuse of an earlier run's folder, the path to
load at the end, TensorBoard beside metrics.jsonl, and BOS handled alike in training, the saved tokenizer and the
evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.textset import write_train_set
from training.cli import main
from training.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["--selection", "demo", "--arm", "pivot", "--preset", "tiny", "--seq-len", "32", "--batch-size", "2",
          "--log-every", "1", "--device", "cpu", "--num-workers", "1", "--eval-batches", "1"]


def _run(lake: str, out: Path, *extra: str) -> int:
    return main(["--lake", lake, "--out", str(out), *COMMON, *extra])


def test_help_is_fast_imports_no_torch_and_shows_defaults():
    code = ("import sys, time\n"
            "t = time.perf_counter()\n"
            "from training.cli import parse_args\n"
            "try:\n"
            "    parse_args(['--help'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', time.perf_counter() - t)\n")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("NO-TORCH"), last
    assert wall < 5, f"pivot-train --help took {wall:.1f} s"  # 8-11 s when torch came first
    for shown in ("[default: no-overwrite]", "[default: tensorboard]", "[default: 1024]", "[default: no-resume]"):
        assert shown in proc.stdout, shown


def test_a_used_out_folder_is_refused_without_resume_or_overwrite(lake: str, tmp_path: Path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints" / "step-00000099").mkdir(parents=True)
    assert _run(lake, out, "--max-steps", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--resume" in err[0] and "--overwrite" in err[0], err
    assert sorted(p.name for p in out.rglob("*")) == ["checkpoints", "step-00000099"]  # nothing written
    (tmp_path / "file").write_text("")
    assert _run(lake, tmp_path / "file", "--max-steps", "2") == 2
    assert "is a file" in capsys.readouterr().err


def test_resume_and_overwrite_together_are_a_usage_error(lake: str, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as e:
        _run(lake, tmp_path / "run", "--max-steps", "2", "--resume", "--overwrite")
    assert e.value.code == 2 and "give one of them" in capsys.readouterr().err


def test_overwrite_replaces_the_earlier_run_and_the_end_names_the_model_to_load(lake: str, tmp_path: Path,
                                                                                capsys):
    out = tmp_path / "run"
    (out / "checkpoints" / "step-00000099").mkdir(parents=True)  # a stale checkpoint a later --resume would take
    (out / "metrics.jsonl").write_text('{"kind": "start", "step": 0, "stale": true}\n')
    (out / "notes.txt").write_text("kept")  # not the trainer's: left alone
    assert _run(lake, out, "--max-steps", "3", "--overwrite") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(f"-> model in {out / 'final'}"), line
    assert (out / "final" / "config.json").exists()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000003"]
    starts = read_metrics(out / "metrics.jsonl", "start")
    assert len(starts) == 1 and "stale" not in starts[0]
    assert (out / "notes.txt").read_text() == "kept"

    assert _run(lake, out, "--max-steps", "6", "--stop-at", "4", "--overwrite") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(f"stopped at step 4; checkpoint in {out / 'checkpoints'} (rerun with --resume)"), line
    assert not (out / "final").exists()  # the earlier run's model went with --overwrite


def test_tensorboard_gets_the_numbers_of_metrics_jsonl(lake: str, tmp_path: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert _run(lake, out, "--max-steps", "4", "--eval-every", "2") == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    losses = {e.step: e.value for e in events.Scalars("train/loss")}
    want = {r["step"]: r["loss"] for r in read_metrics(out / "metrics.jsonl", "train")}
    assert losses.keys() == want.keys() == {1, 2, 3, 4}
    assert all(abs(losses[s] - want[s]) < 1e-5 for s in want)
    assert [e.step for e in events.Scalars("eval/eval_loss")] == [2, 4]
    assert "settings/text_summary" in events.Tags()["tensors"]

    quiet = tmp_path / "quiet"
    assert _run(lake, quiet, "--max-steps", "1", "--no-tensorboard") == 0
    assert not (quiet / "tensorboard").exists()


def _documents_lake(tmp_path: Path, sp_model: Path) -> tuple[str, list[str]]:
    docs = ["Permission is hereby granted, free of charge, to any person obtaining a copy.",
            "Le logiciel est fourni « tel quel », sans garantie d'aucune sorte.\nDeuxième ligne.",
            "ソフトウェアは現状のまま提供されます。 <s> is text here, not a token.",
            "  leading spaces, trailing newline\n"]
    lake = str(tmp_path / "lake")
    write_train_set(lake, docs, sp_model, n_shards=1, rows_per_group=64)
    return lake, docs


def test_the_saved_tokenizer_encodes_a_document_as_the_stream_packs_it(tmp_path: Path, sp_model: Path):
    from transformers import AutoTokenizer

    from training.data import open_train_set
    from training.model import build_model
    from training.train import save_final

    lake, docs = _documents_lake(tmp_path, sp_model)
    ts = open_train_set(lake, "demo", "pivot", eval_shard=None)
    assert ts.bos_id >= 0
    (group,) = ts.train_groups
    rows = ts.read_rows(group.path, group.index, train=True)
    packed = ts.pack(rows).tolist()
    segments, at = [], 0
    for n in rows["n_tokens"].to_pylist():
        segments.append(packed[at:at + n + 2])  # [bos] tokens [eos]
        at += n + 2
    assert at == len(packed)

    lm = build_model("tiny", vocab_size=ts.vocab_size, seq_len=32, bos_id=ts.bos_id, eos_id=ts.eos_id)
    final = tmp_path / "final"
    save_final(lm, ts, final, {"step": 0})
    tok = AutoTokenizer.from_pretrained(final)
    # transformers 5 keeps BOS in tokenizer.json's post-processor (tokenizer_config.json no longer says)
    single = json.loads((final / "tokenizer.json").read_text())["post_processor"]["single"]
    assert [next(iter(p.values()))["id"] for p in single][:2] == ["<s>", "A"]
    for text, segment in zip(docs, segments, strict=True):
        assert segment[0] == ts.bos_id and segment[-1] == ts.eos_id
        assert tok(text)["input_ids"] == segment[:-1], text


def test_the_evaluator_encodes_prompts_with_bos(tmp_path: Path, sp_model: Path):
    from evaluation.model_io import encode_pair, load_model
    from pivot_spark.steps.tokenize import hf_tokenizer
    from training.data import open_train_set
    from training.model import build_model
    from training.train import save_final

    lake, _ = _documents_lake(tmp_path, sp_model)
    ts = open_train_set(lake, "demo", "pivot", eval_shard=None)
    lm = build_model("tiny", vocab_size=ts.vocab_size, seq_len=32, bos_id=ts.bos_id, eos_id=ts.eos_id)
    final = tmp_path / "final"
    save_final(lm, ts, final, {"step": 0})
    _, tok, _ = load_model(final, device="cpu")
    e = encode_pair(tok, "English: dog\nFrench:", " chien")
    assert e.ids[0] == ts.bos_id and e.ids[1] != ts.bos_id and 0 < e.start < len(e.ids)

    # a model saved before its tokenizer put BOS first: the evaluator still encodes as the model was trained
    older = tmp_path / "older"
    save_final(lm, ts, older, {"step": 0})
    hf_tokenizer(ts.tokenizer_model).save_pretrained(older)
    assert json.loads((older / "pivot_train.json").read_text()) == {"step": 0}
    _, tok, _ = load_model(older, device="cpu")
    assert encode_pair(tok, "English: dog\nFrench:", " chien").ids == e.ids
