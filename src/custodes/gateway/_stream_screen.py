"""Screening a streamed response as it grows, in time linear in its length.

Screening the whole accumulated text before every event costs O(n²) over a stream of n
characters (a long answer arrives as thousands of events). :class:`StreamScreen` keeps the
guarantee that matters for a gating monitor, that every event is screened before it is released,
at linear cost:

- each new event is screened together with the ``window`` characters before it, so a pattern
  that fits in the window is caught at the event that completes it, before that event leaves;
- the whole text is screened again each time it has grown by ``growth`` (25%) since the last
  whole screening (geometric steps: their total cost is a constant times the final length), so a
  pattern longer than the window is caught at the latest a quarter of the text later;
- :meth:`finish` screens the whole final text once more before the stream is declared complete,
  and the verdicts recorded in the log are those of whole-text screenings only.
"""

from __future__ import annotations

from collections.abc import Callable

from custodes.gateway._entries import MonitorVerdict
from custodes.gateway._monitors import Screening

__all__ = ["StreamScreen"]

WINDOW = 4096  # characters of context screened with each new event
GROWTH = 1.25  # the whole text is screened again once it is this many times longer
_MIN_STEP = 1024  # ... and at least this many characters longer


class StreamScreen:
    """Screens a stream's text event by event; see the module docstring.

    Args:
        screen: runs the monitors on a text (``MonitorRegistry.screen`` for one phase).
    """

    def __init__(
        self, screen: Callable[[str], Screening], *, window: int = WINDOW, growth: float = GROWTH
    ) -> None:
        self._screen = screen
        self.window = window
        self.growth = growth
        self._parts: list[str] = []
        self._length = 0
        self._tail = ""
        self._whole_at = 0  # length at the last whole-text screening
        self._next_whole = _MIN_STEP
        # Of the last whole-text screening, or of the window screening that blocked.
        self.verdicts: tuple[MonitorVerdict, ...] = ()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def add(self, delta: str) -> Screening:
        """Screen ``delta`` in its context; a blocking result means: do not release it."""
        self._parts.append(delta)
        self._length += len(delta)
        if self._length >= self._next_whole:
            return self._whole()
        self._tail = (self._tail + delta)[-(self.window + len(delta)) :]
        screening = self._screen(self._tail)
        if screening.blocked_by is not None:
            self.verdicts = screening.verdicts  # the record says why the stream was cut
        return screening

    def finish(self) -> Screening:
        """Screen the whole text (unless that was just done); its verdicts are the record."""
        if self._length == 0:
            return Screening((), None)  # nothing was said: nothing to screen
        if self._whole_at == self._length:
            return Screening(self.verdicts, None)
        return self._whole()

    def _whole(self) -> Screening:
        text = "".join(self._parts)
        self._parts = [text]
        screening = self._screen(text)
        self.verdicts = screening.verdicts
        self._whole_at = self._length
        self._next_whole = max(int(self._length * self.growth), self._length + _MIN_STEP)
        self._tail = text[-self.window :]
        return screening
