"""core.pii: what is personal data, what is not, and spans that survive full-width input."""

from __future__ import annotations

import itertools
import random

import pytest

from core.pii import PIIMatch, find_pii, has_pii, pii_kinds, redact

try:  # not in the dev group: the seeded property tests below run without it
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

# The official letter codes of the national ID, written out as published (not in code order).
OFFICIAL_CODES = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34, "J": 18,
    "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25, "S": 26, "T": 27,
    "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip
WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1)


def check_digit(letter_code: int, eight: str) -> str:
    """The digit that makes letter + eight digits + it a valid number (written independently)."""
    values = [letter_code // 10, letter_code % 10, *map(int, eight)]
    total = sum(w * v for w, v in zip(WEIGHTS, values, strict=True))
    return str((10 - total % 10) % 10)


def make_id(letter: str, second: str, seven: str) -> str:
    """A valid national ID (second '1'/'2') or new-format resident certificate (second '8'/'9')."""
    return letter + second + seven + check_digit(OFFICIAL_CODES[letter], second + seven)


def make_old_arc(letter: str, second: str, seven: str) -> str:
    """A valid old-format resident certificate: the second letter counts as its code's last digit."""
    eight = str(OFFICIAL_CODES[second] % 10) + seven
    return letter + second + seven + check_digit(OFFICIAL_CODES[letter], eight)


def spans(text: str) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start : m.end]) for m in find_pii(text)]


# --- what is personal data --------------------------------------------------------------------------

POSITIVE = [
    # e-mail
    ("寄到 john.doe@example.com 就好", "email", "john.doe@example.com"),
    ("mail Mary_Chen+hr@mail.corp.example.com.tw today", "email", "Mary_Chen+hr@mail.corp.example.com.tw"),
    # Taiwan mobile
    ("我的手機 0912-345-678", "phone", "0912-345-678"),
    ("手機0912345678請回電", "phone", "0912345678"),
    ("call 0912 345 678", "phone", "0912 345 678"),
    ("tel: +886 912 345 678", "phone", "+886 912 345 678"),
    ("tel: +886-912-345-678.", "phone", "+886-912-345-678"),
    ("tel: +886912345678", "phone", "+886912345678"),
    ("tel: +886 (0)912 345 678", "phone", "+886 (0)912 345 678"),
    # Taiwan landline and toll-free
    ("總機 (02) 2345-6789", "phone", "(02) 2345-6789"),
    ("總機 (02)2345-6789", "phone", "(02)2345-6789"),
    ("call 02-2345-6789 now", "phone", "02-2345-6789"),
    ("台中 04-2234-5678", "phone", "04-2234-5678"),
    ("彰化 04-723-4567", "phone", "04-723-4567"),
    ("苗栗 037-123456", "phone", "037-123456"),
    ("南投 049-2345678", "phone", "049-2345678"),
    ("台南 06-2345678", "phone", "06-2345678"),
    ("台東 089-345678", "phone", "089-345678"),
    ("客服 0800-123-456", "phone", "0800-123-456"),
    ("office +886-2-2345-6789", "phone", "+886-2-2345-6789"),
    ("office +886 2 2345 6789", "phone", "+886 2 2345 6789"),
    # extensions are part of the number, in every spelling
    ("請撥 02-2345-6789 分機 123", "phone", "02-2345-6789 分機 123"),
    ("請撥 02-2345-6789分機123", "phone", "02-2345-6789分機123"),
    ("請撥 02-2345-6789#123", "phone", "02-2345-6789#123"),
    ("call 02-2345-6789 ext. 123 please", "phone", "02-2345-6789 ext. 123"),
    ("請撥 (02) 2345-6789 轉 55", "phone", "(02) 2345-6789 轉 55"),
    # international
    ("US office +1 415 555 0100", "phone", "+1 415 555 0100"),
    ("US office +1 (415) 555-0100", "phone", "+1 (415) 555-0100"),
    ("US office (415) 555-0100", "phone", "(415) 555-0100"),
    ("Tokyo +81 3-1234-5678", "phone", "+81 3-1234-5678"),
    ("London +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("London +44 (0)20 7946 0958", "phone", "+44 (0)20 7946 0958"),
    ("TEL(02)2345-6789", "phone", "(02)2345-6789"),
    ("Paris +33 1 23 45 67 89", "phone", "+33 1 23 45 67 89"),
    ("HK +852 2345 6789", "phone", "+852 2345 6789"),
    ("上海 +86 138 0013 8000", "phone", "+86 138 0013 8000"),
    # national ID and resident certificates
    ("身分證 A123456789", "tw_id", "A123456789"),
    ("身分證字號:a123456789", "tw_id", "a123456789"),
    ("新式居留證 A800000014", "tw_arc", "A800000014"),
    ("舊式居留證 AA00000009", "tw_arc", "AA00000009"),
    # cards: Visa, Mastercard (both ranges), Amex 4-6-5, JCB, Diners, Discover, UnionPay
    ("卡號 4111 1111 1111 1111", "credit_card", "4111 1111 1111 1111"),
    ("卡號 4111-1111-1111-1111", "credit_card", "4111-1111-1111-1111"),
    ("卡號4111111111111111", "credit_card", "4111111111111111"),
    ("card 5555 5555 5555 4444", "credit_card", "5555 5555 5555 4444"),
    ("card 2223 0031 2200 3222", "credit_card", "2223 0031 2200 3222"),
    ("amex 3782 822463 10005", "credit_card", "3782 822463 10005"),
    ("JCB 3530 1113 3330 0000", "credit_card", "3530 1113 3330 0000"),
    ("diners 3056 930902 5904", "credit_card", "3056 930902 5904"),
    ("discover 6011111111111117", "credit_card", "6011111111111117"),
    ("銀聯 6200 0000 0000 0005", "credit_card", "6200 0000 0000 0005"),
    # IBAN, public IPv4, passport (after the word only)
    ("IBAN DE89 3704 0044 0532 0130 00 please", "iban", "DE89 3704 0044 0532 0130 00"),
    ("pay GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
    ("my home IP is 140.112.8.116, why", "ip_address", "140.112.8.116"),
    ("passport no. 312345678", "passport", "312345678"),
    ("護照號碼：312345678", "passport", "312345678"),
    ("Passport: K12345678", "passport", "K12345678"),
]


@pytest.mark.parametrize(("text", "kind", "found"), POSITIVE)
def test_finds_personal_data(text: str, kind: str, found: str) -> None:
    assert spans(text) == [(kind, found)]
    assert has_pii(text)
    assert pii_kinds(text) == {kind}
    assert found not in redact(text)


# --- what is not -------------------------------------------------------------------------------------

NEGATIVE = [
    "How do I request a new laptop and who approves the purchase?",
    "請問出差住宿費用的報銷上限是多少？",
    # dates, times, years
    "Is the office closed on 2024-05-01?",
    "2024/05/01 開會",
    "2024.05.01 發薪",
    "民國113/05/01 起生效",
    "20240501 的會議紀錄",
    "會議 14:00-15:30，09:30 報到",
    "上班時間 0900-1800",
    "2023-2024 年度考績",
    "自 2019 年起適用",
    # money
    "NT$30,000 以上要主管簽核",
    "US$90 per night, NT$ 1,250,000 budget",
    "報銷 30000 元",
    # extensions alone
    "請打 ext. 5000",
    "分機 5999 是 IT",
    "#1234 轉 5678",
    # form, policy, ticket and version numbers
    "請填 FIN-07 表單",
    "IT-2024-0012 規定",
    "HR-113-0045 公告",
    "Python 3.11.7 and v1.2.3.4 and 10.0.19045.1234",
    "build 2024.05.01.1",
    # ordinary numbers
    "員工編號 12345678",
    "訂單 123456",
    "第 3 年有 14 天年假",
    "統一編號 12345675",
    "訂單編號 20240912345678",
    # Luhn-invalid or network-less long numbers
    "4111 1111 1111 1112",
    "1234 5678 9012 3456",
    "1234567812345670",
    # ID-shaped with a wrong checksum, or with a letter that does not exist in the scheme
    "A123456788",
    "A800000015",
    "AA00000008",
    "AE12345678",
    "A3123456789",
    # IBAN with a wrong check
    "DE88 3704 0044 0532 0130 00",
    # private, loopback, documentation and well-known service addresses
    "印表機 192.168.1.10 連不上",
    "VPN 10.0.0.5 / 172.16.3.4 / 127.0.0.1",
    "test with 192.0.2.15",
    "DNS 8.8.8.8 和 168.95.1.1 都連不到",
    "mask 255.255.255.0",
    "please install version 1.2.3.4 first",
    "升級到 2.5.1.0 版之後就不能登入",
    "Build: 3.4.5.6 fails",
    # phone-shaped but outside every numbering plan
    "012-345-6789",
    "05 12 34 56 78",
    "0 9 1 2 3 4 5 6 7 8",
    "123-456-7890",
    # passport without a number, and a date after the word
    "護照 要怎麼申請？",
    "passport expires 20250101",
    # at-signs that are not addresses
    "@channel 請看 @mary 的訊息",
    "user@localhost",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_questions_are_not_personal_data(text: str) -> None:
    assert find_pii(text) == []
    assert not has_pii(text)
    assert redact(text) == text


# --- national ID and resident certificate checksums ----------------------------------------------


@pytest.mark.parametrize("letter", sorted(OFFICIAL_CODES))
def test_national_id_checksum_for_every_letter(letter: str) -> None:
    for second in "12":
        valid = make_id(letter, second, "2345678")
        assert spans(f"ID {valid}") == [("tw_id", valid)]
        assert spans(f"ID {valid.lower()}") == [("tw_id", valid.lower())]
        wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
        assert find_pii(f"ID {wrong}") == []


@pytest.mark.parametrize("letter", ["I", "J", "P", "V", "X", "Y", "Z"])
def test_irregular_letters_use_the_official_code(letter: str) -> None:
    """A table in plain alphabetical order gives these letters other codes and other check digits.

    (Only the code's weighted digits count: O's alphabetical 24 weighs like its official 35, and W is
    32 either way, so for those two the every-letter test above is the whole check.)"""
    naive_code = 10 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(letter)
    naive = letter + "1" + "2345678" + check_digit(naive_code, "12345678")
    official = make_id(letter, "1", "2345678")
    assert official != naive
    assert spans(official) == [("tw_id", official)]
    assert find_pii(naive) == []


def test_known_official_examples() -> None:
    assert spans("A123456789") == [("tw_id", "A123456789")]
    assert make_id("A", "1", "2345678") == "A123456789"
    assert make_id("A", "8", "0000001") == "A800000014"


@pytest.mark.parametrize("letter", sorted(OFFICIAL_CODES))
def test_new_resident_certificate_for_every_letter(letter: str) -> None:
    for second in "89":
        valid = make_id(letter, second, "0123456")
        assert spans(valid) == [("tw_arc", valid)]
        wrong = valid[:-1] + str((int(valid[-1]) + 3) % 10)
        assert find_pii(wrong) == []


@pytest.mark.parametrize("second", "ABCD")
def test_old_resident_certificate(second: str) -> None:
    for letter in "AFIOWZ":
        valid = make_old_arc(letter, second, "1234567")
        assert spans(f"居留證 {valid}") == [("tw_arc", valid)]
        wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
        assert find_pii(f"居留證 {wrong}") == []


# --- full-width input -----------------------------------------------------------------------------


def test_full_width_phone_and_email_are_redacted_in_place() -> None:
    text = "電話：０９１２－３４５－６７８，信箱 ｍａｒｙ＠ｅｘａｍｐｌｅ．ｃｏｍ。"
    phone, email = "０９１２－３４５－６７８", "ｍａｒｙ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    assert spans(text) == [("phone", phone), ("email", email)]
    assert redact(text) == "電話：[PHONE]，信箱 [EMAIL]。"


def test_full_width_id_card_and_landline() -> None:
    text = "身分證Ａ１２３４５６７８９，卡號４１１１　１１１１　１１１１　１１１１，電話（０２）２３４５－６７８９"
    assert redact(text) == "身分證[TW_ID]，卡號[CARD]，電話[PHONE]"


def test_mixed_width_and_other_dashes() -> None:
    assert redact("0912‐345‐678 與 ０２-2345－6789") == "[PHONE] 與 [PHONE]"


def test_full_width_negatives_stay_negative() -> None:
    for text in ("２０２４－０５－０１", "ＦＩＮ－０７", "ＮＴ＄３０，０００", "分機　５９９９"):
        assert find_pii(text) == []


# --- several kinds, overlaps, spans ---------------------------------------------------------------


def test_several_kinds_in_one_question() -> None:
    text = "我是 A123456789，手機 0912-345-678，mail a.b@example.com，卡 4111 1111 1111 1111"
    assert pii_kinds(text) == {"tw_id", "phone", "email", "credit_card"}
    assert redact(text) == "我是 [TW_ID]，手機 [PHONE]，mail [EMAIL]，卡 [CARD]"


def test_email_made_of_digits_is_one_email() -> None:
    assert spans("0912345678@example.com") == [("email", "0912345678@example.com")]


def test_trailing_numbers_are_not_swallowed() -> None:
    assert spans("撥 0912 345 678 2 次") == [("phone", "0912 345 678")]
    assert spans("卡 4111 1111 1111 1111 12 月到期") == [("credit_card", "4111 1111 1111 1111")]
    assert spans("2 0912345678") == [("phone", "0912345678")]


def test_matches_are_dataclasses() -> None:
    match = find_pii("x 0912345678")[0]
    assert match == PIIMatch("phone", 2, 12)
    with pytest.raises(AttributeError):
        match.kind = "email"  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------------

FRAGMENTS = [
    "0912-345-678", "02-2345-6789", "(02) 2345-6789 分機 123", "+886 912 345 678", "+1 415 555 0100",
    "A123456789", "A800000014", "AA00000009", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
    "john@example.com", "140.112.8.116", "passport 312345678",
    "2024-05-01", "NT$30,000", "ext. 5000", "分機 5999", "FIN-07", "IT-2024-0012", "v1.2.3.4",
    "A123456788", "4111 1111 1111 1112", "12345678", "3.11", "@mary", "192.168.1.1",
    "請問", "年假", "how many days", "？", "，", "。", " ", " ", "\n", "-", ".", "(", ")", "#", "+", "@",
    "0", "1", "9", "12", "345", "x", "ext", "轉", "a", "Z",
]  # fmt: skip
FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)} | {" ": "\u3000"})


def random_text(rng: random.Random) -> str:
    parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.3:
        parts = [p.translate(FULL_WIDTH) if rng.random() < 0.5 else p for p in parts]
    return "".join(parts)


def check_invariants(text: str) -> None:
    matches = find_pii(text)
    assert has_pii(text) == bool(matches)
    assert pii_kinds(text) == {m.kind for m in matches}
    for earlier, later in itertools.pairwise(matches):
        assert earlier.end <= later.start
    for m in matches:
        assert 0 <= m.start < m.end <= len(text)
    redacted = redact(text)
    assert find_pii(redacted) == []
    assert redact(redacted) == redacted


def test_properties_on_seeded_random_text() -> None:
    rng = random.Random(20240501)
    for _ in range(3000):
        check_invariants(random_text(rng))


if given is not None:

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.booleans())
    def test_properties_hypothesis_fragments(parts: list[str], wide: bool) -> None:
        text = "".join(parts)
        check_invariants(text.translate(FULL_WIDTH) if wide else text)

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="0123456789 -.()+#@xA\uff10\uff11\uff0d\uff20分機", max_size=40))
    def test_properties_hypothesis_characters(text: str) -> None:
        check_invariants(text)
