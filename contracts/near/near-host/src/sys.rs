//! NEAR's host functions as nearcore exports them to a contract: module `env`, every argument a `u64`
//! (pointers and lengths into the contract's linear memory included). Only the functions a contract
//! actually calls end up as imports of its wasm.
//!
//! Registers are host-side buffers: a function that produces bytes writes them into a register, and the
//! contract copies them out with `register_len` + `read_register`. Amounts (`u128`) travel through memory:
//! the host reads or writes 16 little-endian bytes at the given pointer.

extern "C" {
    // Registers -------------------------------------------------------------------------------------------
    pub fn read_register(register_id: u64, ptr: u64);
    pub fn register_len(register_id: u64) -> u64;

    // Context -----------------------------------------------------------------------------------------------
    pub fn current_account_id(register_id: u64);
    pub fn signer_account_id(register_id: u64);
    pub fn predecessor_account_id(register_id: u64);
    pub fn input(register_id: u64);
    pub fn block_index() -> u64;
    pub fn block_timestamp() -> u64;
    pub fn storage_usage() -> u64;

    // Economics ---------------------------------------------------------------------------------------------
    pub fn account_balance(balance_ptr: u64);
    pub fn attached_deposit(balance_ptr: u64);
    pub fn prepaid_gas() -> u64;
    pub fn used_gas() -> u64;

    // Math --------------------------------------------------------------------------------------------------
    pub fn sha256(value_len: u64, value_ptr: u64, register_id: u64);

    // Results, panics and logs ------------------------------------------------------------------------------
    pub fn value_return(value_len: u64, value_ptr: u64);
    pub fn panic_utf8(len: u64, ptr: u64) -> !;
    pub fn log_utf8(len: u64, ptr: u64);

    // Promises ----------------------------------------------------------------------------------------------
    pub fn promise_create(
        account_id_len: u64,
        account_id_ptr: u64,
        function_name_len: u64,
        function_name_ptr: u64,
        arguments_len: u64,
        arguments_ptr: u64,
        amount_ptr: u64,
        gas: u64,
    ) -> u64;
    pub fn promise_then(
        promise_index: u64,
        account_id_len: u64,
        account_id_ptr: u64,
        function_name_len: u64,
        function_name_ptr: u64,
        arguments_len: u64,
        arguments_ptr: u64,
        amount_ptr: u64,
        gas: u64,
    ) -> u64;
    pub fn promise_batch_create(account_id_len: u64, account_id_ptr: u64) -> u64;
    pub fn promise_batch_then(promise_index: u64, account_id_len: u64, account_id_ptr: u64) -> u64;
    pub fn promise_batch_action_transfer(promise_index: u64, amount_ptr: u64);
    pub fn promise_batch_action_function_call(
        promise_index: u64,
        function_name_len: u64,
        function_name_ptr: u64,
        arguments_len: u64,
        arguments_ptr: u64,
        amount_ptr: u64,
        gas: u64,
    );
    pub fn promise_results_count() -> u64;
    pub fn promise_result(result_idx: u64, register_id: u64) -> u64;
    pub fn promise_return(promise_id: u64);

    // Storage -----------------------------------------------------------------------------------------------
    pub fn storage_write(key_len: u64, key_ptr: u64, value_len: u64, value_ptr: u64, register_id: u64) -> u64;
    pub fn storage_read(key_len: u64, key_ptr: u64, register_id: u64) -> u64;
    pub fn storage_remove(key_len: u64, key_ptr: u64, register_id: u64) -> u64;
    pub fn storage_has_key(key_len: u64, key_ptr: u64) -> u64;
}
