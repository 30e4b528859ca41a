"""Pins the public API of custodes.custody (httpx's test_exported_members)."""

import custodes.custody as custody


def test_exported_members() -> None:
    assert sorted(custody.__all__) == sorted(
        name
        for name in dir(custody)
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(getattr(custody, name), type(custody))
    )
    assert set(custody.__all__) >= {
        "CustodyRegistry",
        "DisclosurePolicy",
        "PRESETS",
        "compute_schedule",
        "evaluate_alarms",
        "to_osv",
        "to_csaf",
        "to_cve",
        "verify_commitment",
        "KeyEncryptionKey",
        "score_vector",
    }
