"""Check a built hub image without a container runtime (where ``podman run`` cannot start one).

    python3 deploy/verify_image.py [IMAGE] [--redis-url URL]

It reads the image's config (non-root user, HEALTHCHECK, command, environment), mounts the
image's file system (``podman image mount``), and runs the image's own command there in a
chroot as the image's user with exactly the image's environment: the web process must
answer /healthz, /readyz and a question from the sample index built into the image, the
HEALTHCHECK command must pass, the worker command must start against Redis, and both must
stop cleanly on SIGTERM. Needs root (mount, chroot). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

KEY = "ah_image-verification-key-0123456789"
FORBIDDEN = ("pytest", "playwright", "ruff", "hypothesis", "kubernetes_validate")  # test tools stay out of the image


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        raise SystemExit(1)


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def mounted(image: str) -> Iterator[Path]:
    root = Path(podman("image", "mount", image))
    tmp = tempfile.mkdtemp(prefix="askhub-verify-tmp-")
    binds = [("/proc", root / "proc"), ("/dev", root / "dev"), (tmp, root / "tmp")]
    done: list[Path] = []
    try:
        for source, target in binds:
            subprocess.run(["mount", "--bind", source, str(target)], check=True)
            done.append(target)
        yield root
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)
        podman("image", "unmount", image)
        os.rmdir(tmp)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, key: str | None = None, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def in_image(root: Path, user: str, env: dict[str, str], argv: list[str], **kw: object) -> subprocess.Popen[str]:
    """``argv`` in the image's file system as its user, with only ``env`` (and the image's workdir)."""
    command = ["chroot", f"--userspec={user}", str(root), "/usr/bin/env", "-i",
               *(f"{k}={v}" for k, v in env.items()), "/bin/sh", "-c", 'cd /app && exec "$@"', "sh", *argv]  # fmt: skip
    return subprocess.Popen(command, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def stop(proc: subprocess.Popen[str], what: str) -> None:
    """SIGTERM, as ``docker stop`` sends it: the process must end by itself, well before a kill.
    uvicorn re-raises the signal after its graceful shutdown, so the web process ends "by
    SIGTERM" (-15 here, 143 in Docker); the worker returns 0."""
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = None
    check(code in (0, -signal.SIGTERM), f"{what} stops by itself on SIGTERM (exit {code})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default="localhost/askhub:dev")
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11"))
    args = parser.parse_args()

    info = json.loads(podman("image", "inspect", args.image))[0]
    config = info["Config"]
    size_mb = info["Size"] / 1e6
    print(f"image {args.image}: {size_mb:.0f} MB, base layers {len(info['RootFS']['Layers'])}")
    user = config.get("User", "")
    check(bool(user) and user.split(":")[0] not in ("0", "root"), f"runs as a non-root user ({user})")
    health = (config.get("Healthcheck") or info.get("Healthcheck") or {}).get("Test") or []
    check(bool(health) and health[0] in ("CMD", "CMD-SHELL"), "declares a HEALTHCHECK")
    cmd = config.get("Cmd") or []
    check(cmd == ["python", "-m", "core", "serve"], f"its command is the Procfile's web process ({cmd})")
    env = dict(item.split("=", 1) for item in config.get("Env", []))
    check(env.get("LOG_FILE") == "" and env.get("HOST") == "0.0.0.0", "logs to stdout and listens on all interfaces")

    with mounted(args.image) as root:
        site = next((root / "opt/askhub/lib").glob("python3*/site-packages"))
        present = [name for name in FORBIDDEN if (site / name).exists() or (site / f"_{name}").exists()]
        check(not present, f"no test tools installed ({present or 'none'})")
        index = root / env["INDEX_DIR"].lstrip("/")
        check((index / "CURRENT").is_file(), f"the sample index is built into {env['INDEX_DIR']}")
        owner = os.stat(root / "app/core").st_uid
        check(owner == 0, "the code is owned by root, so the hub's user cannot change it")

        port = free_port()
        run_env = {**env, "PORT": str(port), "HUB_API_KEYS": f"verify:it:{KEY}"}
        web = in_image(root, user, run_env, cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                with contextlib.suppress(OSError):
                    if get(f"{base}/healthz")[0] == 200:
                        break
                if web.poll() is not None:
                    break
                time.sleep(0.1)
            check(web.poll() is None, "the web process starts")
            check(get(f"{base}/healthz") == (200, {"ok": True}), "/healthz answers")
            status, ready = get(f"{base}/readyz")
            check(status == 200, f"/readyz is ready (index loaded): {ready}")
            check(get(f"{base}/ask", body={"question": "VPN"})[0] == 401, "authentication is on")
            status, answer = get(f"{base}/ask", KEY, {"question": "How do I claim travel expenses?"})
            sources = answer.get("sources") or []
            check(status == 200 and bool(sources), f"answers from the image's index ({len(sources)} sources)")
            rss = next(line for line in Path(f"/proc/{web.pid}/status").read_text().splitlines() if "VmRSS" in line)
            print(f"     web process memory after its first answers: {rss.split(':')[1].strip()}")
            probe = in_image(root, user, {**env, "PORT": str(port)}, health[1:] if health[0] == "CMD" else
                             ["/bin/sh", "-c", health[1]])  # fmt: skip
            check(probe.wait(20) == 0, "the HEALTHCHECK command passes inside the image")
        finally:
            stop(web, "the web process")
        output = web.stdout.read() if web.stdout else ""
        check(KEY not in output, "the key never reaches the log")
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        check(any(line.get("logger") == "askhub.query" for line in lines), "query log lines go to stdout as JSON")

        probe_port = free_port()
        worker_env = {**env, "REDIS_URL": args.redis_url, "WORKER_PORT": str(probe_port)}
        worker = in_image(root, user, worker_env, ["python", "-m", "core", "worker"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        ready = False
        assert worker.stdout is not None
        for line in worker.stdout:  # until its "worker ready" line, or until it ends
            ready = '"worker ready"' in line
            if ready:
                break
        check(ready and worker.poll() is None, "the worker command starts, connects to Redis and says it is ready")
        check(get(f"http://127.0.0.1:{probe_port}/readyz")[0] == 200, "the worker's /readyz (WORKER_PORT) is ready")
        stop(worker, "the worker")
    print("image verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
