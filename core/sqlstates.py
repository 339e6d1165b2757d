"""The registry of every SQLSTATE the functions in db/functions/ raise (core/sqlstates.tsv)
and the HTTP status the web layer answers it with."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REGISTRY_TSV = Path(__file__).resolve().parent / "sqlstates.tsv"


@dataclass(frozen=True)
class SqlState:
    code: str
    http: int
    name: str
    raised_when: str


def load(path: Path = REGISTRY_TSV) -> dict[str, SqlState]:
    """code -> SqlState, '#' lines being comments."""
    with path.open(newline="") as fh:
        rows = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        return {row["code"]: SqlState(row["code"], int(row["http"]), row["name"], row["raised when"])
                for row in rows}
