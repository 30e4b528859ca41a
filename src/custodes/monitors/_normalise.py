"""Unicode normalisation every detector reads through: NFKC, invisible characters removed,
confusable letters folded to the Latin letter they imitate.

An attacker who writes ``Addres\u200bsSanitizer`` or ``wеights`` (Cyrillic ``е``) defeats a
pattern that a reader does not even see. Normalisation follows Unicode TR #15 (NFKC folds
full-width, ligature and mathematical-alphanumeric forms) and TR #39's idea of a *skeleton*
(confusable letters mapped to one prototype), restricted to the Cyrillic, Greek and
Armenian letters that look like Latin ones (a small, fixed table: the full confusables file
would fold ordinary non-Latin text and cost far more).

Detectors report spans of the normalised text; :meth:`Normalised.to_original` maps a span
back to the characters the caller passed (computed only when a detection needs it).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalised", "normalise"]

# Format (Cf) characters that render as nothing and are used to split words: zero-width
# space / joiners, word joiner, invisible operators, BOM, soft hyphen, Mongolian vowel
# separator, and the bidirectional embeddings / overrides / isolates (Trojan Source,
# CVE-2021-42574).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u200b\u200c\u200d"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067"
    "\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufe00\ufe01\ufe02\ufe03\ufe04"
    "\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f\ufeff\uffa0"
)
# Letters that are drawn like a Latin letter (Unicode confusables.txt, prototype in Latin).
_CONFUSABLE = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "о": "o", "р": "p", "с": "c", "у": "y",
    "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "к": "k", "м": "m", "н": "h", "т": "t", "п": "n", "г": "r",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S",
    "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ա": "w",
    # Latin look-alikes outside ASCII that NFKC keeps
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ʏ": "y", "ℓ": "l",
    # Punctuation that NFKC keeps: dashes, minus, quotes, bullets
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
    "′": "'", "″": '"', "⁄": "/", "∕": "/", "∶": ":", "꞉": ":",
}  # fmt: skip
_MAP = {**dict.fromkeys(_INVISIBLE, ""), **_CONFUSABLE}
_TABLE = str.maketrans(_MAP)
# str.translate with a dict visits every character in Python-level lookups; a character
# class finds the few that need it at C speed.
_FOLD_RE = re.compile("[" + re.escape("".join(_MAP)) + "]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass(frozen=True)
class Normalised:
    """``text`` as detectors read it, and the text it came from.

    Attributes:
        text: the normalised text.
        original: the text as given.
    """

    text: str
    original: str

    @property
    def changed(self) -> bool:
        """Whether normalising changed anything (the same object is kept when not, so
        offsets map through unchanged)."""
        return self.text is not self.original

    @functools.cached_property
    def _offsets(self) -> list[int]:
        # Built once per text: a detection maps several spans back.
        return _offsets(self.original)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The ``[start, end)`` of :attr:`original` that normalised to ``text[start:end]``."""
        if not self.changed:
            return start, end
        offsets = self._offsets
        n = len(offsets)
        lo = offsets[min(start, n - 1)] if n else 0
        hi = offsets[end - 1] + 1 if 0 < end <= n else len(self.original)
        return lo, max(lo, hi)


def _replace(text: str) -> str:
    if _FOLD_RE.search(text) is None:
        return text
    return _FOLD_RE.sub(lambda m: _MAP[m.group(0)], text)


def _fold(text: str) -> str:
    first = _replace(text)
    if unicodedata.is_normalized("NFKC", first):
        return first
    return _replace(unicodedata.normalize("NFKC", first))


# The detectors of one tier run one after another on the same text (the combined detector
# runs three): the last few results are kept so the text is folded once, not per detector.
@functools.lru_cache(maxsize=4)
def normalise(text: str) -> Normalised:
    """Fold ``text`` for detection (ASCII text is returned as it is, without a copy)."""
    if text.isascii():
        return Normalised(text, text)
    folded = _fold(text)
    if folded == text:
        return Normalised(text, text)
    return Normalised(folded, text)


def _offsets(original: str) -> list[int]:
    """For each character of the folded text, the index of the original character it
    came from (character by character; NFKC's composition across characters is rare
    enough in the text we meet that a per-character map is close enough for evidence)."""
    out: list[int] = []
    pos = 0
    for m in _NON_ASCII.finditer(original):
        i = m.start()
        out.extend(range(pos, i))  # ASCII maps one to one
        out.extend([i] * len(_fold(m.group(0))))
        pos = i + 1
    out.extend(range(pos, len(original)))
    return out
