"""Sign-in with the principal's own key: a challenge is taken once, within two minutes, for
the key it was given for; the signature must be over this origin's message; the code it buys
works once (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from custodes.authority import SigningKey
from custodes.clock import FrozenClock
from custodes.dashboard import KeySignIn, origin_of, sign_in_message
from custodes.errors import InputError, Unauthenticated

ORIGIN = "http://127.0.0.1:8000"


def _signed(
    key: SigningKey, challenge: str, *, origin: str = ORIGIN, who: str = "alice@lab"
) -> bytes:
    message = sign_in_message(origin=origin, principal=who, challenge=challenge)
    return base64.b64decode(key.sign(message))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))


def test_a_signed_challenge_buys_one_code_that_works_once(
    engine: Engine, clock: FrozenClock
) -> None:
    key = SigningKey.generate()
    tickets = KeySignIn(engine, clock)
    challenge = tickets.challenge("alice@lab", key.public_bytes)
    answer = dict(principal="alice@lab", origin=ORIGIN, public_key=key.public_bytes)
    code = tickets.answer(
        challenge=challenge.token, signature=_signed(key, challenge.token), **answer
    )
    assert code.principal == "alice@lab" and code.credential == key.public_key
    # Any worker (another store on the same database) sees and redeems it, once.
    other = KeySignIn(engine, clock)
    assert other.peek(code.token) is not None
    redeemed = other.redeem(code.token)
    assert redeemed is not None and redeemed.principal == "alice@lab"
    assert tickets.redeem(code.token) is None and tickets.peek(code.token) is None
    # The challenge was taken: the same signature again is a replay.
    with pytest.raises(Unauthenticated, match="unknown, used or expired"):
        tickets.answer(challenge=challenge.token, signature=_signed(key, challenge.token), **answer)


@pytest.mark.parametrize(
    "case", ["other key", "other origin", "other principal", "other challenge", "key changed"]
)
def test_a_wrong_signature_or_key_is_refused_and_uses_the_challenge(
    engine: Engine, clock: FrozenClock, case: str
) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    tickets = KeySignIn(engine, clock)
    challenge = tickets.challenge("alice@lab", key.public_bytes).token
    signature = {
        "other key": _signed(other, challenge),
        "other origin": _signed(key, challenge, origin="http://evil.example"),
        "other principal": _signed(key, challenge, who="bob@lab"),
        "other challenge": _signed(key, challenge[::-1]),
        "key changed": _signed(other, challenge),
    }[case]
    current = other.public_bytes if case == "key changed" else key.public_bytes
    with pytest.raises(Unauthenticated):
        tickets.answer(
            principal="alice@lab",
            challenge=challenge,
            signature=signature,
            origin=ORIGIN,
            public_key=current,
        )
    with pytest.raises(Unauthenticated, match="unknown, used or expired"):  # used up
        tickets.answer(
            principal="alice@lab",
            challenge=challenge,
            signature=_signed(key, challenge),
            origin=ORIGIN,
            public_key=key.public_bytes,
        )


def test_challenges_and_codes_expire_after_two_minutes(engine: Engine, clock: FrozenClock) -> None:
    key = SigningKey.generate()
    tickets = KeySignIn(engine, clock)
    late = tickets.challenge("alice@lab", key.public_bytes).token
    clock.advance(timedelta(minutes=2))
    with pytest.raises(Unauthenticated, match="unknown, used or expired"):
        tickets.answer(
            principal="alice@lab",
            challenge=late,
            signature=_signed(key, late),
            origin=ORIGIN,
            public_key=key.public_bytes,
        )
    challenge = tickets.challenge("alice@lab", key.public_bytes).token
    code = tickets.answer(
        principal="alice@lab",
        challenge=challenge,
        signature=_signed(key, challenge),
        origin=ORIGIN,
        public_key=key.public_bytes,
    )
    clock.advance(timedelta(minutes=2) - timedelta(microseconds=1))
    assert tickets.peek(code.token) is not None
    clock.advance(timedelta(microseconds=1))
    assert tickets.peek(code.token) is None and tickets.redeem(code.token) is None


def test_the_signed_message_is_framed_and_names_the_origin() -> None:
    assert sign_in_message(origin=ORIGIN, principal="alice@lab", challenge="n0nce") == (
        b"custodes-dashboard-sign-in/v1\nhttp://127.0.0.1:8000\nalice@lab\nn0nce\n"
    )
    for bad in ("a\nb", "", "x" * 257, "caf\u00e9"):
        with pytest.raises(InputError):
            sign_in_message(origin=ORIGIN, principal=bad, challenge="n0nce")
    assert origin_of("HTTP://LocalHost:80/dashboard/") == "http://localhost"
    assert origin_of("https://dash.example:443") == "https://dash.example"
    assert origin_of("http://127.0.0.1:8000/") == ORIGIN
    assert origin_of("http://[::1]:9000/x") == "http://[::1]:9000"
    for bad in ("ftp://x", "dash.example", "http://:80", "http://x:99999"):
        with pytest.raises(InputError):
            origin_of(bad)


def test_the_login_command_does_not_load_the_server() -> None:
    """`custodes dashboard login` needs the signed message, not the pages: importing it (and
    the dashboard's sign-in names) loads neither FastAPI nor every component's wiring."""
    import subprocess
    import sys

    script = (
        "import sys, custodes.cli.dashboard\n"
        "from custodes.dashboard import origin_of, sign_in_message\n"
        "print(sorted(m for m in ('fastapi', 'jinja2', 'custodes.wiring') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"
    from custodes.dashboard import install_dashboard  # and the pages still load when asked

    assert callable(install_dashboard)
