"""Chain state: accounts, access keys, contract code and contract storage, versioned by block height.

Every write is recorded with the height of the block that made it, so a view at any past block (finality
`final`, an explicit `block_id`) reads exactly the state of that block without copying anything. Receipts
write into a `StateUpdate` first; it is committed when the receipt succeeds and dropped when it fails,
which is how a panicking contract call leaves no trace.

Every commit also lands in a per-block change log, each write with its cause (nearcore's
`StateChangeCause`), from which the RPC serves `EXPERIMENTAL_changes` and `EXPERIMENTAL_changes_in_block`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from swap_devnet.near.codec import Permission, PublicKey

# Bytes of storage an account record takes (nearcore's `num_bytes_account`) and the per-record overhead.
ACCOUNT_RECORD_BYTES = 100
STORAGE_RECORD_OVERHEAD = 40
STORAGE_PRICE_PER_BYTE = 10**19  # nearcore's `storage_amount_per_byte`, in yoctoNEAR
# NEP-448: an account storing at most this many bytes needs no balance for its storage.
ZERO_BALANCE_ACCOUNT_STORAGE_LIMIT = 770


@dataclass(frozen=True)
class AccountRecord:
    amount: int
    locked: int = 0
    code: bytes | None = None
    storage_usage: int = ACCOUNT_RECORD_BYTES


@dataclass(frozen=True)
class AccessKeyRecord:
    nonce: int
    permission: Permission


AccountKey = tuple[Literal["account"], str]
AccessKeyKey = tuple[Literal["access_key"], str, PublicKey]
DataKey = tuple[Literal["data"], str, bytes]
StateKey = AccountKey | AccessKeyKey | DataKey
StateValue = AccountRecord | AccessKeyRecord | bytes


def account_key(account_id: str) -> AccountKey:
    return ("account", account_id)


def access_key_key(account_id: str, public_key: PublicKey) -> AccessKeyKey:
    return ("access_key", account_id, public_key)


def data_key(account_id: str, key: bytes) -> DataKey:
    return ("data", account_id, key)


# Contract code lives in the account record here; in nearcore it is a trie key of its own, so the change log
# records a code change under this key whenever a commit changes an account's code.
CodeKey = tuple[Literal["contract_code"], str]
ChangeKey = StateKey | CodeKey
Column = Literal["account", "contract_code", "access_key", "data"]

# nearcore's trie key columns, which order the changes it returns: account, code, access key, data.
_TRIE_COLUMN = {"account": 0, "contract_code": 1, "access_key": 2, "data": 9}


def contract_code_key(account_id: str) -> CodeKey:
    return ("contract_code", account_id)


@dataclass(frozen=True)
class ChangeCause:
    """Why state changed: nearcore's StateChangeCause, `type` plus the transaction or receipt it names."""

    type: str
    tx_hash: str | None = None
    receipt_hash: str | None = None

    @classmethod
    def transaction(cls, tx_hash: str) -> ChangeCause:
        return cls("transaction_processing", tx_hash=tx_hash)

    @classmethod
    def receipt(cls, receipt_id: str) -> ChangeCause:
        return cls("receipt_processing", receipt_hash=receipt_id)

    def view(self) -> dict[str, str]:
        """nearcore's StateChangeCauseView JSON."""
        view = {"type": self.type}
        if self.tx_hash is not None:
            view["tx_hash"] = self.tx_hash
        if self.receipt_hash is not None:
            view["receipt_hash"] = self.receipt_hash
        return view


INITIAL_STATE = ChangeCause("initial_state")
# State written outside transactions and receipts (devnet patches): nearcore's sandbox `patch_state` commits
# with StateChangeCause::Migration.
MIGRATION = ChangeCause("migration")


class StateChange(NamedTuple):
    """One committed write: its cause, the key and the value it left (None: deleted)."""

    cause: ChangeCause
    key: ChangeKey
    value: StateValue | None


def trie_order(key: ChangeKey) -> tuple[int, str, bytes]:
    """Sort key matching nearcore's trie key bytes (column, account id, then the borsh public key or the
    data key): account ids hold no byte below the `,` nearcore puts after them, so comparing them as strings
    orders them the same."""
    match key:
        case ("access_key", account_id, public_key):
            return (_TRIE_COLUMN["access_key"], account_id, bytes([public_key.key_type]) + public_key.data)
        case ("data", account_id, data):
            return (_TRIE_COLUMN["data"], account_id, data)
        case (column, account_id):
            return (_TRIE_COLUMN[column], account_id, b"")
    raise ValueError(f"unknown state key {key!r}")


def select_changes(
    changes: Iterable[StateChange],
    column: Column,
    account_id: str,
    *,
    public_key: PublicKey | None = None,
    prefix: bytes = b"",
) -> list[StateChange]:
    """The changes to one account's records of one column (only `public_key` among access keys when given,
    only data keys starting with `prefix`), in nearcore's order: by trie key, then as committed."""
    selected = [
        change
        for change in changes
        if change.key[0] == column
        and change.key[1] == account_id
        and (public_key is None or change.key[0] != "access_key" or change.key[2] == public_key)
        and (change.key[0] != "data" or change.key[2].startswith(prefix))
    ]
    selected.sort(key=lambda change: trie_order(change.key))  # stable: one key's changes stay in commit order
    return selected


def record_size(key: StateKey, value: StateValue) -> int:
    """Storage bytes a record adds to its account (nearcore's storage usage config): the borsh sizes of the
    key and the value plus the per-record overhead. An access key is its public key (type byte + key) and an
    AccessKey (nonce, permission), so a full-access ed25519 key takes 82 bytes."""
    if key[0] == "access_key":
        assert isinstance(value, AccessKeyRecord)
        size = 1 + len(key[2].data) + 8 + 1 + STORAGE_RECORD_OVERHEAD
        permission = value.permission
        if permission is not None:
            size += 1 + (16 if permission.allowance is not None else 0)  # Option<u128>
            size += 4 + len(permission.receiver_id.encode())
            size += 4 + sum(4 + len(name.encode()) for name in permission.method_names)
        return size
    if key[0] == "data":
        assert isinstance(value, bytes)
        return len(key[2]) + len(value) + STORAGE_RECORD_OVERHEAD
    return 0


class VersionedStore:
    def __init__(self) -> None:
        self._versions: dict[StateKey, list[tuple[int, StateValue | None]]] = {}
        self._keys_by_account: dict[str, set[StateKey]] = {}
        self._changes: dict[int, list[StateChange]] = {}

    def get(self, key: StateKey, height: int | None = None) -> StateValue | None:
        versions = self._versions.get(key)
        if not versions:
            return None
        if height is None:
            return versions[-1][1]
        index = bisect_right(versions, height, key=lambda version: version[0])
        return versions[index - 1][1] if index else None

    def commit(self, writes: dict[StateKey, StateValue | None], height: int, cause: ChangeCause = MIGRATION) -> None:
        """Write `writes` as of `height` and log them with `cause` among the block's changes.

        A write that changes an account's code is also logged as a change of its contract code (a redeploy
        of the same bytes is not, where nearcore would log one)."""
        changes: list[StateChange] = []
        for key, value in writes.items():
            versions = self._versions.setdefault(key, [])
            if versions and versions[-1][0] > height:
                raise ValueError(f"write at height {height} after one at {versions[-1][0]}")
            if key[0] == "account" and _code_of(value) != _code_of(versions[-1][1] if versions else None):
                changes.append(StateChange(cause, contract_code_key(key[1]), _code_of(value)))
            changes.append(StateChange(cause, key, value))
            if versions and versions[-1][0] == height:
                versions[-1] = (height, value)
            else:
                versions.append((height, value))
            self._keys_by_account.setdefault(key[1], set()).add(key)
        if changes:
            self._changes.setdefault(height, []).extend(changes)

    def keys_of(self, account_id: str, height: int | None = None) -> Iterator[StateKey]:
        """Keys of `account_id` that hold a value at `height` (latest when None)."""
        for key in self._keys_by_account.get(account_id, ()):
            if self.get(key, height) is not None:
                yield key

    def changes_at(self, height: int) -> Sequence[StateChange]:
        """The changes committed at `height`, in commit order: one per key and commit, with the value the
        commit left."""
        return self._changes.get(height, ())


def _code_of(value: StateValue | None) -> bytes | None:
    return value.code if isinstance(value, AccountRecord) else None


class StateUpdate:
    """Writes buffered over the latest state (or over a parent update) until committed."""

    def __init__(self, store: VersionedStore, parent: StateUpdate | None = None) -> None:
        self._store = store
        self._parent = parent
        self._writes: dict[StateKey, StateValue | None] = {}

    def child(self) -> StateUpdate:
        return StateUpdate(self._store, self)

    def get(self, key: StateKey) -> StateValue | None:
        if key in self._writes:
            return self._writes[key]
        if self._parent is not None:
            return self._parent.get(key)
        return self._store.get(key)

    def put(self, key: StateKey, value: StateValue | None) -> None:
        self._writes[key] = value

    def keys_of(self, account_id: str) -> set[StateKey]:
        keys = set(self._parent.keys_of(account_id) if self._parent else self._store.keys_of(account_id))
        for key, value in self._writes.items():
            if key[1] != account_id:
                continue
            if value is None:
                keys.discard(key)
            else:
                keys.add(key)
        return keys

    def written_accounts(self) -> list[str]:
        """Accounts whose record this update (not its parent) wrote, in the order of their first write."""
        return [key[1] for key in self._writes if key[0] == "account"]

    def merge_into_parent(self) -> None:
        if self._parent is None:
            raise ValueError("a top-level update is committed, not merged")
        self._parent._writes.update(self._writes)
        self._writes.clear()

    def commit(self, height: int, cause: ChangeCause = MIGRATION) -> None:
        if self._parent is not None:
            raise ValueError("a nested update is merged into its parent, not committed")
        self._store.commit(self._writes, height, cause)
        self._writes.clear()

    # Typed accessors ----------------------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountRecord | None:
        value = self.get(account_key(account_id))
        assert value is None or isinstance(value, AccountRecord)
        return value

    def set_account(self, account_id: str, record: AccountRecord | None) -> None:
        self.put(account_key(account_id), record)

    def access_key(self, account_id: str, public_key: PublicKey) -> AccessKeyRecord | None:
        value = self.get(access_key_key(account_id, public_key))
        assert value is None or isinstance(value, AccessKeyRecord)
        return value

    def data(self, account_id: str, key: bytes) -> bytes | None:
        value = self.get(data_key(account_id, key))
        assert value is None or isinstance(value, bytes)
        return value

    def put_record(self, key: AccessKeyKey | DataKey, value: AccessKeyRecord | bytes | None) -> None:
        """Write an access key or a storage entry and keep the account's storage usage in step."""
        account = self.account(key[1])
        if account is None:
            raise KeyError(f"account {key[1]} does not exist")
        old = self.get(key)
        delta = 0
        if old is not None:
            delta -= record_size(key, old)
        if value is not None:
            delta += record_size(key, value)
        self.put(key, value)
        if delta:
            self.set_account(
                key[1],
                AccountRecord(account.amount, account.locked, account.code, account.storage_usage + delta),
            )


class StateView:
    """Read-only state at a block height."""

    def __init__(self, store: VersionedStore, height: int) -> None:
        self._store = store
        self.height = height

    def get(self, key: StateKey) -> StateValue | None:
        return self._store.get(key, self.height)

    def account(self, account_id: str) -> AccountRecord | None:
        value = self.get(account_key(account_id))
        assert value is None or isinstance(value, AccountRecord)
        return value

    def access_key(self, account_id: str, public_key: PublicKey) -> AccessKeyRecord | None:
        value = self.get(access_key_key(account_id, public_key))
        assert value is None or isinstance(value, AccessKeyRecord)
        return value

    def access_keys(self, account_id: str) -> list[tuple[PublicKey, AccessKeyRecord]]:
        keys: list[tuple[PublicKey, AccessKeyRecord]] = []
        for key in self._store.keys_of(account_id, self.height):
            if key[0] == "access_key":
                record = self.get(key)
                assert isinstance(record, AccessKeyRecord)
                keys.append((key[2], record))
        keys.sort(key=lambda item: item[0].data)
        return keys

    def data(self, account_id: str, key: bytes) -> bytes | None:
        value = self.get(data_key(account_id, key))
        assert value is None or isinstance(value, bytes)
        return value

    def data_items(self, account_id: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        items: list[tuple[bytes, bytes]] = []
        for key in self._store.keys_of(account_id, self.height):
            if key[0] == "data" and key[2].startswith(prefix):
                value = self.get(key)
                assert isinstance(value, bytes)
                items.append((key[2], value))
        items.sort()
        return items
