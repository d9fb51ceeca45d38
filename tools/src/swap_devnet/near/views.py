"""nearcore's JSON views of the chain: status, blocks, chunks, transaction outcomes and state changes."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

from swap_devnet.near.chain import EMPTY_HASH, PROTOCOL_VERSION, Block, Chain, TxRecord, WaitUntil
from swap_devnet.near.codec import Permission, permission_view, transaction_view
from swap_devnet.near.keys import b58encode, crypto_hash, encode_signature
from swap_devnet.near.runtime import ActionReceipt
from swap_devnet.near.state import STORAGE_PRICE_PER_BYTE, AccessKeyRecord, AccountRecord, ChangeKey, StateChange

VERSION = "swap-devnet/0.1.0"
CHUNK_GAS_LIMIT = 1_000 * 10**12


def block_time_text(timestamp_ns: int) -> str:
    """RFC 3339 with nanoseconds, like nearcore's `latest_block_time`."""
    seconds, nanos = divmod(timestamp_ns, 10**9)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def _root(label: str, block: Block) -> str:
    return b58encode(crypto_hash(label.encode() + block.hash_bytes))


def _signature(chain: Chain, block: Block) -> str:
    return encode_signature(chain.config.root_key.sign(block.hash_bytes))


def status_view(chain: Chain, rpc_addr: str) -> dict[str, Any]:
    head = chain.head
    genesis = chain.genesis
    validator_key = chain.config.root_key.public_key_text
    return {
        "chain_id": chain.config.chain_id,
        "genesis_hash": genesis.hash,
        "latest_protocol_version": PROTOCOL_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "node_key": None,
        "node_public_key": validator_key,
        "rpc_addr": rpc_addr,
        "sync_info": {
            "earliest_block_hash": genesis.hash,
            "earliest_block_height": genesis.height,
            "earliest_block_time": block_time_text(genesis.timestamp),
            "epoch_id": EMPTY_HASH,
            "epoch_start_height": genesis.height,
            "latest_block_hash": head.hash,
            "latest_block_height": head.height,
            "latest_state_root": _root("state", head),
            "latest_block_time": block_time_text(head.timestamp),
            "syncing": False,
        },
        "uptime_sec": int(time.time() - chain.started_at),
        "validator_account_id": chain.config.root_account_id,
        "validator_public_key": validator_key,
        "validators": [{"account_id": chain.config.root_account_id}],
        "version": {"version": VERSION, "build": VERSION, "commit": "", "rustc_version": ""},
    }


def chunk_header_view(chain: Chain, block: Block) -> dict[str, Any]:
    return {
        "chunk_hash": block.chunk_hash,
        "prev_block_hash": block.prev_hash,
        "outcome_root": _root("outcome", block),
        "prev_state_root": _root("prev_state", block),
        "encoded_merkle_root": _root("encoded", block),
        "encoded_length": 0,
        "height_created": block.height,
        "height_included": block.height,
        "shard_id": 0,
        "gas_used": block.gas_burnt,
        "gas_limit": CHUNK_GAS_LIMIT,
        "rent_paid": "0",
        "validator_reward": "0",
        "balance_burnt": str(block.tokens_burnt),
        "outgoing_receipts_root": _root("outgoing", block),
        "tx_root": _root("tx", block),
        "validator_proposals": [],
        "signature": _signature(chain, block),
    }


def block_view(chain: Chain, block: Block) -> dict[str, Any]:
    signature = _signature(chain, block)
    return {
        "author": block.author,
        "header": {
            "height": block.height,
            "prev_height": block.prev_height,
            "epoch_id": EMPTY_HASH,
            "next_epoch_id": EMPTY_HASH,
            "hash": block.hash,
            "prev_hash": block.prev_hash,
            "prev_state_root": _root("prev_state", block),
            "block_body_hash": _root("body", block),
            "chunk_receipts_root": _root("receipts", block),
            "chunk_headers_root": _root("headers", block),
            "chunk_tx_root": _root("tx", block),
            "outcome_root": _root("outcome", block),
            "chunks_included": 1,
            "challenges_root": EMPTY_HASH,
            "timestamp": block.timestamp,
            "timestamp_nanosec": str(block.timestamp),
            "random_value": _root("random", block),
            "validator_proposals": [],
            "chunk_mask": [True],
            "gas_price": str(chain.config.gas_price),
            "block_ordinal": block.ordinal,
            "rent_paid": "0",
            "validator_reward": "0",
            "total_supply": str(block.total_supply),
            "challenges_result": [],
            "last_final_block": chain.previous(block, chain.config.final_lag).hash,
            "last_ds_final_block": chain.previous(block, 1).hash,
            "next_bp_hash": _root("next_bp", block),
            "block_merkle_root": _root("merkle", block),
            "epoch_sync_data_hash": None,
            "approvals": [signature],
            "signature": signature,
            "latest_protocol_version": PROTOCOL_VERSION,
        },
        "chunks": [chunk_header_view(chain, block)],
    }


def chunk_view(chain: Chain, block: Block) -> dict[str, Any]:
    return {
        "author": block.author,
        "header": chunk_header_view(chain, block),
        "transactions": [transaction_view(signed) for signed in block.transactions],
        "receipts": [receipt.view() for receipt in block.receipts],
    }


def account_fields(account: AccountRecord) -> dict[str, Any]:
    """nearcore's AccountView."""
    code_hash = b58encode(crypto_hash(account.code)) if account.code is not None else EMPTY_HASH
    return {
        "amount": str(account.amount),
        "locked": str(account.locked),
        "code_hash": code_hash,
        "storage_usage": account.storage_usage,
        "storage_paid_at": 0,
    }


def account_view(account: AccountRecord, block: Block) -> dict[str, Any]:
    """The `view_account` query result: the AccountView at a block."""
    return {**account_fields(account), "block_height": block.height, "block_hash": block.hash}


def access_key_view(record: AccessKeyRecord) -> dict[str, Any]:
    permission: Permission = record.permission
    return {"nonce": record.nonce, "permission": permission_view(permission)}


def outcome_view(chain: Chain, record: TxRecord, *, with_receipts: bool = False) -> dict[str, Any]:
    """FinalExecutionOutcomeView (WithReceipts for EXPERIMENTAL_tx_status) plus final_execution_status."""
    order = chain.receipt_order(record)
    view: dict[str, Any] = {
        "final_execution_status": chain.achieved(record),
        "status": chain.final_status(record),
        "transaction": transaction_view(record.signed),
        "transaction_outcome": chain.outcomes[record.hash].view(),
        "receipts_outcome": [chain.outcomes[receipt_id].view() for receipt_id in order],
    }
    if with_receipts:
        receipts = [chain.receipts[receipt_id] for receipt_id in order]
        view["receipts"] = [
            receipt.view()
            for receipt in receipts
            # Like nearcore, receipts a signer sends to itself were never "sent" and are not listed.
            if not (isinstance(receipt, ActionReceipt) and receipt.receiver_id == receipt.predecessor_id)
        ]
    return view


def state_change_view(change: StateChange) -> dict[str, Any]:
    """nearcore's StateChangeWithCauseView: `cause`, plus the change as `type` and `change`."""
    key, value = change.key, change.value
    account_id = key[1]
    body: dict[str, Any] = {"account_id": account_id}
    if key[0] == "account":
        kind = "account"
        if isinstance(value, AccountRecord):
            body.update(account_fields(value))
    elif key[0] == "access_key":
        kind = "access_key"
        body["public_key"] = key[2].text
        if isinstance(value, AccessKeyRecord):
            body["access_key"] = access_key_view(value)
    elif key[0] == "data":
        kind = "data"
        body["key_base64"] = base64_text(key[2])
        if isinstance(value, bytes):
            body["value_base64"] = base64_text(value)
    else:
        kind = "contract_code"
        if isinstance(value, bytes):
            body["code_base64"] = base64_text(value)
    suffix = "deletion" if value is None else "update"
    return {"cause": change.cause.view(), "type": f"{kind}_{suffix}", "change": body}


def change_kind_view(key: ChangeKey) -> dict[str, Any]:
    """nearcore's StateChangeKindView: which kind of record of which account a block touched."""
    return {"type": f"{key[0]}_touched", "account_id": key[1]}


def pending_view(status: WaitUntil) -> dict[str, Any]:
    return {"final_execution_status": status}


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def protocol_config_view(chain: Chain, block: Block) -> dict[str, Any]:
    """EXPERIMENTAL_protocol_config: nearcore's shape, with the values this devnet applies (one shard, one
    epoch, nearcore's storage price and minimum gas price). Clients read `runtime_config` for the storage
    price (near-api-js's account state) and the stake ratios."""
    genesis = chain.genesis
    return {
        "protocol_version": PROTOCOL_VERSION,
        "genesis_time": block_time_text(genesis.timestamp),
        "chain_id": chain.config.chain_id,
        "genesis_height": genesis.height,
        "num_block_producer_seats": 1,
        "num_block_producer_seats_per_shard": [1],
        "avg_hidden_validator_seats_per_shard": [0],
        "dynamic_resharding": False,
        "protocol_upgrade_stake_threshold": [4, 5],
        "epoch_length": 2**62,
        "gas_limit": 1_000_000_000_000_000,
        "min_gas_price": str(chain.config.gas_price),
        "max_gas_price": str(chain.config.gas_price),
        "block_producer_kickout_threshold": 90,
        "chunk_producer_kickout_threshold": 90,
        "online_min_threshold": [9, 10],
        "online_max_threshold": [99, 100],
        "gas_price_adjustment_rate": [0, 1],
        "minimum_stake_divisor": 10,
        "max_kickout_stake_perc": 100,
        "minimum_stake_ratio": [1, 6250],
        "minimum_validators_per_shard": 1,
        "num_chunk_only_producer_seats": 0,
        "shard_layout": {"V0": {"num_shards": 1, "version": 0}},
        "transaction_validity_period": chain.config.tx_validity_period,
        "protocol_reward_rate": [0, 1],
        "max_inflation_rate": [0, 1],
        "num_blocks_per_year": 31_536_000,
        "protocol_treasury_account": chain.config.root_account_id,
        "fishermen_threshold": "340282366920938463463374607431768211455",
        "runtime_config": {
            "storage_amount_per_byte": str(STORAGE_PRICE_PER_BYTE),
            "account_creation_config": {
                "min_allowed_top_level_account_length": 0,
                "registrar_account_id": chain.config.root_account_id,
            },
        },
    }
