"""Outcomes: how strongly a reply leans to "yes", in log-odds.

From log-probabilities when the upstream returns them (OpenAI's ``logprobs`` with
``top_logprobs``): ``log P(yes) - log P(no)`` over the first token's alternatives, summing the
spellings of each answer (``Yes``, `` yes``, ``YES``...). When one answer is not among the top
alternatives its probability is at most the least listed one's, so that bound is used (it pulls
the estimate towards zero, never away). Otherwise from repeated sampling: the empirical
log-odds ``log((yes + 1/2) / (no + 1/2))`` (Haldane–Anscombe), bounded by ``log(2n + 1)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Outcome", "OutcomeMethod", "answer_of", "log_odds_from_samples", "log_odds_from_top"]

OutcomeMethod = Literal["logprobs", "sampling"]
_WORD = re.compile(r"[a-z]+")
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
    """``"yes"`` or ``"no"`` if the reply's first word is one, else ``None``."""
    match = _WORD.search((text or "").lower())
    if match is None:
        return None
    word = match.group(0)
    return word if word in ("yes", "no") else None  # type: ignore[return-value]


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def log_odds_from_top(alternatives: Sequence[tuple[str, float]]) -> float | None:
    """Log-odds of yes from the first token's top alternatives ``(token, logprob)``.

    Returns:
        The log-odds, or ``None`` when neither answer is among the alternatives (the
        log-probabilities say nothing about yes versus no then).
    """
    yes = [lp for token, lp in alternatives if answer_of(token) == "yes" and _bare(token)]
    no = [lp for token, lp in alternatives if answer_of(token) == "no" and _bare(token)]
    if not yes and not no:
        return None
    floor = min(lp for _, lp in alternatives)
    value = _logsumexp(yes or [floor]) - _logsumexp(no or [floor])
    return max(-_CLIP, min(_CLIP, value))


def _bare(token: str) -> bool:
    # "Yes", " yes", "YES." count; "yesterday" or "nobody" do not.
    return token.strip().strip(".,!:;\"'").lower() in ("yes", "no")


def log_odds_from_samples(answers: Sequence[str | None]) -> float:
    """Empirical log-odds of yes among the sampled replies that said yes or no."""
    yes = sum(1 for a in answers if answer_of(a) == "yes")
    no = sum(1 for a in answers if answer_of(a) == "no")
    return math.log((yes + 0.5) / (no + 0.5))
