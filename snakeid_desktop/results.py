"""Plain-data results shared by the CLI, the batch engine and the GUI (safe to pass between threads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from .names import name_bytes_b64, readable

# The risk flag looks at the 3 most likely species however many candidates are displayed: its threshold
# is fitted on val with exactly this rule (training/finalize.py), so the CLI, batch and GUI agree.
RISK_CANDIDATES = 3

Verdict = Literal["species", "unsure", "not_snake"]


@dataclass(frozen=True)
class Candidate:
    species: str  # slug
    scientific_name: str
    common_name: str
    probability: float  # temperature-calibrated
    venomous: str  # "yes" | "no" | "mild"


@dataclass(frozen=True)
class Prediction:
    verdict: Verdict
    risk: bool
    top: tuple[Candidate, ...]
    not_snake_probability: float

    @property
    def best(self) -> Candidate | None:
        return self.top[0] if self.top else None


@dataclass
class FileResult:
    """One input's outcome; ``to_json()`` gives exactly the CLI's JSON object."""

    path: str
    prediction: Prediction | None = None
    error: str | None = None
    error_kind: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.prediction is not None

    def to_json(self) -> dict:
        """Always valid Unicode (so always valid UTF-8 JSON): a name that is not UTF-8 appears in
        ``path`` with its undecodable bytes as ``\\xNN``, and exactly in ``path_bytes_b64``
        (base64 of the raw bytes), a key present only for such names."""
        pred = self.prediction
        data = {
            "path": readable(self.path),
            "status": "ok" if self.ok else "error",
            "error": readable(self.error) if self.error is not None else None,
            "verdict": pred.verdict if pred else None,
            "risk": bool(pred.risk) if pred else False,
            "top": [asdict(c) for c in pred.top] if pred else [],
            "warnings": [readable(w) for w in self.warnings],
        }
        raw = name_bytes_b64(self.path)
        if raw is not None:
            data["path_bytes_b64"] = raw
        return data
