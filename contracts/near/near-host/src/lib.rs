//! What the swap's NEAR contracts share: the host functions (`sys`, wrapped safely in `env`), the entry
//! point of a method with near-sdk's checks (`run` and the `methods!` macro), JSON arguments with named
//! errors (`args`), Python-compatible JSON output (`json`), account id rules and hex.

pub mod account;
pub mod args;
pub mod env;
pub mod hex;
pub mod json;
pub mod sys;

pub use args::Args;
pub use env::{fail, Balance, Gas, PromiseIndex, TGAS};
pub use serde_json;

/// What a method hands back to the host.
pub enum Output {
    /// No result (`SuccessValue` of empty bytes).
    Nothing,
    /// A JSON result.
    Json(String),
    /// The result of this promise becomes the call's result.
    Promise(PromiseIndex),
}

/// The kind of a method, which decides the checks run before its body (near-sdk's order).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read-only: callable in view calls and transactions; a deposit is not checked.
    View,
    /// Changes state; panics `Method <name> doesn't accept deposit` when given one.
    Call,
    /// Changes state and takes a deposit.
    Payable,
    /// Only the contract itself may call it (`Method <name> is private`); no deposit.
    Private,
}

/// Runs one exported method: installs the panic hook, checks the caller and deposit for `kind`, parses
/// the arguments, calls `body` and hands its output to the host.
///
/// A state-changing method reads the attached deposit first, so a view call of it fails with nearcore's
/// `ProhibitedInView` before anything else.
pub fn run(name: &str, kind: Kind, body: fn(&Args) -> Output) {
    env::setup_panic_hook();
    if kind != Kind::View {
        let deposit = env::attached_deposit();
        if kind == Kind::Private && env::predecessor_account_id() != env::current_account_id() {
            fail(&format!("Method {} is private", name));
        }
        if kind != Kind::Payable && deposit != 0 {
            fail(&format!("Method {} doesn't accept deposit", name));
        }
    }
    let args = Args::parse(&env::input());
    match body(&args) {
        Output::Nothing => {}
        Output::Json(json) => env::value_return(json.as_bytes()),
        Output::Promise(promise) => env::promise_return(promise),
    }
}

/// Exports each listed function as a contract method of the same name:
///
/// ```ignore
/// near_host::methods! {
///     View get_lock => views::get_lock;
///     Payable lock_native => locks::lock_native;
/// }
/// ```
#[macro_export]
macro_rules! methods {
    ($($kind:ident $name:ident => $body:path;)*) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name() {
                $crate::run(stringify!($name), $crate::Kind::$kind, $body)
            }
        )*
    };
}
