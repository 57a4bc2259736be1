"""Open ``/conversations/{id}/events`` streams are capped per asker (issue #26: 150 opened with one
key). Over the cap: a 429 with the contract's JSON body and Retry-After; a closed stream frees its slot."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HubServer, make_settings, write_yaml

KEY, OTHER = "ah_streams-portal-key-0000000000", "ah_streams-other-key-00000000000"
CAP = 3


@pytest.fixture(params=["memory", "redis"])
def hub(request: pytest.FixtureRequest, tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    env = {"REDIS_URL": request.getfixturevalue("redis_db")} if request.param == "redis" else {}
    config = write_yaml(tmp_path / "hub.yaml", {"requests": {"max_streams_per_asker": CAP}})
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config),
                             HUB_API_KEYS=f"portal:cs:{KEY},other:cs:{OTHER}", **env)  # fmt: skip
    with HubServer(settings) as server:
        yield server


def test_streams_per_key_are_capped_with_a_clear_429(hub: HubServer) -> None:
    client = httpx.Client(timeout=httpx.Timeout(10, read=None))
    with contextlib.ExitStack() as streams:
        opened = []
        for n in range(CAP):
            response = streams.enter_context(client.stream(
                "GET", f"{hub.url}/conversations/c{n}/events", headers={"X-API-Key": KEY}))  # fmt: skip
            assert response.status_code == 200
            opened.append(response)
        with client.stream("GET", f"{hub.url}/conversations/one-more/events", headers={"X-API-Key": KEY}) as refused:
            assert refused.status_code == 429, "one stream more than the cap"
            refused.read()
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["type"] == "rate_limited" and "streams" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        with client.stream("GET", f"{hub.url}/conversations/c0/events", headers={"X-API-Key": OTHER}) as other:
            assert other.status_code == 200, "another key has its own slots"
        opened[0].close()  # the client hangs up: its slot frees once the server sees it
        deadline = time.monotonic() + 10
        while True:
            with client.stream("GET", f"{hub.url}/conversations/again/events", headers={"X-API-Key": KEY}) as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream's slot was never freed"
    client.close()
