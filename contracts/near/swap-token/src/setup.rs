//! Initialisation, metadata, the owner and the owner's `mint`.

use near_host::env;
use near_host::serde_json::{Map, Value};
use near_host::{fail, json, Args, Output};

use crate::state::{self, emit};

/// `new({"owner_id", "total_supply"?, "metadata"?})`: once. Registers the owner with the whole supply.
/// Missing metadata fields default to spec "ft-1.0.0", name "Token", symbol "TOKEN", null icon /
/// reference / reference_hash and 24 decimals; decimals must be an integer 0..=255.
pub fn new(args: &Args) -> Output {
    if state::is_initialized() {
        fail("The contract has already been initialized");
    }
    let owner_id = args.account_id("owner_id");
    let total_supply = if args.has("total_supply") { args.u128("total_supply") } else { 0 };
    let mut metadata = match args.raw("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => fail("Failed to deserialize input from JSON.: invalid `metadata`, expected an object"),
    };
    let defaults = [
        ("spec", Value::from("ft-1.0.0")),
        ("name", Value::from("Token")),
        ("symbol", Value::from("TOKEN")),
        ("icon", Value::Null),
        ("reference", Value::Null),
        ("reference_hash", Value::Null),
        ("decimals", Value::from(24u8)),
    ];
    for (key, value) in defaults {
        metadata.entry(key).or_insert(value);
    }
    match metadata.get("decimals").and_then(Value::as_u64) {
        Some(decimals) if decimals <= 255 => {}
        _ => fail("Invalid metadata: decimals"),
    }
    state::set_metadata_json(&json::value(&Value::Object(metadata)));
    state::set_owner(&owner_id);
    state::set_balance(&owner_id, total_supply);
    state::set_supply(total_supply);
    if total_supply > 0 {
        let data = json::Object::new()
            .str("owner_id", &owner_id)
            .decimal("amount", total_supply)
            .str("memo", "new tokens are minted")
            .finish();
        emit("ft_mint", &data);
    }
    Output::Nothing
}

/// `ft_metadata()`.
pub fn ft_metadata(_args: &Args) -> Output {
    state::require_init();
    Output::Json(state::metadata_json())
}

/// `owner_id()`: the account allowed to `mint`.
pub fn owner_id(_args: &Args) -> Output {
    state::require_init();
    Output::Json(json::string(&state::owner()))
}

/// `mint({"account_id", "amount", "memo"?})`: owner only; creates `amount` tokens on the registered
/// `account_id` and returns its new balance.
pub fn mint(args: &Args) -> Output {
    state::require_init();
    if env::predecessor_account_id() != state::owner() {
        fail("Only the owner can mint");
    }
    let account_id = args.account_id("account_id");
    let amount = args.u128("amount");
    if amount == 0 {
        fail("The amount should be a positive number");
    }
    let balance =
        state::registered_balance(&account_id).checked_add(amount).unwrap_or_else(|| fail("Balance overflow"));
    state::set_balance(&account_id, balance);
    let supply = state::supply().checked_add(amount).unwrap_or_else(|| fail("Total supply overflow"));
    state::set_supply(supply);
    let mut data = json::Object::new().str("owner_id", &account_id).decimal("amount", amount);
    if let Some(memo) = args.optional_string("memo") {
        data = data.str("memo", &memo);
    }
    emit("ft_mint", &data.finish());
    Output::Json(json::decimal(balance))
}
