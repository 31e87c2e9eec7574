from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esv.ids import ESV_ID_PATTERN, id_to_token, is_valid_id, token_to_id

ids = st.from_regex(r"\Aesv-[a-z0-9_-]{1,124}\Z", fullmatch=True)


@pytest.mark.parametrize(
    "esv_id",
    ["esv-a", "esv-email-provider-port", "esv-my_var_1", "esv-" + "a" * 124, "esv-3d06f2834c-x"],
)
def test_valid_ids(esv_id: str) -> None:
    assert is_valid_id(esv_id)
    assert ESV_ID_PATTERN.match(esv_id)


@pytest.mark.parametrize(
    "esv_id",
    ["esv-", "esv-A", "ESV-a", "esv.a", "esv-a.b", "esv-a\n", "esv-" + "a" * 125, "x-a", ""],
)
def test_invalid_ids(esv_id: str) -> None:
    assert not is_valid_id(esv_id)


def test_mapping_examples() -> None:
    assert id_to_token("esv-a-b_c") == "esv.a.b_c"
    assert token_to_id("esv.a.b_c") == "esv-a-b_c"
    assert token_to_id("esv.email.provider.port") == "esv-email-provider-port"


def test_id_to_token_refuses_invalid_ids() -> None:
    with pytest.raises(ValueError, match="not a valid ESV id"):
        id_to_token("esv-Bad")


@given(ids)
def test_round_trip_id_token_id(esv_id: str) -> None:
    token = id_to_token(esv_id)
    assert "-" not in token
    assert token_to_id(token) == esv_id


@given(st.from_regex(r"\Aesv(\.[a-z0-9_]{1,10}){1,8}\Z", fullmatch=True))
def test_round_trip_token_id_token(token: str) -> None:
    assert id_to_token(token_to_id(token)) == token
