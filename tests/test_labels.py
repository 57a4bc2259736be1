"""The front end's label tables (web/i18n/<language>.json): both languages name the same labels,
with the same {placeholders}, and no page keeps a table of its own in its script."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

WEB = Path(__file__).resolve().parents[1] / "web"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def test_both_languages_have_the_same_labels_and_placeholders() -> None:
    en = _flat(json.loads((WEB / "i18n" / "en.json").read_text(encoding="utf-8")))
    zh = _flat(json.loads((WEB / "i18n" / "zh-TW.json").read_text(encoding="utf-8")))
    assert sorted(en) == sorted(zh)
    for key, text in en.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(zh[key])), key
        assert zh[key].strip(), key


def test_no_script_keeps_a_label_table_of_its_own() -> None:
    for script in WEB.glob("*.js"):
        assert not re.search(r"^const (LABELS|WORDS) = \{", script.read_text(encoding="utf-8"), re.M), script.name
