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


def test_refused_values_are_echoed_short():
    from gandemo.validation import shown

    with pytest.raises(InvalidInput) as err:
        as_int("x" * 1_000_000, "seed", 0, 10)
    assert len(str(err.value)) < 120 and str(err.value).endswith("xxx...")
    with pytest.raises(InvalidInput, match="number of about 5000 digits"):
        as_int(10**5000, "seed", 0, 10)  # more digits than Python will print
    assert shown([1, 2]) == "[1, 2]" and len(shown(list(range(1000)))) == 40


def test_numpy_integers_count_as_whole_numbers():
    import numpy as np

    assert as_int(np.int64(7), "n", 0, 10) == 7 and as_int(np.float32(3.0), "n", 0, 10) == 3


def test_as_bool_takes_what_a_checkbox_or_a_script_sends():
    import numpy as np

    from gandemo.validation import as_bool

    assert as_bool(True, "x") and not as_bool("False", "x") and as_bool(1, "x") and as_bool(np.bool_(True), "x")
    for bad in ("yes", 2, None, [], "", 0.5):
        with pytest.raises(InvalidInput, match="mute must be true or false"):
            as_bool(bad, "mute")
