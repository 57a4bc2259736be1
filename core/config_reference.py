"""The configuration reference, generated from the settings models so that it cannot drift.

``python -m core.config_reference > docs/configuration-reference.md`` writes it; a test fails
when the committed file differs from what the models say. Each setting's line comes from its
field: type, default, bounds, and the comment written beside it in ``core/config.py``.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from core import config
from core.config import Settings

_COMMENT = re.compile(r"^\s+(\w+)\s*:.*?#\s*(.+)$")


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment written at the end of each field's line in the model's source."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    for line in source.splitlines():
        match = _COMMENT.match(line)
        if match and match.group(1) in model.model_fields:
            found.setdefault(match.group(1), match.group(2).strip())
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The settings models an annotation holds (a section, a list or map of entries, optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(annotation))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]"
    if annotation is type(None):
        return "none"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    if value in (None, [], {}, ""):
        return "unset" if value is None else repr(value)
    if isinstance(value, SecretStr):
        return "unset"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    words = []
    for meta in field.metadata:
        for kind, attr, sign in ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"), (Lt, "lt", "<")):
            if isinstance(meta, kind):
                words.append(f"{sign} {getattr(meta, attr)}")
        if isinstance(meta, MinLen):
            words.append(f"at least {meta.min_length} long")
        if isinstance(meta, MaxLen):
            words.append(f"at most {meta.max_length} long")
    return ", ".join(words)


def _rows(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> list[str]:
    comments = _comments(model)
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        inner = _models_in(field.annotation)
        note = "; ".join(part for part in (_bounds(field), comments.get(name, "")) if part)
        rows.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | {note} |")
        for sub in inner:
            origin = get_origin(field.annotation)
            shape = "[]" if origin is list else ".<name>" if origin is dict else ""
            nested.append((f"{prefix}{name}{shape}.", sub))
    for sub_prefix, sub in nested:
        if sub in seen:
            continue
        seen.add(sub)
        rows.extend(_rows(sub, sub_prefix, seen))
    return rows


def render() -> str:
    """The whole reference as Markdown."""
    env = [n for n in Settings.model_fields if n not in config._YAML_ONLY | config._FROM_PREFIX]
    lines = [
        "# Configuration reference",
        "",
        "Generated from the settings models in `core/config.py` by `python -m core.config_reference`;",
        "do not edit by hand. Environment variables are the upper-cased names of the first table",
        "and win over the YAML file (`HUB_CONFIG`); every other section exists only in YAML.",
        "An unknown or invalid setting stops the start with one line naming it.",
        "",
        "## Environment variables (also top-level YAML keys)",
        "",
        "| variable | type | default | notes |",
        "| --- | --- | --- | --- |",
    ]
    comments = _comments(Settings)
    for name in env:
        field = Settings.model_fields[name]
        note = "; ".join(part for part in (_bounds(field), comments.get(name, "")) if part)
        lines.append(f"| `{name.upper()}` | {_type_name(field.annotation)} | {_default(field)} | {note} |")
    for name in Settings.model_fields:
        if name not in config._YAML_ONLY:
            continue
        field = Settings.model_fields[name]
        models = _models_in(field.annotation)
        lines += ["", f"## `{name}`", ""]
        doc = inspect.getdoc(models[0]) if models else None
        if doc and models[0].__doc__:
            lines += [doc.split("\n\n")[0].replace("\n", " "), ""]
        lines += [
            "| setting | type | default | notes |",
            "| --- | --- | --- | --- |",
            f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {comments.get(name, '')} |",
        ]
        origin = get_origin(field.annotation)
        shape = "[]" if origin is list else ".<name>" if origin is dict else ""
        for model in models:
            lines.extend(_rows(model, f"{name}{shape}.", {model}))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
