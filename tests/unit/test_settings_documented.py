"""Every setting is documented (datasette's test_settings_are_documented)."""

from pathlib import Path

from custodes.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text or f"`CUSTODES_{name.upper()}`" not in text
    ]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []
