"""Signed quote ids (swap_runtime.quote_token): what the quote service seals opens only unaltered, only with a
trusted key and only while the quote is valid; any single changed byte or character is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2
from swap_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from swap_runtime.quote_token import (
    DOMAIN,
    MAX_TOKEN_CHARS,
    QuoteSigner,
    QuoteVerifier,
    TokenError,
    check_valid,
    key_id,
    main,
    new_key_pair,
    open_quote,
    private_key,
    public_key,
)

OLD_SEED, OLD_PUBLIC = new_key_pair()
NEW_SEED, NEW_PUBLIC = new_key_pair()
OLD = QuoteSigner(private_key(OLD_SEED))
NEW = QuoteSigner(private_key(NEW_SEED))
QUOTE = quote_pb2.Quote(
    quote_id="0123456789abcdef0123456789abcdef",
    src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token="0x1111111111111111111111111111111111111111"),
    dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token="tusd.test.near"),
    src_amount="10000000",
    min_received="9864927",
    issued_at=1_700_000_000,
    valid_until=1_700_000_030,
    src_safety_deposit="1000000000000000",
)
TERMS = QUOTE.SerializeToString(deterministic=True)
TOKEN = NEW.seal(TERMS)


def verifier(*publics: str) -> QuoteVerifier:
    return QuoteVerifier(public_key(p) for p in publics)


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_sealed_quote_opens_with_its_public_key() -> None:
    assert verifier(NEW_PUBLIC).open(TOKEN) == TERMS
    opened = open_quote(verifier(NEW_PUBLIC), TOKEN)
    assert opened.quote_id == TOKEN  # known by the token, signed under its serial
    opened.quote_id = QUOTE.quote_id
    assert opened == QUOTE
    # Layout: version 1, the key id, the signature, then the terms in clear.
    data = raw(TOKEN)
    assert data[0] == 1 and data[1:9] == NEW.key_id == key_id(public_key(NEW_PUBLIC)) and data[73:] == TERMS


def test_keys_parse_from_hex_with_or_without_0x() -> None:
    assert bytes(public_key("0x" + NEW_PUBLIC.upper())) == bytes.fromhex(NEW_PUBLIC)
    for bad in ("", "abc", "zz" * 32, "11" * 31, "11" * 33):
        with pytest.raises(ValueError, match="64 hex digits"):
            private_key(bad)
        with pytest.raises(ValueError, match="64 hex digits"):
            public_key(bad)
    with pytest.raises(ValueError, match="at least one"):
        QuoteVerifier([])


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(TokenError) as err:
        verifier(OLD_PUBLIC).open(TOKEN)
    assert err.value.message == f"signed with key {NEW.key_id.hex()}, which is not trusted"
    assert not err.value.malformed


def test_another_key_under_a_trusted_key_id_is_refused() -> None:
    """Someone with a key of their own who writes a trusted key id into the header."""
    forged_header = bytes([1]) + OLD.key_id
    signature = private_key(NEW_SEED).sign(DOMAIN + forged_header + TERMS).signature
    with pytest.raises(TokenError, match="signature does not verify"):
        verifier(OLD_PUBLIC).open(encode(forged_header + signature + TERMS))


def test_a_tampered_term_is_refused() -> None:
    tampered = quote_pb2.Quote()
    tampered.CopyFrom(QUOTE)
    tampered.min_received = "99999999"
    data = raw(TOKEN)
    with pytest.raises(NotFound) as err:
        open_quote(verifier(NEW_PUBLIC), encode(data[:73] + tampered.SerializeToString(deterministic=True)))
    assert err.value.reason == "QUOTE_NOT_FOUND"
    assert err.value.metadata == {"field": "quote_id"}
    assert err.value.message == "quote_id: no such quote: the signature does not verify: the quote was altered"


def test_key_rotation_trusts_the_listed_keys_only() -> None:
    old_token = OLD.seal(TERMS)
    both = verifier(OLD_PUBLIC, NEW_PUBLIC)
    assert both.open(old_token) == both.open(TOKEN) == TERMS
    assert sorted(both.key_ids()) == sorted([OLD.key_id.hex(), NEW.key_id.hex()])
    with pytest.raises(TokenError, match="not trusted"):
        verifier(NEW_PUBLIC).open(old_token)  # the old key retired


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "base64url expected"),
        ("f" * 32, "too short"),
        (TOKEN + "=", "base64url expected"),
        (TOKEN.replace("A", "+", 1) if "A" in TOKEN else "+" + TOKEN, "base64url expected"),
        (TOKEN[:-1], "not canonical"),  # may decode, to other bytes or not at all
        (encode(bytes([2]) + raw(TOKEN)[1:]), "unknown version 2"),
    ],
)
def test_malformed_tokens_say_why(token: str, why: str) -> None:
    with pytest.raises(TokenError) as err:
        verifier(NEW_PUBLIC).open(token)
    assert why in err.value.message or err.value.malformed


def test_a_non_canonical_spelling_of_the_same_bytes_is_refused() -> None:
    """Unpadded base64 of 3n+1 bytes ends in a character with 4 unused low bits: setting one keeps the bytes."""
    token = NEW.seal(b"x" * 30)  # 73 + 30 = 103 bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spelled = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert raw(spelled) == raw(token) and spelled != token
    assert verifier(NEW_PUBLIC).open(token) == b"x" * 30
    with pytest.raises(TokenError, match="not canonical"):
        verifier(NEW_PUBLIC).open(spelled)


def test_expiry_is_decided_by_the_clock() -> None:
    check_valid(QUOTE, QUOTE.valid_until - 0.001)
    with pytest.raises(FailedPrecondition) as err:
        check_valid(QUOTE, QUOTE.valid_until)
    assert err.value.reason == "QUOTE_EXPIRED"
    assert err.value.metadata == {"field": "quote_id"}
    assert str(QUOTE.valid_until) in err.value.message and err.value.message.startswith("quote_id:")


@pytest.mark.parametrize("quote_id", ["A" * (MAX_TOKEN_CHARS + 1), "f" * 32, "not a token", TOKEN[:-1]])
def test_what_is_no_quote_id_at_all_is_invalid(quote_id: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        open_quote(verifier(NEW_PUBLIC), quote_id)
    assert err.value.field == "quote_id"


def test_signed_bytes_that_are_no_quote_are_not_found() -> None:
    with pytest.raises(NotFound, match="not a quote"):
        open_quote(verifier(NEW_PUBLIC), NEW.seal(b"\xff\xff\xff"))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    decoded = raw(TOKEN)
    at = data.draw(st.integers(0, len(decoded) - 1), label="byte")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != decoded[at]), label="value")
    changed = decoded[:at] + bytes([value]) + decoded[at + 1 :]
    with pytest.raises(TokenError):
        verifier(OLD_PUBLIC, NEW_PUBLIC).open(encode(changed))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_character_change_is_refused(data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(TOKEN) - 1), label="position")
    char = data.draw(st.characters(codec="ascii").filter(lambda c: c != TOKEN[at]), label="character")
    with pytest.raises(TokenError):
        verifier(OLD_PUBLIC, NEW_PUBLIC).open(TOKEN[:at] + char + TOKEN[at + 1 :])


def test_the_command_prints_a_matching_key_pair(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m swap_runtime.quote_token`: the two settings, as the docs tell operators to use them."""
    main()
    settings = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert set(settings) == {"QUOTE_SIGNING_KEY", "SESSION_QUOTE_PUBLIC_KEYS"}
    signer = QuoteSigner(private_key(settings["QUOTE_SIGNING_KEY"]))
    assert verifier(settings["SESSION_QUOTE_PUBLIC_KEYS"]).open(signer.seal(TERMS)) == TERMS
