"""core.textsplit: parts within each platform's limit, cut where a reader would, nothing lost."""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable

import pytest

from core.textsplit import is_grapheme_boundary, split_text, utf16_len

try:  # not in the dev group: the seeded property test below runs without it
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

SLACK, DISCORD, LINE = 3000, 2000, 5000
FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*$", re.M)
EMOJI = [
    "\U0001f600",  # grinning face
    "\U0001f44d\U0001f3fd",  # thumbs up, medium skin tone
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family: ZWJ sequence
    "\U0001f1f9\U0001f1fc",  # flag: Taiwan
    "\U0001f1ef\U0001f1f5",  # flag: Japan
    "\u2764\ufe0f",  # red heart with variation selector
    "1\ufe0f\u20e3",  # keycap 1
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag
    "\U0001f469\U0001f3fb\u200d\U0001f4bb",  # woman technologist, light skin tone
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # flag: Scotland (tags)
]
CJK_SENTENCES = [
    "請假需要在系統上提出申請。",
    "出差住宿費用每晚上限為新台幣三千元！",
    "年假可以遞延到隔年嗎？",
    "「員工手冊」第三章說明了加班的規定，請詳閱。",
    "報銷時請附上發票、收據與核准單；主管簽核後送財務部。",
]
WORDS = ["the", "policy", "covers", "travel", "expenses", "meals", "lodging", "approval", "manager", "laptop"]


# --- checks every split must pass -----------------------------------------------------------------


def non_space(text: str) -> str:
    """The text's non-whitespace characters, fence lines left out (split parts add some)."""
    return "".join(FENCE_LINE.sub("", text).split())


def starts_cluster(ch: str) -> bool:
    """Written independently of the module: what a grapheme cluster can never start with."""
    cp = ord(ch)
    if unicodedata.category(ch) in ("Mn", "Me", "Mc") or cp in (0x200D, 0x200C):
        return False
    return not (0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or 0xFE00 <= cp <= 0xFE0F)


def regional_indicators(text: str) -> int:
    return sum(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in text)


def check_parts(
    text: str,
    parts: list[str],
    limit: int,
    measure: Callable[[str], int] = len,
    *,
    truncated: bool = False,
    ellipsis: str = "…",
    closed: bool = True,
) -> None:
    assert parts or not text.strip()
    for part in parts:
        assert part
        assert part == part.strip()
        assert measure(part) <= limit, (measure(part), limit)
        assert starts_cluster(part[0]), repr(part[:5])
        assert part[-1] != "\u200d"
        assert regional_indicators(part) % 2 == 0  # the texts here pair every flag
        part.encode("utf-16-le")  # no lone surrogate
        if closed or part is not parts[-1]:
            assert len(FENCE_LINE.findall(part)) % 2 == 0, part  # every block closed in its part
    if truncated:
        assert parts[-1].endswith(ellipsis)
        shown = non_space("\n".join(parts)[: -len(ellipsis)])
        assert non_space(text).startswith(shown)
    else:
        assert non_space("\n".join(parts)) == non_space(text)


# --- utf16_len --------------------------------------------------------------------------------------


def test_utf16_len() -> None:
    assert utf16_len("") == 0
    assert utf16_len("abc") == 3
    assert utf16_len("中文") == 2
    assert utf16_len("😀") == 2
    assert utf16_len("👍🏽") == 4
    assert utf16_len("👨‍👩‍👧‍👦") == 11
    assert utf16_len("🇹🇼") == 4
    assert utf16_len("e\u0301") == 2  # e + combining acute
    assert utf16_len("中😀a") == len("中😀a".encode("utf-16-le")) // 2


# --- the platforms ----------------------------------------------------------------------------------


def mixed_emoji_cjk(rng: random.Random, count: int) -> str:
    """count user-perceived characters: 40% emoji (of every kind above), 60% CJK."""
    cjk = "請假出差報銷年假規定員工手冊"
    return "".join(rng.choice(EMOJI) if rng.random() < 0.4 else rng.choice(cjk) for _ in range(count))


def test_line_3000_emoji_and_cjk() -> None:
    text = mixed_emoji_cjk(random.Random(1), 3000)
    assert utf16_len(text) > LINE
    parts = split_text(text, LINE, measure=utf16_len, max_parts=5)
    assert 2 <= len(parts) <= 5
    check_parts(text, parts, LINE, utf16_len)
    assert all(part.encode("utf-16-le").decode("utf-16-le") == part for part in parts)


def test_line_more_than_five_messages_ends_with_ellipsis() -> None:
    text = mixed_emoji_cjk(random.Random(2), 12000)
    assert utf16_len(text) > 5 * LINE
    parts = split_text(text, LINE, measure=utf16_len, max_parts=5)
    assert len(parts) == 5
    check_parts(text, parts, LINE, utf16_len, truncated=True)
    assert utf16_len(parts[-1]) > LINE // 2  # the last message is still used


def test_line_cuts_do_not_break_emoji_even_at_tiny_limits() -> None:
    text = "".join(EMOJI) * 20
    assert max(map(utf16_len, EMOJI)) == 14  # the Scotland flag
    for limit in (14, 15, 16, 21, 33):
        parts = split_text(text, limit, measure=utf16_len)
        check_parts(text, parts, limit, utf16_len)
        assert "".join(parts) == text  # no spaces anywhere: the parts are the text


def test_discord_long_code_block_is_closed_and_reopened() -> None:
    code = "\n".join(f"def handler_{i}(event):\n    return process(event, retries={i})\n" for i in range(120))
    text = f"Here is the script:\n\n```python\n{code}```\n\nRun it with `python job.py`."
    parts = split_text(text, DISCORD)
    check_parts(text, parts, DISCORD)
    assert len(parts) >= 3
    assert parts[0].startswith("Here is the script:")
    for part in parts[1:]:
        assert part.startswith("```python\n")
    for part in parts[:-1]:
        assert part.endswith("\n```")
        last_line = part.splitlines()[-2]
        assert last_line.strip()  # cut at a line end, not inside a line
        assert last_line.startswith(("def ", "    return"))
    assert parts[-1].endswith("Run it with `python job.py`.")
    # the code lines themselves come through whole and in order
    lines = [ln for part in parts for ln in part.splitlines() if ln.startswith(("def ", "    "))]
    assert lines == [ln for ln in code.splitlines() if ln]


def test_code_block_that_fits_is_moved_whole() -> None:
    block = "```sql\n" + "\n".join(f"SELECT * FROM table_{i} WHERE id > 0;" for i in range(45)) + "\n```"
    assert 1500 < len(block) < DISCORD
    text = "Intro sentence. " * 40 + "\n\n" + block + "\n\nOutro."
    assert len(block) < DISCORD < len(text)
    parts = split_text(text, DISCORD)
    check_parts(text, parts, DISCORD)
    assert sum(block in part for part in parts) == 1
    assert all(part.count("```") in (0, 2) for part in parts)


def test_tilde_fence_and_unclosed_fence() -> None:
    body = "\n".join(f"line {i} of the log output" for i in range(200))
    for text in (f"~~~text\n{body}\n~~~", f"```\n{body}"):
        parts = split_text(text, 500)
        check_parts(text, parts, 500, closed=text.endswith("~~~"))
        fence = text[:3]
        assert all(part.startswith(fence) for part in parts)
        assert all(line.startswith(("line ", fence)) for part in parts for line in part.splitlines())


def test_slack_long_paragraphs_split_at_paragraph_breaks() -> None:
    rng = random.Random(3)
    paragraphs = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 200))).capitalize() + "." for _ in range(12)
    ]
    text = "\n\n".join(paragraphs)
    parts = split_text(text, SLACK)
    check_parts(text, parts, SLACK)
    for part in parts:
        assert part.endswith(".")
        assert all(para in paragraphs for para in part.split("\n\n"))  # whole paragraphs only


def test_slack_paragraph_longer_than_a_part_splits_at_sentences() -> None:
    sentence = "The travel policy covers lodging and meals for approved trips. "
    text = "Short intro.\n\n" + sentence * 100
    parts = split_text(text, SLACK)
    check_parts(text, parts, SLACK)
    assert len(parts) == 3
    assert all(part.endswith(".") for part in parts)


def test_prefers_sentence_ends_in_cjk() -> None:
    text = "".join(CJK_SENTENCES) * 40
    parts = split_text(text, 500)
    check_parts(text, parts, 500)
    assert all(part.endswith(("。", "！", "？")) for part in parts)


def test_cjk_without_punctuation_cuts_between_characters() -> None:
    text = "員工請假規定" * 500
    parts = split_text(text, 1000)
    assert [len(part) for part in parts] == [1000, 1000, 1000]
    check_parts(text, parts, 1000)


def test_cjk_and_following_combining_mark_stay_together() -> None:
    text = ("字\u0301" + "a" * 8) * 50  # a mark after every tenth character, nowhere to cut but words
    for limit in range(5, 40):
        parts = split_text(text, limit)
        check_parts(text, parts, limit)
        assert all(not part.startswith("\u0301") for part in parts)


def test_cluster_longer_than_the_limit_is_cut_between_code_points() -> None:
    """Only a pathological cluster (here a letter with 30 combining marks) can exceed a limit; then
    code points are the last resort, and UTF-16 still never splits a surrogate pair."""
    zalgo = "a" + "\u0301" * 30
    parts = split_text(zalgo + " ok", 16)
    assert "".join(parts[:-1]) + " " + parts[-1] == zalgo + " ok"
    assert all(len(part) <= 16 for part in parts)
    parts = split_text("\U0001f600" * 3 + "\U000e0067" * 10, 5, measure=utf16_len)
    assert all(utf16_len(part) <= 5 for part in parts)
    assert all(part.encode("utf-16-le").decode("utf-16-le") == part for part in parts)


def test_single_very_long_word() -> None:
    word = "supercalifragilistic" * 300
    parts = split_text(word, DISCORD)
    assert [len(part) for part in parts] == [2000, 2000, 2000]
    assert "".join(parts) == word


def test_long_word_after_a_short_one_fills_the_part() -> None:
    text = "see " + "x" * 4500
    parts = split_text(text, 2000)
    assert len(parts) == 3
    assert parts[0].startswith("see x")


def test_long_url_moves_to_the_next_part_when_it_fits() -> None:
    url = "https://portal.example.com/kb/" + "a" * 900
    text = "word " * 300 + url + " end"
    parts = split_text(text, 2000)
    check_parts(text, parts, 2000)
    assert any(url in part for part in parts)


# --- limits and edges -------------------------------------------------------------------------------


def test_exactly_at_the_limit_stays_one_part() -> None:
    assert split_text("a" * 2000, 2000) == ["a" * 2000]
    assert split_text("  " + "a" * 2000 + "\n\n", 2000) == ["a" * 2000]
    assert split_text("😀" * 2500, LINE, measure=utf16_len) == ["😀" * 2500]
    assert split_text("中" * 5000, LINE, measure=utf16_len) == ["中" * 5000]


def test_one_over_the_limit_splits() -> None:
    assert split_text("a" * 2001, 2000) == ["a" * 2000, "a"]
    parts = split_text("😀" * 2501, LINE, measure=utf16_len)
    assert parts == ["😀" * 2500, "😀"]
    parts = split_text("word " * 400 + "end", 2000)
    assert len(parts) == 2 and parts[0].endswith("word")


def test_empty_and_whitespace() -> None:
    assert split_text("", 10) == []
    assert split_text(" \n\t ", 10) == []
    assert split_text("  hi  ", 10) == ["hi"]


def test_parts_are_trimmed_and_never_empty() -> None:
    text = "Paragraph one is here.\n\n\n\n   \n\nParagraph two is here.   \n\n"
    assert split_text(text, 25) == ["Paragraph one is here.", "Paragraph two is here."]


def test_max_parts() -> None:
    text = "Sentence number one is here. " * 100
    parts = split_text(text, 300, max_parts=3)
    assert len(parts) == 3
    check_parts(text, parts, 300, truncated=True)
    assert split_text("short", 300, max_parts=1) == ["short"]
    one = split_text(text, 300, max_parts=1)
    assert len(one) == 1 and one[0].endswith("…") and len(one[0]) <= 300


def test_max_parts_not_hit_means_no_ellipsis() -> None:
    text = "Sentence number one is here. " * 20
    parts = split_text(text, 300, max_parts=3)
    assert len(parts) == 2
    assert not parts[-1].endswith("…")


def test_max_parts_inside_code_closes_the_fence_before_the_ellipsis() -> None:
    text = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(500)) + "\n```"
    parts = split_text(text, 200, max_parts=2, ellipsis="…(more on the portal)")
    assert len(parts) == 2
    assert parts[-1].endswith("\n```\n…(more on the portal)")
    check_parts(text, parts, 200, truncated=True, ellipsis="…(more on the portal)")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 0)
    with pytest.raises(ValueError):
        split_text("abc", 2, max_parts=0)


def test_grapheme_boundaries() -> None:
    family = "👨‍👩‍👧‍👦"
    assert not any(is_grapheme_boundary(family, i) for i in range(1, len(family)))
    flags = "🇹🇼🇯🇵"
    assert [is_grapheme_boundary(flags, i) for i in range(1, 4)] == [False, True, False]
    assert not is_grapheme_boundary("👍🏽", 1)
    assert not is_grapheme_boundary("字\u0301", 1)
    assert not is_grapheme_boundary("\r\n", 1)
    assert is_grapheme_boundary("ab", 1)


# --- property: nothing lost, everything within the limit ------------------------------------------


def random_answer(rng: random.Random) -> str:
    """Mixed text: English sentences, CJK sentences, emoji runs, long words, code blocks."""
    pieces: list[str] = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.random()
        if kind < 0.3:
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
            pieces.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ",", ""]))
        elif kind < 0.55:
            pieces.append("".join(rng.choice(CJK_SENTENCES) for _ in range(rng.randint(1, 6))))
        elif kind < 0.7:
            pieces.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 40))))
        elif kind < 0.8:
            pieces.append(rng.choice(["a", "b", "字", "e\u0301", "字\u0301"]) * rng.randint(10, 300))
        else:
            lang = rng.choice(["python", "", "sql", "js"])
            lines = [
                "    " * rng.randint(0, 2) + " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 8)))
                for _ in range(rng.randint(1, 40))
            ]
            pieces.append(f"\n```{lang}\n" + "\n".join(lines) + "\n```\n")
        pieces.append(rng.choice([" ", " ", "\n", "\n\n", "", "  \n"]))
    return "".join(pieces)


def test_property_on_seeded_random_answers() -> None:
    rng = random.Random(20240501)
    for _ in range(250):
        text = random_answer(rng)
        measure = rng.choice([len, utf16_len])
        limit = rng.choice([60, 80, 150, 400, 1000])
        check_parts(text, split_text(text, limit, measure=measure), limit, measure)
        max_parts = rng.randint(1, 4)
        parts = split_text(text, limit, measure=measure, max_parts=max_parts)
        assert len(parts) <= max_parts
        truncated = non_space("\n".join(parts)) != non_space(text)
        if truncated:  # only when even the unlimited split needs more, and then every part is used
            assert len(split_text(text, limit, measure=measure)) > max_parts
            assert len(parts) == max_parts
        check_parts(text, parts, limit, measure, truncated=truncated)


if given is not None:

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.sampled_from([60, 97, 250, 800]), st.booleans())
    def test_property_hypothesis(seed: int, limit: int, utf16: bool) -> None:
        text = random_answer(random.Random(seed))
        measure = utf16_len if utf16 else len
        check_parts(text, split_text(text, limit, measure=measure), limit, measure)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(["a", "字", " ", "\n", "\n\n", "。", ". ", "😀", "👍🏽", "🇹🇼", "\u0301", "`"]),
            max_size=80,
        ),
        st.integers(12, 40),
    )
    def test_property_hypothesis_small_pieces(pieces: list[str], limit: int) -> None:
        text = "".join(pieces)
        parts = split_text(text, limit, measure=utf16_len)
        for part in parts:
            assert utf16_len(part) <= limit
        assert non_space("\n".join(parts)) == non_space(text)
