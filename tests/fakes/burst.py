"""Send many signed webhook requests at once from a separate process, and time each one.

    python -m tests.fakes.burst < requests.json   ->   [[status, seconds], ...] on stdout

Input: a JSON list of {"url", "body" (str), "headers" (dict)}. Output per request: status,
seconds to the response, and the monotonic clock at sending (shared by the machine's processes). Run as its own process so the
load generator does not share a GIL (or CPU time slices) with the fakes in the test process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main() -> None:
    requests = json.load(sys.stdin)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(request: dict) -> list[float]:  # type: ignore[type-arg]
            started = time.monotonic()
            async with session.post(request["url"], data=request["body"].encode(), headers=request["headers"]) as r:
                await r.read()
                return [r.status, time.monotonic() - started, started]

        results = await asyncio.gather(*(one(r) for r in requests))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
