//! Prepaid native balances: the NEAR that pays the safety deposit and the storage fee of token locks.

use near_host::{env, fail, json, Args, Output};

use crate::storage;

/// `deposit_native()` (payable): adds the attached deposit to the caller's balance; returns the balance.
pub fn deposit_native(_args: &Args) -> Output {
    let deposit = env::attached_deposit();
    if deposit == 0 {
        fail("attach a deposit");
    }
    let account_id = env::predecessor_account_id();
    let balance =
        storage::native_balance(&account_id).checked_add(deposit).unwrap_or_else(|| fail("native balance overflow"));
    storage::set_native_balance(&account_id, balance);
    Output::Json(json::decimal(balance))
}

/// `withdraw_native({"amount"})`: sends `amount` of the caller's balance back; returns what is left.
pub fn withdraw_native(args: &Args) -> Output {
    let account_id = env::predecessor_account_id();
    let amount = args.u128("amount");
    let balance = storage::native_balance(&account_id);
    if amount == 0 || amount > balance {
        fail(&format!("insufficient native balance: {}", balance));
    }
    storage::set_native_balance(&account_id, balance - amount);
    env::promise_transfer(&account_id, amount);
    Output::Json(json::decimal(balance - amount))
}
