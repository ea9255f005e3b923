"""docker's human formats: sizes and ages against pairs the docker CLI prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.units import human_duration, human_since, human_size

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1, "1B"),
        (999, "999B"),
        (1000, "1kB"),
        (1024, "1.02kB"),
        (1_980_000, "1.98MB"),
        (1_984_512, "1.98MB"),
        (5_600_000_000, "5.6GB"),
        (77_800_000, "77.8MB"),
        (123_456_789, "123MB"),
        (4_194_304, "4.19MB"),
        (10**12, "1TB"),
    ],
)
def test_human_size_matches_docker_images(size: int, text: str) -> None:
    assert human_size(size) == text


def test_human_size_keeps_gos_exponent_form_just_below_the_next_unit() -> None:
    # docker really prints this for 999,999 bytes: %.3g rounds 999.999 up to 1e+03.
    assert human_size(999_999) == "1e+03kB"


def test_human_size_handles_sizes_beyond_32_bits() -> None:
    assert human_size(2**40) == "1.1TB"


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(0), "Less than a second ago"),
        (timedelta(milliseconds=999), "Less than a second ago"),
        (timedelta(seconds=1), "1 second ago"),
        (timedelta(seconds=59), "59 seconds ago"),
        (timedelta(seconds=60), "About a minute ago"),
        (timedelta(seconds=119), "About a minute ago"),
        (timedelta(minutes=2), "2 minutes ago"),
        (timedelta(minutes=59), "59 minutes ago"),
        (timedelta(minutes=60), "About an hour ago"),
        (timedelta(minutes=89), "About an hour ago"),
        (timedelta(minutes=90), "2 hours ago"),
        (timedelta(hours=3), "3 hours ago"),
        (timedelta(hours=47), "47 hours ago"),
        (timedelta(hours=48), "2 days ago"),
        (timedelta(days=13), "13 days ago"),
        (timedelta(days=14), "2 weeks ago"),
        (timedelta(days=59), "8 weeks ago"),
        (timedelta(days=60), "2 months ago"),
        (timedelta(days=520), "17 months ago"),
        (timedelta(days=730), "2 years ago"),
    ],
)
def test_human_since_matches_docker_created_column(age: timedelta, text: str) -> None:
    assert human_since(NOW - age, NOW) == text


def test_human_since_treats_naive_datetimes_as_utc() -> None:
    naive = (NOW - timedelta(hours=3)).replace(tzinfo=None)
    assert human_since(naive, NOW) == "3 hours ago"


def test_human_since_compares_across_time_zones() -> None:
    created = datetime(2026, 11, 27, 13, 0, 0, tzinfo=timezone(timedelta(hours=4)))
    assert human_since(created, NOW) == "3 hours ago"


def test_human_since_a_future_time_is_less_than_a_second_ago() -> None:
    assert human_since(NOW + timedelta(minutes=5), NOW) == "Less than a second ago"


def test_human_since_defaults_to_the_current_time() -> None:
    assert human_since(datetime.now(UTC) - timedelta(hours=5)) == "5 hours ago"


def test_human_duration_rounds_half_hours_away_from_zero() -> None:
    assert human_duration(2.5 * 3600) == "3 hours"
