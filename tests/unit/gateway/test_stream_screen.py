"""Streamed responses are screened event by event in linear time, and nothing slips through."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.gateway._entries import MonitorVerdict
from custodes.gateway._monitors import Screening
from custodes.gateway._stream_screen import WINDOW, StreamScreen


class Gate:
    """A gating monitor blocking ``pattern``; counts the characters it was given."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.S)
        self.screened = 0
        self.calls = 0

    def __call__(self, text: str) -> Screening:
        self.screened += len(text)
        self.calls += 1
        hit = self.pattern.search(text) is not None
        verdict = MonitorVerdict(
            monitor="gate", mode="gating", phase="response", verdict="block" if hit else "pass"
        )
        return Screening((verdict,), "gate" if hit else None)


def test_screening_cost_is_linear_in_the_length_of_the_stream() -> None:
    cost = {}
    for events in (4_000, 40_000):
        gate = Gate("never-said")
        screen = StreamScreen(gate)
        for i in range(events):
            assert not screen.add(f"token{i % 10} ").blocked
        assert not screen.finish().blocked
        length = len(screen.text)
        # Whole-text screenings add up to a few times the final length; the rest is at most
        # one window (and the event) per event.
        assert gate.screened <= 6 * length + events * (WINDOW + 16), (events, gate.screened)
        cost[events] = gate.screened
        assert screen.verdicts and screen.verdicts[0].verdict == "pass"
    # Ten times the events: about ten times the work (screening the whole text before every
    # event would be a hundred times).
    assert cost[40_000] < 12 * cost[4_000], cost


def test_a_pattern_within_the_window_is_caught_at_the_event_that_completes_it() -> None:
    gate = Gate(r"launch code \d{4}")
    screen = StreamScreen(gate)
    for i in range(5_000):  # long enough that the whole text is no longer screened each time
        assert not screen.add(f"w{i} ").blocked
    assert not screen.add("the launch code ").blocked
    assert not screen.add("12").blocked
    assert screen.add("34").blocked  # this event completes it: it is not released
    assert screen.verdicts[0].verdict == "block"  # and the record says why


def test_a_pattern_longer_than_the_window_is_caught_at_a_whole_screening_or_the_end() -> None:
    gate = Gate(r"BEGIN.*END")
    screen = StreamScreen(gate, window=64)
    screen.add("BEGIN ")
    blocked_at = None
    for i in range(400):
        if screen.add(f"filler{i:04d} " if i < 399 else "END").blocked:
            blocked_at = i
            break
    if blocked_at is None:
        assert screen.finish().blocked  # the end-of-stream screening of everything
    assert screen.verdicts[0].verdict == "block"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ab xy", min_size=1, max_size=40), min_size=1, max_size=120),
    st.integers(min_value=8, max_value=200),
)
def test_nothing_a_whole_text_screen_blocks_gets_past_add_and_finish(
    deltas: list[str], window: int
) -> None:
    gate = Gate("xyx")
    screen = StreamScreen(gate, window=window)
    released = ""
    blocked = False
    for delta in deltas:
        if screen.add(delta).blocked:
            blocked = True
            break
        released += delta
    if not blocked:
        blocked = screen.finish().blocked
    # Every released event was screened with at least `window` characters of context, and
    # the pattern is shorter than that: what was released never contains it.
    assert "xyx" not in released
    assert blocked == ("xyx" in "".join(deltas))
