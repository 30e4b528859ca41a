"""CVSS v3.1 and v4.0 vectors, scored by the ``cvss`` package (RedHat's reference library)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from custodes.errors import InputError

__all__ = ["CvssScore", "score_vector"]

CvssVersion = Literal["3.1", "4.0"]


@dataclass(frozen=True)
class CvssScore:
    """A validated vector with its base score and qualitative severity."""

    version: CvssVersion
    vector: str
    base_score: float
    severity: str


def score_vector(vector: str, *, where: str = "cvss") -> CvssScore:
    """Validate and score a CVSS v3.1 or v4.0 base vector.

    The vector is returned in the library's clean (canonical order) form.

    Raises:
        InputError: the vector is not a valid CVSS v3.1 or v4.0 vector.
    """
    expected = "a CVSS v3.1 (CVSS:3.1/AV:N/...) or v4.0 (CVSS:4.0/AV:N/...) vector"
    if not isinstance(vector, str) or not vector.strip():
        raise InputError(
            "CVSS vector is empty", where=where, expected=expected, actual=repr(vector)
        )
    text = vector.strip()
    try:
        if text.startswith("CVSS:3.1/"):
            v3 = CVSS3(text)
            return CvssScore(
                "3.1", v3.clean_vector(), float(v3.base_score), str(v3.severities()[0])
            )
        if text.startswith("CVSS:4.0/"):
            v4 = CVSS4(text)
            return CvssScore("4.0", v4.clean_vector(), float(v4.base_score), str(v4.severity))
    except CVSSError as exc:
        raise InputError(
            f"invalid CVSS vector: {exc}", where=where, expected=expected, actual=text
        ) from exc
    raise InputError("unsupported CVSS version", where=where, expected=expected, actual=text)
