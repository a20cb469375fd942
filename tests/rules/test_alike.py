"""Grouping a large collection's items by the values a rule reads."""

from __future__ import annotations

from needle.analyzer.rules.engine import BUDGET
from needle.analyzer.rules.grouping import alike


def _alike(items: list[dict], fields: tuple[str, ...]):
    return alike(items, fields, BUDGET)


def _many(make) -> list[dict]:
    return [make(index) for index in range(2 * BUDGET)]


def test_items_alike_on_the_read_fields_share_a_key_and_the_first_index():
    items = _many(lambda i: {"mac": f"m{i % 3}", "dst": "x", "node": f"n{i}"})
    alike = _alike(items, ("dst", "mac"))
    assert alike is not None
    assert sorted(alike.first.values()) == [0, 1, 2]
    assert alike.keys[3] == alike.keys[0] != alike.keys[1]


def test_one_field_lists_and_absent_fields_still_group():
    single = _alike(_many(lambda i: {"dst": f"d{i % 2}"}), ("dst",))
    assert single is not None and len(single.first) == 2
    lists = _alike(_many(lambda i: {"state": ["PERMANENT"] if i % 2 else []}), ("state",))
    assert lists is not None and len(lists.first) == 2
    # an item lacking a field is its own kind of value, not an error
    absent = _alike(_many(lambda i: {"dst": "d"} if i % 2 else {}), ("dst",))
    assert absent is not None and sorted(absent.first.values()) == [0, 1]


def test_no_grouping_when_it_would_not_pay_or_cannot_key():
    assert _alike([{"a": 1}] * (BUDGET - 1), ("a",)) is None  # too few to bother
    assert _alike(_many(lambda i: {"a": i}), ("a",)) is None  # mostly distinct
    assert _alike(_many(lambda i: {"a": {"b": i % 2}}), ("a",)) is None  # a map value


def test_a_rule_reading_no_field_sees_one_kind_of_item():
    alike = _alike(_many(lambda i: {"a": i}), ())
    assert alike is not None and list(alike.first.values()) == [0]
