"""Sign-in with the principal's own key on a real server: ``custodes dashboard login`` signs
the server's challenge with the key file and prints a one-time link; the browser confirms it
through a CSRF-protected form and gets a session. Replays, forgeries and bad input are refused
with a clear answer, never a 500."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from custodes.authority import SigningKey
from custodes.dashboard import sign_in_message
from tests.integration.dashboard.conftest import CliResult
from tests.support.server import ServerProcess

Cli = Callable[..., CliResult]


def _login(cli: Cli, key: str) -> dict[str, str]:
    return dict(json.loads(cli("dashboard", "login", "--key", key, "--json").stdout))


def _confirm(client: httpx.Client, url: str) -> httpx.Response:
    page = client.get(url)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    code = re.search(r'name="code" value="([^"]+)"', page.text)
    assert csrf is not None and code is not None
    return client.post("/dashboard/sign-in/code", data={"csrf": csrf[1], "code": code[1]})


def test_login_with_the_key_file_signs_the_browser_in_once(server: ServerProcess, cli: Cli) -> None:
    made = _login(cli, "examples/keys/alice.key")
    assert made["principal"] == "alice@lab"
    assert made["url"].startswith(server.base_url.rstrip("/") + "/dashboard/sign-in/code?code=")
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        shown = browser.get(made["url"])
        assert (
            "Sign in as alice@lab?" in shown.text and "no-store" in shown.headers["cache-control"]
        )
        signed_in = _confirm(browser, made["url"])
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard/"
        assert "httponly" in signed_in.headers["set-cookie"].lower()
        now = browser.get("/dashboard/")
        assert now.status_code == 200 and "alice@lab" in now.text
        assert browser.get("/dashboard/log").status_code == 200
    # The code worked once: the same link again signs nobody in.
    with httpx.Client(base_url=server.base_url, timeout=30) as other:
        again = other.get(made["url"])
        assert again.status_code == 401 and "unknown, used or expired" in again.text


def test_forged_replayed_and_malformed_answers_are_refused(server: ServerProcess) -> None:
    root = Path(__file__).resolve().parents[3]
    alice = SigningKey.from_file(root / Path("examples/keys/alice.key"))
    bob = SigningKey.from_file(root / Path("examples/keys/bob.key"))
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        got = client.post("/dashboard/key-sign-in/challenge", json={"principal": "alice@lab"})
        assert got.status_code == 201, got.text
        challenge = got.json()
        assert challenge["origin"] == server.base_url.rstrip("/")
        message = sign_in_message(
            origin=challenge["origin"], principal="alice@lab", challenge=challenge["challenge"]
        )
        assert challenge["message"].encode() == message

        def answer(key: SigningKey, text: bytes = message, **extra: str) -> httpx.Response:
            body = {
                "principal": "alice@lab",
                "challenge": challenge["challenge"],
                "signature": key.sign(text),
                **extra,
            }
            return client.post("/dashboard/key-sign-in/answer", json=body)

        # Signed by bob's key: refused, and the challenge is used up even for alice's own.
        forged = answer(bob)
        assert forged.status_code == 401, forged.text
        assert forged.json()["error"]["code"] == "unauthenticated"
        replay = answer(alice)
        assert replay.status_code == 401 and "unknown, used or expired" in replay.text

        fresh = client.post("/dashboard/key-sign-in/challenge", json={"principal": "alice@lab"})
        elsewhere = sign_in_message(
            origin="http://dashboard.elsewhere",
            principal="alice@lab",
            challenge=fresh.json()["challenge"],
        )
        relayed = client.post(
            "/dashboard/key-sign-in/answer",
            json={
                "principal": "alice@lab",
                "challenge": fresh.json()["challenge"],
                "signature": alice.sign(elsewhere),
            },
        )
        assert relayed.status_code == 401 and "origin" in relayed.text

        for body, status in [
            ({"principal": "mallory@nowhere"}, 403),
            ({"principal": ""}, 400),
            ({"principal": "alice@lab", "extra": 1}, 400),
            ({"principal": "x" * 300}, 400),
        ]:
            refused = client.post("/dashboard/key-sign-in/challenge", json=body)
            assert refused.status_code in (status, 422), (body, refused.text)
            assert "error" in refused.json()
        not_json = client.post(
            "/dashboard/key-sign-in/challenge",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert 400 <= not_json.status_code < 500
        short = client.post(
            "/dashboard/key-sign-in/answer",
            json={
                "principal": "alice@lab",
                "challenge": "c",
                "signature": base64.b64encode(b"x" * 10).decode(),
            },
        )
        assert short.status_code == 400 and "64-byte" in short.text

        # Pages: a made-up code, a form without the cookie's CSRF token.
        assert client.get("/dashboard/sign-in/code?code=nope").status_code == 401
        assert client.get("/dashboard/sign-in/code").status_code == 401
        long_code = client.get("/dashboard/sign-in/code", params={"code": "<b>" * 100})
        assert long_code.status_code == 401 and "<b>" not in long_code.text
        cross_site = httpx.post(
            server.url("/dashboard/sign-in/code"), data={"csrf": "x", "code": "y"}, timeout=30
        )
        assert cross_site.status_code == 403


_ROOT = Path(__file__).resolve().parents[3]


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


def _challenge_page(client: httpx.Client, principal: str) -> tuple[httpx.Response, str, str]:
    """Ask the sign-in page for a challenge; the page, its exact message and its CSRF token."""
    form = client.get("/dashboard/sign-in")
    page = client.post("/dashboard/sign-in/key", data={"csrf": _csrf(form), "principal": principal})
    assert page.status_code == 200, page.text
    shown = re.search(r'<pre class="note" id="challenge-message">([^<]*)</pre>', page.text)
    assert shown is not None, page.text
    return page, html.unescape(shown[1]), _csrf(page)


def _paste(client: httpx.Client, page: httpx.Response, csrf: str, signature: str) -> httpx.Response:
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(principal|challenge)" value="([^"]*)"', page.text)
    }
    return client.post(
        "/dashboard/sign-in/key/answer", data={**fields, "csrf": csrf, "signature": signature}
    )


def test_a_signature_pasted_into_the_page_signs_that_browser_in_once(
    server: ServerProcess,
) -> None:
    """The page shows the challenge as the exact message the CLI signs (for this origin); the
    signature over it, as `custodes dashboard login` makes it, opens a session in that
    browser; the challenge is then used up, and another principal's key opens nothing."""
    erin = SigningKey.from_file(_ROOT / "examples/keys/erin.key")
    bob = SigningKey.from_file(_ROOT / "examples/keys/bob.key")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page, message, csrf = _challenge_page(client, "erin@auditor")
        challenge = message.split("\n")[3]
        assert message.encode() == sign_in_message(
            origin=server.base_url.rstrip("/"), principal="erin@auditor", challenge=challenge
        )
        assert "no-store" in page.headers["cache-control"]
        signed = _paste(client, page, csrf, erin.sign(message.encode()))
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard/", (
            signed.text
        )
        now = client.get("/dashboard/")
        assert now.status_code == 200 and "Signed in as <strong>erin@auditor</strong>" in now.text
        # The same signature again, from a fresh form (signing in dropped the form cookie):
        # the challenge was taken.
        fresh = _csrf(client.get("/dashboard/sign-in"))
        again = _paste(client, page, fresh, erin.sign(message.encode()))
        assert again.status_code == 401 and "unknown, used or expired" in again.text
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page, message, csrf = _challenge_page(client, "erin@auditor")
        forged = _paste(client, page, csrf, bob.sign(message.encode()))
        assert forged.status_code == 401 and "is not erin@auditor's" in html.unescape(forged.text)
        assert client.get("/dashboard/", follow_redirects=False).status_code == 303
        # A good signature after a forged one: that challenge is used up too.
        late = _paste(client, page, _csrf(forged), erin.sign(message.encode()))
        assert late.status_code == 401 and "unknown, used or expired" in late.text


def test_the_in_page_key_sign_in_refuses_bad_forms(server: ServerProcess) -> None:
    """No CSRF token or another one, a principal without a key, malformed or missing fields,
    an oversized form: each a clear page (4xx), never a 500, nothing reflected as markup."""
    erin = SigningKey.from_file(_ROOT / "examples/keys/erin.key")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        token = _csrf(client.get("/dashboard/sign-in"))
        cases = [  # (form, status); "csrf": True is the live form token
            ({"principal": "erin@auditor"}, 403),
            ({"csrf": "x" * 43, "principal": "erin@auditor"}, 403),
            ({"csrf": True}, 400),
            ({"csrf": True, "principal": "<b>nobody</b>@x"}, 403),
            ({"csrf": True, "principal": "a" * 3000}, 403),
            ({"csrf": True, "principal": "x" * 5000}, 400),
        ]
        for data, status in cases:
            sent = {k: token if v is True else v for k, v in data.items()}
            answer = client.post("/dashboard/sign-in/key", data=sent)
            assert answer.status_code == status, (data, answer.text[:300])
            assert "<b>nobody</b>" not in answer.text
            token = _csrf(answer)  # each refusal hands out a fresh form token
        not_a_form = client.post(
            "/dashboard/sign-in/key", content=b'{"principal": 1}', headers={"content-type": "json"}
        )
        assert not_a_form.status_code == 400
        page, message, csrf = _challenge_page(client, "erin@auditor")
        good = erin.sign(message.encode())
        for signature, status, says in (
            ("", 400, "malformed signature"),
            ("not base64!", 400, "malformed signature"),
            (base64.b64encode(b"\0" * 63).decode(), 400, "malformed signature"),
            ("<script>x</script>", 400, "malformed signature"),
        ):
            answer = _paste(client, page, csrf, signature)
            assert answer.status_code == status and says in answer.text, (signature, answer.text)
            assert "<script>x" not in answer.text
            csrf = _csrf(answer)  # each refusal hands out a fresh form token
        # A malformed signature did not use the challenge up: the good one still signs in.
        assert _paste(client, page, csrf, good).status_code == 303
        wrong_csrf = _paste(client, page, "y" * 43, good)
        assert wrong_csrf.status_code == 403
