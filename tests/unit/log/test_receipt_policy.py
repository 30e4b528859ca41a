"""C2SP tlog-policy witness policies, as used to verify receipts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError, VerificationError
from custodes.log import Checkpoint, Note, NoteSigner, WitnessPolicy, sign_note
from custodes.log._note import ALG_COSIGNATURE_V1
from tests.unit.witness.helpers import ecdsa_vkey

LOG = NoteSigner.generate("policy.example/log")
X = [NoteSigner.generate(f"x{i}.example", alg=ALG_COSIGNATURE_V1) for i in range(3)]
Y = [NoteSigner.generate(f"y{i}.example", alg=ALG_COSIGNATURE_V1) for i in range(3)]
BODY = Checkpoint(origin=LOG.name, size=7, root_hash=bytes(32)).to_text()

# The example of c2sp.org/tlog-policy, with real keys.
EXAMPLE = f"""# two organisations' witnesses
log {LOG.verifier.to_key()} https://log.example/

witness X1 {X[0].verifier.to_key()}
witness X2 {X[1].verifier.to_key()}
\twitness X3 {X[2].verifier.to_key()}   https://x3.example/
group X-witnesses 2 X1 X2 X3

witness Y1 {Y[0].verifier.to_key()}
witness Y2 {Y[1].verifier.to_key()}
witness Y3 {Y[2].verifier.to_key()}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def _cosigned(*signers: NoteSigner) -> Note:
    note = sign_note(BODY, [LOG])
    for s in signers:
        note = sign_note(note, [s], timestamp=1_800_000_000)
    return note


def test_the_spec_example() -> None:
    policy = WitnessPolicy.from_text(EXAMPLE)
    assert [v.name for v in policy.logs] == [LOG.name]
    assert set(policy.witnesses) == {"X1", "X2", "X3", "Y1", "Y2", "Y3"}
    assert policy.groups["X-witnesses"].threshold == 2
    assert policy.groups["X-and-Y"].threshold == 2
    assert policy.check(_cosigned(X[0], X[2], Y[1])) == {"X1", "X3", "Y2"}
    for short in [(X[0], Y[0]), (X[0], X[1], X[2]), (Y[0], Y[1], Y[2], X[1])]:
        with pytest.raises(VerificationError, match="quorum 'X-and-Y'"):
            policy.check(_cosigned(*short))


def test_quorum_none_needs_nobody() -> None:
    policy = WitnessPolicy.from_text(f"log {LOG.verifier.to_key()}\nquorum none\n")
    assert policy.check(_cosigned()) == set()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.lists(st.integers(0, 2), unique=True))
def test_threshold_policies_count_distinct_witnesses(k: int, who: list[int]) -> None:
    policy = WitnessPolicy.threshold(k, [w.verifier for w in X])
    note = _cosigned(*(X[i] for i in who), *(X[i] for i in who))  # repeated lines count once
    if len(who) >= k:
        assert policy.check(note) == {X[i].name for i in who}
    else:
        with pytest.raises(VerificationError, match="quorum"):
            policy.check(note)


W = X[0].verifier.to_key()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("quorum nobody\n", 1, "not defined above"),
        (f"witness A {W}\nwitness A {Y[0].verifier.to_key()}\nquorum A\n", 2, "already defined"),
        (f"witness A {W}\nwitness B {W}\nquorum A\n", 2, "duplicate witness"),
        (f"witness none {W}\nquorum none\n", 1, "reserved"),
        (f"witness A {W}\ngroup G 2 A\nquorum G\n", 2, "threshold"),
        (f"witness A {W}\ngroup G 0 A\nquorum G\n", 2, "threshold"),
        (f"witness A {W}\ngroup G 01 A\nquorum G\n", 2, "threshold"),
        (f"witness A {W}\ngroup G any A A\nquorum G\n", 2, "more than once"),
        (f"witness A {W}\ngroup G any none\nquorum G\n", 2, "not defined"),
        (f"group G any B\nwitness B {W}\nquorum G\n", 1, "not defined above"),
        (f"witness A {W}\nquorum A\nquorum A\n", 3, "exactly one quorum"),
        (f"witness A {ecdsa_vkey('e.example')}\nquorum A\n", 1, "neither a cosignature"),
        (f"log {W}\nquorum none\n", 1, "signature type"),
        ("witness A not-a-key\nquorum A\n", 1, "key is invalid"),
        ("trust everyone\nquorum none\n", 1, "unknown keyword"),
        ("witness A\nquorum none\n", 1, "malformed witness"),
        ("quorum none\r\n", 1, "control character"),
    ],
)
def test_malformed_policies_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(InputError, match=words) as caught:
        WitnessPolicy.from_text(text)
    assert caught.value.where == f"policy line {line}"


def test_a_policy_needs_a_quorum() -> None:
    with pytest.raises(InputError, match="no quorum"):
        WitnessPolicy.from_text(f"witness A {W}\n")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_fuzzed_policies_raise_only_input_error(text: str | bytes) -> None:
    try:
        WitnessPolicy.from_text(text)
    except InputError:
        pass
