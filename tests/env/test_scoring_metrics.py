"""Per-cell preprocessing steps, metrics and the date parser, on hand-checked cases."""

from __future__ import annotations

from datetime import date

import pytest

from wideseek_env.scoring.dates import REFERENCE_YEAR, parse_date
from wideseek_env.scoring.metrics import (
    date_near,
    exact_match,
    extract_number,
    norm_date,
    norm_str,
    number_near,
    set_match,
    split_items,
    url_match,
)


def test_norm_str_lowers_strips_and_drops_spaces_and_stars():
    assert norm_str("  **Harvard University** ") == "harvarduniversity"
    assert norm_str("\u3000北京 大学\t") == "北京大学"
    assert norm_str("A\tB") == "a\tb"  # only " " is removed inside


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("about 1,234.5 km", "1234.5"),
        ("-.5", "-.5"),
        ("12%", "12%"),
        ("+3.", "+3."),
        ("v2 then 3", "2"),
        ("no digits", "NULL"),
        ("nan", "NULL"),
        ("约6300公里", "6300"),
        ("3.6e6", "3.6"),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_exact_match_ignores_case_only():
    assert exact_match("Paris", "paris") == 1.0
    assert exact_match("Paris ", "paris") == 0.0


@pytest.mark.parametrize(
    ("response", "target", "criterion", "expected"),
    [
        ("110", "100", 0.1, 1.0),  # |10| <= 100 * 0.1
        ("110.01", "100", 0.1, 0.0),
        ("90", "100", 0.1, 1.0),
        ("100", "100", 0.0, 1.0),
        ("100.5", "100", 0.0, 0.0),
        ("50%", "0.5", 0.0, 1.0),  # a "%" divides by 100
        ("0.5", "50%", 0.0, 1.0),
        ("-5", "5", 1.0, 0.0),  # |-5 - 5| = 10 > 5
        ("NULL", "NULL", 0.1, 1.0),  # neither is a number and the texts are equal
        ("NULL", "abc", 0.1, 0.0),
        ("nan", "nan", 0.1, 0.0),  # float("nan") parses, and nan is never near anything
        ("0", "0", 0.0, 1.0),
        ("1", "0", 10.0, 0.0),  # relative to |gold| = 0
    ],
)
def test_number_near(response, target, criterion, expected):
    assert number_near(response, target, criterion) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-11", date(2024, 4, 11)),
        ("2024/4/1", date(2024, 4, 1)),
        ("2024.04.11", date(2024, 4, 11)),
        ("2024-04-11T10:00", date(2024, 4, 11)),
        ("2016-09", date(2016, 9, 1)),
        ("2024-13-01", date(2024, 1, 13)),  # month > 12: swapped, as dateparser does
        ("04/11/2024", date(2024, 4, 11)),  # month first
        ("13/04/2024", date(2024, 4, 13)),
        ("3/5/81", date(1981, 3, 5)),
        ("9/2021", date(2021, 9, 1)),
        ("Mar 05, 1981", date(1981, 3, 5)),
        ("Nov 7,2014", date(2014, 11, 7)),
        ("5 March 2021", date(2021, 3, 5)),
        ("Thursday, April 11th, 2024", date(2024, 4, 11)),
        ("Sept. 5, 2021", date(2021, 9, 5)),
        ("05-Sep-21", date(2021, 9, 5)),
        ("March 2021", date(2021, 3, 1)),
        ("March 5", date(REFERENCE_YEAR, 3, 5)),
        ("2021年3月5日", date(2021, 3, 5)),
        ("2024年4月11日星期四", date(2024, 4, 11)),
        ("23年5月", date(2023, 5, 1)),
        ("2021年3月", date(2021, 3, 1)),
        ("**2024-04-11**", date(2024, 4, 11)),
        ("-, 1984", date(1984, 1, 1)),
        ("nan", date(REFERENCE_YEAR, 8, 1)),
        ("$2017/7/27", date(2017, 7, 27)),  # symbols and punctuation around are ignored
        ("(2017/7/27)", date(2017, 7, 27)),
        ("2017/7/27%", date(2017, 7, 27)),
        ("about 2017/7/27", date(2017, 7, 27)),
        ("Jul 27, 2017 (UTC)", date(2017, 7, 27)),
        ("2017/7/27 km", None),
        ("2024-02-30", None),
        ("2021年03月", None),  # dateparser reads nothing here either
        ("2023年8月\u200c", None),
        ("incumbent", None),
        ("20240411", None),
        ("", None),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_norm_date_and_date_near():
    assert norm_date("Mar 5, 2021") == "2021-03-05"
    assert norm_date("unknown") == "unknown"
    assert date_near("2021-03-05", "2021-04-05") == 1.0  # 31 days
    assert date_near("2021-03-05", "2021-04-06") == 0.0  # 32 days
    assert date_near("unknown", "n/a") == 1.0  # neither is a date
    assert date_near("unknown", "2021-03-05") == 0.0


def test_url_match_compares_host_sets():
    assert url_match("https://www.mit.edu/about", "http://www.mit.edu/") == 1.0
    assert url_match("https://mit.edu/", "https://www.mit.edu/") == 0.0
    assert (
        url_match("see https://a.org and https://b.org", "https://b.org/x https://a.org/y") == 1.0
    )
    assert url_match("no link", "none here") == 1.0  # two empty sets are equal
    assert url_match("no link", "https://a.org") == 0.0
    # urlsplit rejects this ("Invalid IPv6 URL"); the official evaluator would crash.
    assert url_match("http://[broken/x", "http://[broken/y") == 1.0
    assert url_match("http://[broken/x", "https://a.org") == 0.0


def test_set_match_ignores_order_and_separators():
    gold = "English, French, Spanish"
    assert set_match("Spanish; English and French", gold) == 1.0
    assert set_match("french / ENGLISH / spanish", gold) == 1.0
    assert set_match("English, French", gold) == 0.0  # an item missing
    assert set_match("English, French, Spanish, German", gold) == 0.0  # an item too many
    assert set_match("English, French, Spanish, Spanish", gold) == 1.0  # sets, not lists
    assert set_match("", "") == 1.0
    assert set_match("Bosnia and Herzegovina", "Bosnia & Herzegovina") == 1.0
    # A numeric criterion is a minimum Jaccard overlap: 2 of 4 items = 0.5.
    assert set_match("English, French, German", gold, 0.5) == 1.0
    assert set_match("English, German", gold, 0.5) == 0.0
    assert split_items("Fe-54;  Fe-56\nFe-57") == frozenset({"fe-54", "fe-56", "fe-57"})


def test_set_match_in_a_scored_task():
    from wideseek_env.scoring import score_response
    from wideseek_env.tasks import ColumnEval, GoldTable, Task

    task = Task("t", "q", "en", ("country",), ("country", "languages"),
                {"country": ColumnEval(("norm_str",), ("exact_match",)),
                 "languages": ColumnEval((), ("set_match",))},
                GoldTable(("Country", "Languages"), (("Belgium", "Dutch, French, German"),
                                                     ("Chile", "Spanish"))))
    answer = "| Country | Languages |\n|---|---|\n| Belgium | German; Dutch and French |\n" \
             "| Chile | Spanish, English |"
    record = score_response(task, answer)
    assert record.item_precision == record.item_recall == 0.75  # 3 of 4 cells right
