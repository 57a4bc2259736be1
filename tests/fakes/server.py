"""The loopback plumbing every fake shares: an aiohttp app on 127.0.0.1:<random port>, in its own thread.

A loop of its own in a daemon thread lets one fake serve sync tests, async tests on any loop, and
subprocesses of the hub alike. Subclasses say what to serve (``build_app``) and, if they hold
long-lived requests, how to let go of them (``before_shutdown``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, ClassVar, Self, TypeVar

from aiohttp import web

__all__ = ["LoopbackServer"]

T = TypeVar("T")


class LoopbackServer:
    """Base of the fakes: ``with Fake() as fake:`` serves until the block ends."""

    #: Cancel a handler when its client hangs up (frees requests that would otherwise stall).
    handler_cancellation: ClassVar[bool] = False

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- for subclasses --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The app to serve; runs on the server's loop."""
        raise NotImplementedError

    async def before_shutdown(self) -> None:
        """Let go of what would hold up the runner's cleanup (open websockets, stalled requests)."""

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port chosen by the OS; only valid while started."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Bind, start serving in a daemon thread, return once listening."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_run_loop, args=(loop,), name=type(self).__name__, daemon=True)
        thread.start()
        try:
            # Bubbles up any setup error from the server thread.
            asyncio.run_coroutine_threadsafe(self._serve(sock), loop).result(10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Run ``before_shutdown``, close the server, join the thread; a no-op when not started."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._loop = self._thread = None
            self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run ``coro`` on the server's loop from another thread and return its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{type(self).__name__} is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _serve(self, sock: socket.socket) -> None:
        runner = web.AppRunner(
            self.build_app(), access_log=None, shutdown_timeout=1.0, handler_cancellation=self.handler_cancellation
        )
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock).start()

    async def _shutdown(self) -> None:
        try:
            await self.before_shutdown()
        finally:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
