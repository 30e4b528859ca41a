"""Which of several regular expressions can match a text, from one pass of a literal
automaton.

The learned tier's behaviour and unit features try some forty patterns of dozens of
alternatives each (``\\b(?:audit\\w*|oversight\\w*|...)``) on every region, action and
sentence of a transcript; Python's ``re`` tries every alternative at every position, so
a text where a pattern does not occur costs as much as one where it does. Most patterns
must start with one of a few literals (``audit``, ``oversight``, ...): one Aho-Corasick
pass over the text (``ahocorasick_rs``) finds every occurrence of every pattern's
literals, and a pattern is then run only where it can match — not at all when none of
its literals occurs, from its first literal otherwise.

The literals are read from the pattern itself (its parse tree, ``re._parser``), so a gate
never drifts from the pattern it guards, and the gate is exact: a pattern reports the
same matches with and without it. Every match of an *anchored* pattern starts with one
of its literals, so matching may start at the first of them; an unanchored pattern (some
alternative starts with ``\\w+``, say) has a literal somewhere in every match and is run
from the start when that literal occurs. A pattern some match of which holds no literal
(``[A-Z]{2,}-\\d+``) is always run.

Case: literals are lower-cased and the automaton reads the text lower-cased after folding
the four non-ASCII characters that ``re.IGNORECASE`` equates with an ASCII letter (``İ``,
``ı``, the Kelvin sign, long s); that keeps every position of the text, since ``İ`` is
the only character whose lower case is longer. A pattern with a non-ASCII literal is not
gated (its lower case can depend on context: final sigma).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

import ahocorasick_rs
import numpy as np
import numpy.typing as npt

__all__ = ["LiteralGate", "literal_prefixes"]

_MAX_LITERALS = 64  # a character class is expanded into literals only while they stay few
_MAX_CLASS = 6
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u212a": "k", "\u017f": "s"})
_SEP = "\x00"  # between the texts of one pass: no literal holds it

try:  # The parser behind ``re.compile``; private, so a Python without it gates nothing.
    _sre: Any = importlib.import_module("re._parser")
    _c: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - CPython 3.11+ has both
    _sre = _c = None


def _fold(text: str) -> str:
    """``text`` lower-cased for the automaton, every position kept."""
    return (text if text.isascii() else text.translate(_FOLD)).lower()


def _class_literals(av: list[tuple[Any, Any]]) -> list[str] | None:
    """The characters of a small class of literals (``[-_ ]``), or None."""
    if len(av) > _MAX_CLASS or any(op is not _c.LITERAL for op, _ in av):
        return None
    return [chr(v) for _, v in av]


def _sequence(items: Any) -> tuple[set[str], bool] | None:
    """Literals one of which every match of the parsed sequence ``items`` holds, and
    whether every match *starts* with one of them; None when some match holds none."""
    prefixes = [""]
    anchored = True
    zero_width = (_c.AT, _c.ASSERT, _c.ASSERT_NOT)
    for op, av in items:
        if op in zero_width:
            if prefixes == [""]:
                continue
            break
        if op is _c.LITERAL:
            prefixes = [p + chr(av) for p in prefixes]
            continue
        if op is _c.IN:
            chars = _class_literals(av)
            if chars is not None and len(prefixes) * len(chars) <= _MAX_LITERALS:
                prefixes = [p + ch for p in prefixes for ch in chars]
                continue
        if prefixes != [""]:
            break  # a literal run already found: every match holds it
        sub: tuple[set[str], bool] | None = None
        if op is _c.BRANCH:
            sub = _branches(av[1])
        elif op is _c.SUBPATTERN:
            sub = _sequence(av[-1])
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            sub = _sequence(av[2])
        if sub is not None:
            return sub[0], sub[1] and anchored
        anchored = False  # a stretch without literals: a later literal is not the start
    if prefixes == [""]:
        return None
    return set(prefixes), anchored


def _branches(alternatives: Any) -> tuple[set[str], bool] | None:
    """The union of the alternatives' literals (None when one of them has none)."""
    out: set[str] = set()
    anchored = True
    for alt in alternatives:
        sub = _sequence(alt)
        if sub is None:
            return None
        out |= sub[0]
        anchored = anchored and sub[1]
    return out, anchored


def literal_prefixes(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], bool] | None:
    """The lower-cased literals one of which every match of ``pattern`` holds, and whether
    every match starts with one of them; None when the pattern cannot be gated (some match
    holds no literal, a literal is not ASCII, or the parser is unavailable)."""
    if _sre is None:
        return None
    try:
        parsed = _sre.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - an unparsable pattern is simply not gated
        return None
    found = _sequence(parsed.data)
    if found is None:
        return None
    literals, anchored = found
    if any(not lit.isascii() or _SEP in lit for lit in literals):
        return None
    return tuple(sorted({lit.lower() for lit in literals})), anchored


class LiteralGate:
    """Where each of ``patterns`` can start matching in a text (or in each of many texts),
    from one automaton pass.

    ``starts(text)[k]`` is -1 when pattern k cannot match ``text``; otherwise a position
    such that ``patterns[k].search(text, pos)`` and ``.findall(text, pos)`` find exactly
    what they find from 0.
    """

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        """Read the literals of ``patterns`` and build their automaton."""
        self.patterns = tuple(patterns)
        literals: dict[str, list[int]] = {}
        self._always = np.zeros(len(self.patterns), bool)
        self._anchored = np.zeros(len(self.patterns), bool)
        for k, rx in enumerate(self.patterns):
            found = literal_prefixes(rx)
            if found is None:
                self._always[k] = True
                continue
            lits, self._anchored[k] = found
            for lit in lits:
                literals.setdefault(lit, []).append(k)
        self._literals = list(literals)
        # Literal i belongs to patterns owner[ptr[i]:ptr[i + 1]].
        self._ptr = np.cumsum([0, *(len(literals[lit]) for lit in self._literals)])
        self._owner = np.asarray([k for lit in self._literals for k in literals[lit]], np.int64)
        self._automaton = (
            ahocorasick_rs.AhoCorasick(self._literals, matchkind=ahocorasick_rs.MATCHKIND_STANDARD)
            if self._literals
            else None
        )

    def starts_many(self, texts: Sequence[str]) -> npt.NDArray[np.int64]:
        """``len(texts)`` x ``len(patterns)``: where each pattern can start in each text
        (-1: it cannot match there)."""
        n, m = len(texts), len(self.patterns)
        out = np.full((n, m), -1, np.int64)
        if not n:
            return out
        out[:, self._always] = 0
        if self._automaton is None:
            return out
        joined = _fold(_SEP.join(texts))
        hits = self._automaton.find_matches_as_indexes(joined, overlapping=True)
        if not hits:
            return out
        arr = np.asarray(hits, np.int64)
        lit, pos = arr[:, 0], arr[:, 1]
        offsets = np.cumsum([0, *(len(t) + 1 for t in texts[:-1])])
        which = np.searchsorted(offsets, pos, side="right") - 1
        local = pos - offsets[which]
        # One row per (hit, pattern owning the hit's literal).
        per = self._ptr[lit + 1] - self._ptr[lit]
        rows = np.repeat(np.arange(len(lit)), per)
        firsts = np.repeat(self._ptr[lit], per)
        owner = self._owner[firsts + (np.arange(len(rows)) - np.repeat(np.cumsum(per) - per, per))]
        text_of = which[rows]
        start = np.where(self._anchored[owner], local[rows], 0)
        big = np.iinfo(np.int64).max
        best = np.full((n, m), big, np.int64)
        np.minimum.at(best, (text_of, owner), start)
        gated = best != big
        out[gated] = best[gated]
        return out

    def starts(self, text: str) -> npt.NDArray[np.int64]:
        """Where each pattern can start in ``text`` (-1: it cannot match)."""
        row: npt.NDArray[np.int64] = self.starts_many([text])[0]
        return row

    def search(self, k: int, text: str, start: int) -> bool:
        """Whether pattern ``k`` occurs in ``text``, given its gate position ``start``."""
        return start >= 0 and self.patterns[k].search(text, start) is not None

    def count(self, k: int, text: str, start: int) -> int:
        """How many non-overlapping matches of pattern ``k`` ``text`` holds (``findall``)."""
        return len(self.patterns[k].findall(text, start)) if start >= 0 else 0
