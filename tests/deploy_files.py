"""What the deployment tests share: the Procfile's commands and the hub's environment names."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT


def procfile() -> dict[str, tuple[dict[str, str], list[str]]]:
    """Each process: the variables it sets before its command, and the command's words."""
    processes = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        words = shlex.split(command)
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        processes[name.strip()] = (env, words)
    return processes


def default_of(value: str) -> str:
    """``${HOST:-0.0.0.0}`` -> ``0.0.0.0`` (the value a Procfile gives when the variable is unset)."""
    match = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value)
    return match.group(1) if match else value
