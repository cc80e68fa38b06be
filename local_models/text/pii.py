"""Redact personal data from free text before it is indexed, stored in a model artifact or shown to a model.

Kinds: e-mail addresses, phone numbers (Chinese mobiles with or without +86, and international / North-American
numbers of at least 10 digits), Chinese resident identity numbers (18 characters, ISO 7064 MOD 11-2 checksum),
payment card numbers (13-19 digits, Luhn checksum) and street addresses where their shape is clear ("221 Baker
Street", "北京市朝阳区建国路88号"). Identity and card numbers are only redacted when their checksum
holds, so order numbers, sizes and prices that merely look long survive.

Pure standard library, and the one redactor of the project: the privacy layer in ``assistant/`` applies it to
everything sent to a remote model.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CN_ID = "[ID]"
CARD = "[CARD]"
ADDRESS = "[ADDRESS]"

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CN_ID_RE = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
                       r"[0-9Xx](?![0-9A-Za-z])")
_CARD_RE = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Chinese mobiles: 1[3-9] and nine digits, optionally +86/0086 and 3-4-4 grouping.
_CN_MOBILE_RE = re.compile(r"(?<!\d)(?:(?:\+|00)86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# International (+CC …) and North-American ((555) 123-4567) numbers; the digit count is checked afterwards.
_PHONE_RE = re.compile(r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}(?![ .-]?\d)")

# A house number and one to three capitalised words ending in a street type; Chinese: (province) city district ...
# road/street number. Addresses written any other way are not detectable by shape and are left alone.
_ADDRESS_RE = re.compile(
    r"(?i:\b\d{1,5}\s+)(?:[A-Z][a-z]+\s){1,3}(?i:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|court|"
    r"place|square|boulevard|blvd)\b\.?|"
    r"(?:[\u4e00-\u9fff]{2}省)?[\u4e00-\u9fff]{2}市[\u4e00-\u9fff]{1,4}[区县][\u4e00-\u9fff\d]{1,20}?[路街道]"
    r"[\d\-]+号")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def cn_id_valid(number: str) -> bool:
    """True when ``number`` is an 18-character Chinese resident id whose last character is its checksum."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum (payment cards)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass
class Redaction:
    """The redacted text and how many of each kind were replaced."""

    text: str
    counts: Counter = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(self.counts)


def redact_with_counts(text: str) -> Redaction:
    """Replace personal data in ``text`` with placeholders (``[EMAIL]``, ``[PHONE]``, ``[ID]``, ``[CARD]``,
    ``[ADDRESS]``).

    Args:
        text: any free text (reviews, notes, questions).

    Returns:
        The redacted text and a counter of replacements per placeholder.
    """
    counts: Counter = Counter()
    if not text:
        return Redaction(text or "", counts)

    def sub(pattern: re.Pattern, placeholder: str, s: str, check=None) -> str:
        def repl(m: re.Match) -> str:
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[placeholder] += 1
            return placeholder
        return pattern.sub(repl, s)

    # Order matters: e-mails first (they contain digits), then the checksum-validated numbers, which are longer
    # than phone numbers and would otherwise be cut into phone-shaped pieces.
    out = sub(_EMAIL_RE, EMAIL, text)
    out = sub(_CN_ID_RE, CN_ID, out, cn_id_valid)
    out = sub(_CARD_RE, CARD, out, lambda s: 13 <= len(d := re.sub(r"\D", "", s)) <= 19 and luhn_valid(d))
    out = sub(_CN_MOBILE_RE, PHONE, out)
    out = sub(_PHONE_RE, PHONE, out, lambda s: 10 <= len(re.sub(r"\D", "", s)) <= 15)
    out = sub(_ADDRESS_RE, ADDRESS, out)
    return Redaction(out, counts)


def redact(text: str) -> str:
    """``text`` with e-mails, phone numbers, Chinese resident ids, card numbers and street addresses replaced by
    placeholders."""
    return redact_with_counts(text).text
