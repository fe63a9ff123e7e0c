import pytest

from gandemo.validation import InvalidInput, as_int


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), ("7", 7), (" 8 ", 8), (0, 0), (10, 10)])
def test_accepts_whole_numbers(value, expected):
    assert as_int(value, "n", 0, 10) == expected


@pytest.mark.parametrize(
    "value, words",
    [
        (3.5, "whole number"),
        ("abc", "whole number"),
        (None, "whole number"),
        (True, "whole number"),
        (float("nan"), "whole number"),
        (float("inf"), "whole number"),
        ([1], "whole number"),
        (-1, "from 0 to 10, got -1"),
        (11, "from 0 to 10, got 11"),
    ],
)
def test_refuses_everything_else_saying_what_is_allowed(value, words):
    with pytest.raises(InvalidInput, match=words) as err:
        as_int(value, "count", 0, 10)
    assert str(err.value).startswith("count must be")


def test_as_float_accepts_numbers_in_range_and_refuses_the_rest():
    from gandemo.validation import as_float

    assert as_float("0.5", "lr", 0.0001, 1) == 0.5 and as_float(1, "lr", 0.0001, 1) == 1.0
    for bad in (0, 100, float("nan"), float("inf"), "x", None, True):
        with pytest.raises(InvalidInput, match="lr must be a number from 0.0001 to 1"):
            as_float(bad, "lr", 0.0001, 1)
