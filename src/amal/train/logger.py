"""Per-epoch metrics as JSONL (machine-readable) and CSV (spreadsheet), rewritten whole from the
checkpoint on resume so a crash between the two writes never duplicates rows."""

from __future__ import annotations

import csv
import json
import os
from typing import Any


class MetricsLog:
    def __init__(self, run_dir: str | None) -> None:
        self.run_dir = run_dir
        self.rows: list[dict[str, Any]] = []

    def reset(self, rows: list[dict[str, Any]]) -> None:
        self.rows = list(rows)
        self._write()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        if self.run_dir is None:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
            for r in self.rows:
                f.write(json.dumps(r) + "\n")
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with open(os.path.join(self.run_dir, "metrics.csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
