//! The JSON shapes of locks, the NEP-297 events and the read-only methods.

use near_host::json::{self, Object};
use near_host::{hex, Args, Output};

use crate::locks::lock_id_for;
use crate::storage::{self, Lock, LockId, Tombstone};
use crate::{DEFAULT_PAGE, HTLC_STANDARD, HTLC_VERSION, LOCK_STORAGE_FEE, MAX_PAGE};

/// The lock's view: lock_id, depositor, operator, beneficiary, token ("native" or the NEP-141 account),
/// amount, safety_deposit, hashlock, timelocks (ns offsets as strings), locked_at (ns as a string),
/// locked_height (a number), state and secret (hex or null). Left open so an event can add fields.
pub fn lock_view(lock: &Lock) -> Object {
    let timelocks = Object::new()
        .decimal("withdrawal", lock.timelocks.withdrawal)
        .decimal("public_withdrawal", lock.timelocks.public_withdrawal)
        .decimal("cancellation", lock.timelocks.cancellation)
        .decimal("public_cancellation", lock.timelocks.public_cancellation)
        .finish();
    Object::new()
        .str("lock_id", &hex::encode(&lock.id))
        .str("depositor", &lock.depositor)
        .str("operator", &lock.operator)
        .str("beneficiary", &lock.beneficiary)
        .str("token", lock.token.as_deref().unwrap_or(crate::NATIVE))
        .decimal("amount", lock.amount)
        .decimal("safety_deposit", lock.safety_deposit)
        .str("hashlock", &hex::encode(&lock.hashlock))
        .raw("timelocks", &timelocks)
        .decimal("locked_at", lock.locked_at)
        .number("locked_height", lock.locked_height)
        .str("state", lock.state.name())
        .opt_str("secret", lock.secret.as_ref().map(|secret| hex::encode(secret)).as_deref())
}

/// What is left of an ended lock: `{"lock_id", "state", "locked_height", "secret", "ended": true}`; its terms
/// are in the full view at block `locked_height`.
fn ended_view(id: &LockId, tombstone: &Tombstone) -> String {
    Object::new()
        .str("lock_id", &hex::encode(id))
        .str("state", tombstone.state.name())
        .number("locked_height", tombstone.locked_height)
        .opt_str("secret", tombstone.secret.map(|secret| hex::encode(&secret)).as_deref())
        .bool("ended", true)
        .finish()
}

/// Logs a `swap_htlc` NEP-297 event with one data element.
pub fn emit(event: &str, data: &str) {
    near_host::env::log(&json::event_log(HTLC_STANDARD, HTLC_VERSION, event, data));
}

// View methods ----------------------------------------------------------------------------------------------

/// `lock_id_for({"depositor", "nonce"})`: hex(sha256("<depositor>:<nonce>")).
pub fn lock_id_for_view(args: &Args) -> Output {
    let depositor = args.account_id("depositor");
    let nonce = args.string("nonce");
    Output::Json(json::string(&hex::encode(&lock_id_for(&depositor, &nonce))))
}

/// `get_lock({"lock_id"})`: the full view while the lock's record exists (active, or being paid out),
/// the ended view once it has paid out, `null` for an unknown id.
pub fn get_lock(args: &Args) -> Output {
    let json = match hex::decode32_lower(&args.string("lock_id")) {
        None => "null".to_string(),
        Some(id) => match storage::read_lock(&id) {
            Some(lock) => lock_view(&lock).finish(),
            None => match storage::read_tombstone(&id) {
                Some(tombstone) => ended_view(&id, &tombstone),
                None => "null".to_string(),
            },
        },
    };
    Output::Json(json)
}

/// `list_active({"from_index"?, "limit"?})`: active locks by index position (defaults 0 / 100, at most
/// 1000). Positions are dense; ending a lock moves the last one into its place.
pub fn list_active(args: &Args) -> Output {
    let start = args.integer("from_index", 0);
    let limit = args.integer("limit", DEFAULT_PAGE).min(MAX_PAGE);
    let end = storage::active_count().min(start.saturating_add(limit));
    let views = (start..end).filter_map(|position| {
        let id = storage::active_id_at(position)?;
        storage::read_lock(&id).map(|lock| lock_view(&lock).finish())
    });
    Output::Json(json::list(views))
}

/// `native_balance_of({"account_id"})`: the prepaid NEAR for the safety deposits and storage fees of
/// token locks.
pub fn native_balance_of(args: &Args) -> Output {
    Output::Json(json::decimal(storage::native_balance(&args.account_id("account_id"))))
}

/// `token_allowlist()`: the accepted NEP-141 contracts, or `null` for any.
pub fn token_allowlist(_args: &Args) -> Output {
    let json = match storage::token_allowlist() {
        None => "null".to_string(),
        Some(tokens) => json::list(tokens.iter().map(|token| json::string(token))),
    };
    Output::Json(json)
}

/// `storage_fee()`: the yoctoNEAR each lock costs for its storage (part of it refunded when it ends).
pub fn storage_fee(_args: &Args) -> Output {
    Output::Json(json::decimal(LOCK_STORAGE_FEE))
}

/// `min_lock_amount()`: the smallest amount of a native lock, in yoctoNEAR.
pub fn min_lock_amount(_args: &Args) -> Output {
    Output::Json(json::decimal(storage::min_lock_amount()))
}
