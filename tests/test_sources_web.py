"""The ``web`` source against a fake help center: first sync, edits, deletions, trouble, races.

Each test syncs through ``SourceSync`` (what the schedule and ``python -m core sources sync``
run) or the command itself, then reads the index that ingest built — what a question sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from core.kb import store
from core.kb.embedders import HashEmbedder
from core.sources.sync import SourceSync, status_lines
from tests.conftest import ROOT, HubServer, make_settings, metric, write_yaml
from tests.fakes.web_site import FakeSite

RETURNS = "<p>Customers may return unworn shoes within 30 days of delivery for a full refund.</p>"
SHIPPING = "<h2>Fees</h2><p>Standard shipping to the outlying islands costs NT$150 and takes 5 days.</p>"
WARRANTY = "<p>Every kettle carries a two-year warranty against defects in its heating element.</p>"


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        fake.page("/help/returns", "Returns and refunds", RETURNS)
        fake.page("/help/shipping", "Shipping to the islands", SHIPPING)
        fake.page("/help/warranty", "Kettle warranty", WARRANTY)
        yield fake


def _settings(tmp_path: Path, site: FakeSite, **source: object) -> Settings:
    kb = tmp_path / "kb"
    kb.mkdir(exist_ok=True)
    (kb / "hours.md").write_text("# Opening hours\n\nThe shop's phone line is open 9:00-18:00.\n", encoding="utf-8")
    entry = {"name": "help", "type": "web", "url": f"{site.url}/sitemap.xml"} | source
    config = write_yaml(tmp_path / "hub.yaml", {"sources": [entry]})
    return make_settings(tmp_path, KB_DIR=str(kb), HUB_CONFIG=str(config))


def _sync(settings: Settings) -> object:
    return asyncio.run(SourceSync(settings, HashEmbedder()).run("help"))


def _documents(settings: Settings) -> dict[str, store.DocumentEntry]:
    index = store.load(settings.index_dir)
    assert index is not None
    return {d.title: d for d in index.documents}


def test_first_sync_indexes_every_page_with_its_address(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    report = _sync(settings)
    assert report.outcome == "ok" and report.added == 3  # type: ignore[attr-defined]
    docs = _documents(settings)
    assert set(docs) == {"Opening hours", "Returns and refunds", "Shipping to the islands", "Kettle warranty"}
    assert docs["Returns and refunds"].url == f"{site.url}/help/returns"
    assert docs["Returns and refunds"].collection == "default"
    index = store.load(settings.index_dir)
    assert index is not None
    texts = " ".join(c.text for c in index.chunks())
    assert "outlying islands costs NT$150" in texts  # the main text, extracted
    assert "All rights reserved" not in texts and "Home" not in texts.split()  # not the footer or the menu


def test_an_unchanged_site_costs_conditional_requests_and_embeds_nothing(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    version = store.current_name(settings.index_dir)
    site.requests.clear()
    report = _sync(settings)
    assert report.outcome == "ok" and report.changed == 0 and report.added == 0  # type: ignore[attr-defined]
    assert sorted(site.served(304)) == ["/help/returns", "/help/shipping", "/help/warranty"]
    assert site.served(200) == []
    assert store.current_name(settings.index_dir) == version  # nothing changed: no new index version


def test_an_edit_is_synced_and_a_removed_page_leaves_the_index(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    site.page("/help/returns", "Returns and refunds", RETURNS.replace("30 days", "45 days"))
    site.remove("/help/warranty")  # gone from the sitemap
    report = _sync(settings)
    assert (report.changed, report.removed) == (1, 1)  # type: ignore[attr-defined]
    docs = _documents(settings)
    assert "Kettle warranty" not in docs
    index = store.load(settings.index_dir)
    assert index is not None
    texts = " ".join(c.text for c in index.chunks())
    assert "45 days" in texts and "30 days" not in texts


def test_a_page_answering_404_is_removed_even_while_the_sitemap_lists_it(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    site.in_sitemap = {"/help/returns", "/help/shipping", "/help/warranty"}
    site.remove("/help/shipping")  # still listed, but the page answers 404
    report = _sync(settings)
    assert report.outcome == "ok" and report.removed == 1  # type: ignore[attr-defined]
    assert "Shipping to the islands" not in _documents(settings)


def test_a_failed_sync_removes_nothing(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    version = store.current_name(settings.index_dir)
    site.fail("/help/shipping")
    site.remove("/help/warranty")  # would be a removal, if the sync could finish
    report = _sync(settings)
    assert report.outcome == "failed" and "500" in (report.error or "")  # type: ignore[attr-defined]
    assert store.current_name(settings.index_dir) == version
    assert "Kettle warranty" in _documents(settings)
    [line] = status_lines(settings)
    assert line["outcome"] == "failed" and line["documents"] == 3 and line["last_success"]
    site.heal()
    assert _sync(settings).outcome == "ok"  # type: ignore[attr-defined]
    assert "Kettle warranty" not in _documents(settings)


def test_a_429_storm_is_waited_out(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    site.storm(4, retry_after="0")
    report = _sync(settings)
    assert report.outcome == "ok" and report.added == 3  # type: ignore[attr-defined]
    assert len(site.served(429)) == 4


def test_a_429_that_does_not_end_fails_the_sync_without_losing_anything(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    site.storm(1000, retry_after="0")
    assert _sync(settings).outcome == "failed"  # type: ignore[attr-defined]
    assert len(_documents(settings)) == 4


def test_robots_txt_is_obeyed(tmp_path: Path, site: FakeSite) -> None:
    site.robots("User-agent: *\nDisallow: /help/warranty\n")
    settings = _settings(tmp_path, site)
    _sync(settings)
    assert "Kettle warranty" not in _documents(settings)
    assert "/help/warranty" not in site.served(200)


def test_a_crawl_stays_on_its_host_and_stops_at_max_pages(tmp_path: Path, site: FakeSite) -> None:
    site.page(
        "/help/", "Help", "<p>Our help pages.</p>", links=("/help/returns", "/help/shipping", "https://example.org/x")
    )
    site.page("/help/returns", "Returns and refunds", RETURNS, links=("/help/warranty",))
    site.redirect("/help/shipping", "https://elsewhere.example/shipping")
    # Read: /help/, /help/contact (the menu's, 404), /help/returns, /help/shipping (off-host) — then the limit.
    settings = _settings(tmp_path, site, url=f"{site.url}/help/", max_pages=4, include=["/help/*"])
    report = _sync(settings)
    assert report.outcome == "ok"  # type: ignore[attr-defined]
    titles = set(_documents(settings))
    assert titles == {
        "Opening hours",
        "Help",
        "Returns and refunds",
    }  # shipping went elsewhere; warranty: past the limit
    assert "/" not in {p for _, p, _ in site.requests}  # not included
    assert len([p for _, p, _ in site.requests if p.startswith("/help")]) == 4


def test_include_and_exclude_filter_pages(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site, exclude=["/help/ship*"])
    _sync(settings)
    assert "Shipping to the islands" not in _documents(settings)


def test_answers_from_a_synced_page_cite_its_address(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    with HubServer(settings) as server:
        answer = httpx.post(f"{server.url}/ask", json={"question": "how long do I have to return shoes for a refund?"})
    assert answer.status_code == 200, answer.text
    sources = answer.json()["sources"]
    assert sources and sources[0]["url"] == f"{site.url}/help/returns"
    assert all("url" not in s for s in sources if s["title"] == "Opening hours")  # a KB_DIR file has none


def test_v1_kb_citations_carry_a_synced_pages_address(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site)
    _sync(settings)
    question = {"role": "user", "content": "how long do I have to return shoes for a refund?"}
    with HubServer(settings) as server:
        chat = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "kb", "messages": [question]})
        response = httpx.post(f"{server.url}/v1/responses", json={"model": "kb", "input": question["content"]})
    assert chat.status_code == 200, chat.text
    assert chat.json()["sources"][0]["url"] == f"{site.url}/help/returns"
    assert response.status_code == 200, response.text
    annotations = [
        a for item in response.json()["output"] for part in item.get("content", []) for a in part.get("annotations", [])
    ]
    assert {"type": "url_citation", "url": f"{site.url}/help/returns"}.items() <= next(
        a for a in annotations if a["type"] == "url_citation"
    ).items()


def test_the_schedule_syncs_a_due_source_in_a_single_process(tmp_path: Path, site: FakeSite) -> None:
    settings = _settings(tmp_path, site, every="15m")
    with HubServer(settings) as server:
        before = metric(server.url, "hub_source_sync_total", source="help", outcome="ok")  # the registry is per process

        def titles() -> set[str]:
            index = server.hub.index.current
            return {d.title for d in index.documents} if index is not None else set()

        for _ in range(1000):  # the first sync, then the index reload that picks its version up
            if "Kettle warranty" in titles():
                break
            server.run(asyncio.sleep(0.02))
        assert "Kettle warranty" in titles()
        assert metric(server.url, "hub_source_sync_total", source="help", outcome="ok") == before + 1
        assert metric(server.url, "hub_source_interval_seconds", source="help") == 900


def _cli(settings_env: dict[str, str], *args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, **settings_env}
    return subprocess.Popen(
        [sys.executable, "-m", "core", "sources", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _env(tmp_path: Path, site: FakeSite) -> dict[str, str]:
    settings = _settings(tmp_path, site)
    return {
        "KB_DIR": str(settings.kb_dir),
        "INDEX_DIR": str(settings.index_dir),
        "HUB_CONFIG": str(tmp_path / "hub.yaml"),
        "EMBEDDINGS": "hash",
        "LOG_FILE": "",
    }


def test_the_command_lists_syncs_and_reports_status(tmp_path: Path, site: FakeSite) -> None:
    env = _env(tmp_path, site)
    listed = _cli(env, "list").communicate(timeout=60)[0]
    assert listed.split("\t")[:3] == ["help", "web", "default"]
    sync = _cli(env, "sync", "help")
    out, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["outcome"] == "ok"
    status = json.loads(_cli(env, "status").communicate(timeout=60)[0].splitlines()[0])
    assert {k: status[k] for k in ("name", "type", "outcome", "documents")} == {
        "name": "help",
        "type": "web",
        "outcome": "ok",
        "documents": 3,
    }
    assert status["last_sync"]
    unknown = _cli(env, "sync", "nope")
    assert unknown.wait(60) == 2 and "unknown source 'nope'" in unknown.communicate()[1]
    site.fail("/help/returns")
    failed = _cli(env, "sync", "help")
    assert failed.wait(120) == 1


def test_a_sync_killed_mid_read_loses_nothing_and_the_next_finishes(tmp_path: Path, site: FakeSite) -> None:
    env = _env(tmp_path, site)
    first = _cli(env, "sync", "help")
    assert first.wait(120) == 0
    site.page("/help/returns", "Returns and refunds", RETURNS.replace("30 days", "60 days"))
    site.hold("/help/warranty")
    victim = _cli(env, "sync", "help")
    assert site.waiting.wait(60)
    # A second process racing for the same source finds it busy (the lock), and changes nothing.
    racer = _cli(env, "sync", "help")
    out, _ = racer.communicate(timeout=120)
    assert racer.returncode == 1 and json.loads(out.splitlines()[-1])["outcome"] == "busy"
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    site.release()
    settings = make_settings(tmp_path, KB_DIR=env["KB_DIR"], INDEX_DIR=env["INDEX_DIR"], HUB_CONFIG=env["HUB_CONFIG"])
    assert len(_documents(settings)) == 4  # the killed sync changed nothing live
    again = _cli(env, "sync", "help")
    assert again.wait(120) == 0
    docs = _documents(settings)
    assert len(docs) == 4  # nothing doubled
    index = store.load(settings.index_dir)
    assert index is not None
    assert "60 days" in " ".join(c.text for c in index.chunks())


def test_a_long_page_keeps_its_headings_and_tables(tmp_path: Path, site: FakeSite) -> None:
    fees = (
        "<p>These fees apply to every personal account from 1 January 2027.</p>"
        "<h2>Transfers</h2><p>Transfers between our own accounts are free of charge.</p>"
        "<table><tr><th>Service</th><th>Fee</th></tr><tr><td>Domestic wire</td><td>NT$30</td></tr>"
        "<tr><td>International wire</td><td>NT$450</td></tr></table>"
        "<h2>Cards</h2><p>A replacement debit card costs NT$100; the first one each year is free.</p>"
    )
    site.page("/help/fees", "Fee schedule", fees)
    settings = _settings(tmp_path, site)
    _sync(settings)
    [copy] = [p for p in (settings.sources_dir() / "help").glob("*.md") if "fees" in p.name]
    text = copy.read_text(encoding="utf-8")
    assert text.startswith("# Fee schedule")
    assert "## Transfers" in text and "## Cards" in text
    assert "| International wire | NT$450 |" in text
    index = store.load(settings.index_dir)
    assert index is not None
    sections = {c.section for c in index.chunks() if c.title == "Fee schedule"}
    assert {"Transfers", "Cards"} <= sections
