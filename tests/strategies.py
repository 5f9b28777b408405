"""Hypothesis strategies shared by the fuzzing suites."""

from hypothesis import strategies as st


def json_values(
    hostile_strings: list[str], *, int_bound: int, text_size: int, key_size: int, max_leaves: int
):
    """Any JSON value, its strings and keys often drawn from `hostile_strings`."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-int_bound, max_value=int_bound)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text_size)
        | st.sampled_from(hostile_strings)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.text(max_size=key_size) | st.sampled_from(hostile_strings), children, max_size=4
            )
        ),
        max_leaves=max_leaves,
    )
