"""Time in recall: relative dates resolved to days, and questions that ask for a time.

People say "yesterday", "last week", "two weeks ago", "last Friday", "on the 15th", "Aug 3";
questions say "when", "in May 2023". A relative date, or a date without its year, means a day
only beside the day it was said on, so it is resolved at indexing time against its message's
date and indexed as words ("Sunday 7 May 2023") in a column of its own: "in May 2023" then
finds what was said on 8 June about "last month", and "December 8" finds "on the 8th" said
that month. A passage that places something in time (a resolved date, a month, a year) also
carries ``TIME_MARK``; a question asking for a time ("when", "how long", "what year") adds
that term, so among passages about the same thing, the one that says when ranks first. A
question's own dates are resolved the same way, against when it is asked.

Dates are resolved in UTC, as conversation dates are shown.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from memory.longterm.summarizer import STOPWORDS

__all__ = ["TIME_MARK", "asks_for_time", "time_words"]

# A term no tokenised text holds (query terms are letters and digits, and this one is dropped
# from user queries): it marks passages that say when.
TIME_MARK = "zqtimeref"

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january february march april may june july august september october november december"
).split()
# A month as written: its name or the first three letters ("Sept" too), a full stop allowed.
_MONTH_OF = {name: n for n, name in enumerate(_MONTHS, start=1)} | {
    name[:3]: n for n, name in enumerate(_MONTHS, start=1)
}
_MONTH_OF["sept"] = 9
_MON = r"(" + "|".join(sorted(_MONTH_OF, key=len, reverse=True)) + r")\.?"
# A day of the month, as a number or an ordinal ("15", "15th").
_DOM = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+((?:19|20)\d{2}))?"
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "couple": 2,
    "three": 3,
    "few": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "several": 3,
}
_UNIT_DAYS = {"day": 1, "week": 7, "weekend": 7, "month": 30, "year": 365}

# A count as people say it: "3", "two", "a couple of", "a couple", "a few", "several".
_COUNT = (
    r"\d{1,4}|a couple of|a couple|a few|several|a|an|one|two|three|four|five|six|seven|eight"
    r"|nine|ten"
)
_AGO = re.compile(rf"\b({_COUNT})\s+(day|week|weekend|month|year)s?\s+ago\b")
_LAST = re.compile(
    r"\b(last|this past|past|next|this coming|this)\s+"
    r"(week|weekend|month|year|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
)
# "August 15", "Aug 15th, 2023"; "15 August", "the 8th of December 2023"; "on the 15th".
_MONTH_DAY = re.compile(rf"\b{_MON}\s+{_DOM}\b{_YEAR}\b")
_DAY_MONTH = re.compile(rf"\b{_DOM}\s+(?:of\s+)?{_MON}(?!\w){_YEAR}\b")
_THE_NTH = re.compile(
    rf"\b(?:on|by|until|till|since|from|before|after|around)\s+the\s+(\d{{1,2}})(?:st|nd|rd|th)\b"
    rf"(?!\s+(?:of\s+)?{_MON}(?!\w))"
)
# What may follow a date: nothing, a mark, or a word that is no noun ("on the 15th after my
# trip"); "the 3rd time", "the 2nd floor", "may 5 people" are no dates.
_AFTER_DATE = re.compile(r"\s*(?:$|[^\w\s]|(\w+))")
_DAY_WORDS = re.compile(r"\b(yesterday|today|tonight|tomorrow|last night|this morning)\b")
_EXPLICIT = re.compile(
    r"\b(?:(?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december)\s+\d{4}|(?:19|20)\d{2})\b"
)
# A span or a vague time places something in time without a date to resolve.
_SPAN = re.compile(rf"\bfor (?:{_COUNT}) (?:day|week|month|year)s?\b")
_VAGUE = re.compile(r"\bsince\b|\brecently\b|\bthe other day\b")
# May is a month only beside a day or a year: "I may go" is no date.
_MONTH = re.compile(
    r"\b(?:january|february|march|april|june|july|august|september|october|november|december)\b"
)

# What the patterns need said before they can match: a substring test ("ago" in the text)
# is far cheaper than a scan for a pattern, and most messages place nothing in time.
_UNITS = ("week", "month", "year", "day")  # every unit holds one ("monday", "weekend")
_DAY_WORDS_NEED = ("day", "night", "morning", "tomorrow")
_VAGUE_NEEDS = ("since", "recently", "other day")
_MONTH_NAMES = tuple(name for name in _MONTHS if name != "may")
# A date said with its day of the month, or a year, has a digit: most messages have none.
_DIGIT = re.compile(r"\d")
_DATES = (_MONTH_DAY, _DAY_MONTH, _THE_NTH)

_ASKS = re.compile(
    r"^\s*when\b|\bwhen (?:did|does|do|is|was|were|will|has|had|are)\b|\bhow long\b"
    r"|\b(?:what|which) (?:year|month|week|weekend|day|date|time)\b|\bsince when\b"
    r"|\bhow many (?:years|months|weeks|days)\b"
)


def _said(lowered: str, needed: tuple[str, ...]) -> bool:
    # A plain loop: a generator's frame would cost more than the tests themselves.
    for word in needed:  # noqa: SIM110
        if word in lowered:
            return True
    return False


def _day(moment: datetime) -> str:
    return f"{moment:%A} {moment.day} {moment:%B} {moment.year}"


def _month(moment: datetime) -> str:
    return f"{moment:%B} {moment.year}"


def _shift_month(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def _count(said: str) -> int:
    """A count as said ("3", "two", "a couple of") as a number."""
    if said.isdigit():
        return int(said)
    return _NUMBERS[said.removesuffix(" of").split()[-1]]


def _closest(said: datetime, days: Iterable[tuple[int, int, int]]) -> datetime:
    """Of the days given as (year, month, day), the real one nearest to when it was ``said``."""
    found = []
    for year, month, day in days:
        with contextlib.suppress(ValueError):  # 29 February of a common year, 31 April
            found.append(said.replace(year=year, month=month, day=day))
    if not found:
        raise ValueError(f"no such day near {said:%B %Y}")
    return min(found, key=lambda moment: abs(moment - said))


def _ends_a_date(found: re.Match[str]) -> bool:
    """Whether ``found`` is a date for what follows it: an ordinal ("the 3rd") or "May" and a
    day ("may 5") followed by a noun counts something instead."""
    if found.re is _DAY_MONTH:
        return True  # "15 August", "the 8th of December"
    if found.re is _MONTH_DAY and (found[1] != "may" or found[3] is not None):
        return True  # "Aug 15 ...", "May 5, 2022 ..." can only be dates
    after = _AFTER_DATE.match(found.string, found.end())
    word = after[1] if after is not None else None
    return word is None or word in STOPWORDS or word.isdigit()


def _resolve_date(found: re.Match[str], said: datetime) -> str:
    """A date said with its month ("Aug 15th"; without its year, the nearest such day) or
    without ("the 15th": this month's or the last, whichever is nearer)."""
    if not _ends_a_date(found):
        raise ValueError(f"{found[0]!r} is no date")
    if found.re is _THE_NTH:
        last = _shift_month(said, -1)
        day = int(found[1])
        return _day(_closest(said, [(said.year, said.month, day), (last.year, last.month, day)]))
    if found.re is _MONTH_DAY:
        month, day, year = found[1], found[2], found[3]
    else:
        day, month, year = found[1], found[2], found[3]
    years = [int(year)] if year is not None else [said.year - 1, said.year, said.year + 1]
    return _day(_closest(said, [(y, _MONTH_OF[month], int(day)) for y in years]))


def _resolve(found: re.Match[str], said: datetime) -> str:
    if found.re in (_MONTH_DAY, _DAY_MONTH, _THE_NTH):
        return _resolve_date(found, said)
    groups = found.groups()
    if found.re is _DAY_WORDS:
        word = groups[0]
        offset = {"yesterday": -1, "last night": -1, "tomorrow": 1}.get(word, 0)
        return _day(said + timedelta(days=offset))
    if found.re is _AGO:
        count = _count(groups[0])
        unit = groups[1]
        if unit == "month":
            return _month(_shift_month(said, -count))
        if unit == "year":
            return str(said.year - count)
        moment = said - timedelta(days=count * _UNIT_DAYS[unit])
        return _day(moment) if unit == "day" else f"{_month(moment)} {_day(moment)}"
    which, unit = groups
    ahead = which in ("next", "this coming")
    sign = 1 if ahead else 0 if which == "this" else -1
    if unit == "year":
        return str(said.year + sign)
    if unit == "month":
        return _month(_shift_month(said, sign))
    if unit in ("week", "weekend"):
        moment = said + timedelta(days=7 * sign)
        if unit == "weekend":  # the Saturday of that week
            moment += timedelta(days=5 - moment.weekday())
        return _day(moment)
    # A weekday: the nearest one before (or, ahead, after) the day it was said.
    target = _WEEKDAYS.index(unit)
    if which == "this":  # "this Friday": the one of this week
        return _day(said + timedelta(days=target - said.weekday()))
    delta = (said.weekday() - target) % 7 or 7
    return _day(said + timedelta(days=delta if ahead else -delta))


def time_words(text: str, said: datetime | None) -> str:
    """The dates ``text`` refers to, in words, resolved against when it was ``said``; with
    ``TIME_MARK`` if it places anything in time. Empty if it does not."""
    lowered = text.lower()
    dated = _DIGIT.search(lowered) is not None
    units = _said(lowered, _UNITS)
    patterns: list[re.Pattern[str]] = []
    if _said(lowered, _DAY_WORDS_NEED):
        patterns.append(_DAY_WORDS)
    if "ago" in lowered:
        patterns.append(_AGO)
    if units:
        patterns.append(_LAST)
    if dated:
        patterns.extend(_DATES)
    words: list[str] = []
    if said is not None:
        moment = said.astimezone(UTC)
        for pattern in patterns:
            for found in pattern.finditer(lowered):
                try:
                    words.append(_resolve(found, moment))
                except (ValueError, OverflowError):  # before year 1 or after 9999: no date
                    continue
    if (
        words
        or (dated and _EXPLICIT.search(lowered) is not None)
        or (units and _SPAN.search(lowered) is not None)
        or (_said(lowered, _VAGUE_NEEDS) and _VAGUE.search(lowered) is not None)
        or (_said(lowered, _MONTH_NAMES) and _MONTH.search(lowered) is not None)
    ):
        words.append(TIME_MARK)
    return " ".join(dict.fromkeys(words))


def asks_for_time(query: str) -> bool:
    """Whether a question asks when (or how long): its answer is a time."""
    return _ASKS.search(query.lower()) is not None
