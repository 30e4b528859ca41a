"""``Error.details``: the fields of each error class the API's error body carries.

The server builds every error body from ``details()`` (server/_errors.py), so a class with fields
of its own says what they are; these pin what the API sent when it read them by attribute.
"""

from __future__ import annotations

from custodes.coalition import GameError
from custodes.errors import (
    ConstitutionError,
    ConstitutionProblem,
    Denial,
    Error,
    InputError,
    PolicyDenied,
)
from custodes.server._errors import error_response


def _body(exc: Error) -> dict[str, object]:
    import json

    response = error_response(exc)
    doc = json.loads(bytes(response.body))
    assert isinstance(doc, dict)
    error = doc["error"]
    assert isinstance(error, dict)
    return error


def test_each_error_class_sends_its_own_fields_and_leaves_out_empty_ones() -> None:
    assert _body(Error("boom")) == {"code": "error", "message": "boom"}
    assert _body(Error("boom", hint="retry")) == {
        "code": "error",
        "message": "boom",
        "hint": "retry",
    }
    assert _body(InputError("bad", where="x", expected="an int", actual="'a'")) == {
        "code": "invalid_input",
        "message": "bad",
        "where": "x",
        "expected": "an int",
        "actual": "'a'",
    }
    denied = PolicyDenied("no", reasons=[Denial("rule-1", "2 approvals")])
    assert _body(denied)["reasons"] == [{"rule": "rule-1", "missing": "2 approvals"}]
    assert "reasons" not in _body(PolicyDenied("no"))
    refused = ConstitutionError("refused", problems=[ConstitutionProblem("dup", line=3, path="/a")])
    assert _body(refused)["problems"] == [str(refused.problems[0])]
    assert "problems" not in _body(ConstitutionError("refused"))


def test_a_game_error_sends_its_problems_as_an_input_error_with_problems() -> None:
    body = _body(GameError("cannot analyse", problems=["duplicate id a", "dangling b"]))
    assert body["code"] == "invalid_game"
    assert body["problems"] == ["duplicate id a", "dangling b"]
    assert body["expected"] == "a well-formed game"
    assert body["actual"] == "duplicate id a; dangling b"
