"""The gateway's public API is pinned (httpx tests/test_exported_members.py)."""

import custodes.gateway as gateway


def test_exported_members() -> None:
    public = {name for name in dir(gateway) if not name.startswith("_")}
    assert set(gateway.__all__) == public - {"annotations"}
    assert all(
        getattr(gateway, name).__module__.startswith("custodes.gateway")
        for name in gateway.__all__
        if hasattr(getattr(gateway, name), "__module__")
        and not isinstance(getattr(gateway, name), str | dict)
    )
