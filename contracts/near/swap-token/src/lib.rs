//! A NEP-141 fungible token with NEP-145 storage management, behaving like near-contract-standards'
//! FungibleToken (same panics, same `ft_transfer_call` -> `ft_on_transfer` -> `ft_resolve_transfer` flow,
//! same NEP-297 events), plus an owner-only `mint` for development networks.

mod core;
mod setup;
mod state;
mod storage_management;

use near_host::{Balance, Gas, TGAS};

pub const NEP141_STANDARD: &str = "nep141";
pub const NEP141_VERSION: &str = "1.0.0";
/// 125 bytes of account entry at 10^19 yoctoNEAR per byte, what near-contract-standards asks for.
pub const STORAGE_BALANCE_MIN: Balance = 1_250_000_000_000_000_000_000;
pub const GAS_FOR_RESOLVE_TRANSFER: Gas = 5 * TGAS;
pub const GAS_FOR_FT_TRANSFER_CALL: Gas = 25 * TGAS + GAS_FOR_RESOLVE_TRANSFER;

near_host::methods! {
    Call new => setup::new;
    View ft_metadata => setup::ft_metadata;
    View owner_id => setup::owner_id;
    Call mint => setup::mint;

    View ft_total_supply => core::ft_total_supply;
    View ft_balance_of => core::ft_balance_of;
    Payable ft_transfer => core::ft_transfer;
    Payable ft_transfer_call => core::ft_transfer_call;
    Private ft_resolve_transfer => core::ft_resolve_transfer;

    View storage_balance_bounds => storage_management::storage_balance_bounds;
    View storage_balance_of => storage_management::storage_balance_of;
    Payable storage_deposit => storage_management::storage_deposit;
}
