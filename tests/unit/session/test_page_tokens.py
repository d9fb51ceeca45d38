"""Page tokens: opaque, they round-trip the item they mark, and anything else names `page_token`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from session.service import page_token_after, read_page_token
from swap_runtime.errors import InvalidArgument

ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@given(session_id=ids, created_at=times)
def test_a_token_names_its_item(session_id: str, created_at: float) -> None:
    token = page_token_after((session_id, created_at))
    assert len(token) <= 128 and token.replace("-", "").replace("_", "").isalnum()
    assert read_page_token(token) == (created_at, session_id)


@given(token=st.text(max_size=200))
def test_anything_else_is_refused_naming_the_field(token: str) -> None:
    try:
        created_at, session_id = read_page_token(token)
    except InvalidArgument as err:
        assert err.field == "page_token"
        return
    # The rare text that decodes to a well-formed item is a token: it names a session id and a time.
    assert read_page_token(page_token_after((session_id, created_at))) == (created_at, session_id)


@pytest.mark.parametrize("token", ["", "abc", "9" * 30, "a.b", "x" * 129, page_token_after(("ab", 1.0))])
def test_known_bad_tokens(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        read_page_token(token)
    assert err.value.field == "page_token"
