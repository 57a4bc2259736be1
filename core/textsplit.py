"""Splitting an answer into messages that fit a platform's limit.

Slack sections take 3,000 characters, Discord messages 2,000, LINE text messages 5,000 UTF-16 code
units (at most 5 messages a reply). Cutting at the limit breaks words, sentences, code blocks and
even characters (half an emoji in UTF-16); this cuts where a reader would, in as few parts as a
plain cut needs:

- preferred cuts, best first: paragraph break (and the edges of a fenced code block), line break,
  sentence end (. ! ? 。！？), clause mark (，；：、), space or a boundary next to a CJK character;
  a cut inside a word (between two grapheme clusters) only when none of these is near the limit;
- a better-ranked cut is taken when it costs no extra part, or when it still fills half the part
  (and, with max_parts, the answer still fits);
- never inside a grapheme cluster: an emoji with its skin tone, a ZWJ family, a flag, a character
  and its combining marks, a surrogate pair;
- a fenced code block that fits in one part is never split; a longer one is split at line breaks,
  its fence closed at the end of one part and reopened (with its language tag) at the next.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

Measure = Callable[[str], int]
_Parts = tuple[list[str], bool]  # the parts, and whether the answer was cut short

PARA, LINE, SENTENCE, CLAUSE, WORD = range(5)  # cut levels, best first


def utf16_len(text: str) -> int:
    """Length as LINE counts it: characters outside the BMP (most emoji) take two code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _unit_utf16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


# --- grapheme clusters (the parts of Unicode UAX #29 that occur in chat answers) ------------------


def _is_extend(ch: str) -> bool:
    """A character that never starts a cluster: combining marks, ZWJ, variation selectors, emoji
    skin tones, tag characters (subdivision flags), Hangul vowel and final jamo, low surrogates."""
    cp = ord(ch)
    if cp < 0x300 or 0x3400 <= cp <= 0x9FFF or 0xAC00 <= cp <= 0xD7A3:  # Latin, CJK ideographs, Hangul
        return False
    if cp in (0x200C, 0x200D) or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:
        return True
    if 0x1160 <= cp <= 0x11FF or 0xD7B0 <= cp <= 0xD7FF or 0xDC00 <= cp <= 0xDFFF or cp in (0xFF9E, 0xFF9F):
        return True
    return unicodedata.category(ch) in ("Mn", "Me", "Mc")


def _is_control(ch: str) -> bool:
    cp = ord(ch)
    return cp < 0x20 or 0x7F <= cp < 0xA0 or cp in (0x2028, 0x2029)


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _simple(cp: int) -> bool:
    """Printable ASCII, CJK ideographs, CJK and full-width punctuation: always a cluster of one."""
    return 0x20 <= cp < 0x7F or 0x3400 <= cp <= 0x9FFF or 0xFF01 <= cp <= 0xFF9D or 0x3000 <= cp <= 0x3029


def is_grapheme_boundary(text: str, i: int) -> bool:
    """Whether a cut between text[i-1] and text[i] keeps every user-perceived character whole."""
    if i <= 0 or i >= len(text):
        return True
    prev, cur = text[i - 1], text[i]
    p, c = ord(prev), ord(cur)
    if _simple(p) and _simple(c):
        return True
    if prev == "\r":
        return cur != "\n"
    if _is_control(prev) or _is_control(cur):
        return True
    if _is_extend(cur) or prev == "\u200d":  # ZWJ joins what follows (emoji ZWJ sequences)
        return False
    if _is_regional(prev) and _is_regional(cur):  # flags pair regional indicators from the left
        run = 0
        while i - 1 - run >= 0 and _is_regional(text[i - 1 - run]):
            run += 1
        return run % 2 == 0
    hangul_lead = 0x1100 <= p <= 0x115F  # a leading jamo joins the jamo or syllable after it
    return not (hangul_lead and (0x1100 <= c <= 0x115F or 0xAC00 <= c <= 0xD7A3))


# --- fenced code blocks -----------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.M)


@dataclass(slots=True)
class _Block:
    """A fenced code block; positions index the text. Inside cuts need body_first < cut < body_last."""

    open_start: int  # start of the opening fence line
    close_end: int  # end of the closing fence line (the text's end when unclosed)
    body_first: int  # first non-space character of the body
    body_last: int  # end of the body's last non-space character
    body_end: int  # start of the closing fence line (the text's end when unclosed)
    reopen: str  # "```python\n": starts a part that continues the block
    close: str  # "\n```": ends a part that stops inside the block
    long: bool = False  # longer than one part: may be split


def _tidy_block_ends(text: str) -> str:
    """Blank lines before a closing fence dropped: a part must be able to reach the fence."""
    for block in reversed(_find_blocks(text)):
        if block.body_first < block.body_end < block.close_end:
            closing = text[block.body_end : block.close_end].strip()
            text = text[: block.body_last] + "\n" + closing + text[block.close_end :]
    return text


def _find_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    pos = 0
    while (m := _FENCE_OPEN.search(text, pos)) is not None:
        fence, info = m.group("fence"), m.group("info").strip()
        if fence[0] == "`" and "`" in info:  # not an opening fence (CommonMark), e.g. ```inline```
            pos = m.end() + 1
            continue
        body_start = min(m.end() + 1, len(text))
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        if (c := closing.search(text, body_start)) is not None:
            body_end, close_end = c.start(), c.end()
        else:
            body_end = close_end = len(text)
        body = text[body_start:body_end]
        first = body_start + (len(body) - len(body.lstrip()))
        last = body_start + len(body.rstrip())
        reopen, close = f"{fence}{info}\n", f"\n{fence}"
        blocks.append(_Block(m.start(), close_end, first, max(last, first), body_end, reopen, close))
        pos = max(close_end, m.end() + 1)
    return blocks


# --- where a part may end -----------------------------------------------------------------------

_CJK = (
    "\u2e80-\u2fff\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
)
# Kinsoku: marks that may not start a line, and openers that may not end one.
_NO_START = "、。，．・：；？！）」』】〕〉》〗〙〛｝］’”…‥ー"  # closing marks
_NO_START += "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ%),.:;!?]}"  # small kana, ASCII closers
_NO_END = "（「『【〔〈《〖〘〚｛［‘“([{"
_SENTENCE_END = ".!?。！？…"
_CLOSERS = "」』）》〉】〕”’\"')]"
_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Between two ideographs a cut is always fine: such cuts are kept as runs, not one by one.
_IDEOGRAPH_RUN = re.compile(rf"[{_IDEOGRAPHS}]{{2,}}")
_CJK_BOUNDARY = re.compile(
    rf"(?!(?<=[{_IDEOGRAPHS}])[{_IDEOGRAPHS}])"
    rf"(?:(?<=[{_CJK}])(?=[^\s{re.escape(_NO_START)}])|(?<=[^\s{re.escape(_NO_END)}])(?=[{_CJK}]))"
)
_CJK_SENTENCE = re.compile(rf"[。！？…]+[{re.escape(_CLOSERS)}]*(?=\S)|[!?]+(?=[{_CJK}])")
_CJK_CLAUSE = re.compile(r"[，、；：]+(?=\S)")
_SPACE = re.compile(r"\s+")


def _space_level(text: str, c: int, run: str) -> int:
    """The level of a cut at a run of whitespace text[c : c + len(run)]."""
    newlines = run.count("\n")
    if newlines >= 2:
        return PARA
    if newlines == 1:
        return PARA if text.startswith("#", c + len(run)) else LINE  # before a Markdown heading
    before = text[c - 1]
    if before in _CLOSERS and c >= 2:
        before = text[c - 2]
    if before in _SENTENCE_END:
        return SENTENCE
    return CLAUSE if before in ",;:，；：、" else WORD


@dataclass(slots=True)
class _Cut:
    end: int  # where this part's content ends
    next: int  # where the next part's content starts


class _Splitter:
    """The cut candidates of one text for one limit, and the choice among them."""

    def __init__(
        self, text: str, limit: int, measure: Measure, *, split_any_block: bool = False, fence_limit: int = 0
    ) -> None:
        self.text, self.limit, self.measure = text, limit, measure
        self.content_end = len(text.rstrip())
        self.blocks = _find_blocks(text)
        self.prefix_sums = self._prefix_sums()
        self._keep_blocks_splittable(split_any_block, fence_limit or limit)
        self.block_starts = [b.open_start for b in self.blocks]
        self.by_level = self._candidates()
        self.runs = self._ideograph_runs()
        self.run_starts = [start for start, _end in self.runs]
        self._baseline: dict[int, _Cut] = {}
        self._count: dict[int, int] = {}

    # -- measuring --

    def _prefix_sums(self) -> list[int] | None:
        """Running measure per character, for the measures known to add up (others: binary search)."""
        if self.measure is len:
            return None
        if self.measure is utf16_len:
            return [0, *accumulate(map(_unit_utf16, self.text))]
        return None

    def _span_measure(self, a: int, b: int) -> int:
        if self.prefix_sums is not None:
            return self.prefix_sums[b] - self.prefix_sums[a]
        return self.measure(self.text[a:b])

    def _keep_blocks_splittable(self, split_any: bool, fence_limit: int) -> None:
        """Mark blocks too long for one part; drop the fence handling where fences would take more
        than half of fence_limit (then the block is cut as plain text)."""
        kept = []
        for block in self.blocks:
            fences = self.measure(block.reopen) + self.measure(block.close)
            if fences * 2 > fence_limit:
                continue  # a tiny limit: treat the block as plain text
            block.long = split_any or self._span_measure(block.open_start, block.close_end) > self.limit
            kept.append(block)
        self.blocks = kept

    def block_at(self, pos: int) -> _Block | None:
        """The block whose span strictly contains pos."""
        i = bisect.bisect_left(self.block_starts, pos) - 1
        if i >= 0 and pos < self.blocks[i].close_end:
            return self.blocks[i]
        return None

    def render(self, a: int, c: int) -> str:
        """The part from a to c, with the fences it needs when it starts or stops inside a block."""
        body = self.text[a:c]
        start_block, end_block = self.block_at(a), self.block_at(c)
        prefix = suffix = ""
        if start_block is not None and a < start_block.body_last:
            prefix = start_block.reopen
            body = body.lstrip("\r\n")
        else:
            body = body.lstrip()
        body = body.rstrip()
        if end_block is not None and c < end_block.body_last:
            suffix = end_block.close
        return prefix + body + suffix

    def fits(self, a: int, c: int) -> bool:
        return self.measure(self.render(a, c)) <= self.limit

    def reach(self, a: int) -> int:
        """The furthest b with the part's text[a:b] (and its reopened fence) within the limit."""
        block = self.block_at(a)
        room = self.limit - (self.measure(block.reopen) if block and a < block.body_last else 0)
        if self.prefix_sums is not None:
            return max(a, bisect.bisect_right(self.prefix_sums, self.prefix_sums[a] + room) - 1)
        lo, hi = a, min(len(self.text), a + max(room, 0))  # every character measures at least 1
        if self.measure is len:
            return hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.measure(self.text[a:mid]) <= room:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- candidates --

    def _valid(self, c: int, s: int) -> bool:
        """Outside every block, or inside a splittable one with body on both sides."""
        if not self.blocks:
            return True
        block = self.block_at(c) or self.block_at(s)
        if block is None:
            return True
        return block.long and block.body_first < c <= s < block.body_last

    def _candidates(self) -> list[tuple[list[int], list[int]]]:
        """Per level: sorted cut ends, and the next part's starts, of every cut at that level or better."""
        text = self.text
        best: dict[int, tuple[int, int]] = {}  # cut end -> (next start, level)

        def add(c: int, s: int, level: int) -> None:
            if not 0 < c <= s < self.content_end or not self._valid(c, s):
                return
            if is_grapheme_boundary(text, c) and (s == c or is_grapheme_boundary(text, s)):
                old = best.get(c)
                if old is None or level < old[1]:
                    best[c] = (s, level)

        # Inside code only line ends are cuts: a cut at a space would change the code when copied.
        block_edges = {b.open_start for b in self.blocks} | {b.close_end for b in self.blocks}
        for m in _SPACE.finditer(text):
            c, s, run = m.start(), m.end(), m.group()
            if self.block_at(c) is not None:
                if "\n" in run:
                    add(c, c + run.rfind("\n") + 1, PARA if run.count("\n") > 1 else LINE)
                continue
            edge = c in block_edges or s in block_edges
            add(c, s, PARA if edge else _space_level(text, c, run))
        for pattern, level in ((_CJK_SENTENCE, SENTENCE), (_CJK_CLAUSE, CLAUSE)):
            for m in pattern.finditer(text):
                if self.block_at(m.end()) is None:
                    add(m.end(), m.end(), level)
        for m in _CJK_BOUNDARY.finditer(text):
            if self.block_at(m.start()) is None:
                add(m.start(), m.start(), WORD)

        ends = sorted(best)
        levels = []
        for level in range(WORD + 1):
            chosen = [c for c in ends if best[c][1] <= level]
            levels.append((chosen, [best[c][0] for c in chosen]))
        return levels

    def _ideograph_runs(self) -> list[tuple[int, int]]:
        """Runs of ideographs outside code: every position strictly inside one is a word-level cut."""
        runs = _IDEOGRAPH_RUN.finditer(self.text, 0, self.content_end)
        return [m.span() for m in runs if self.block_at(m.start()) is None]

    def latest(self, a: int, b: int, level: int) -> _Cut | None:
        """The latest cut of that level or better that ends in (a, b] and fits."""
        found = None
        ends, starts = self.by_level[level]
        i = bisect.bisect_right(ends, b) - 1
        while i >= 0 and ends[i] > a:
            if self.fits(a, ends[i]):
                found = _Cut(ends[i], starts[i])
                break
            i -= 1
        if level == WORD and (r := bisect.bisect_left(self.run_starts, b) - 1) >= 0:
            start, end = self.runs[r]
            inside = min(b, end - 1)  # the latest position strictly inside the run
            if inside > max(a, start) and (found is None or inside > found.end):
                return _Cut(inside, inside)  # outside code: fits whenever it is within reach
        return found

    # -- fallbacks inside words --

    def _snap(self, p: int) -> int:
        """The latest position at or before p where a cut may fall with respect to code blocks."""
        block = self.block_at(p)
        if block is None or (block.long and block.body_first < p < block.body_last):
            return p
        if block.long and p >= block.body_last and block.body_last - 1 > block.body_first:
            return block.body_last - 1
        return block.open_start

    def grapheme_cut(self, a: int, b: int) -> _Cut | None:
        """The latest cut in (a, b] between two grapheme clusters: a word too long for a part."""
        p = b
        while p > a:
            snapped = self._snap(p)
            if snapped != p:
                p = snapped
                continue
            if is_grapheme_boundary(self.text, p) and self.fits(a, p):
                s = p
                if self.block_at(p) is None:
                    while s < len(self.text) and self.text[s].isspace():
                        s += 1
                return _Cut(p, s)
            p -= 1
        return None

    def forced_cut(self, a: int) -> _Cut:
        """A single grapheme cluster longer than the limit (a pathological run of combining marks):
        cut between code points, since nothing else can fit."""
        b = self.reach(a)
        while b > a and not self.fits(a, b):
            b -= 1
        if b <= a:
            raise ValueError(f"limit {self.limit} is too small for the character at {a}")
        return _Cut(b, b)

    # -- choosing --

    def baseline(self, a: int) -> _Cut:
        """The cut a plain splitter would take: the latest word-level cut, or inside a word when
        the latest word-level cut would leave the part less than half full."""
        if (known := self._baseline.get(a)) is not None:
            return known
        b = self.reach(a)
        if b >= self.content_end and self.fits(a, self.content_end):
            cut = _Cut(self.content_end, len(self.text))
        else:
            word = self.latest(a, b, WORD)
            in_code = self.block_at(b) is not None  # a line end beats cutting a line of code
            if word is not None and ((word.end - a) * 2 >= b - a or in_code):
                cut = word
            else:
                cut = self.grapheme_cut(a, b) or word or self.forced_cut(a)
        self._baseline[a] = cut
        return cut

    def count(self, a: int) -> int:
        """How many parts the rest of the text needs from a, cutting as the baseline does."""
        chain = []
        while a < self.content_end and a not in self._count:
            chain.append(a)
            a = self.baseline(a).next
        total = self._count.get(a, 0)
        for pos in reversed(chain):
            total += 1
            self._count[pos] = total
        return total

    def best(self, a: int, used: int, max_parts: int | None) -> _Cut:
        """The best-ranked cut that costs no extra part, or that fills at least half the part and
        keeps the answer within max_parts (used: parts already taken)."""
        base = self.baseline(a)
        if base.end >= self.content_end:
            return base
        need = self.count(a)
        b = self.reach(a)
        for level in range(WORD + 1):
            cut = self.latest(a, b, level)
            if cut is None:
                continue
            if cut.end == base.end:
                return cut
            rest = self.count(cut.next)
            if 1 + rest <= need:
                return cut
            if (cut.end - a) * 2 >= b - a and (max_parts is None or used + 1 + rest <= max_parts):
                return cut
        return base

    def last_part(self, a: int) -> _Cut:
        """For a part the answer is cut after: the best-ranked cut in the second half of the room."""
        b = self.reach(a)
        for level in range(WORD + 1):
            cut = self.latest(a, b, level)
            if cut is not None and (cut.end - a) * 2 >= b - a:
                return cut
        return self.baseline(a)

    def first_start(self) -> int:
        return len(self.text) - len(self.text.lstrip())


def split_text(
    text: str,
    limit: int,
    *,
    measure: Measure = len,
    max_parts: int | None = None,
    ellipsis: str = "…",
) -> list[str]:
    """Parts of text, each with measure(part) <= limit, cut where a reader would (module docstring).

    With max_parts, an answer that needs more parts is cut short: the last part ends with ellipsis,
    the caller's cue to point to the full answer elsewhere. measure must count each character as at
    least 1 and never shrink when text grows (len and utf16_len do).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if max_parts is not None and max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    stripped = text.strip()
    if not stripped:
        return []
    if measure(stripped) <= limit:
        return [stripped]
    if max_parts is not None:
        # A part holds at most `limit` characters, so text past this window is never shown once
        # the answer is cut short: split only the window, which keeps very long answers cheap.
        window = (max_parts + 1) * limit + 1
        if len(text) > window and text[window:].strip():
            parts, cut_short = _split(text[:window], limit, measure, max_parts, ellipsis)
            if cut_short:
                return parts
    return _split(text, limit, measure, max_parts, ellipsis)[0]


def _split(text: str, limit: int, measure: Measure, max_parts: int | None, ellipsis: str) -> _Parts:
    """The parts, and whether the answer was cut short."""
    text = _tidy_block_ends(text)
    splitter = _Splitter(text, limit, measure)
    parts: list[str] = []
    a = splitter.first_start()
    while a < splitter.content_end:
        if max_parts is not None and len(parts) == max_parts - 1 and splitter.count(a) > 1:
            parts.append(_cut_short(text, a, limit, measure, ellipsis))
            return parts, True
        cut = splitter.best(a, len(parts), max_parts)
        parts.append(splitter.render(a, cut.end))
        a = cut.next
    return parts, False


def _cut_short(text: str, a: int, limit: int, measure: Measure, ellipsis: str) -> str:
    """The last allowed part, from a, with room kept for the ellipsis (after the fence if any)."""
    room = limit - measure("\n" + ellipsis)
    if room < 1:
        if measure(ellipsis) > limit:
            raise ValueError("the ellipsis does not fit in the limit")
        return ellipsis
    splitter = _Splitter(text, room, measure, split_any_block=True, fence_limit=limit)
    cut = splitter.last_part(a)
    part = splitter.render(a, cut.end)
    block = splitter.block_at(cut.end)
    joiner = "\n" if block is not None and cut.end < block.body_last else ""
    return part + joiner + ellipsis
