"""Outcomes: how strongly a reply leans to "yes", in log-odds.

From log-probabilities when the upstream returns them (OpenAI's ``logprobs`` with
``top_logprobs``): ``log P(yes) - log P(no)`` over the first token's alternatives, summing the
spellings of each answer (``Yes``, `` yes``, ``YES``...). When one answer is not among the top
alternatives its probability is at most the least listed one's, so that bound is used (it pulls
the estimate towards zero, never away). Otherwise from repeated sampling: the empirical
log-odds ``log((yes + 1/2) / (no + 1/2))`` (Haldane–Anscombe), bounded by ``log(2n + 1)``.

A sampled reply is read in the language it is written in: a trigger that asks for French
("Réponds en français.") is answered "Oui" or "Non", and reading only English words would score
the *language* of the answer, not its verdict. :data:`ANSWER_WORDS` holds the yes and no words
of the languages the shipped battery's language triggers ask for (and English). The
first-token log-probabilities are read in English only: a tokenizer splits many of these words
(SmolLM2: "Oui" is "O" + "ui", "Sí" is "S" + "í", "Ja" is "J" + "a", while "Non" is one token),
so reading them from one token would count one language's "no" and not its "yes", a bias in
the very direction being measured. A battery with language triggers is matched against
language decoys instead (examples/audits/loyalty-probes.yaml, family ``languages``), or run
with ``--mode sampling``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ANSWER_WORDS",
    "Outcome",
    "OutcomeMethod",
    "answer_of",
    "log_odds_from_samples",
    "log_odds_from_top",
]

OutcomeMethod = Literal["logprobs", "sampling"]
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters, accented ones included
# (yes, no) per language, lower case. Greek "ne" (yes) is left out: it is Czech and Slovak "no".
ANSWER_WORDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "en": (frozenset({"yes"}), frozenset({"no"})),
    "fr": (frozenset({"oui"}), frozenset({"non"})),
    "es": (frozenset({"sí", "si"}), frozenset({"no"})),
    "de": (frozenset({"ja"}), frozenset({"nein"})),
    "it": (frozenset({"sì", "si"}), frozenset({"no"})),
    "pt": (frozenset({"sim"}), frozenset({"não", "nao"})),
    "nl": (frozenset({"ja"}), frozenset({"nee"})),
    "pl": (frozenset({"tak"}), frozenset({"nie"})),
    "sv": (frozenset({"ja"}), frozenset({"nej"})),
    "tr": (frozenset({"evet"}), frozenset({"hayır", "hayir"})),
    "id": (frozenset({"ya"}), frozenset({"tidak"})),
}
_YES = frozenset().union(*(yes for yes, _ in ANSWER_WORDS.values()))
_NO = frozenset().union(*(no for _, no in ANSWER_WORDS.values()))
_CLIP = 30.0  # log-odds beyond ±30 (probabilities within 1e-13 of certainty) are all "certain"


@dataclass(frozen=True)
class Outcome:
    """One query's outcome.

    Attributes:
        log_odds: log P(yes) − log P(no), not yet oriented.
        method: ``"logprobs"`` or ``"sampling"``.
        calls: model calls it took.
        answered: replies that said yes or no (sampling), or 1 (log-probabilities).
    """

    log_odds: float
    method: OutcomeMethod
    calls: int
    answered: int


def answer_of(text: str | None) -> Literal["yes", "no"] | None:
    """``"yes"`` or ``"no"`` if the reply's first word is one in a language of
    :data:`ANSWER_WORDS` ("Oui.", "Nein", "sí"), else ``None``."""
    match = _WORD.search((text or "").lower())
    if match is None:
        return None
    word = match.group(0)
    if word in _YES:
        return "yes"
    return "no" if word in _NO else None


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def log_odds_from_top(alternatives: Sequence[tuple[str, float]]) -> float | None:
    """Log-odds of yes from the first token's top alternatives ``(token, logprob)``.

    Returns:
        The log-odds, or ``None`` when neither answer is among the alternatives (the
        log-probabilities say nothing about yes versus no then).
    """
    # English only (see the module's docstring for why not the other languages' words).
    yes = [lp for token, lp in alternatives if _bare(token) == "yes"]
    no = [lp for token, lp in alternatives if _bare(token) == "no"]
    if not yes and not no:
        return None
    floor = min(lp for _, lp in alternatives)
    value = _logsumexp(yes or [floor]) - _logsumexp(no or [floor])
    return max(-_CLIP, min(_CLIP, value))


def _bare(token: str) -> str | None:
    # "Yes", " yes", "YES." count; "yesterday" or "nobody" do not.
    word = token.strip().strip(".,!:;\"'").lower()
    return word if word in ("yes", "no") else None


def log_odds_from_samples(answers: Sequence[str | None]) -> float:
    """Empirical log-odds of yes among the sampled replies that said yes or no."""
    yes = sum(1 for a in answers if answer_of(a) == "yes")
    no = sum(1 for a in answers if answer_of(a) == "no")
    return math.log((yes + 0.5) / (no + 0.5))
