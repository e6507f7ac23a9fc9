"""Plain-data results shared by the CLI, the batch engine and the GUI (safe to pass between threads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .names import name_bytes_b64, readable
from .safety import Verdict, counts_as_venomous


@dataclass(frozen=True)
class Candidate:
    species: str  # slug
    scientific_name: str
    common_name: str
    probability: float  # temperature-calibrated (renormalised over the species of the photo's country)
    venomous: str  # "yes" | "mild" | "no" | "unknown"
    taught: bool = False  # a species taught on this computer by its user, not one SnakeID ships with


@dataclass(frozen=True)
class Prediction:
    """What the predictor decided for one photo. Every consumer shows this; none re-derives it.

    ``risk`` is the venom warning: on when ``venom_probability`` (the calibrated probability mass of
    all venomous species in play) reaches the bundle's risk threshold, whatever the verdict, and
    always for ``outside_coverage``. ``risky`` names the venomous candidates behind it, most likely
    first. ``country`` is the region the answer assumed and ``country_source`` where it came from
    ("gps": the photo's own location, "option": the user's choice), both None for "anywhere".
    """

    verdict: Verdict
    risk: bool
    top: tuple[Candidate, ...]
    not_snake_probability: float
    venom_probability: float | None = None  # None: nothing to weigh (outside coverage)
    risky: tuple[Candidate, ...] = ()
    country: str | None = None
    country_source: str | None = None

    @property
    def best(self) -> Candidate | None:
        return self.top[0] if self.top else None

    @property
    def shows_harmless(self) -> bool:
        """The green "not venomous" answer: a named harmless species and no warning. Nothing else."""
        best = self.best
        return self.verdict == "species" and best is not None and not counts_as_venomous(best.venomous) and not self.risk

    @property
    def first_aid(self) -> str | None:
        """Which first aid to show: "venomous" with any warning and whenever unsure, "harmless" for a
        harmless answer, none for a photo without a snake and without a warning."""
        if self.risk or self.verdict in ("unsure", "outside_coverage"):
            return "venomous"
        if self.shows_harmless:
            return "harmless"
        if self.verdict == "species":
            return "venomous"
        return None


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
            "venom_probability": pred.venom_probability if pred else None,
            "country": pred.country if pred else None,
            "country_source": pred.country_source if pred else None,
            "top": [asdict(c) for c in pred.top] if pred else [],
            "warnings": [readable(w) for w in self.warnings],
        }
        raw = name_bytes_b64(self.path)
        if raw is not None:
            data["path_bytes_b64"] = raw
        return data
