"""The parsers both evaluators rely on (SPEC §3.2): numbers, dates, case folding."""

from datetime import UTC, datetime, timedelta

import pytest

from segments.values import (
    EARLIEST,
    days_before,
    fold,
    iso,
    parse_date,
    parse_number,
    parse_value,
)


@pytest.mark.parametrize(
    "raw, number",
    [
        (12, 12.0),
        (12.5, 12.5),
        (-3, -3.0),
        ("12", 12.0),
        ("12.0", 12.0),
        ("-12", -12.0),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1.5e-3", 0.0015),
        ("007", 7.0),
        ("-0", 0.0),
        (2**53 + 1, float(2**53)),
    ],
)
def test_it_parses_numbers(raw, number):
    assert parse_number(raw) == number


@pytest.mark.parametrize(
    "raw",
    [
        True, False, None, "", " 1", "1 ", "+1", "1,000", "1_000", ".5", "5.", "1e", "e3",
        "NaN", "nan", "Infinity", "-inf", "0x10", "1e400", "١٢", "12abc", "\n12", "12\n",
        [], {}, ["12"], 10**400, float("inf"), float("nan"),
    ],
)  # fmt: skip
def test_it_refuses_what_is_not_a_plain_number(raw):
    assert parse_number(raw) is None


@pytest.mark.parametrize(
    "raw, moment",
    [
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31T09:30", datetime(2024, 1, 31, 9, 30, tzinfo=UTC)),
        ("2024-01-31T09:30:15", datetime(2024, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("2024-01-31T09:30:15Z", datetime(2024, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("2024-01-31T09:30:15.5Z", datetime(2024, 1, 31, 9, 30, 15, 500000, tzinfo=UTC)),
        # Digits beyond microseconds are dropped, not rounded.
        ("2024-01-31T09:30:15.1234567Z", datetime(2024, 1, 31, 9, 30, 15, 123456, tzinfo=UTC)),
        ("2022-01-22T13:00:00+02:00", datetime(2022, 1, 22, 11, tzinfo=UTC)),
        ("2022-01-22T08:00:00-05:00", datetime(2022, 1, 22, 13, tzinfo=UTC)),
        ("2022-01-22T00:30+01:00", datetime(2022, 1, 21, 23, 30, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
        ("0001-01-01", EARLIEST),
    ],
)
def test_it_parses_dates_as_utc(raw, moment):
    parsed = parse_date(raw)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [
        "2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-01-31T24:00",
        "2024-01-31T09:60", "2024-01-31T09:30:60", "2024-01-31 09:30", "2024-01-31t09:30",
        "2024-01-31T09:30z", "2024-01-31T09:30+24:00", "2024-01-31T09:30+01:60",
        "2024-01-31T09:30+0100", "2024-01-31T09", "24-01-31", "2024-1-31", "20240131",
        "0000-01-01", "0001-01-01T00:00+00:01", "9999-12-31T23:59-00:01", "", "yesterday",
        "２０２４-01-31", 20240131, None, True,
    ],
)  # fmt: skip
def test_it_refuses_what_is_not_a_date(raw):
    assert parse_date(raw) is None


def test_iso_round_trips_through_parse_date():
    moment = datetime(2026, 6, 15, 12, 0, 0, 123456, tzinfo=UTC)
    assert iso(moment) == "2026-06-15T12:00:00.123456Z"
    assert parse_date(iso(moment)) == moment


@pytest.mark.parametrize(
    "raw, folded",
    [
        ("Enterprise", "enterprise"),
        ("ABC xyz 123", "abc xyz 123"),
        ("Émile", "Émile"),
        ("ÉMILE", "Émile"),
        ("straße", "straße"),
        ("STRASSE", "strasse"),
        ("İ", "İ"),
        ("ǅ", "ǅ"),
        ("\u212a", "\u212a"),  # the Kelvin sign, which str.lower() turns into "k"
    ],
)
def test_fold_lowers_ascii_letters_only(raw, folded):
    assert fold(raw) == folded


def test_parse_value_keeps_every_form_that_applies():
    assert parse_value("12.0").as_fields() == {
        "text": "12.0",
        "text_folded": "12.0",
        "num": 12.0,
        "date": None,
        "boolean": None,
    }
    assert parse_value("2024-01-31").date == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_value("Émile").text_folded == "Émile"
    assert parse_value(12).as_fields() == {
        "text": None,
        "text_folded": None,
        "num": 12.0,
        "date": None,
        "boolean": None,
    }


@pytest.mark.parametrize("raw", [True, False])
def test_parse_value_keeps_booleans_apart_from_numbers(raw):
    parsed = parse_value(raw)
    assert parsed.boolean is raw
    assert parsed.num is None and parsed.text is None


@pytest.mark.parametrize("raw", [["a"], {"a": 1}, None])
def test_parse_value_leaves_lists_and_objects_opaque(raw):
    assert set(parse_value(raw).as_fields().values()) == {None}


def test_days_before():
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    assert days_before(now, 0) == now
    assert days_before(now, 7) == datetime(2026, 6, 8, 12, tzinfo=UTC)
    # Too far back for a datetime, or even for a timedelta: the earliest moment.
    assert days_before(now, 10**6) == EARLIEST
    assert days_before(now, 10**12) == EARLIEST
