//! NEP-145 storage management: an account registers once for the fixed STORAGE_BALANCE_MIN; there is
//! nothing to withdraw or top up, so min = max.

use near_host::env;
use near_host::{fail, json, Args, Output};

use crate::state;
use crate::STORAGE_BALANCE_MIN;

fn storage_balance(account_id: &str) -> String {
    match state::balance(account_id) {
        None => "null".to_string(),
        Some(_) => json::Object::new().decimal("total", STORAGE_BALANCE_MIN).str("available", "0").finish(),
    }
}

/// `storage_balance_bounds()`: `{"min": "1250000000000000000000", "max": the same}`.
pub fn storage_balance_bounds(_args: &Args) -> Output {
    Output::Json(json::Object::new().decimal("min", STORAGE_BALANCE_MIN).decimal("max", STORAGE_BALANCE_MIN).finish())
}

/// `storage_balance_of({"account_id"})`: `{"total", "available": "0"}` or null when not registered.
pub fn storage_balance_of(args: &Args) -> Output {
    state::require_init();
    Output::Json(storage_balance(&args.account_id("account_id")))
}

/// `storage_deposit({"account_id"?, "registration_only"?})` (payable): registers `account_id` (default the
/// caller) for STORAGE_BALANCE_MIN and refunds the excess; an account already registered gets the whole
/// deposit back. Returns the storage balance.
pub fn storage_deposit(args: &Args) -> Output {
    state::require_init();
    let amount = env::attached_deposit();
    let predecessor = env::predecessor_account_id();
    let account_id = args.optional_account_id("account_id").unwrap_or_else(|| predecessor.clone());
    if state::balance(&account_id).is_some() {
        env::log("The account is already registered, refunding the deposit");
        if amount > 0 {
            env::promise_transfer(&predecessor, amount);
        }
    } else {
        if amount < STORAGE_BALANCE_MIN {
            fail("The attached deposit is less than the minimum storage balance");
        }
        state::set_balance(&account_id, 0);
        let refund = amount - STORAGE_BALANCE_MIN;
        if refund > 0 {
            env::promise_transfer(&predecessor, refund);
        }
    }
    Output::Json(storage_balance(&account_id))
}
