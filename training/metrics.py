"""Metrics as JSON lines (and TensorBoard event files), and the peak rates MFU is measured against."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

# Dense bf16 tensor-core peaks (vendor datasheets, SXM parts), FLOP/s. MFU is reported only for cards listed here.
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "H800": 989.4e12, "A100": 312e12, "L40S": 362.05e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


class MetricsLog:
    """Append-only ``metrics.jsonl``: one flushed line per event, so a crash loses at most the line in flight.

    With ``tensorboard`` (a folder), the numbers of the ``train`` and ``eval`` records also go to TensorBoard as
    scalars ``{kind}/{name}`` at the record's step (flushed with each record), and the ``start`` record's settings
    as text: ``tensorboard --logdir OUT/tensorboard``."""

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True,
                 tensorboard: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._tb: Any = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard is not None:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(tensorboard))

    def write(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        rec = {"kind": kind, "time": round(time.time(), 3), **fields}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self._tb is not None:
            self._to_tensorboard(kind, fields)

    def _to_tensorboard(self, kind: str, fields: dict[str, Any]) -> None:
        if kind == "start":
            self._tb.add_text("settings", "```\n" + json.dumps(fields.get("args", {}), indent=1) + "\n```", 0)
        elif kind in ("train", "eval"):
            for name, value in fields.items():
                if name != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{name}", value, fields["step"])
        self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return [r for r in recs if kind is None or r["kind"] == kind]
