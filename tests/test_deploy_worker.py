"""A worker serves /healthz, /readyz and /metrics on WORKER_PORT (Kubernetes probes, Prometheus)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import HubProcess, free_port


def test_the_worker_answers_probes_and_still_drains_on_sigterm(
    tmp_path: Path, sample_index: Path, redis_db: str
) -> None:
    port = free_port()
    worker = HubProcess({"INDEX_DIR": str(sample_index), "REDIS_URL": redis_db, "WORKER_PORT": str(port)},
                        tmp_path, ("worker",))  # fmt: skip
    try:
        worker.wait_output('"worker ready"')
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"ok": True}
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert "hub_backend_up 1.0" in httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        worker.stop()
    assert worker.proc.returncode == 0, "SIGTERM still reaches the worker's own handler"
    assert "worker stopping: draining in-flight events" in worker.output.read_text(encoding="utf-8")
