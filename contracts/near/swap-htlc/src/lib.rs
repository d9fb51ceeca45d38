//! The swap's NEAR hash-time-locked contract, the counterpart of the BASE escrows.
//!
//! Funds (native NEAR or a NEP-141 token) are locked for a beneficiary against the SHA-256 hash of a
//! secret. The operator may withdraw with the secret from `withdrawal`, anyone from `public_withdrawal`,
//! until `cancellation`; after that the funds go back to the depositor, on the operator's call from
//! `cancellation` and anyone's from `public_cancellation`. Every window is an offset in nanoseconds from
//! `locked_at`, the timestamp of the block that created the lock. The caller who completes a withdrawal or
//! refund earns the safety deposit.
//!
//! Each lock pays a fixed storage fee; when it ends its record is replaced by a small tombstone (so the id
//! is never reused and `get_lock` still answers) and the fee less the tombstone's share goes back to the
//! depositor. Events are NEP-297 log lines only. docs/near-htlc.md is the interface; contracts/near/README.md
//! lists where this contract differs from it.

mod admin;
mod locks;
mod native;
mod payout;
mod storage;
mod views;

use near_host::{Balance, Gas, TGAS};

pub const HTLC_STANDARD: &str = "swap_htlc";
pub const HTLC_VERSION: &str = "1.0.0";
/// The `token` of a native NEAR lock.
pub const NATIVE: &str = "native";

/// yoctoNEAR per byte of storage (nearcore's storage_amount_per_byte).
pub const STORAGE_PRICE_PER_BYTE: Balance = 10_000_000_000_000_000_000;
/// Paid with every lock: 0.01 NEAR, the staking of up to 1000 bytes.
pub const LOCK_STORAGE_FEE: Balance = 10_000_000_000_000_000_000_000;
/// Kept when a lock ends, for its tombstone: 0.0012 NEAR (a withdrawn lock's tombstone takes 114 bytes).
pub const TOMBSTONE_FEE: Balance = 1_200_000_000_000_000_000_000;
/// The default smallest native lock: 0.001 NEAR.
pub const DEFAULT_MIN_LOCK_AMOUNT: Balance = 1_000_000_000_000_000_000_000;

pub const GAS_FOR_FT_TRANSFER: Gas = 10 * TGAS;
pub const GAS_FOR_ON_PAYOUT: Gas = 20 * TGAS;
/// Enough for the payout promise, its callback and the callback's transfers.
pub const MIN_GAS_FOR_PAYOUT: Gas = 50 * TGAS;

pub const MAX_NONCE_LEN: usize = 64;
pub const DEFAULT_PAGE: u64 = 100;
pub const MAX_PAGE: u64 = 1000;

near_host::methods! {
    Call new => admin::new;
    Call set_token_allowlist => admin::set_token_allowlist;
    View token_allowlist => views::token_allowlist;

    Payable lock_native => locks::lock_native;
    Call ft_on_transfer => locks::ft_on_transfer;

    Payable deposit_native => native::deposit_native;
    Call withdraw_native => native::withdraw_native;
    View native_balance_of => views::native_balance_of;

    Call withdraw => payout::withdraw;
    Call refund => payout::refund;
    Private on_payout => payout::on_payout;

    View lock_id_for => views::lock_id_for_view;
    View get_lock => views::get_lock;
    View list_active => views::list_active;
    View storage_fee => views::storage_fee;
    View min_lock_amount => views::min_lock_amount;
}
