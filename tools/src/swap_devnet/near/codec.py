"""Borsh encoding of NEAR transactions and their actions.

py-near builds transactions with py-near-primitives, whose Python surface does not expose the actions of a
decoded transaction, so the layout is read here field by field. Both transaction versions are understood:
V0 (what every current client sends) and V1 (a leading 0x01 tag and a trailing priority fee).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from swap_devnet.near.keys import (
    ED25519_KEY_TYPE,
    KeyPair,
    b58encode,
    crypto_hash,
    encode_public_key,
    encode_signature,
)

T = TypeVar("T")

SECP256K1_KEY_TYPE = 1
# NEP-461 prefix of signed delegate actions: 2**30 + the NEP number, so the bytes can never be a transaction.
DELEGATE_ACTION_PREFIX = 2**30 + 366


class DecodeError(ValueError):
    """The bytes are not a borsh-encoded SignedTransaction."""


class BorshReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def position(self) -> int:
        return self._pos

    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise DecodeError(f"unexpected end of input at byte {self._pos} (wanted {size} more)")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def peek(self) -> int:
        if self._pos >= len(self._data):
            raise DecodeError("unexpected end of input")
        return self._data[self._pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.take(8))[0]
        return value

    def u128(self) -> int:
        return int.from_bytes(self.take(16), "little")

    def bytes_(self) -> bytes:
        return self.take(self.u32())

    def string(self) -> str:
        try:
            return self.bytes_().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid utf-8 string: {exc}") from exc

    def vec(self, item: Callable[[], T]) -> list[T]:
        return [item() for _ in range(self.u32())]

    def option(self, item: Callable[[], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag == 1:
            return item()
        raise DecodeError(f"invalid option tag {tag}")

    def public_key(self) -> PublicKey:
        key_type = self.u8()
        if key_type == ED25519_KEY_TYPE:
            return PublicKey(key_type, self.take(32))
        if key_type == SECP256K1_KEY_TYPE:
            return PublicKey(key_type, self.take(64))
        raise DecodeError(f"unknown key type {key_type}")

    def signature(self) -> Signature:
        key_type = self.u8()
        if key_type == ED25519_KEY_TYPE:
            return Signature(key_type, self.take(64))
        if key_type == SECP256K1_KEY_TYPE:
            return Signature(key_type, self.take(65))
        raise DecodeError(f"unknown signature type {key_type}")


class BorshWriter:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def raw(self, data: bytes) -> None:
        self._parts.append(data)

    def u8(self, value: int) -> None:
        self._parts.append(struct.pack("<B", value))

    def u32(self, value: int) -> None:
        self._parts.append(struct.pack("<I", value))

    def u64(self, value: int) -> None:
        self._parts.append(struct.pack("<Q", value))

    def u128(self, value: int) -> None:
        self._parts.append(value.to_bytes(16, "little"))

    def bytes_(self, data: bytes) -> None:
        self.u32(len(data))
        self._parts.append(data)

    def string(self, text: str) -> None:
        self.bytes_(text.encode("utf-8"))

    def public_key(self, key: PublicKey) -> None:
        self.u8(key.key_type)
        self._parts.append(key.data)

    def signature(self, signature: Signature) -> None:
        self.u8(signature.key_type)
        self._parts.append(signature.data)


# --------------------------------------------------------------------------------------------------------------
# Keys, signatures and actions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    key_type: int
    data: bytes

    @classmethod
    def ed25519(cls, data: bytes) -> PublicKey:
        return cls(ED25519_KEY_TYPE, data)

    @property
    def text(self) -> str:
        if self.key_type == ED25519_KEY_TYPE:
            return encode_public_key(self.data)
        return "secp256k1:" + b58encode(self.data)


@dataclass(frozen=True)
class Signature:
    key_type: int
    data: bytes

    @property
    def text(self) -> str:
        if self.key_type == ED25519_KEY_TYPE:
            return encode_signature(self.data)
        return "secp256k1:" + b58encode(self.data)


@dataclass(frozen=True)
class FunctionCallPermission:
    allowance: int | None
    receiver_id: str
    method_names: tuple[str, ...]


# None stands for full access.
Permission = FunctionCallPermission | None


@dataclass(frozen=True)
class CreateAccount:
    pass


@dataclass(frozen=True)
class DeployContract:
    code: bytes


@dataclass(frozen=True)
class FunctionCall:
    method_name: str
    args: bytes
    gas: int
    deposit: int


@dataclass(frozen=True)
class Transfer:
    deposit: int


@dataclass(frozen=True)
class Stake:
    stake: int
    public_key: PublicKey


@dataclass(frozen=True)
class AddKey:
    public_key: PublicKey
    nonce: int
    permission: Permission


@dataclass(frozen=True)
class DeleteKey:
    public_key: PublicKey


@dataclass(frozen=True)
class DeleteAccount:
    beneficiary_id: str


@dataclass(frozen=True)
class DelegateAction:
    sender_id: str
    receiver_id: str
    actions: tuple[Action, ...]
    nonce: int
    max_block_height: int
    public_key: PublicKey


@dataclass(frozen=True)
class Delegate:
    delegate_action: DelegateAction
    signature: Signature


@dataclass(frozen=True)
class DeployGlobalContract:
    code: bytes
    by_account_id: bool


@dataclass(frozen=True)
class UseGlobalContract:
    code_hash: bytes | None
    account_id: str | None


Action = (
    CreateAccount
    | DeployContract
    | FunctionCall
    | Transfer
    | Stake
    | AddKey
    | DeleteKey
    | DeleteAccount
    | Delegate
    | DeployGlobalContract
    | UseGlobalContract
)


def _read_permission(reader: BorshReader) -> Permission:
    tag = reader.u8()
    if tag == 0:
        allowance = reader.option(reader.u128)
        receiver_id = reader.string()
        method_names = tuple(reader.vec(reader.string))
        return FunctionCallPermission(allowance, receiver_id, method_names)
    if tag == 1:
        return None
    raise DecodeError(f"unsupported access key permission {tag}")


def _read_delegate_action(reader: BorshReader) -> DelegateAction:
    sender_id = reader.string()
    receiver_id = reader.string()
    actions = tuple(reader.vec(lambda: read_action(reader, nested=True)))
    nonce = reader.u64()
    max_block_height = reader.u64()
    public_key = reader.public_key()
    return DelegateAction(sender_id, receiver_id, actions, nonce, max_block_height, public_key)


def read_action(reader: BorshReader, *, nested: bool = False) -> Action:
    tag = reader.u8()
    match tag:
        case 0:
            return CreateAccount()
        case 1:
            return DeployContract(reader.bytes_())
        case 2:
            method_name = reader.string()
            args = reader.bytes_()
            return FunctionCall(method_name, args, reader.u64(), reader.u128())
        case 3:
            return Transfer(reader.u128())
        case 4:
            stake = reader.u128()
            return Stake(stake, reader.public_key())
        case 5:
            public_key = reader.public_key()
            nonce = reader.u64()
            return AddKey(public_key, nonce, _read_permission(reader))
        case 6:
            return DeleteKey(reader.public_key())
        case 7:
            return DeleteAccount(reader.string())
        case 8 if not nested:
            delegate_action = _read_delegate_action(reader)
            return Delegate(delegate_action, reader.signature())
        case 9:
            code = reader.bytes_()
            return DeployGlobalContract(code, by_account_id=reader.u8() == 1)
        case 10:
            kind = reader.u8()
            if kind == 0:
                return UseGlobalContract(reader.take(32), None)
            return UseGlobalContract(None, reader.string())
    raise DecodeError(f"unsupported action tag {tag}")


def write_action(writer: BorshWriter, action: Action) -> None:
    match action:
        case CreateAccount():
            writer.u8(0)
        case DeployContract(code=code):
            writer.u8(1)
            writer.bytes_(code)
        case FunctionCall(method_name=method_name, args=args, gas=gas, deposit=deposit):
            writer.u8(2)
            writer.string(method_name)
            writer.bytes_(args)
            writer.u64(gas)
            writer.u128(deposit)
        case Transfer(deposit=deposit):
            writer.u8(3)
            writer.u128(deposit)
        case Stake(stake=stake, public_key=public_key):
            writer.u8(4)
            writer.u128(stake)
            writer.public_key(public_key)
        case AddKey(public_key=public_key, nonce=nonce, permission=permission):
            writer.u8(5)
            writer.public_key(public_key)
            writer.u64(nonce)
            if permission is None:
                writer.u8(1)
            else:
                writer.u8(0)
                if permission.allowance is None:
                    writer.u8(0)
                else:
                    writer.u8(1)
                    writer.u128(permission.allowance)
                writer.string(permission.receiver_id)
                writer.u32(len(permission.method_names))
                for name in permission.method_names:
                    writer.string(name)
        case DeleteKey(public_key=public_key):
            writer.u8(6)
            writer.public_key(public_key)
        case DeleteAccount(beneficiary_id=beneficiary_id):
            writer.u8(7)
            writer.string(beneficiary_id)
        case Delegate(delegate_action=delegate_action, signature=signature):
            writer.u8(8)
            writer.raw(encode_delegate_action(delegate_action))
            writer.signature(signature)
        case DeployGlobalContract(code=code, by_account_id=by_account_id):
            writer.u8(9)
            writer.bytes_(code)
            writer.u8(1 if by_account_id else 0)
        case UseGlobalContract(code_hash=code_hash, account_id=account_id):
            writer.u8(10)
            if code_hash is not None:
                writer.u8(0)
                writer.raw(code_hash)
            else:
                writer.u8(1)
                writer.string(account_id or "")


def encode_delegate_action(action: DelegateAction) -> bytes:
    writer = BorshWriter()
    writer.string(action.sender_id)
    writer.string(action.receiver_id)
    writer.u32(len(action.actions))
    for inner in action.actions:
        write_action(writer, inner)
    writer.u64(action.nonce)
    writer.u64(action.max_block_height)
    writer.public_key(action.public_key)
    return writer.getvalue()


def delegate_action_hash(action: DelegateAction) -> bytes:
    """What the sender of a meta transaction signs (NEP-461)."""
    writer = BorshWriter()
    writer.u32(DELEGATE_ACTION_PREFIX)
    writer.raw(encode_delegate_action(action))
    return crypto_hash(writer.getvalue())


# --------------------------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    signer_id: str
    public_key: PublicKey
    nonce: int
    receiver_id: str
    block_hash: bytes
    actions: tuple[Action, ...]
    priority_fee: int | None = None  # set only for V1 transactions

    def encode(self) -> bytes:
        writer = BorshWriter()
        if self.priority_fee is not None:
            writer.u8(1)
        writer.string(self.signer_id)
        writer.public_key(self.public_key)
        writer.u64(self.nonce)
        writer.string(self.receiver_id)
        writer.raw(self.block_hash)
        writer.u32(len(self.actions))
        for action in self.actions:
            write_action(writer, action)
        if self.priority_fee is not None:
            writer.u64(self.priority_fee)
        return writer.getvalue()

    def sign(self, key: KeyPair) -> SignedTransaction:
        body = self.encode()
        signature = Signature(ED25519_KEY_TYPE, key.sign(crypto_hash(body)))
        return SignedTransaction(self, signature, body)


@dataclass(frozen=True)
class SignedTransaction:
    transaction: Transaction
    signature: Signature
    body: bytes = field(repr=False)

    @property
    def hash(self) -> bytes:
        return crypto_hash(self.body)

    @property
    def hash_text(self) -> str:
        return b58encode(self.hash)

    def encode(self) -> bytes:
        writer = BorshWriter()
        writer.raw(self.body)
        writer.signature(self.signature)
        return writer.getvalue()

    def to_base64(self) -> str:
        return base64.b64encode(self.encode()).decode("ascii")


def _read_transaction(reader: BorshReader) -> Transaction:
    # V0 opens with the u32 length of signer_id, which is at least 2, so a leading 1 can only be V1's tag.
    versioned = reader.peek() == 1
    if versioned:
        reader.u8()
    signer_id = reader.string()
    public_key = reader.public_key()
    nonce = reader.u64()
    receiver_id = reader.string()
    block_hash = reader.take(32)
    actions = tuple(reader.vec(lambda: read_action(reader)))
    priority_fee = reader.u64() if versioned else None
    return Transaction(signer_id, public_key, nonce, receiver_id, block_hash, actions, priority_fee)


def decode_signed_transaction(data: bytes) -> SignedTransaction:
    reader = BorshReader(data)
    transaction = _read_transaction(reader)
    body_end = reader.position
    signature = reader.signature()
    if not reader.at_end():
        raise DecodeError(f"{len(data) - reader.position} trailing bytes after the signature")
    return SignedTransaction(transaction, signature, data[:body_end])


# --------------------------------------------------------------------------------------------------------------
# JSON views (nearcore's ActionView)
# --------------------------------------------------------------------------------------------------------------


def permission_view(permission: Permission) -> Any:
    if permission is None:
        return "FullAccess"
    return {
        "FunctionCall": {
            "allowance": None if permission.allowance is None else str(permission.allowance),
            "receiver_id": permission.receiver_id,
            "method_names": list(permission.method_names),
        }
    }


def delegate_action_view(action: DelegateAction) -> dict[str, Any]:
    return {
        "sender_id": action.sender_id,
        "receiver_id": action.receiver_id,
        "actions": [action_view(inner) for inner in action.actions],
        "nonce": action.nonce,
        "max_block_height": action.max_block_height,
        "public_key": action.public_key.text,
    }


def action_view(action: Action) -> Any:
    match action:
        case CreateAccount():
            return "CreateAccount"
        case DeployContract(code=code):
            # nearcore shows the hash of the code, not the code.
            return {"DeployContract": {"code": base64.b64encode(crypto_hash(code)).decode()}}
        case FunctionCall(method_name=method_name, args=args, gas=gas, deposit=deposit):
            return {
                "FunctionCall": {
                    "method_name": method_name,
                    "args": base64.b64encode(args).decode(),
                    "gas": gas,
                    "deposit": str(deposit),
                }
            }
        case Transfer(deposit=deposit):
            return {"Transfer": {"deposit": str(deposit)}}
        case Stake(stake=stake, public_key=public_key):
            return {"Stake": {"stake": str(stake), "public_key": public_key.text}}
        case AddKey(public_key=public_key, nonce=nonce, permission=permission):
            return {
                "AddKey": {
                    "public_key": public_key.text,
                    "access_key": {"nonce": nonce, "permission": permission_view(permission)},
                }
            }
        case DeleteKey(public_key=public_key):
            return {"DeleteKey": {"public_key": public_key.text}}
        case DeleteAccount(beneficiary_id=beneficiary_id):
            return {"DeleteAccount": {"beneficiary_id": beneficiary_id}}
        case Delegate(delegate_action=delegate_action, signature=signature):
            return {
                "Delegate": {
                    "delegate_action": delegate_action_view(delegate_action),
                    "signature": signature.text,
                }
            }
        case DeployGlobalContract(code=code, by_account_id=by_account_id):
            name = "DeployGlobalContractByAccountId" if by_account_id else "DeployGlobalContract"
            return {name: {"code": base64.b64encode(crypto_hash(code)).decode()}}
        case UseGlobalContract(code_hash=code_hash, account_id=account_id):
            if code_hash is not None:
                return {"UseGlobalContract": {"code_hash": b58encode(code_hash)}}
            return {"UseGlobalContractByAccountId": {"account_id": account_id}}
    raise TypeError(f"not an action: {action!r}")


def transaction_view(signed: SignedTransaction) -> dict[str, Any]:
    tx = signed.transaction
    return {
        "signer_id": tx.signer_id,
        "public_key": tx.public_key.text,
        "nonce": tx.nonce,
        "receiver_id": tx.receiver_id,
        "actions": [action_view(action) for action in tx.actions],
        "priority_fee": tx.priority_fee or 0,
        "signature": signed.signature.text,
        "hash": signed.hash_text,
    }


def actions_deposit(actions: Sequence[Action]) -> int:
    total = 0
    for action in actions:
        if isinstance(action, FunctionCall | Transfer):
            total += action.deposit
    return total
