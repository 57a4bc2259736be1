"""Personal data (PII) in questions: find it, name its kind, redact it.

Why: a question carrying personal data is answered by the local model only, and raw personal data
must never reach a log line. A false alarm costs too (an ordinary question goes to the slower local
model), so every number-shaped kind is validated (checksum, Luhn, mod-97, numbering plan), never
matched on its shape alone. Dates, times, money, years, versions, form numbers (FIN-07,
IT-2024-0012), extensions alone ("ext. 5000", "分機 5999") and ordinary numbers stay unmatched.

Kinds, with their placeholders (PLACEHOLDERS):

email        [EMAIL]     an e-mail address
phone        [PHONE]     Taiwan mobile (09xx-xxx-xxx, +886 9xx ...), landline by area code and
                         its local length ((02) 2345-6789, 037-123456, 049-2345678 ...), 0800/0809;
                         +CC international numbers; North American (NPA) NXX-XXXX. An extension
                         after the number ("#123", "ext. 123", "分機 123", "轉123") is part of it.
tw_id        [TW_ID]     national ID: letter + 1/2 + 8 digits, official checksum
tw_arc       [TW_ARC]    resident certificate (ARC/UI): old format, two letters + 8 digits; the
                         2021 format, letter + 8/9 + 8 digits (the national ID's checksum)
credit_card  [CARD]      13-19 digits, grouped by spaces or dashes or not, a card network's prefix
                         and length, Luhn-valid
iban         [IBAN]      a known country's IBAN of the right length, mod-97 check
ip_address   [IP]        a public IPv4 address; private, loopback and documentation ranges, public
                         DNS resolvers and version-like numbers are ordinary IT questions
passport     [PASSPORT]  6-9 digits (maybe 1-2 letters first) right after "passport" or "護照":
                         without that word the shape is too common
number_run   [NUMBERS]   a run of more than MAX_GROUPS separated numbers: too long to take apart
                         cheaply, and it may hide any of the above, so it counts as personal data

Spellings that hide a value do not (issue #26 lists the ones that used to):

- invisible characters are removed before detection: format characters (Unicode Cf: zero-width
  space, soft hyphen, bidi marks), combining and enclosing marks (Mn, Me: variation selectors,
  the keycap of "0️⃣") and control characters;
- token characters are folded to ASCII one-to-one: full-width forms (０９１２－３４５－６７８, ＠,
  from NFKC), the digits of every script (Arabic-Indic, Devanagari, mathematical …), Chinese
  numerals (零一二三四五六七八九, 〇, 幺 for "one" read aloud, and the financial 壹貳參肆伍陸柒捌玖;
  never 十百千, which are multipliers: "二〇二四年十二月" stays a date), line breaks, tabs and rare
  spaces as a space, the ideographic full stop 。 as a dot;
- the separators people type inside numbers (spaces, dots, dashes, slashes) are accepted;
- e-mails are found from each "@" — also written "(at)", "[at]", "{at}", "<at>", with spaces
  around it ("name @ example.com") — with a local part of any script ("王小明@…") and a domain of
  any script, an IDN or punycode top-level domain, its dots also written "(dot)", "[dot]", "[.]"
  or "。". Not "name at example dot com" in plain words: "meet at the lobby dot" would be one.
  A local part is at most 64 characters: of a longer run before the "@", the last 64 are redacted.

Matches are found in that normalised copy and mapped back to the original's offsets, so redact
removes the hidden characters with the value. In a JSON body (json_strings, scan_json) every
value counts: strings, object keys and numbers, as their decimal text.

Validation uses the libraries made for it where they know more than a table here: python-stdnum
for IBAN (each country's account format, not only its length) and the Luhn check, phonenumbers for
international numbers outside the calling codes this module knows exactly. The Taiwan national ID,
resident certificates and Taiwan numbering plan stay hand-written: no library checks them.

Cost is linear in the text: candidates are tried only where a cluster of digits (or an "@")
makes a kind possible, and each try is bounded in length (bench/pii_scan.py measures the worst
case on adversarial input; docs/security.md has the figure).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "tw_id": "[TW_ID]",
    "tw_arc": "[TW_ARC]",
    "credit_card": "[CARD]",
    "iban": "[IBAN]",
    "ip_address": "[IP]",
    "passport": "[PASSPORT]",
    "number_run": "[NUMBERS]",
}
MAX_GROUPS = 32  # digit groups in one run of numbers; no personal data needs more than nine


@dataclass(frozen=True, slots=True)
class PIIMatch:
    """One piece of personal data: its kind (a key of PLACEHOLDERS) and its span in the text."""

    kind: str
    start: int
    end: int


# --- full-width folding ---------------------------------------------------------------------------

_HYPHENS = "\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d"


# Digits people type in Chinese: 零九一二… (and 〇, 幺 as "one" read aloud in phone numbers), and
# the financial forms 壹貳參… that cheques and banks use. 十百千 are multipliers, never digits.
CHINESE_DIGITS = {"〇": 0, "零": 0, "一": 1, "幺": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
                  "九": 9, "壹": 1, "貳": 2, "贰": 2, "參": 3, "叁": 3, "肆": 4, "伍": 5, "陸": 6, "陆": 6,
                  "柒": 7, "捌": 8, "玖": 9}  # fmt: skip
# Line breaks, tabs and the rarer spaces separate digit groups like a space does.
_SPACES = "\t\n\v\f\r\x1c\x1d\x1e\x85\u1680\u2028\u2029\u202f\u205f"
# The ideographic full stop is the dot a Chinese input method types ("example。com", "0912。345。678").
_DOTS = "\u3002\uff61"


def _fold_table() -> dict[int, int]:
    """Characters that can sit inside a PII token, mapped one-to-one to an ASCII character: their
    NFKC form (full-width forms), a digit of any script (Arabic-Indic, Devanagari, mathematical,
    superscript, circled …, and the Chinese numerals above), a space or a dot.

    Only token characters are folded (not "，" or "？"). One-to-one keeps offsets: a match in the
    folded copy is a match at the same place in the original.
    """
    wanted = set("0123456789@+-.()#_%:/ []{}<>") | set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    table: dict[int, int] = {}
    for cp in [0xA0, 0x3000, *range(0x2000, 0x200B), *range(0xFE50, 0xFE70), *range(0xFF01, 0xFF5F)]:
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1 and folded in wanted:
            table[cp] = ord(folded)
    for cp in range(0x80, 0x110000):
        digit = unicodedata.digit(chr(cp), None)
        if digit is not None:
            table[cp] = ord("0") + digit
    for ch, digit in CHINESE_DIGITS.items():
        table[ord(ch)] = ord("0") + digit
    for ch in _HYPHENS:
        table[ord(ch)] = ord("-")
    for ch in _SPACES:
        table[ord(ch)] = ord(" ")
    for ch in _DOTS:
        table[ord(ch)] = ord(".")
    return table


def _char_class(code_points: Iterable[int]) -> re.Pattern[str]:
    """A character class of these code points, written as ranges: a class of thousands of single
    characters costs a regex search about 1 µs per character, ranges a sixth of that."""
    ranges: list[list[int]] = []
    for cp in sorted(set(code_points)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}]")


_FOLD = _fold_table()
_FOLDABLE = _char_class(_FOLD)
# Every number-shaped kind needs a digit; e-mails need an "@" or a written-out "(at)".
_DIGIT = re.compile("[0-9]")
_AT_WORD = re.compile(r"[(\[{<][ ]{0,3}at[ ]{0,3}[)\]}>]", re.I)


def _hidden_chars() -> str:
    """Characters that change nothing a reader sees between two digits: every format character
    (Cf: zero-width space, soft hyphen, bidi marks), combining and enclosing marks (Mn, Me:
    variation selectors, the combining grapheme joiner, the keycap in "0️⃣") and the control
    characters that are not line breaks or tabs (Cc)."""
    hidden = []
    for cp in range(0x110000):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category in ("Cf", "Mn", "Me") or (category == "Cc" and ch not in _SPACES and ch not in "\t\n\r"):
            hidden.append(ch)
    return "".join(hidden)


_HIDDEN = _char_class(map(ord, _hidden_chars()))
_ASCII_HIDDEN = _char_class(cp for cp in range(128) if _HIDDEN.match(chr(cp)))
_ASCII_SPACES = re.compile("[" + re.escape("".join(ch for ch in _SPACES if ch.isascii())) + "]")


def _fold(text: str) -> str:
    """Same length as text, token characters made ASCII."""
    if text.isascii():
        return text.translate(_FOLD) if _ASCII_SPACES.search(text) else text
    return text.translate(_FOLD) if _FOLDABLE.search(text) else text


def _normalise(text: str) -> tuple[str, list[int] | None]:
    """The copy detection reads: hidden characters removed, token characters folded. With
    characters removed, also each copy position's offset in text (and one past the end)."""
    if not (_ASCII_HIDDEN if text.isascii() else _HIDDEN).search(text):
        return _fold(text), None
    kept = [i for i, ch in enumerate(text) if not _HIDDEN.match(ch)]
    origin = [*kept, len(text)]
    return _fold("".join(text[i] for i in kept)), origin


# --- validators -----------------------------------------------------------------------------------

# Official letter codes 10..35 of the national ID, in code order: note I=34, O=35, W=32, Z=33.
_ID_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
_LETTER_CODE = {letter: 10 + i for i, letter in enumerate(_ID_LETTERS)}
_ID_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)


def _tw_checksum_ok(letter: str, digits: str) -> bool:
    """The national ID checksum over the letter's two digits and the nine that follow."""
    code = _LETTER_CODE[letter]
    values = (code // 10, code % 10, *map(int, digits))
    return sum(w * v for w, v in zip(_ID_WEIGHTS, values, strict=True)) % 10 == 0


def tw_id_kind(token: str) -> str | None:
    """'tw_id' or 'tw_arc' when token is a valid national ID or resident certificate number."""
    if len(token) != 10:
        return None
    token = token.upper()
    first, second, rest = token[0], token[1], token[2:]
    if first not in _LETTER_CODE or not rest.isdigit() or not rest.isascii():
        return None
    if second in "12":
        return "tw_id" if _tw_checksum_ok(first, token[1:]) else None
    if second in "89":  # the 2021 unified format: same checksum as the national ID
        return "tw_arc" if _tw_checksum_ok(first, token[1:]) else None
    if second in "ABCD":  # the old format: the second letter counts as its code's last digit
        return "tw_arc" if _tw_checksum_ok(first, str(_LETTER_CODE[second] % 10) + rest) else None
    return None


def luhn_ok(digits: str) -> bool:
    return bool(stdnum_luhn.is_valid(digits))


def _card_network_ok(d: str) -> bool:
    """A known network's prefix and length: a Luhn check alone passes one random number in ten."""
    n, two, three, four = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if two in (36, 38, 39) or 300 <= three <= 305:
        return 14 <= n <= 16  # Diners Club
    if two in (35, 62, 64, 65) or four == 6011:
        return 16 <= n <= 19  # JCB, UnionPay, Discover
    return False


_IBAN_LETTERS = {ord(ch): str(int(ch, 36)) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


def _mod97_ok(compact: str) -> bool:
    """The IBAN check digits alone: a cheap filter, so python-stdnum's full check (country format
    and all) runs only for the one candidate in 97 that passes it."""
    digits = (compact[4:] + compact[:4]).translate(_IBAN_LETTERS)
    return digits.isdigit() and digits.isascii() and int(digits) % 97 == 1


def iban_ok(compact: str) -> bool:
    """Country, length, the country's account format and the mod-97 check (python-stdnum)."""
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and _mod97_ok(compact)):
        return False
    return bool(stdnum_iban.is_valid(compact))


# Taiwan area codes -> allowed lengths of the local number (without the trunk 0).
_TW_AREAS = {
    "2": (8,),
    "3": (7,),
    "37": (6,),
    "4": (7, 8),
    "49": (7,),
    "5": (7,),
    "6": (7,),
    "7": (7,),
    "8": (7,),
    "89": (6,),
    "82": (6,),
    "826": (5,),
    "836": (5,),
}
_TW_AREAS_LONGEST_FIRST = sorted(_TW_AREAS, key=len, reverse=True)


def _tw_national_ok(national: str) -> bool:
    """A Taiwan number without its trunk 0: mobile 9 + 8 digits, 800/809 + 6, or area + local."""
    if national[:1] == "9":
        return len(national) == 9
    if national[:3] in ("800", "809"):
        return len(national) == 9
    for area in _TW_AREAS_LONGEST_FIRST:
        if national.startswith(area):
            local = national[len(area) :]
            return len(local) in _TW_AREAS[area] and local[0] != "0"
    return False


def _nanp_ok(national: str) -> bool:
    return len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"


# ITU country calling codes are prefix-free: 1 and 7 take one digit, these two, the rest three.
_CC2_SPEC = (
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98"
)
_CC2 = set(_CC2_SPEC.split())
# National number lengths of the calling codes a Taiwanese company dials most; others: 7-12.
_NATIONAL_LENGTHS = {
    "1": (10, 10),
    "44": (9, 10),
    "81": (9, 10),
    "86": (10, 11),
    "852": (8, 8),
    "853": (8, 8),
    "65": (8, 8),
    "60": (8, 10),
    "61": (9, 9),
    "63": (9, 10),
    "66": (8, 9),
    "84": (9, 10),
    "82": (8, 10),
    "49": (7, 12),
    "33": (9, 9),
}


def _international_ok(digits: str) -> bool:
    """digits: the country code and the national number, a written '(0)' trunk left out."""
    if len(digits) > 15:
        return False
    if digits[0] in "17":
        cc = digits[0]
    elif digits[:2] in _CC2:
        cc = digits[:2]
    else:
        cc = digits[:3]
    national = digits[len(cc) :]
    if cc == "886":
        return _tw_national_ok(national.removeprefix("0"))
    if cc == "1":
        return _nanp_ok(national)
    if cc in _NATIONAL_LENGTHS:
        low, high = _NATIONAL_LENGTHS[cc]
        return low <= len(national) <= high
    # Elsewhere the numbering plans are phonenumbers' (libphonenumber's metadata).
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


def _domestic_ok(digits: str, groups: list[str]) -> bool:
    if digits.startswith("886") and _international_ok(digits):  # "886 912 345 678": the + left out
        return True
    if digits[0] == "0":
        return len(digits) in (9, 10) and _tw_national_ok(digits[1:])
    # North American numbers only when written with the usual 3-3-4 grouping.
    return [len(g) for g in groups] == [3, 3, 4] and _nanp_ok(digits)


# --- candidate patterns ---------------------------------------------------------------------------

# E-mail: found from each "@" (or "(at)", "[at]", "{at}", "<at>"; spaces around it allowed), the
# local part read backwards from there (at most 64 characters of any script: "王小明@…"), the
# domain forwards (labels of any script, dots also written "(dot)", "[.]" or "。"; an ASCII, IDN or
# punycode top-level domain). Bounded windows around each "@": linear in the text.
_AT = re.compile(r"(?<=[\w.%+\-' ])(?:@|[(\[{<][ ]{0,3}(?:at|@)[ ]{0,3}[)\]}>])", re.I)  # after a local part or a space
_LOCAL_CHARS = frozenset(".%+-_'")
MAX_LOCAL = 64
_DOT = r"(?:\.|[ ]{0,3}[(\[{<][ ]{0,3}(?:dot|\.)[ ]{0,3}[)\]}>][ ]{0,3})"
_ASCII_TLD = r"(?:xn--[A-Za-z0-9\-]{1,59}|[A-Za-z]{2,24})(?![A-Za-z0-9\-])"
# Top-level domains in other scripts that people in the region write: a known one is taken exactly
# ("例子.台灣謝謝" ends at 台灣), so a sentence after "example.com。" is never read as one.
IDN_TLDS = ("台灣", "台湾", "中國", "中国", "香港", "澳門", "澳门", "新加坡", "公司", "網絡", "网络", "网址", "网站",
            "在线", "中文网", "商城", "集团", "移动", "手机", "政务", "公益", "日本", "みんな", "コム", "한국",
            "рф", "укр", "срб", "бел", "қаз")  # fmt: skip
_LABEL = r"[^\W_](?:[\w\-]{0,61}[^\W_])?"
_KNOWN_TLD = "|".join(sorted(map(re.escape, IDN_TLDS), key=len, reverse=True))
# A known top-level domain first; else any run of letters of another script (an IDN not listed).
_DOMAINS = (
    re.compile(rf"[ ]{{0,3}}(?:{_LABEL}{_DOT}){{1,10}}(?:{_ASCII_TLD}|{_KNOWN_TLD})", re.I),
    re.compile(rf"[ ]{{0,3}}(?:{_LABEL}{_DOT}){{1,10}}[^\W\d_A-Za-z]{{2,24}}", re.I),
)


def _local_start(folded: str, at: int) -> int | None:
    """Where the local part before ``at`` begins (spaces before the "@" skipped), or None."""
    end = at
    while end > 0 and at - end < 3 and folded[end - 1] == " ":
        end -= 1
    start = end
    while start > 0 and end - start < MAX_LOCAL and (folded[start - 1].isalnum() or folded[start - 1] in _LOCAL_CHARS):
        start -= 1
    while start < end and folded[start] in ".'-":
        start += 1
    return start if start < end else None


def _emails(folded: str) -> Iterator[PIIMatch]:
    covered = 0
    for at in _AT.finditer(folded):
        if at.start() < covered:
            continue
        start = _local_start(folded, at.start())
        domain = next((m for d in _DOMAINS if start is not None and (m := d.match(folded, at.end()))), None)
        if start is not None and domain is not None and start >= covered:
            covered = domain.end()
            yield PIIMatch("email", start, domain.end())


_PHONE = re.compile(
    r"""(?:(?<![0-9A-Za-z+])|(?=[(+])(?<![0-9]))   # "(" and "+" may follow a word: TEL(02)...
    (?P<num>
      (?:\+[ ]?[1-9][0-9]{0,2}(?:[ .\-/]?\((?P<trunk>0)\))?[ .\-/]?)?  # +CC, maybe (0)
      (?:\([0-9]{1,4}\)[ ]?)?                                          # (02)
      [0-9]{1,12}(?:[ .\-/][0-9]{1,12}){0,5}                            # digit groups
    )
    (?P<ext>[ ]*(?:\#|ext\.?|x|分機|轉)[ ]*:?[ ]*[0-9]{1,6})?
    (?![0-9])""",
    re.X | re.I,
)
_DIGIT_GROUP = re.compile(r"[0-9]+")
# An ID may be typed in groups: "A 123 456 789", "A123-456-789".
_TW_ID = re.compile(r"(?<![0-9A-Za-z])[A-Za-z][ .\-/]?[1289A-Da-d](?:[ .\-/]?[0-9]){8}(?![0-9A-Za-z])")
_ID_SEPARATORS = str.maketrans("", "", " .-/")
_CARD = re.compile(r"(?<![0-9A-Za-z+.,\-/])[0-9](?:[0-9]|[ \-./](?=[0-9])){12,22}(?![0-9])")
_IBAN = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}[0-9]{2}(?:[ .\-/]?[A-Za-z0-9]){11,30}(?![0-9A-Za-z])")
_IBAN_HEAD = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}[0-9]{2}")  # an IBAN also has a cluster of 10+ digits; any case
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
_PASSPORT = re.compile(
    r"(?:passport|護照|护照)(?:[ ]*(?:no\.?|number|num\.?|\#|號碼|号码|號))?[ ]*[:=]?[ ]*"
    r"(?P<num>[A-Za-z]{0,2}[0-9]{6,9})(?![0-9A-Za-z])",
    re.I,
)


def _groups(candidate: str, offset: int) -> list[tuple[int, int]]:
    """Spans of the digit-and-letter groups in a candidate, as absolute offsets."""
    return [(m.start() + offset, m.end() + offset) for m in re.finditer(r"[0-9A-Za-z]+", candidate)]


def _phone_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The longest valid phone number the candidate starts with (trailing groups may be other numbers)."""
    text, start, num_end = m.string, m.start(), m.end("num")
    groups = _DIGIT_GROUP.findall(text, start, num_end)
    if m.group("trunk"):
        del groups[1]  # the "(0)" after the country code is not dialled from abroad
    international = text[start] == "+"
    for k in range(len(groups), 0, -1):
        used = groups[:k]
        digits = "".join(used)
        if len(digits) < 8:
            return None
        if min(map(len, used[2 if international else 0 :] or ["00"])) < 2:
            continue
        if _international_ok(digits) if international else _domestic_ok(digits, used):
            if k == len(groups):
                return start, m.end() if m.group("ext") else num_end
            return start, list(_DIGIT_GROUP.finditer(text, start, num_end))[k - 1 - len(groups)].end()
    return None


def _card_span(m: re.Match[str]) -> tuple[int, int] | None:
    """The longest card number the candidate starts with: one group of 13-19 digits, or groups
    (the first of at least 4 digits, every one of at least 3) with one kind of separator."""
    text = m.group()
    seps = set(re.findall(r"[ \-./]", text))
    if len(seps) > 1:
        return None
    spans = _groups(text, m.start())
    lengths = [b - a for a, b in spans]
    usable = 1  # how many leading groups may form a grouped number (found once: linear, not per k)
    if lengths[0] >= 4:
        while usable < len(lengths) and lengths[usable] >= 3:
            usable += 1
    compact = "".join(m.string[a:b] for a, b in spans[:usable])
    total = len(compact)
    for k in range(usable, 0, -1):
        digits = compact[:total]
        if 13 <= total <= 19 and _card_network_ok(digits) and luhn_ok(digits):
            return spans[0][0], spans[k - 1][1]
        total -= lengths[k - 1]
    return None


def _iban_span(m: re.Match[str]) -> tuple[int, int] | None:
    spans = _groups(m.group(), m.start())
    compact = "".join(m.string[a:b] for a, b in spans)
    length = len(compact)
    for k in range(len(spans), 0, -1):  # the longest IBAN the candidate starts with
        if 15 <= length <= 34 and iban_ok(compact[:length]):
            return spans[0][0], spans[k - 1][1]
        length -= spans[k - 1][1] - spans[k - 1][0]
    return None


# Public resolvers people ask about ("can't reach 8.8.8.8"): services, not persons.
_SERVICE_IPS_SPEC = (
    "1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4 9.9.9.9 149.112.112.112 208.67.222.222 208.67.220.220 "
    "168.95.1.1 168.95.192.1 101.101.101.101 101.102.103.104"
)
_SERVICE_IPS = frozenset(_SERVICE_IPS_SPEC.split())


# Four-part version numbers look like addresses: "version 1.2.3.4", "升級到 2.5.1.0 版".
_VERSION_BEFORE = re.compile(r"(?:version|ver\.?|release|build|版本|版)[ ]*[:=]?[ ]*$", re.I)


def _looks_like_version(m: re.Match[str]) -> bool:
    text = m.string
    after = text[m.end() : m.end() + 3].strip()
    return bool(_VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start())) or after.startswith("版")


def _ipv4_span(m: re.Match[str]) -> tuple[int, int] | None:
    if m.group() in _SERVICE_IPS or _looks_like_version(m):
        return None
    try:
        address = ipaddress.IPv4Address(m.group())
    except ValueError:  # an octet over 255 or with a leading zero
        return None
    return m.span() if address.is_global else None


def _passport_span(m: re.Match[str]) -> tuple[int, int] | None:
    number = m.group("num")
    if len(number) == 8 and number.isdigit() and _looks_like_date(number):
        return None
    return m.span("num")


def _looks_like_date(digits: str) -> bool:
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    return 1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31


def _whole(m: re.Match[str]) -> tuple[int, int] | None:
    return m.span()


# --- where to look --------------------------------------------------------------------------------
# Every number-shaped kind starts in a cluster: a digit followed by digits and the separators found
# inside numbers. Patterns are only tried (anchored) where a cluster makes them possible, so a question
# with a year or a form number costs one cluster scan, not a search per kind.

_CLUSTER = re.compile(r"[0-9](?:[ .()\-/]*[0-9]){3}[0-9 .()\-/]*")  # fewer than 4 digits: no PII
_Cluster = tuple[int, int, int, int]  # start, end, digits in it, dots in it
_Starts = Callable[[str, list[_Cluster]], list[int]]


def _clusters(folded: str) -> list[_Cluster]:
    found = []
    for m in _CLUSTER.finditer(folded):
        chunk = m.group()
        dots = chunk.count(".")
        seps = chunk.count(" ") + dots + chunk.count("-") + chunk.count("(") + chunk.count(")") + chunk.count("/")
        found.append((m.start(), m.end(), len(chunk) - seps, dots))
    return found


def _group_spans(folded: str, cluster: _Cluster, min_digits: int) -> Iterator[tuple[int, int]]:
    """Spans of the digit groups with at least min_digits digits from there to the cluster's end."""
    start, end, digits, _dots = cluster
    for group in _DIGIT_GROUP.finditer(folded, start, end):
        if digits < min_digits:
            return
        yield group.span()
        digits -= group.end() - group.start()


def _group_starts(folded: str, cluster: _Cluster, min_digits: int) -> Iterator[int]:
    return (a for a, _b in _group_spans(folded, cluster, min_digits))


def _phone_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    """Groups that can begin a phone number: a +country code, an (area), a trunk 0 or a country
    code typed without its + (two digits or more: "0 9 1 2 ..." is no number), a NANP area."""
    starts = []
    for cluster in clusters:
        if cluster[2] >= 8:
            for pos, end in _group_spans(folded, cluster, 8):
                if pos and folded[pos - 1] in "+(":
                    starts.append(pos - 1)
                    continue
                trunk_or_code = (folded[pos] == "0" or folded.startswith("886", pos)) and end - pos >= 2
                nanp_area = end - pos == 3 and folded[end : end + 1] in ("-", " ", ".", "/")
                if trunk_or_code or nanp_area:
                    starts.append(pos)
    return starts


def _card_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    """Groups of 4 digits or more: a card number's first group has at least 4 (or all 13-19)."""
    return [a for cluster in clusters if cluster[2] >= 13 for a, b in _group_spans(folded, cluster, 13) if b - a >= 4]


def _id_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    """An ID's digits follow one letter (national ID, new ARC) or two (old ARC), maybe with a
    separator after the first letter ("A 123 456 789")."""
    starts = []
    for start, _end, digits, _dots in clusters:
        if digits >= 8:
            for back in (1, 2, 3):
                pos = start - back
                if pos >= 0 and folded[pos].isascii() and folded[pos].isalpha():
                    starts.append(pos)
    return sorted(set(starts))


def _iban_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    """Every IBAN has a cluster of 10 or more digits (its account number)."""
    if any(cluster[2] >= 10 for cluster in clusters):
        return [m.start() for m in _IBAN_HEAD.finditer(folded)]
    return []


def _ip_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    return [
        pos
        for cluster in clusters
        if cluster[3] >= 3
        for pos in _group_starts(folded, cluster, 4)
        if pos == 0 or folded[pos - 1] != "."
    ]


def _passport_starts(folded: str, clusters: list[_Cluster]) -> list[int]:
    if any(cluster[2] >= 6 for cluster in clusters) and (
        "護照" in folded or "护照" in folded or "passport" in folded.lower()
    ):
        return [m.start() for m in _PASSPORT.finditer(folded)]
    return []


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str | None  # None: the validator decides (national ID or resident certificate)
    pattern: re.Pattern[str]
    span: Callable[[re.Match[str]], tuple[int, int] | None]
    starts: _Starts
    min_digits: int  # none of its matches has a cluster with fewer digits (0: not cluster-bound)


# Order matters only for has_pii's speed (cheapest and commonest first) and for ties in find_pii.
_DETECTORS = (
    _Detector(None, _TW_ID, _whole, _id_starts, 8),
    _Detector("phone", _PHONE, _phone_span, _phone_starts, 8),
    _Detector("credit_card", _CARD, _card_span, _card_starts, 13),
    _Detector("iban", _IBAN, _iban_span, _iban_starts, 10),
    _Detector("ip_address", _IPV4, _ipv4_span, _ip_starts, 4),
    _Detector("passport", _PASSPORT, _passport_span, _passport_starts, 6),
)
_PRIORITY = {kind: i for i, kind in enumerate(PLACEHOLDERS)}


def _scan(folded: str, starts: list[int], detector: _Detector) -> Iterator[PIIMatch]:
    """Validated matches of one detector, tried at each possible start: a valid number right
    behind a rejected longer candidate is still found."""
    covered = 0
    for pos in starts:
        if pos < covered or (m := detector.pattern.match(folded, pos)) is None:
            continue
        span = detector.span(m)
        if span is None:
            continue
        kind = detector.kind or tw_id_kind(folded[span[0] : span[1]].translate(_ID_SEPARATORS))
        if kind is not None:
            covered = span[1]
            yield PIIMatch(kind, span[0], span[1])


def _runs(folded: str, clusters: list[_Cluster]) -> tuple[list[_Cluster], list[PIIMatch]]:
    """Clusters split into those worth taking apart and overlong runs of numbers (whole matches)."""
    kept: list[_Cluster] = []
    runs: list[PIIMatch] = []
    for cluster in clusters:
        start, end, digits, _dots = cluster
        if digits > MAX_GROUPS and len(_DIGIT_GROUP.findall(folded, start, end)) > MAX_GROUPS:
            runs.append(PIIMatch("number_run", start, len(folded[start:end].rstrip(" .()-/")) + start))
        else:
            kept.append(cluster)
    return kept, runs


def _candidates(text: str) -> Iterator[PIIMatch]:
    folded, origin = _normalise(text)
    mail = "@" in folded or _AT_WORD.search(folded) is not None
    if not mail and not _DIGIT.search(folded):
        return
    clusters, runs = _runs(folded, _clusters(folded))
    most = max((cluster[2] for cluster in clusters), default=0)
    found = _chain(_emails(folded) if mail else iter(()), iter(runs))
    if most:
        found = _chain(found, (m for d in _DETECTORS if most >= d.min_digits and (starts := d.starts(folded, clusters))
                               for m in _scan(folded, starts, d)))  # fmt: skip
    for match in found:
        # Hidden characters right after a match go with it (the keycap mark after a digit).
        yield match if origin is None else PIIMatch(match.kind, origin[match.start], origin[match.end])


def _chain(first: Iterable[PIIMatch], rest: Iterable[PIIMatch]) -> Iterator[PIIMatch]:
    yield from first
    yield from rest


# --- public API -----------------------------------------------------------------------------------


def find_pii(text: str) -> list[PIIMatch]:
    """Sorted, non-overlapping matches. Overlapping ones are merged into one span (the longer one's
    kind), so redacting never leaves a piece of either."""
    found = sorted(_candidates(text), key=lambda p: (p.start, -(p.end - p.start), _PRIORITY[p.kind]))
    kept: list[PIIMatch] = []
    for match in found:
        if kept and match.start < kept[-1].end:
            if match.end > kept[-1].end:
                last = kept[-1]
                longer = last if last.end - last.start >= match.end - match.start else match
                kept[-1] = PIIMatch(longer.kind, last.start, match.end)
            continue
        kept.append(match)
    return kept


def has_pii(text: str) -> bool:
    """The routing decision: stops at the first valid match."""
    return next(_candidates(text), None) is not None


def redact(text: str) -> str:
    """text with each match replaced by its kind's placeholder: safe to log.

    Repeated until nothing is found: removing a match can expose a neighbour glued to it
    ("0912345678A123456789") that was no match on its own. Each round removes digits or an "@" and
    adds none, so it ends."""
    while matches := find_pii(text):
        pieces: list[str] = []
        last = 0
        for match in matches:
            pieces.append(text[last : match.start])
            pieces.append(PLACEHOLDERS[match.kind])
            last = match.end
        pieces.append(text[last:])
        text = "".join(pieces)
    return text


def number_text(value: int | float) -> str:
    """A JSON number as the digits a person would read in it: 4111111111111111 and
    4111111111111111.0 (or 4.111111111111111e15) are the same card number."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def json_strings(value: Any) -> Iterator[tuple[str, str]]:
    """Every value in a JSON value as text, with its path ("messages.0.name"): strings, object
    keys, and numbers as their decimal text (``{"card": 4111111111111111}`` is a card number), so
    personal data has nowhere to hide in a request body. Booleans and null hold none.
    Iterative: deep nesting is no recursion error."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            yield where, number_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                at = f"{where}.{key}" if where else str(key)
                yield at, str(key)
                stack.append((child, at))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}.{i}") for i, child in enumerate(item))


# Between two values of a body: no separator of numbers (a space, dot, dash or slash) and no part
# of an e-mail, so two values never join into one false match ("0912" and "345678").
VALUE_BREAK = "\n|\n"


def json_values(value: Any) -> Iterator[str]:
    """json_strings without the paths: a body of a million numbers builds no million path strings."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            yield number_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                yield str(key)
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def json_text(value: Any) -> str:
    """Every value of a JSON body (strings, keys, numbers), as one text to scan."""
    return VALUE_BREAK.join(json_values(value))


def json_has_pii(value: Any) -> bool:
    """Personal data anywhere in a JSON value: any string, key or number, at any depth."""
    return has_pii(json_text(value))


async def scan_json(value: Any) -> bool:
    """json_has_pii for a request body (/v1/chat/completions, /v1/responses, /v1/embeddings):
    the one check every /v1 door makes; a long body is read on a worker thread."""
    return await contains_pii(json_text(value))


SCAN_INLINE_CHARS = 4096  # longer texts are scanned off the event loop


async def contains_pii(text: str) -> bool:
    """has_pii for a request body: a long one is read on a worker thread, not on the event loop."""
    if len(text) <= SCAN_INLINE_CHARS:
        return has_pii(text)
    return await asyncio.to_thread(has_pii, text)


def pii_kinds(text: str) -> set[str]:
    return {match.kind for match in find_pii(text)}
