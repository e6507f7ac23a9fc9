"""The safety vocabulary, decided once: what counts as venomous, how venom status and verdicts are
worded, and how probabilities are shown. The predictor decides; the CLI, the batch table, the exports
and the result card only show what it decided, in these words.
"""

from __future__ import annotations

from typing import Literal

VenomStatus = Literal["yes", "mild", "no", "unknown"]
VENOM_STATUSES: tuple[str, ...] = ("yes", "mild", "no", "unknown")

# Any class that means "a snake, but none of the species SnakeID knows" counts as venomous.
OTHER_SNAKE = "other_snake"

Verdict = Literal["species", "unsure", "not_snake", "outside_coverage"]
VERDICTS: tuple[str, ...] = ("species", "unsure", "not_snake", "outside_coverage")

VENOM_WORDS = {
    "yes": "venomous",
    "mild": "mildly venomous",
    "no": "not venomous",
    "unknown": "venom status unknown: treat as venomous",
}

VERDICT_LABELS = {
    "species": "Species",
    "unsure": "Unsure",
    "not_snake": "Not a snake",
    "outside_coverage": "Outside coverage",
}

VERDICT_HEADLINES = {
    "species": None,  # the species' own name
    "unsure": "Not sure",
    "not_snake": "This doesn't look like a snake",
    "outside_coverage": "Outside what SnakeID knows",
}


# How a species taught on this computer (not one SnakeID ships with) is marked wherever it is named.
TAUGHT_MARK = "taught by you"


def counts_as_venomous(status: str) -> bool:
    """Mildly venomous and unknown count: the warning errs towards caution (a false alarm costs less)."""
    return status != "no"


def format_percent(probability: float) -> str:
    """A calibrated probability for people: never "100%" or "0%", which no model can honestly claim."""
    value = 100.0 * probability
    if value > 99.0:
        return "over 99%"
    if 0.0 < value < 1.0:
        return "under 1%"
    return f"{value:.0f}%"


def venom_words(status: str) -> str:
    return VENOM_WORDS.get(status, VENOM_WORDS["unknown"])


SEEK_HELP = "Keep well away, and if anyone was bitten, get medical help now."


def warning_text(prediction, catalogue=None) -> str | None:
    """The venom warning in words, or None when the predictor decided there is none."""
    if not prediction.risk:
        return None
    if prediction.verdict == "outside_coverage":
        from .catalogue import default_catalogue
        from .region import outside_coverage_message

        return f"{outside_coverage_message(prediction.country or 'ZZ', catalogue or default_catalogue())} {SEEK_HELP}"
    best = prediction.best
    named = list(prediction.risky)
    if prediction.verdict == "not_snake":
        lead = "If there is a snake in this photo, it may be venomous."
    elif prediction.verdict == "species" and best is not None and best.venomous == "unknown":
        lead = f"{best.common_name}: its venom is unknown, so treat it as venomous."
        named = [c for c in named if c.species != best.species]
    elif prediction.verdict == "species" and best is not None and counts_as_venomous(best.venomous):
        lead = f"This looks like a {venom_words(best.venomous)} snake."
        named = [c for c in named if c.species != best.species]
    else:
        lead = "This could be a venomous snake: SnakeID cannot rule it out"
        if prediction.venom_probability is not None:
            lead += f" (venomous species together: {format_percent(prediction.venom_probability)})"
        lead += "."
    text = lead
    if named:
        text += " Possible: " + ", ".join(
            f"{c.common_name} ({venom_words(c.venomous)}{', ' + TAUGHT_MARK if c.taught else ''}, "
            f"{format_percent(c.probability)})" for c in named) + "."
    return f"{text} {SEEK_HELP}"


def assumption_text(prediction) -> str:
    """Which region the answer assumed, and why: shown with every answer."""
    if prediction.country is None:
        return "Answering for anywhere: choose where you are for answers that fit your region."
    from .region import country_name_with_article

    source = {"gps": "from the photo's location", "option": "your choice"}.get(prediction.country_source, "")
    return f"Answering for {country_name_with_article(prediction.country)}" + (f" ({source})." if source else ".")
