//! The token's state: `m` metadata (JSON), `o` owner, `s` total supply (u128 LE), `b` + account id a
//! registered account's balance (u128 LE; 121 bytes at most with the entry overhead, within the 125
//! bytes the storage balance pays for).

use near_host::env::{self, Balance};
use near_host::fail;
use near_host::json;

use crate::{NEP141_STANDARD, NEP141_VERSION};

const METADATA: &[u8] = b"m";
const OWNER: &[u8] = b"o";
const SUPPLY: &[u8] = b"s";
const BALANCE: u8 = b'b';

fn balance_key(account_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + account_id.len());
    key.push(BALANCE);
    key.extend_from_slice(account_id.as_bytes());
    key
}

fn read_u128(key: &[u8]) -> Option<u128> {
    env::storage_read(key).map(|bytes| {
        if bytes.len() != 16 {
            fail("corrupt amount");
        }
        let mut buffer = [0u8; 16];
        buffer.copy_from_slice(&bytes);
        u128::from_le_bytes(buffer)
    })
}

/// Aborts `The contract is not initialized` before `new`.
pub fn require_init() {
    if !env::storage_has_key(METADATA) {
        fail("The contract is not initialized");
    }
}

pub fn is_initialized() -> bool {
    env::storage_has_key(METADATA)
}

pub fn metadata_json() -> String {
    let bytes = env::storage_read(METADATA).unwrap_or_else(|| fail("The contract is not initialized"));
    String::from_utf8(bytes).unwrap_or_else(|_| fail("corrupt metadata"))
}

pub fn set_metadata_json(json: &str) {
    env::storage_write(METADATA, json.as_bytes());
}

pub fn owner() -> String {
    let bytes = env::storage_read(OWNER).unwrap_or_else(|| fail("The contract is not initialized"));
    String::from_utf8(bytes).unwrap_or_else(|_| fail("corrupt owner"))
}

pub fn set_owner(account_id: &str) {
    env::storage_write(OWNER, account_id.as_bytes());
}

pub fn supply() -> Balance {
    read_u128(SUPPLY).unwrap_or(0)
}

pub fn set_supply(amount: Balance) {
    env::storage_write(SUPPLY, &amount.to_le_bytes());
}

/// The balance of a registered account, `None` when it is not registered.
pub fn balance(account_id: &str) -> Option<Balance> {
    read_u128(&balance_key(account_id))
}

/// Sets (and registers) the balance.
pub fn set_balance(account_id: &str, amount: Balance) {
    env::storage_write(&balance_key(account_id), &amount.to_le_bytes());
}

/// The balance of a registered account; aborts `The account <id> is not registered` otherwise.
pub fn registered_balance(account_id: &str) -> Balance {
    balance(account_id).unwrap_or_else(|| fail(&format!("The account {} is not registered", account_id)))
}

/// Logs a `nep141` NEP-297 event with one data element.
pub fn emit(event: &str, data: &str) {
    env::log(&json::event_log(NEP141_STANDARD, NEP141_VERSION, event, data));
}

/// Logs `ft_transfer` (`memo` only when given).
pub fn emit_transfer(old_owner_id: &str, new_owner_id: &str, amount: Balance, memo: Option<&str>) {
    let mut data = json::Object::new()
        .str("old_owner_id", old_owner_id)
        .str("new_owner_id", new_owner_id)
        .decimal("amount", amount);
    if let Some(memo) = memo {
        data = data.str("memo", memo);
    }
    emit("ft_transfer", &data.finish());
}
