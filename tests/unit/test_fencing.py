"""The fence table chain services share: parsing the metadata, the per-key mark, its bound."""

from __future__ import annotations

import pytest
from swap_runtime.errors import FailedPrecondition, InvalidArgument
from swap_runtime.fencing import FenceTable, parse_fence


def test_no_metadata_is_no_fence() -> None:
    assert parse_fence(None) is None
    assert parse_fence([("x-request-id", "r1")]) is None
    FenceTable().check([("x-request-id", "r1")])


def test_parses_key_and_epoch_from_str_or_bytes() -> None:
    assert parse_fence([("x-fence-key", "s1"), ("x-fence-epoch", "7")]) == ("s1", 7)
    assert parse_fence([("x-fence-key", b"s1"), ("x-fence-epoch", b"18446744073709551615")]) == ("s1", 2**64 - 1)


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ([("x-fence-key", "s1"), ("x-fence-epoch", "")], "x-fence-epoch"),
        ([("x-fence-key", "s1"), ("x-fence-epoch", "-1")], "x-fence-epoch"),
        ([("x-fence-key", "s1"), ("x-fence-epoch", " 1")], "x-fence-epoch"),
        ([("x-fence-key", "s1"), ("x-fence-epoch", str(2**64))], "x-fence-epoch"),
        ([("x-fence-key", "s1")], "x-fence-epoch"),
        ([("x-fence-epoch", "1")], "x-fence-key"),
        ([("x-fence-key", ""), ("x-fence-epoch", "1")], "x-fence-key"),
        ([("x-fence-key", "k" * 257), ("x-fence-epoch", "1")], "x-fence-key"),
    ],
)
def test_malformed_fence_names_the_entry(metadata: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_fence(metadata)
    assert err.value.field == field


def test_lower_epoch_is_stale_equal_or_higher_raises_the_mark() -> None:
    table = FenceTable()
    table.admit("s1", 2)
    with pytest.raises(FailedPrecondition) as err:
        table.admit("s1", 1)
    assert err.value.reason == "STALE_FENCE"
    assert table.highest("s1") == 2
    table.admit("s1", 2)
    table.admit("s1", 5)
    assert table.highest("s1") == 5
    table.admit("s2", 1)  # keys are independent


def test_least_recently_used_keys_are_forgotten_beyond_the_limit() -> None:
    table = FenceTable(limit=2)
    table.admit("a", 3)
    table.admit("b", 3)
    table.admit("a", 4)  # "a" is now the most recently used
    table.admit("c", 1)
    assert len(table) == 2
    assert table.highest("b") is None
    assert table.highest("a") == 4
