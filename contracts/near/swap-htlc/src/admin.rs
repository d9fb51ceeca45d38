//! Initialisation and the owner's token allowlist.

use near_host::account::is_valid_account_id;
use near_host::serde_json::Value;
use near_host::{env, fail, Args, Output};

use crate::storage;
use crate::DEFAULT_MIN_LOCK_AMOUNT;

/// `new({"owner_id"?, "token_allowlist"?, "min_lock_amount"?})`: once, by the HTLC account itself. The
/// owner defaults to the HTLC account, the allowlist to none (any token), the minimum native lock
/// amount to 0.001 NEAR.
pub fn new(args: &Args) -> Output {
    if storage::is_initialized() {
        fail("The contract has already been initialized");
    }
    let current = env::current_account_id();
    if env::predecessor_account_id() != current {
        fail("Method new is private");
    }
    storage::set_owner(&args.optional_account_id("owner_id").unwrap_or(current));
    set_allowlist(args);
    let min_lock_amount =
        if args.has("min_lock_amount") { args.u128("min_lock_amount") } else { DEFAULT_MIN_LOCK_AMOUNT };
    storage::set_min_lock_amount(min_lock_amount);
    Output::Nothing
}

/// `set_token_allowlist({"token_allowlist": [...] | null})`: owner only; the NEP-141 contracts
/// `ft_on_transfer` accepts, null accepting any.
pub fn set_token_allowlist(args: &Args) -> Output {
    if env::predecessor_account_id() != storage::owner() {
        fail("only the owner can change the token allowlist");
    }
    set_allowlist(args);
    Output::Nothing
}

fn set_allowlist(args: &Args) {
    let tokens = match args.raw("token_allowlist") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(token) if is_valid_account_id(token) => token.clone(),
                    _ => fail("invalid token_allowlist: a list of account ids or null"),
                })
                .collect::<Vec<String>>(),
        ),
        Some(_) => fail("invalid token_allowlist: a list of account ids or null"),
    };
    storage::set_token_allowlist(tokens.as_deref());
}
