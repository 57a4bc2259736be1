"""docs/configuration-reference.md is generated from the settings models: a stale copy fails."""

from pathlib import Path

from core.config_reference import render

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration-reference.md"


def test_reference_matches_the_settings_models() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/configuration-reference.md is stale: run `python -m core.config_reference > docs/configuration-reference.md`"
    )


def test_every_section_and_its_commented_fields_are_listed() -> None:
    text = render()
    for line in ("| `RATE_LIMIT_MAX_PER_USER` | int | `10` | ≥ 1 |", "## `handoff`", "`handoff.idle_close_sec`"):
        assert line in text
    assert "no message from either side this long: resolved" in text  # the comment beside the field
