"""The log writer against the standard library's QueueHandler + QueueListener: CPU per query line.

    .venv/bin/python bench/log_writer.py

100,000 query lines to a file and a null stdout, JSON, each way; the caller's cost (what a request
pays) and the whole CPU (the writer thread too).
"""

import logging
import logging.handlers
import os
import queue
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import orjson

from core import logs
from core.config import load_settings

N = 100_000
fields = {
    "request_id": "a" * 32,
    "tenant": "hr",
    "client": "portal",
    "question": "How do I claim travel expenses?",
    "model": "extractive",
    "latency_ms": 3.2,
    "cached": True,
}
tmp = tempfile.mkdtemp()
devnull = open(os.devnull, "w")  # noqa: SIM115 - the writers hold it to the end


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# current writer
sys.stdout = devnull
s = load_settings({"LOG_FILE": f"{tmp}/a.log", "LOG_FORMAT": "json", "KB_DIR": "data/kb"})
logs.setup(s)
c0, t0 = cpu(), time.perf_counter()
for _ in range(N):
    logs.query(fields)
t_put = time.perf_counter() - t0
logs.flush()
c1, t1 = cpu(), time.perf_counter()
logs._stop()
sys.stdout = sys.__stdout__
print(
    f"current writer: caller {t_put / N * 1e6:.2f} us/line, total CPU {(c1 - c0) / N * 1e6:.2f} us/line, drained in {t1 - t0:.2f}s"
)


# QueueHandler / QueueListener
class JSONFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "ts": logs._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in logs._STANDARD})
        return orjson.dumps(line, default=str).decode()


q = queue.SimpleQueue()
stream = logging.StreamHandler(devnull)
fileh = logging.handlers.RotatingFileHandler(f"{tmp}/b.log", maxBytes=20 * 1024 * 1024, backupCount=5)
for h in (stream, fileh):
    h.setFormatter(JSONFormatter())
listener = logging.handlers.QueueListener(q, stream, fileh)
log = logging.getLogger("askhub.bench")
log.handlers[:] = [logging.handlers.QueueHandler(q)]
log.propagate = False
log.setLevel(logging.INFO)
listener.start()
c0, t0 = cpu(), time.perf_counter()
for _ in range(N):
    log.info("ask", extra=fields)
t_put = time.perf_counter() - t0
listener.stop()
c1, t1 = cpu(), time.perf_counter()
print(
    f"QueueHandler/QueueListener: caller {t_put / N * 1e6:.2f} us/line, total CPU {(c1 - c0) / N * 1e6:.2f} us/line, drained in {t1 - t0:.2f}s"
)
