"""The Vultron RM/EM transition functions and case-flag order (CERTCC/Vultron process models)."""

from __future__ import annotations

import pytest

from custodes.custody import EM_STATES, RM_STATES, TransitionError
from custodes.custody._lifecycle import check_em, check_flag, check_rm
from custodes.errors import InputError

# Written out from the Vultron RM and EM DFAs, pair by pair.
RM_ALLOWED = {
    ("received", "valid"),
    ("received", "invalid"),
    ("invalid", "valid"),
    ("invalid", "closed"),
    ("valid", "accepted"),
    ("valid", "deferred"),
    ("accepted", "deferred"),
    ("accepted", "closed"),
    ("deferred", "accepted"),
    ("deferred", "closed"),
}
EM_ALLOWED = {
    ("none", "proposed"),
    ("proposed", "none"),
    ("proposed", "active"),
    ("proposed", "proposed"),
    ("active", "revise"),
    ("active", "exited"),
    ("revise", "active"),
    ("revise", "revise"),
    ("revise", "exited"),
}


@pytest.mark.parametrize("a", RM_STATES)
@pytest.mark.parametrize("b", RM_STATES)
def test_rm_pairs(a: str, b: str) -> None:
    if (a, b) in RM_ALLOWED:
        check_rm(a, b)
    else:
        with pytest.raises(TransitionError):
            check_rm(a, b)


@pytest.mark.parametrize("a", EM_STATES)
@pytest.mark.parametrize("b", EM_STATES)
def test_em_pairs(a: str, b: str) -> None:
    if (a, b) in EM_ALLOWED:
        check_em(a, b)
    else:
        with pytest.raises(TransitionError):
            check_em(a, b)


def test_no_embargo_once_public_but_exit_is_allowed() -> None:
    with pytest.raises(TransitionError, match="public"):
        check_em("none", "proposed", flags=["exploit-public"])
    check_em("active", "exited", flags=["public-aware"])


def test_unknown_states_and_flags_are_input_errors() -> None:
    with pytest.raises(InputError):
        check_rm("received", "triaged")
    with pytest.raises(InputError):
        check_flag("patched", [])


def test_flag_order_and_monotonicity() -> None:
    with pytest.raises(TransitionError, match="vendor-aware"):
        check_flag("fix-ready", [])
    with pytest.raises(TransitionError, match="fix-ready"):
        check_flag("fix-deployed", ["vendor-aware"])
    check_flag("fix-deployed", ["vendor-aware", "fix-ready"])
    with pytest.raises(TransitionError, match="already set"):
        check_flag("public-aware", ["public-aware"])
