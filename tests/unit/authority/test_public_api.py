"""The public API of custodes.authority and custodes.constitution (httpx's
test_exported_members): everything listed is importable, and nothing private is listed."""

from __future__ import annotations

import custodes.authority
import custodes.constitution


def test_exported_members() -> None:
    for module in (custodes.authority, custodes.constitution):
        names = set(module.__all__)
        assert names == {
            n
            for n in dir(module)
            if not n.startswith("_") and not isinstance(getattr(module, n), type(module))
        }
        assert not any(n.startswith("_") for n in names)
    assert {"Authority", "Grant", "SigningKey", "evaluate_quorum"} <= set(
        custodes.authority.__all__
    )
    assert {"Constitution", "read_constitution", "AmendmentGuard", "check_amendment"} <= set(
        custodes.constitution.__all__
    )
