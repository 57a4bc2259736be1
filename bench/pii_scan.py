"""The personal-data scan's cost per KB on adversarial input: the worst case, not the typical one.

    .venv/bin/python bench/pii_scan.py [--kb 1 16 64] [--repeat 5]

Each input is built to make one part of core/pii.py work hardest: digit clusters cut by every
separator, candidates that fail validation at every start (IDs with a wrong checksum, phones a
digit short, Luhn-invalid cards, IBAN heads), "@" and "(at)" everywhere with long local parts and
label chains, hidden characters between all digits, Chinese numerals, full-width forms. For each
input and size it prints has_pii (the routing decision: stops at the first match, so the inputs
hold none) and redact (every match, repeated until none) in ms per KB, best of ``--repeat``, and
the worst of all. Linear means the ms/KB stays flat as the size grows. The time is this process's
CPU time (time.process_time): on a shared machine wall-clock time also counts the wait for a CPU.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.pii import has_pii, json_has_pii, redact

# Each builds about ``n`` characters (ASCII or not: the size is measured in UTF-8 bytes).
INPUTS: dict[str, Callable[[int], str]] = {
    "prose (zh-TW, no PII)": lambda n: ("請問特休怎麼算？2024 年第 3 季有 12 個專案，表單 FIN-07。" * n)[:n],
    "digits, one run": lambda n: "7" * n,
    "digits cut by spaces": lambda n: "7 " * (n // 2),
    "digits cut by every separator": lambda n: ("12.34-56/78 (90) " * n)[:n],
    "groups of 3 (number_run)": lambda n: "123 " * (n // 4),
    "31 groups, then a letter": lambda n: ("0 " * 31 + "x ") * (n // 64),
    "31 groups of 09, then a letter": lambda n: ("09 " * 31 + "x ") * (n // 95),
    "phones a digit short": lambda n: "0912-345-67 x " * (n // 14),
    "886 country codes": lambda n: "+886 9 1 x " * (n // 11),
    "IDs, wrong checksum": lambda n: "A123456788 " * (n // 11),
    "ID letters then digits": lambda n: "AB1 " * (n // 4),
    "cards, Luhn-invalid": lambda n: "4111 1111 1111 1112 x " * (n // 22),
    "card-length runs": lambda n: "4111111111111112111 x " * (n // 22),
    "IBAN heads": lambda n: "GB82 WEST 1234 5698 7654 33 " * (n // 28),
    "lower-case IBAN heads": lambda n: "gb82west1234 " * (n // 13),
    "IPv4-like": lambda n: "10.1.1.1." * (n // 9),
    "IPv4, one octet over": lambda n: "8.8.8.256 x " * (n // 12),
    "passport words": lambda n: "passport 12345 護照 " * (n // 19),
    "@ alone": lambda n: "@" * n,
    "@ after long local parts": lambda n: ("a" * 63 + "@") * (n // 64),
    "@ then label chains": lambda n: ("x@" + "a." * 30 + " ") * (n // 63),
    "@ then CJK label chains": lambda n: ("x@" + "例子網站." * 12 + "1 ") * (n // 184),
    "@ then long labels, no TLD": lambda n: ("x@" + "a" * 60 + "." + "b" * 60 + ".1 ") * (n // 126),
    "(at) everywhere": lambda n: "a (at) b [dot] " * (n // 15),
    "spaces around @": lambda n: "a   @   " * (n // 8),
    "Chinese local parts": lambda n: ("王" * 70 + "@例子") * (n // 216),
    "zero-width between digits": lambda n: "0\u200b" * (n // 4),
    "keycaps": lambda n: "0\ufe0f\u20e3" * (n // 7),
    "Chinese numerals": lambda n: "零九一二三四五六七" * (n // 27),
    "full-width digits and dashes": lambda n: "０９１２－３４５－６７ " * (n // 34),
}


def per_kb(scan: Callable[[str], object], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        scan(text)
        best = min(best, time.process_time() - started)
    return best * 1000 / (len(text.encode()) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    worst = (0.0, "")
    print(f"{'input':34} {'KB':>4} {'has_pii ms/KB':>14} {'redact ms/KB':>13}")
    for name, build in INPUTS.items():
        for kb in args.kb:
            text = build(kb * 1024)
            fast, full = per_kb(has_pii, text, args.repeat), per_kb(redact, text, args.repeat)
            print(f"{name:34} {kb:>4} {fast:>14.3f} {full:>13.3f}")
            worst = max(worst, (max(fast, full), f"{name}, {kb} KB"))
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {str(i): i * 7919 for i in range(20000)}}
    size = len(str(body).encode()) / 1024
    spent = per_kb(lambda _text: json_has_pii(body), "x" * int(size * 1024), args.repeat)
    print(f"{'JSON body of 20,000 numbers':34} {size:>4.0f} {spent:>14.3f}")
    print(f"worst: {worst[0]:.3f} ms/KB ({worst[1]}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
