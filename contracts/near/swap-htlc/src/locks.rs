//! Creating locks: native NEAR with `lock_native`, NEP-141 tokens through the token's `ft_transfer_call`
//! (`ft_on_transfer` here). Both validate the terms in the same order and charge the storage fee.

use near_host::account::is_valid_account_id;
use near_host::args::parse_uint;
use near_host::env::{self, Balance};
use near_host::serde_json::Value;
use near_host::{fail, hex, json, Args, Output};

use crate::storage::{self, Lock, LockId, State, Timelocks};
use crate::views::{emit, lock_view};
use crate::{LOCK_STORAGE_FEE, MAX_NONCE_LEN, STORAGE_PRICE_PER_BYTE};

/// hex(sha256("<depositor>:<nonce>")) is the lock id.
pub fn lock_id_for(depositor: &str, nonce: &str) -> LockId {
    env::sha256(format!("{}:{}", depositor, nonce).as_bytes())
}

/// The optional `safety_deposit` of the terms, 0 when absent or null.
fn safety_deposit(terms: &Args) -> Balance {
    if terms.has("safety_deposit") {
        terms.u128("safety_deposit")
    } else {
        0
    }
}

/// The four offsets, U64 strings or plain non-negative numbers, ordered
/// `withdrawal <= public_withdrawal < cancellation <= public_cancellation`.
fn parse_timelocks(terms: &Args) -> Timelocks {
    let raw = terms.obj("timelocks");
    let offset = |name: &str| -> u64 {
        if !raw.has(name) {
            fail("invalid timelocks");
        }
        let parsed = match raw.raw(name) {
            Some(Value::Number(number)) => number.as_u64(),
            Some(value) => parse_uint(value, u64::MAX as u128).map(|value| value as u64),
            None => None,
        };
        parsed.unwrap_or_else(|| fail("invalid timelocks"))
    };
    let timelocks = Timelocks {
        withdrawal: offset("withdrawal"),
        public_withdrawal: offset("public_withdrawal"),
        cancellation: offset("cancellation"),
        public_cancellation: offset("public_cancellation"),
    };
    if !(timelocks.withdrawal <= timelocks.public_withdrawal
        && timelocks.public_withdrawal < timelocks.cancellation
        && timelocks.cancellation <= timelocks.public_cancellation)
    {
        fail("invalid timelocks");
    }
    timelocks
}

/// Validates the terms, records the lock (record + active index), checks its storage stays within the
/// storage fee and logs `lock_created`.
fn create(
    depositor: String,
    token: Option<String>,
    amount: Balance,
    safety_deposit: Balance,
    terms: &Args,
    min_amount: Balance,
) -> Lock {
    let nonce = terms.string("nonce");
    let nonce_len = nonce.chars().count();
    if nonce_len < 1 || nonce_len > MAX_NONCE_LEN {
        fail("invalid nonce: 1 to 64 characters");
    }
    let beneficiary = terms.string("beneficiary");
    if !is_valid_account_id(&beneficiary) {
        fail("invalid beneficiary");
    }
    let operator = match terms.optional_string("operator") {
        Some(operator) if !operator.is_empty() => operator,
        _ => depositor.clone(),
    };
    if !is_valid_account_id(&operator) {
        fail("invalid operator");
    }
    let hashlock =
        hex::decode32(&terms.string("hashlock")).unwrap_or_else(|| fail("invalid hashlock: 64 hex characters"));
    let timelocks = parse_timelocks(terms);
    // An optional deadline (a block timestamp, ns): a lock sent in time but landing after it is refused and
    // the deposit goes back to the sender, so whoever waits for the lock knows it cannot appear after it.
    let deadline = terms.integer("deadline", u64::MAX);
    if env::block_timestamp() > deadline {
        fail(&format!("lock deadline passed: {}", deadline));
    }
    if amount == 0 {
        fail("amount must be positive");
    }
    if amount < min_amount {
        fail(&format!("amount below the minimum lock amount: {}", min_amount));
    }
    let id = lock_id_for(&depositor, &nonce);
    if storage::lock_id_taken(&id) {
        fail("lock already exists");
    }
    let mut lock = Lock {
        id,
        state: State::Active,
        position: 0,
        depositor,
        operator,
        beneficiary,
        token,
        amount,
        safety_deposit,
        hashlock,
        timelocks,
        locked_at: env::block_timestamp(),
        locked_height: env::block_height(),
        secret: None,
    };
    let usage_before = env::storage_usage();
    storage::index_push(&mut lock);
    storage::write_lock(&lock);
    let used = env::storage_usage().saturating_sub(usage_before);
    if used as u128 * STORAGE_PRICE_PER_BYTE > LOCK_STORAGE_FEE {
        fail(&format!("a lock takes {} bytes of storage, more than its storage fee covers", used));
    }
    emit("lock_created", &lock_view(&lock).finish());
    lock
}

/// `lock_native` (payable): locks `attached - safety_deposit - storage fee` NEAR for the beneficiary;
/// returns the lock id.
pub fn lock_native(args: &Args) -> Output {
    let safety_deposit = safety_deposit(args);
    let attached = env::attached_deposit();
    let amount = attached
        .checked_sub(safety_deposit)
        .and_then(|rest| rest.checked_sub(LOCK_STORAGE_FEE))
        .filter(|amount| *amount > 0)
        .unwrap_or_else(|| {
            fail(&format!(
                "amount must be positive: attach amount + safety_deposit + the storage fee of {} yoctoNEAR",
                LOCK_STORAGE_FEE
            ))
        });
    let lock = create(env::predecessor_account_id(), None, amount, safety_deposit, args, storage::min_lock_amount());
    Output::Json(json::string(&hex::encode(&lock.id)))
}

/// `ft_on_transfer({"sender_id", "amount", "msg"})`, NEP-141's receiver: `msg` holds the lock terms. The
/// safety deposit and the storage fee come out of the sender's prepaid native balance. Returns `"0"`
/// (all tokens used); a panic makes the token refund the sender.
pub fn ft_on_transfer(args: &Args) -> Output {
    let token = env::predecessor_account_id();
    if let Some(allowlist) = storage::token_allowlist() {
        if !allowlist.iter().any(|accepted| *accepted == token) {
            fail(&format!("token not accepted: {}", token));
        }
    }
    let sender_id = args.account_id("sender_id");
    let amount = args.u128("amount");
    let terms = match near_host::serde_json::from_str::<Value>(&args.string("msg")) {
        Ok(Value::Object(map)) => Args::from_map(map),
        _ => fail("invalid msg: expected the lock terms as JSON"),
    };
    let safety_deposit = safety_deposit(&terms);
    let balance = storage::native_balance(&sender_id);
    let needed = safety_deposit.checked_add(LOCK_STORAGE_FEE);
    match needed.and_then(|needed| balance.checked_sub(needed)) {
        Some(rest) => storage::set_native_balance(&sender_id, rest),
        None => fail(&format!(
            "insufficient native balance for the safety deposit and the storage fee: {} < {} + {}",
            balance, safety_deposit, LOCK_STORAGE_FEE
        )),
    }
    create(sender_id, Some(token), amount, safety_deposit, &terms, 1);
    Output::Json(json::string("0"))
}
