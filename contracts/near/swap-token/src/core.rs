//! NEP-141 core: balances, transfers, and transfer-and-call with its resolution.

use near_host::env::{self, Balance, PromiseResult};
use near_host::serde_json::Value;
use near_host::{fail, json, Args, Output};

use crate::state::{self, emit, emit_transfer};
use crate::{GAS_FOR_FT_TRANSFER_CALL, GAS_FOR_RESOLVE_TRANSFER};

fn assert_one_yocto() {
    if env::attached_deposit() != 1 {
        fail("Requires attached deposit of exactly 1 yoctoNEAR");
    }
}

/// Moves `amount` between two registered accounts and logs `ft_transfer`.
fn transfer(sender_id: &str, receiver_id: &str, amount: Balance, memo: Option<&str>) {
    if sender_id == receiver_id {
        fail("Sender and receiver should be different");
    }
    if amount == 0 {
        fail("The amount should be a positive number");
    }
    let sender_balance = state::registered_balance(sender_id);
    if sender_balance < amount {
        fail("The account doesn't have enough balance");
    }
    let receiver_balance = state::registered_balance(receiver_id);
    let receiver_balance = receiver_balance.checked_add(amount).unwrap_or_else(|| fail("Balance overflow"));
    state::set_balance(sender_id, sender_balance - amount);
    state::set_balance(receiver_id, receiver_balance);
    emit_transfer(sender_id, receiver_id, amount, memo);
}

/// `ft_total_supply()`.
pub fn ft_total_supply(_args: &Args) -> Output {
    state::require_init();
    Output::Json(json::decimal(state::supply()))
}

/// `ft_balance_of({"account_id"})`: "0" for an account that is not registered.
pub fn ft_balance_of(args: &Args) -> Output {
    state::require_init();
    Output::Json(json::decimal(state::balance(&args.account_id("account_id")).unwrap_or(0)))
}

/// `ft_transfer({"receiver_id", "amount", "memo"?})` with exactly 1 yoctoNEAR.
pub fn ft_transfer(args: &Args) -> Output {
    state::require_init();
    assert_one_yocto();
    let receiver_id = args.account_id("receiver_id");
    let amount = args.u128("amount");
    let memo = args.optional_string("memo");
    transfer(&env::predecessor_account_id(), &receiver_id, amount, memo.as_deref());
    Output::Nothing
}

/// `ft_transfer_call({"receiver_id", "amount", "memo"?, "msg"})` with exactly 1 yoctoNEAR and more than
/// 30 TGas: transfers, calls the receiver's `ft_on_transfer` with the prepaid gas less 30 TGas, then
/// `ft_resolve_transfer` (5 TGas), whose result (the amount used) is the call's result.
pub fn ft_transfer_call(args: &Args) -> Output {
    state::require_init();
    assert_one_yocto();
    let prepaid_gas = env::prepaid_gas();
    if prepaid_gas <= GAS_FOR_FT_TRANSFER_CALL {
        fail("More gas is required");
    }
    let sender_id = env::predecessor_account_id();
    let receiver_id = args.account_id("receiver_id");
    let amount = args.u128("amount");
    let msg = args.string("msg");
    let memo = args.optional_string("memo");
    transfer(&sender_id, &receiver_id, amount, memo.as_deref());
    let on_transfer_args =
        json::Object::new().str("sender_id", &sender_id).decimal("amount", amount).str("msg", &msg).finish();
    let on_transfer = env::promise_function_call(
        &receiver_id,
        "ft_on_transfer",
        on_transfer_args.as_bytes(),
        0,
        prepaid_gas - GAS_FOR_FT_TRANSFER_CALL,
    );
    let resolve_args = json::Object::new()
        .str("sender_id", &sender_id)
        .str("receiver_id", &receiver_id)
        .decimal("amount", amount)
        .finish();
    let resolve = env::promise_then(
        on_transfer,
        &env::current_account_id(),
        "ft_resolve_transfer",
        resolve_args.as_bytes(),
        0,
        GAS_FOR_RESOLVE_TRANSFER,
    );
    Output::Promise(resolve)
}

/// The amount `ft_on_transfer` left unused: its result when that is a decimal string (capped at
/// `amount`), all of it when the call failed or answered anything else.
fn unused_amount(amount: Balance) -> Balance {
    if env::promise_results_count() == 0 {
        return amount;
    }
    match env::promise_result(0) {
        PromiseResult::Successful(bytes) => match near_host::serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::String(text)) if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => {
                text.parse::<u128>().map(|unused| unused.min(amount)).unwrap_or(amount)
            }
            _ => amount,
        },
        _ => amount,
    }
}

/// `ft_resolve_transfer({"sender_id", "receiver_id", "amount"})` (private): gives the unused amount back
/// to the sender (burns it when the sender has unregistered meanwhile); returns the amount used.
pub fn ft_resolve_transfer(args: &Args) -> Output {
    let sender_id = args.account_id("sender_id");
    let receiver_id = args.account_id("receiver_id");
    let amount = args.u128("amount");
    let unused = unused_amount(amount);
    if unused > 0 {
        let receiver_balance = state::balance(&receiver_id).unwrap_or(0);
        if receiver_balance > 0 {
            let refund = receiver_balance.min(unused);
            state::set_balance(&receiver_id, receiver_balance - refund);
            if let Some(sender_balance) = state::balance(&sender_id) {
                let sender_balance = sender_balance.checked_add(refund).unwrap_or_else(|| fail("Balance overflow"));
                state::set_balance(&sender_id, sender_balance);
                emit_transfer(&receiver_id, &sender_id, refund, Some("refund"));
                return Output::Json(json::decimal(amount - refund));
            }
            // The sender unregistered meanwhile: the tokens have nowhere to go, so they are burnt.
            state::set_supply(state::supply().saturating_sub(refund));
            env::log("The account of the sender was deleted");
            let data = json::Object::new()
                .str("owner_id", &receiver_id)
                .decimal("amount", refund)
                .str("memo", "refund")
                .finish();
            emit("ft_burn", &data);
            return Output::Json(json::decimal(amount));
        }
    }
    Output::Json(json::decimal(amount))
}
