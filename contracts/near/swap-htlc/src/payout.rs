//! Withdraw and refund, and the `on_payout` callback that settles them.
//!
//! A payout is a promise (a Transfer, or `ft_transfer` on the token) followed by `on_payout` on this
//! contract. The lock turns withdrawn/refunded and leaves the active index at once, so no second withdrawal
//! or refund can race the payout. The callback then either confirms it (event, safety deposit to the
//! caller, record replaced by a tombstone, storage fee refunded to the depositor) or, when the payout
//! failed, makes the lock active again with the funds still in it.

use near_host::env::{self, PromiseResult};
use near_host::json::{self, Object};
use near_host::{fail, hex, Args, Output, TGAS};

use crate::storage::{self, Lock, State};
use crate::views::{emit, lock_view};
use crate::{GAS_FOR_FT_TRANSFER, GAS_FOR_ON_PAYOUT, LOCK_STORAGE_FEE, MIN_GAS_FOR_PAYOUT, TOMBSTONE_FEE};

/// The lock `lock_id` names, which must be active.
fn active_lock(lock_id: &str) -> Lock {
    let id = hex::decode32_lower(lock_id).unwrap_or_else(|| fail("lock not found"));
    match storage::read_lock(&id) {
        Some(lock) if lock.state == State::Active => lock,
        Some(_) => fail("lock is not active"),
        None if storage::read_tombstone(&id).is_some() => fail("lock is not active"),
        None => fail("lock not found"),
    }
}

/// `locked_at + offset` without overflow (windows may end past u64 nanoseconds).
fn at(lock: &Lock, offset: u64) -> u128 {
    lock.locked_at as u128 + offset as u128
}

/// `withdraw({"lock_id", "secret"})`: pays the amount to the beneficiary against the secret. The operator
/// may from `withdrawal`, anyone from `public_withdrawal`, until `cancellation`. Returns `on_payout`'s
/// true/false.
pub fn withdraw(args: &Args) -> Output {
    let mut lock = active_lock(&args.string("lock_id"));
    let secret = args.string("secret");
    let caller = env::predecessor_account_id();
    let now = env::block_timestamp() as u128;
    let private_opens = at(&lock, lock.timelocks.withdrawal);
    let public_opens = at(&lock, lock.timelocks.public_withdrawal);
    let closes = at(&lock, lock.timelocks.cancellation);
    if now >= closes {
        fail(&format!("too late: closed at {}", closes));
    }
    if caller == lock.operator {
        if now < private_opens {
            fail(&format!("too early: opens at {}", private_opens));
        }
    } else if now < public_opens {
        if now >= private_opens {
            fail(&format!("only the operator can withdraw until {}", public_opens));
        }
        fail(&format!("too early: opens at {}", public_opens));
    }
    let secret = match hex::decode32(&secret) {
        Some(secret) if env::sha256(&secret) == lock.hashlock => secret,
        _ => fail("invalid secret"),
    };
    lock.state = State::Withdrawn;
    lock.secret = Some(secret);
    let beneficiary = lock.beneficiary.clone();
    pay_out(lock, &beneficiary, "withdraw", &caller)
}

/// `refund({"lock_id"})`: pays the amount back to the depositor, on the operator's call from
/// `cancellation` and anyone's from `public_cancellation`. Returns `on_payout`'s true/false.
pub fn refund(args: &Args) -> Output {
    let mut lock = active_lock(&args.string("lock_id"));
    let caller = env::predecessor_account_id();
    let now = env::block_timestamp() as u128;
    let private_opens = at(&lock, lock.timelocks.cancellation);
    let public_opens = at(&lock, lock.timelocks.public_cancellation);
    if caller == lock.operator {
        if now < private_opens {
            fail(&format!("too early: opens at {}", private_opens));
        }
    } else if now < public_opens {
        if now >= private_opens {
            fail(&format!("only the operator can refund until {}", public_opens));
        }
        fail(&format!("too early: opens at {}", public_opens));
    }
    lock.state = State::Refunded;
    let depositor = lock.depositor.clone();
    pay_out(lock, &depositor, "refund", &caller)
}

/// Stores the lock in its new state, takes it out of the active index and chains payout -> on_payout.
fn pay_out(lock: Lock, recipient: &str, action: &str, caller: &str) -> Output {
    if env::prepaid_gas() < MIN_GAS_FOR_PAYOUT {
        fail(&format!("not enough gas: attach at least {} TGas", MIN_GAS_FOR_PAYOUT / TGAS));
    }
    storage::index_remove(&lock);
    storage::write_lock(&lock);
    let lock_id = hex::encode(&lock.id);
    let payout = match &lock.token {
        None => env::promise_transfer(recipient, lock.amount),
        Some(token) => {
            let args = Object::new()
                .str("receiver_id", recipient)
                .decimal("amount", lock.amount)
                .str("memo", &format!("{} {}", action, lock_id))
                .finish();
            env::promise_function_call(token, "ft_transfer", args.as_bytes(), 1, GAS_FOR_FT_TRANSFER)
        }
    };
    let callback_args = Object::new().str("lock_id", &lock_id).str("action", action).str("caller", caller).finish();
    let callback = env::promise_then(
        payout,
        &env::current_account_id(),
        "on_payout",
        callback_args.as_bytes(),
        0,
        GAS_FOR_ON_PAYOUT,
    );
    Output::Promise(callback)
}

/// `on_payout({"lock_id", "action", "caller"})` (private): on a successful payout logs
/// `lock_withdrawn`/`lock_refunded` (lock view + caller + the height of this block), ends the lock (tombstone), sends the safety
/// deposit to the caller and the storage fee less the tombstone's share to the depositor, returns true.
/// On a failed payout the lock is active again (secret cleared) and it returns false.
pub fn on_payout(args: &Args) -> Output {
    let lock_id = args.string("lock_id");
    let action = args.string("action");
    let caller = args.account_id("caller");
    let mut lock =
        hex::decode32_lower(&lock_id).and_then(|id| storage::read_lock(&id)).unwrap_or_else(|| fail("lock not found"));
    if lock.state == State::Active {
        fail("lock is not being paid out");
    }
    let paid = env::promise_results_count() > 0 && matches!(env::promise_result(0), PromiseResult::Successful(_));
    if paid {
        let event = if action == "withdraw" { "lock_withdrawn" } else { "lock_refunded" };
        emit(event, &lock_view(&lock).str("caller", &caller).number("block_height", env::block_height()).finish());
        storage::end_lock(&lock);
        if lock.safety_deposit > 0 {
            env::promise_transfer(&caller, lock.safety_deposit);
        }
        env::promise_transfer(&lock.depositor, LOCK_STORAGE_FEE - TOMBSTONE_FEE);
        return Output::Json(json::bool(true));
    }
    // The payout bounced (unregistered or missing recipient): the funds are still here, so is the lock.
    lock.state = State::Active;
    lock.secret = None;
    storage::index_push(&mut lock);
    storage::write_lock(&lock);
    env::log(&format!("{} of lock {} failed to pay out; the lock is active again", action, lock_id));
    Output::Json(json::bool(false))
}
