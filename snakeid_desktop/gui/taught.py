"""The species taught on this computer, as the GUI shows them: plain data made off the GUI thread.

Teaching, the store and the fitting are the core's (``teach``, ``my_species``). This module turns
what they return into small frozen records that may cross to the GUI thread (never a species'
features: they can weigh tens of MB), and makes the predictor answer with the stored set again
after any change, one change at a time whichever window makes it. No Qt here.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from ..catalogue import SpeciesInfo
from ..safety import TAUGHT_MARK as _TAUGHT_WORDS

log = logging.getLogger(__name__)

TAUGHT_MARK = f" — {_TAUGHT_WORDS}"  # after a taught species' name wherever an answer names it

# Several windows change the taught set (teach, My species) on threads of their own: refitting one
# at a time means the last refit always reads the last change, and their answers arrive in order.
_refit_lock = threading.Lock()


@dataclass(frozen=True)
class StoredRow:
    """One species in the store, as "My species" lists it."""

    key: str | None  # the name the store finds it by (its slug); None for a file that cannot be read
    common_name: str
    scientific_name: str
    venomous: str | None
    countries: tuple[str, ...]
    notes: str
    photos: int | None
    checked: int | None  # photos held out of teaching to check it...
    correct: int | None  # ...and how many of them it recognised
    file: str
    problem: str | None  # why the model does not use it; None: in use

    @property
    def in_use(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class TaughtStatus:
    """What the model answers with besides its own species, and what it cannot use."""

    rows: tuple[StoredRow, ...] = ()
    in_use: tuple[SpeciesInfo, ...] = ()  # the catalogue entries of the taught species answered with
    error: str | None = None  # why the taught species could not be loaded at all (the model answers without)

    @property
    def not_used(self) -> tuple[StoredRow, ...]:
        return tuple(r for r in self.rows if not r.in_use)

    def info(self, slug: str) -> SpeciesInfo | None:
        return next((i for i in self.in_use if i.slug == slug), None)

    def row(self, slug: str) -> StoredRow | None:
        return next((r for r in self.rows if r.key == slug), None)


def _row(entry) -> StoredRow:
    sp = entry.species
    if sp is None:
        return StoredRow(None, entry.path.name, "", None, (), "", None, None, None, str(entry.path), entry.problem)
    cv = sp.cross_validation
    return StoredRow(sp.slug, sp.common_name, sp.scientific_name, sp.venomous, tuple(sp.countries), sp.notes,
                     sp.photos, cv.photos if cv else None, cv.correct if cv else None, str(entry.path), entry.problem)


def refit(predictor) -> TaughtStatus:
    """Make ``predictor`` answer with every usable stored species (``my_species.attach_taught``) and
    say what it now answers with. Never raises: the model keeps answering with what it had, and the
    status carries the reason (logged in full)."""
    from ..errors import user_message
    from ..my_species import attach_taught

    with _refit_lock:
        try:
            entries = attach_taught(predictor)
        except Exception as exc:  # a damaged store must never keep the app from answering
            log.exception("taught species could not be loaded")
            error = user_message(exc, already_logged=True)
            return TaughtStatus((), _in_use(predictor), f"Your taught species could not be loaded: {error}")
        return TaughtStatus(tuple(_row(e) for e in entries), _in_use(predictor))


def _in_use(predictor) -> tuple[SpeciesInfo, ...]:
    catalogue = predictor.catalogue
    return tuple(catalogue.get(sp.slug) for sp in getattr(predictor, "taught", ()))


def not_used_note(status: TaughtStatus) -> str | None:
    """One message-bar sentence when stored species are not answered with, or None."""
    if status.error:
        return f"{status.error} See Species ▸ My species."
    rows = status.not_used
    if not rows:
        return None
    first = rows[0]
    if len(rows) == 1:
        return f"Your taught species {first.common_name} is not in use ({first.problem}); see Species ▸ My species."
    return (f"{len(rows)} of your taught species are not in use (e.g. {first.common_name}: {first.problem}); "
            "see Species ▸ My species.")


def accuracy_sentence(correct: int | None, checked: int | None) -> str:
    """The cross-validated expected accuracy, as a count first: "34 of 35 of your photos (97%) ..."."""
    if not checked:
        return "No accuracy figure: too few photos to check."
    percent = round(100 * correct / checked)
    return (f"{correct} of {checked} of your photos ({percent}%) were recognised when left out of teaching.")


def short_accuracy(row: StoredRow) -> str:
    """For a table cell: "34 of 35 (97%)"."""
    if not row.checked:
        return "—"
    return f"{row.correct} of {row.checked} ({round(100 * row.correct / row.checked)}%)"


# ---------------------------------------------------------------- what one teaching run did


@dataclass(frozen=True)
class SpeciesTaught:
    """One species' part of a teaching report (``teach.SpeciesReport`` without its features)."""

    common_name: str
    scientific_name: str
    venomous: str
    photos: int
    skipped: tuple[tuple[str, str], ...]  # (path, why)
    duplicates: int
    checked: int | None
    correct: int | None
    warnings: tuple[str, ...]
    seconds: float

    @classmethod
    def of(cls, report) -> "SpeciesTaught":
        sp, cv = report.species, report.cross_validation
        return cls(sp.common_name, sp.scientific_name, sp.venomous, sp.photos,
                   tuple((s.path, s.reason) for s in report.skipped), report.duplicates,
                   cv.photos if cv else None, cv.correct if cv else None, tuple(report.warnings), report.seconds)


# ---------------------------------------------------------------- names from a folder's name

# Words of English snake names: a folder called "Mangrove snake" is a common name, not a genus.
_COMMON_WORDS = frozenset(
    "snake snakes cobra cobras viper vipers python pythons krait kraits boa boas adder adders mamba mambas racer "
    "racers keelback keelbacks taipan rattlesnake rattlesnakes asp whipsnake sea tree water rat pit spitting "
    "king green black brown red yellow banded striped common "
    # ...and of folders that hold no name at all
    "photo photos picture pictures image images pics img new folder my dataset holiday trip".split()
)
_BINOMIAL = re.compile(r"^[A-Za-z]{2,}(?: [A-Za-z]+){1,2}$")  # two or three words of letters


def names_from_folder(folder_name: str) -> tuple[str, str]:
    """(scientific name, common name) guessed from a folder's name, either possibly empty.

    "Boiga dendrophila" -> both the binomial (a species without a common name is often called by it);
    "Mangrove snake" -> only the common name; "Boiga dendrophila (Mangrove snake)" and
    "Mangrove snake - Boiga dendrophila" -> each in its place. The user checks and edits both.
    """
    text = " ".join(folder_name.replace("_", " ").split())
    parts = [p.strip(" -") for p in re.split(r"\s*[()\[\]]\s*|\s+-\s+", text) if p.strip(" -")]
    scientific = next((p for p in parts if _is_binomial(p)), "")
    others = [p for p in parts if p != scientific]
    common = others[0] if others else ""
    if scientific:
        scientific = scientific[0].upper() + scientific[1:].lower()
        common = common or scientific
    return scientific, common


def _is_binomial(text: str) -> bool:
    """Two or three words of letters that read like a Latin name: the epithets in lower case and
    ending as Latin epithets do (or the genus one of SnakeID's own), and no English snake word."""
    if not _BINOMIAL.match(text) or {w.casefold() for w in text.split()} & _COMMON_WORDS:
        return False
    genus, *epithets = text.split()
    if any(e[0].isupper() for e in epithets):
        return False  # "Mangrove Snake", "Painted Bronzeback": English in title case
    return all(e[-1].lower() in _LATIN_ENDINGS for e in epithets) or genus.casefold() in _known_genera()


_LATIN_ENDINGS = frozenset("aeiouhmsx")  # dendrophila, russelii, scutellatus, atrox, hannah


def _known_genera() -> frozenset[str]:
    from ..catalogue import default_catalogue

    return frozenset(info.scientific_name.split()[0].casefold() for info in default_catalogue().species.values())
