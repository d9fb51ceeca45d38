//! Safe wrappers over the host functions: the context of the call, storage, logs, hashing, promises.

use crate::sys;

/// The register every wrapper uses; its content is copied out right after each host call.
const REGISTER: u64 = u64::MAX - 2;

/// One yoctoNEAR-denominated or token amount.
pub type Balance = u128;
/// Gas units; 1 TGas = 10^12.
pub type Gas = u64;

pub const TGAS: Gas = 1_000_000_000_000;

fn read_register_bytes() -> Vec<u8> {
    // SAFETY: the register holds `len` bytes and the buffer has exactly that capacity before the host fills it.
    unsafe {
        let len = sys::register_len(REGISTER) as usize;
        let mut buffer = vec![0u8; len];
        sys::read_register(REGISTER, buffer.as_mut_ptr() as u64);
        buffer
    }
}

fn register_string() -> String {
    String::from_utf8(read_register_bytes())
        .unwrap_or_else(|_| fail("the host returned an account id that is not UTF-8"))
}

// Aborting --------------------------------------------------------------------------------------------------

/// Aborts the call with `message`: the host reports `Smart contract panicked: <message>` and every state
/// change of the receipt rolls back.
pub fn fail(message: &str) -> ! {
    // SAFETY: the pointer and length describe a live UTF-8 string; panic_utf8 does not return.
    unsafe { sys::panic_utf8(message.len() as u64, message.as_ptr() as u64) }
}

/// Routes Rust panics (overflow checks, `expect`s) through `panic_utf8`, so their message reaches the host
/// instead of a bare `unreachable` trap.
pub fn setup_panic_hook() {
    std::panic::set_hook(Box::new(|info| fail(&info.to_string())));
}

// Context ---------------------------------------------------------------------------------------------------

/// The raw arguments of the call.
pub fn input() -> Vec<u8> {
    unsafe { sys::input(REGISTER) };
    read_register_bytes()
}

/// The account the contract runs on.
pub fn current_account_id() -> String {
    unsafe { sys::current_account_id(REGISTER) };
    register_string()
}

/// The account that called this method: the signer for a transaction, the calling contract for a promise.
pub fn predecessor_account_id() -> String {
    unsafe { sys::predecessor_account_id(REGISTER) };
    register_string()
}

/// The account that signed the original transaction.
pub fn signer_account_id() -> String {
    unsafe { sys::signer_account_id(REGISTER) };
    register_string()
}

/// The deposit attached to the call. Not available in view calls: the host aborts with ProhibitedInView.
pub fn attached_deposit() -> Balance {
    let mut buffer = [0u8; 16];
    unsafe { sys::attached_deposit(buffer.as_mut_ptr() as u64) };
    u128::from_le_bytes(buffer)
}

/// The contract account's balance, the attached deposit included.
pub fn account_balance() -> Balance {
    let mut buffer = [0u8; 16];
    unsafe { sys::account_balance(buffer.as_mut_ptr() as u64) };
    u128::from_le_bytes(buffer)
}

pub fn prepaid_gas() -> Gas {
    unsafe { sys::prepaid_gas() }
}

pub fn used_gas() -> Gas {
    unsafe { sys::used_gas() }
}

/// Nanoseconds since the Unix epoch of the block the receipt runs in.
pub fn block_timestamp() -> u64 {
    unsafe { sys::block_timestamp() }
}

/// The height of the block the receipt runs in (`block_index` in nearcore's terms).
pub fn block_height() -> u64 {
    unsafe { sys::block_index() }
}

/// Bytes of state the account stakes for: code, keys and every key-value pair (40 bytes of overhead each).
pub fn storage_usage() -> u64 {
    unsafe { sys::storage_usage() }
}

// Results and logs ------------------------------------------------------------------------------------------

/// Sets the bytes the call returns.
pub fn value_return(value: &[u8]) {
    unsafe { sys::value_return(value.len() as u64, value.as_ptr() as u64) }
}

/// A log line of the receipt's outcome.
pub fn log(message: &str) {
    unsafe { sys::log_utf8(message.len() as u64, message.as_ptr() as u64) }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    unsafe { sys::sha256(data.len() as u64, data.as_ptr() as u64, REGISTER) };
    let bytes = read_register_bytes();
    let mut digest = [0u8; 32];
    if bytes.len() != 32 {
        fail("sha256: the host returned a digest that is not 32 bytes");
    }
    digest.copy_from_slice(&bytes);
    digest
}

// Storage ---------------------------------------------------------------------------------------------------

pub fn storage_read(key: &[u8]) -> Option<Vec<u8>> {
    match unsafe { sys::storage_read(key.len() as u64, key.as_ptr() as u64, REGISTER) } {
        0 => None,
        _ => Some(read_register_bytes()),
    }
}

/// Writes `value` under `key`; true when it replaced a value.
pub fn storage_write(key: &[u8], value: &[u8]) -> bool {
    unsafe {
        sys::storage_write(key.len() as u64, key.as_ptr() as u64, value.len() as u64, value.as_ptr() as u64, REGISTER)
            == 1
    }
}

/// Removes `key`; true when it existed.
pub fn storage_remove(key: &[u8]) -> bool {
    unsafe { sys::storage_remove(key.len() as u64, key.as_ptr() as u64, REGISTER) == 1 }
}

pub fn storage_has_key(key: &[u8]) -> bool {
    unsafe { sys::storage_has_key(key.len() as u64, key.as_ptr() as u64) == 1 }
}

// Promises --------------------------------------------------------------------------------------------------

/// The index of a promise created during this call.
pub type PromiseIndex = u64;

/// A Transfer of `amount` yoctoNEAR to `account_id`.
pub fn promise_transfer(account_id: &str, amount: Balance) -> PromiseIndex {
    let amount = amount.to_le_bytes();
    unsafe {
        let promise = sys::promise_batch_create(account_id.len() as u64, account_id.as_ptr() as u64);
        sys::promise_batch_action_transfer(promise, amount.as_ptr() as u64);
        promise
    }
}

/// A function call on `account_id` with `deposit` attached and `gas` prepaid (no share of unused gas).
pub fn promise_function_call(account_id: &str, method: &str, args: &[u8], deposit: Balance, gas: Gas) -> PromiseIndex {
    let deposit = deposit.to_le_bytes();
    unsafe {
        sys::promise_create(
            account_id.len() as u64,
            account_id.as_ptr() as u64,
            method.len() as u64,
            method.as_ptr() as u64,
            args.len() as u64,
            args.as_ptr() as u64,
            deposit.as_ptr() as u64,
            gas,
        )
    }
}

/// A function call that runs once `after` has completed and can read its result (a callback when
/// `account_id` is the contract itself).
pub fn promise_then(
    after: PromiseIndex,
    account_id: &str,
    method: &str,
    args: &[u8],
    deposit: Balance,
    gas: Gas,
) -> PromiseIndex {
    let deposit = deposit.to_le_bytes();
    unsafe {
        sys::promise_then(
            after,
            account_id.len() as u64,
            account_id.as_ptr() as u64,
            method.len() as u64,
            method.as_ptr() as u64,
            args.len() as u64,
            args.as_ptr() as u64,
            deposit.as_ptr() as u64,
            gas,
        )
    }
}

/// A Transfer of `amount` yoctoNEAR to `account_id` that runs once `after` has completed.
pub fn promise_transfer_then(after: PromiseIndex, account_id: &str, amount: Balance) -> PromiseIndex {
    let amount = amount.to_le_bytes();
    unsafe {
        let promise = sys::promise_batch_then(after, account_id.len() as u64, account_id.as_ptr() as u64);
        sys::promise_batch_action_transfer(promise, amount.as_ptr() as u64);
        promise
    }
}

/// Adds a function call action to a batch promise.
pub fn promise_batch_function_call(promise: PromiseIndex, method: &str, args: &[u8], deposit: Balance, gas: Gas) {
    let deposit = deposit.to_le_bytes();
    unsafe {
        sys::promise_batch_action_function_call(
            promise,
            method.len() as u64,
            method.as_ptr() as u64,
            args.len() as u64,
            args.as_ptr() as u64,
            deposit.as_ptr() as u64,
            gas,
        )
    }
}

/// Makes the result of `promise` the result of this call.
pub fn promise_return(promise: PromiseIndex) {
    unsafe { sys::promise_return(promise) }
}

/// The outcome of a promise a callback waited for.
pub enum PromiseResult {
    NotReady,
    Successful(Vec<u8>),
    Failed,
}

/// How many promise results this call can read (0 unless it is a callback).
pub fn promise_results_count() -> u64 {
    unsafe { sys::promise_results_count() }
}

pub fn promise_result(index: u64) -> PromiseResult {
    match unsafe { sys::promise_result(index, REGISTER) } {
        0 => PromiseResult::NotReady,
        1 => PromiseResult::Successful(read_register_bytes()),
        _ => PromiseResult::Failed,
    }
}
