"""Collections inside one index: an asker's search sees only its collections' chunks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from core.config import load_settings
from core.kb import store
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest, ingest_settings
from core.kb.retriever import Retriever

INTERNAL = {
    "year-end-bonus-zh.md": "# 年終獎金\n\n## 計算方式\n\n年終獎金怎麼算？年終獎金依績效考核等級計算，"
    "A 等為三個月薪資，B 等為兩個月。年終獎金於農曆年前發放。\n",
    "salary-bands.md": "# Salary bands\n\nInternal salary bands and the year-end bonus multiplier per grade.\n",
}
PUBLIC = {
    "returns.md": "# 退貨說明\n\n購買後七天內可以退貨，請保留發票。獎金活動的贈品也需一併退回。\n",
    "shipping.md": "# 運送\n\n訂單在三個工作天內出貨。年節期間出貨會延遲。\n",
    "points.md": "# 會員點數\n\n每消費一百元累積一點，點數可折抵現金。年終回饋活動點數加倍。\n",
    "contact.md": "# 聯絡我們\n\n客服專線週一到週五九點到六點。\n",
}


def write(folder: Path, docs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    write(tmp_path / "kb" / "internal", INTERNAL)
    write(tmp_path / "kb" / "public", PUBLIC)
    return tmp_path / "kb"


def settings_for(kb: Path, index: Path, **extra: object):  # type: ignore[no-untyped-def]
    import yaml

    config = index.parent / "hub.yaml"
    config.write_text(
        yaml.safe_dump({"collections": {"internal": {"path": "internal"}, "public": {"path": "public"}}, **extra}),
        encoding="utf-8",
    )
    return load_settings({"HUB_CONFIG": str(config), "KB_DIR": str(kb), "INDEX_DIR": str(index)})


RETRIEVER = Retriever(HashEmbedder(), lexical_weight=0.8)


@pytest.mark.parametrize("exact_max", [5000, 1])  # exact and approximate (IVF) dense search
async def test_a_public_search_never_returns_an_internal_chunk_and_still_fills_top_k(
    kb: Path, tmp_path: Path, exact_max: int
) -> None:
    folders = {"internal": kb / "internal", "public": kb / "public"}
    # Many internal memos match the question better than any public text, more than both
    # searches' candidate lists hold: dropping internal hits afterwards would leave nothing.
    # (Under a third of all chunks, or BM25 would treat the question's words as too common.)
    memos = {f"memo{i}.md": f"# 年終獎金備忘 {i}\n\n年終獎金怎麼算：第 {i} 則內部備忘。\n" for i in range(60)}
    write(kb / "internal", memos | {f"desk{i}.md": f"# 座位 {i}\n\n第 {i} 號座位在三樓。\n" for i in range(200)})
    write(kb / "public", {f"notice{i}.md": f"# 公告 {i}\n\n第 {i} 則公告，與發放無關的內容。\n" for i in range(300)})
    await ingest(folders, tmp_path / "index", HashEmbedder(), chunk_chars=300, exact_max=exact_max)
    index = store.load(tmp_path / "index")
    assert index is not None
    question = "年終獎金怎麼算?"
    everything = await RETRIEVER.search(index, question, 3)
    assert {h.chunk.collection for h in everything} == {"internal"}  # internal text is the best match

    public = await RETRIEVER.search(index, question, 3, collections=frozenset({"public"}))
    assert len(public) == 3
    assert public[0].lexical > 0 and public[0].chunk.doc_id == "points.md"  # BM25 found public text too
    assert {h.chunk.collection for h in public} == {"public"}
    assert all("績效" not in h.chunk.text for h in public)

    internal = await RETRIEVER.search(index, question, 3, collections=frozenset({"internal"}))
    assert [h.chunk.id for h in internal] == [h.chunk.id for h in everything]

    both = await RETRIEVER.search(index, question, 3, collections=frozenset({"internal", "public"}))
    assert [h.chunk.id for h in both] == [h.chunk.id for h in everything]
    assert await RETRIEVER.search(index, question, 3, collections=frozenset({"nope"})) == []
    assert await RETRIEVER.search(index, question, 3, collections=frozenset()) == []


async def test_ingest_builds_every_collection_and_reingests_only_the_changed_one(kb: Path, tmp_path: Path) -> None:
    settings = settings_for(kb, tmp_path / "index")
    first = await ingest_settings(settings, HashEmbedder())
    index = store.load(settings.index_dir)
    assert index is not None and first.documents == len(INTERNAL) + len(PUBLIC)
    assert index.collections == ("internal", "public")
    assert {c.collection for c in index.chunks() if c.doc_id in INTERNAL} == {"internal"}
    assert {c.collection for c in index.chunks() if c.doc_id in PUBLIC} == {"public"}

    (kb / "public" / "shipping.md").write_text("# 運送\n\n訂單在兩個工作天內出貨。\n", encoding="utf-8")
    second = await ingest_settings(settings, HashEmbedder())
    assert second.changed and second.embedded == 1  # the one changed public chunk; internal reused
    assert second.version == first.version + 1
    index = store.load(settings.index_dir)
    assert index is not None
    hits = await RETRIEVER.search(index, "幾個工作天出貨", 1, collections=frozenset({"public"}))
    assert "兩個工作天" in hits[0].chunk.text

    # A file of the same name in two collections is two documents.
    write(kb / "internal", {"shipping.md": "# 內部出貨流程\n\n倉庫每天下午三點前撿貨。\n"})
    third = await ingest_settings(settings, HashEmbedder())
    assert third.embedded == 1 and third.removed == 0
    index = store.load(settings.index_dir)
    assert index is not None
    shipping = sorted(c.collection for c in index.chunks() if c.doc_id == "shipping.md")
    assert shipping == ["internal", "public"]
    assert (await ingest_settings(settings, HashEmbedder())).changed is False


async def test_without_collections_everything_is_default_and_older_indexes_load(tmp_path: Path) -> None:
    write(tmp_path / "kb", PUBLIC)
    settings = load_settings({"KB_DIR": str(tmp_path / "kb"), "INDEX_DIR": str(tmp_path / "index")})
    assert settings.collection_dirs() == {"default": tmp_path / "kb"}
    await ingest_settings(settings, HashEmbedder())
    # An index written before collections has no "collection" in its manifest.
    manifest_path = tmp_path / "index" / str(store.current_name(tmp_path / "index")) / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    for doc in manifest["documents"]:
        del doc["collection"]
    manifest_path.write_bytes(orjson.dumps(manifest))
    index = store.load(tmp_path / "index")
    assert index is not None and index.collections == ("default",)
    hits = await RETRIEVER.search(index, "退貨", 2)
    assert hits[0].chunk.collection == "default" and hits[0].chunk.doc_id == "returns.md"
    assert [h.chunk.id for h in await RETRIEVER.search(index, "退貨", 2, collections=frozenset({"default"}))] == [
        h.chunk.id for h in hits
    ]
    # ... and re-ingest reuses its documents rather than embedding them again.
    assert (await ingest_settings(settings, HashEmbedder())).embedded == 0
