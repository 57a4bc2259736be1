"""Command line: ``python -m core serve | worker | check | ingest | eval | sources | keys create | keys rotate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from core.config import ConfigError, Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description="Ask Hub gateway core")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP app (and the adapters whose credentials are set)")
    sub.add_parser("worker", help="answer queued chat events (with REDIS_URL, beside web processes)")
    sub.add_parser("check", help="print what every door and tenant may read (the configuration, checked)")
    p_ingest = sub.add_parser("ingest", help="build or update the knowledge-base index")
    p_ingest.add_argument("kb_dir", nargs="?", type=Path, help="documents folder (default: KB_DIR)")
    p_ingest.add_argument("--rebuild", action="store_true", help="re-embed everything, replacing the index")
    p_ingest.add_argument(
        "--save-vectors",
        action="store_true",
        help="also write each folder's chunk vectors into it (.vectors.<embedder>.npz), to ship with the documents",
    )
    p_eval = sub.add_parser("eval", help="measure retrieval: recall, MRR, answerable and off-topic declined")
    p_eval.add_argument("questions", nargs="?", type=Path, default=Path("data/eval/questions.jsonl"))
    p_eval.add_argument("--kb", type=Path, help="documents of that question set (default: KB_DIR)")
    p_eval.add_argument(
        "--dataset",
        type=Path,
        action="append",
        default=[],
        help="a folder with kb/ and questions.jsonl (repeatable), evaluated after the question set",
    )
    p_eval.add_argument("--misses", type=int, default=0, help="print this many missed questions per set")
    p_sources = sub.add_parser("sources", help="knowledge sources: list, sync NAME, status")
    sources_sub = p_sources.add_subparsers(dest="sources_command", required=True)
    sources_sub.add_parser("list", help="the configured sources, one a line")
    p_sync = sources_sub.add_parser("sync", help="sync one source now (exit 0 when it succeeded)")
    p_sync.add_argument("name")
    sources_sub.add_parser("status", help="one JSON object a line: name, type, last_sync, outcome, documents")
    p_keys = sub.add_parser("keys", help="manage client keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_create = keys_sub.add_parser("create", help="print a new random key once, with its config entry")
    p_create.add_argument("--client", required=True, help="client name, e.g. portal or slack")
    p_create.add_argument("--tenant", required=True, help="tenant (department) the client belongs to")
    p_create.add_argument("--scopes", default="ask,chat", help="comma-separated: ask, chat, admin")
    p_rotate = keys_sub.add_parser(
        "rotate", help="print a new key once, and the config entry that keeps the old one for an overlap"
    )
    p_rotate.add_argument("--client", required=True, help="a configured client (HUB_CONFIG or HUB_API_KEYS)")
    p_rotate.add_argument("--overlap-days", type=int, default=14, help="days the old key keeps working (default 14)")
    p_rotate.add_argument("--valid-days", type=int, default=90, help="the new key's lifetime (default 90; 0: no end)")
    args = parser.parse_args(argv)
    if args.command == "keys" and args.keys_command == "create":
        return _create_key(args.client, args.tenant, args.scopes)
    try:
        settings = load_settings()
        if args.command == "keys":
            from core.keyrotation import rotate

            return rotate(settings, args.client, overlap_days=args.overlap_days, valid_days=args.valid_days)
        if args.command == "check":
            from core.auth.walls import report

            print(report(settings))
            return 0
        if args.command == "serve":
            from core.serve import serve

            return serve(settings)
        if args.command == "worker":
            from core.worker import run

            asyncio.run(run(settings))
            return 0
        if args.command == "sources":
            from core.sources.cli import run as sources

            return sources(settings, args.sources_command, getattr(args, "name", None))
        if args.command == "ingest":
            return asyncio.run(_ingest(settings, args.kb_dir, args.rebuild, args.save_vectors))
        sets = [(args.questions.parent.name or "sample", args.kb or settings.kb_dir, args.questions)]
        sets += [(d.name, d / "kb", d / "questions.jsonl") for d in args.dataset]
        return asyncio.run(_eval(settings, sets, args.misses))
    except ConfigError as exc:
        from core.lifecycle import config_error

        return config_error(exc)


async def _ingest(settings: Settings, kb_dir: Path | None, rebuild: bool, save_vectors: bool = False) -> int:
    """Every collection of the settings, or the one folder given on the command line."""
    from core.kb.embedders import make_embedder
    from core.kb.ingest import IngestError, ingest_settings

    embedder = _embedder(settings, make_embedder)
    if kb_dir is not None:
        settings = settings.model_copy(update={"kb_dir": kb_dir, "collections": {}})
    try:
        report = await ingest_settings(settings, embedder, rebuild=rebuild, progress=True, save_vectors=save_vectors)
    except IngestError as exc:
        print(f"ingest refused: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


async def _eval(settings: Settings, sets: list[tuple[str, Path, Path]], show_misses: int) -> int:
    from core.kb import store
    from core.kb.embedders import make_embedder
    from core.kb.evaluate import declined, evaluate, read_questions, share
    from core.kb.ingest import IngestError, ingest, vector_cache_path
    from core.kb.retriever import Retriever

    embedder = _embedder(settings, make_embedder)
    retriever = Retriever.from_settings(embedder, settings.retrieval)
    weight = retriever.lexical_weight
    print(f"embedder {embedder.name}, " + (f"lexical weight {weight}" if weight is not None else "learned ranker"))
    if retriever.fallback_reason:
        print(f"warning: {retriever.fallback_reason}", file=sys.stderr)
    for name, kb_dir, questions_path in sets:
        try:
            questions = read_questions(questions_path)
        except (OSError, ValueError) as exc:
            print(f"{name}: cannot read questions: {exc}", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory(prefix="askhub-eval-") as tmp:
            try:
                await ingest(
                    kb_dir,
                    Path(tmp),
                    embedder,
                    chunk_chars=settings.retrieval.chunk_chars,
                    exact_max=settings.retrieval.exact_max_chunks,
                    cache=vector_cache_path(settings),
                    progress=True,
                )
            except IngestError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
            index = store.load(Path(tmp))
            assert index is not None
            report = await evaluate(name, index, retriever, questions, settings.retrieval.min_score)
            declined_line = ""
            for offtopic in sorted(questions_path.parent.glob("offtopic*.jsonl")):
                others = read_questions(offtopic)
                count = await declined(index, retriever, others, settings.retrieval.min_score)
                declined_line += f"   {offtopic.stem} declined: {count} of {len(others)} ({share(count, len(others))})"
        print(report.line() + declined_line)
        for line in report.kind_lines():
            print(line)
        for question, expected, got in report.misses[:show_misses]:
            print(f"   miss: {question!r} expected {expected}, got {got}")
    return 0


def _create_key(client: str, tenant: str, scopes: str) -> int:
    from pydantic import ValidationError

    from core.auth import digest, new_key
    from core.config import ClientSettings

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    try:
        ClientSettings(name=client, tenant=tenant, scopes=wanted)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"invalid --{err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return 2
    key = new_key()
    print(f"New key for client '{client}' (tenant '{tenant}'). It is shown only now:\n\n    {key}\n")
    print("Add this to the clients list of the HUB_CONFIG file (only the hash is stored):\n")
    print("clients:")
    print(f"  - name: {client}\n    tenant: {tenant}\n    scopes: [{', '.join(wanted)}]")
    print(f"    key_sha256: [{digest(key)}]")
    return 0


def _embedder(settings: Settings, factory):  # type: ignore[no-untyped-def]
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return factory(settings.embeddings, api_key=key, base_url=settings.openai_base_url)


if __name__ == "__main__":
    sys.exit(main())
