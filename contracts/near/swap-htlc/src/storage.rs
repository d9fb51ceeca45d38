//! The contract's state, one concern per key prefix, every operation O(1) in the number of locks:
//!
//! | key                    | value                                                        |
//! |------------------------|--------------------------------------------------------------|
//! | `o`                    | owner account id (present once `new` ran)                    |
//! | `m`                    | minimum native lock amount, u128 LE                          |
//! | `a`                    | token allowlist, account ids joined by `\n` (absent: any)    |
//! | `n` + account id       | prepaid native balance, u128 LE (absent when zero)           |
//! | `l` + lock id (32)     | lock record (see [`Lock::encode`])                           |
//! | `t` + lock id (32)     | tombstone: state byte, locked_height u64 LE (+ 32-byte secret)|
//! | `c`                    | number of active locks, u64 LE                               |
//! | `i` + position (u64 BE)| lock id of the active lock at that position                  |
//!
//! Active locks sit at the dense positions `0..count`; removing one moves the last into its place, and
//! each record keeps its own position so that move is one extra write.

use near_host::env::{self, Balance};
use near_host::fail;

use crate::DEFAULT_MIN_LOCK_AMOUNT;

const OWNER: &[u8] = b"o";
const MIN_LOCK_AMOUNT: &[u8] = b"m";
const ALLOWLIST: &[u8] = b"a";
const NATIVE_BALANCE: u8 = b'n';
const LOCK: u8 = b'l';
const TOMBSTONE: u8 = b't';
const ACTIVE_COUNT: &[u8] = b"c";
const ACTIVE_AT: u8 = b'i';

const RECORD_FORMAT: u8 = 1;

pub type LockId = [u8; 32];

/// Where a lock is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Withdrawn,
    Refunded,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Withdrawn => "withdrawn",
            State::Refunded => "refunded",
        }
    }

    fn code(self) -> u8 {
        match self {
            State::Active => 0,
            State::Withdrawn => 1,
            State::Refunded => 2,
        }
    }

    fn from_code(code: u8) -> State {
        match code {
            0 => State::Active,
            1 => State::Withdrawn,
            2 => State::Refunded,
            _ => fail("corrupt lock state"),
        }
    }
}

/// Window offsets in nanoseconds from `locked_at`.
#[derive(Clone, Copy)]
pub struct Timelocks {
    pub withdrawal: u64,
    pub public_withdrawal: u64,
    pub cancellation: u64,
    pub public_cancellation: u64,
}

pub struct Lock {
    pub id: LockId,
    pub state: State,
    /// Position in the active index; meaningful only while `state` is active.
    pub position: u64,
    pub depositor: String,
    pub operator: String,
    pub beneficiary: String,
    /// The NEP-141 contract, `None` for native NEAR.
    pub token: Option<String>,
    pub amount: Balance,
    pub safety_deposit: Balance,
    pub hashlock: [u8; 32],
    pub timelocks: Timelocks,
    pub locked_at: u64,
    pub locked_height: u64,
    pub secret: Option<[u8; 32]>,
}

fn key(prefix: u8, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + suffix.len());
    key.push(prefix);
    key.extend_from_slice(suffix);
    key
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    // Account ids are at most 64 bytes.
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

/// Reads a record field by field; a short or malformed record aborts.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        if self.bytes.len() < len {
            fail("corrupt lock record");
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u64(&mut self) -> u64 {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(self.take(8));
        u64::from_le_bytes(buffer)
    }

    fn u128(&mut self) -> u128 {
        let mut buffer = [0u8; 16];
        buffer.copy_from_slice(self.take(16));
        u128::from_le_bytes(buffer)
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut buffer = [0u8; 32];
        buffer.copy_from_slice(self.take(32));
        buffer
    }

    fn string(&mut self) -> String {
        let len = self.u8() as usize;
        String::from_utf8(self.take(len).to_vec()).unwrap_or_else(|_| fail("corrupt lock record"))
    }
}

impl Lock {
    /// The record: format byte, state, position u64, amount u128, safety deposit u128, hashlock,
    /// the four timelocks u64, locked_at u64, locked_height u64, secret flag + 32 bytes, then the
    /// depositor, operator, beneficiary and token as length-prefixed strings (an empty token is native).
    /// Integers are little-endian. At most 415 bytes (155 + 4 length bytes + four 64-byte account ids).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + 4 * 64);
        out.push(RECORD_FORMAT);
        out.push(self.state.code());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.amount.to_le_bytes());
        out.extend_from_slice(&self.safety_deposit.to_le_bytes());
        out.extend_from_slice(&self.hashlock);
        for offset in [
            self.timelocks.withdrawal,
            self.timelocks.public_withdrawal,
            self.timelocks.cancellation,
            self.timelocks.public_cancellation,
            self.locked_at,
            self.locked_height,
        ] {
            out.extend_from_slice(&offset.to_le_bytes());
        }
        match &self.secret {
            Some(secret) => {
                out.push(1);
                out.extend_from_slice(secret);
            }
            None => {
                out.push(0);
                out.extend_from_slice(&[0u8; 32]);
            }
        }
        push_str(&mut out, &self.depositor);
        push_str(&mut out, &self.operator);
        push_str(&mut out, &self.beneficiary);
        push_str(&mut out, self.token.as_deref().unwrap_or(""));
        out
    }

    pub fn decode(id: LockId, bytes: &[u8]) -> Lock {
        let mut reader = Reader { bytes };
        if reader.u8() != RECORD_FORMAT {
            fail("corrupt lock record");
        }
        let state = State::from_code(reader.u8());
        let position = reader.u64();
        let amount = reader.u128();
        let safety_deposit = reader.u128();
        let hashlock = reader.bytes32();
        let timelocks = Timelocks {
            withdrawal: reader.u64(),
            public_withdrawal: reader.u64(),
            cancellation: reader.u64(),
            public_cancellation: reader.u64(),
        };
        let locked_at = reader.u64();
        let locked_height = reader.u64();
        let has_secret = reader.u8() == 1;
        let secret = reader.bytes32();
        let depositor = reader.string();
        let operator = reader.string();
        let beneficiary = reader.string();
        let token = reader.string();
        Lock {
            id,
            state,
            position,
            depositor,
            operator,
            beneficiary,
            token: if token.is_empty() { None } else { Some(token) },
            amount,
            safety_deposit,
            hashlock,
            timelocks,
            locked_at,
            locked_height,
            secret: if has_secret { Some(secret) } else { None },
        }
    }
}

// Lock records and tombstones -------------------------------------------------------------------------------

pub fn read_lock(id: &LockId) -> Option<Lock> {
    env::storage_read(&key(LOCK, id)).map(|bytes| Lock::decode(*id, &bytes))
}

pub fn write_lock(lock: &Lock) {
    env::storage_write(&key(LOCK, &lock.id), &lock.encode());
}

/// The lock has ended: its record goes, a tombstone with its final state, the height it was locked at (where
/// its terms can still be read from the chain's history) and its secret stays.
pub fn end_lock(lock: &Lock) {
    env::storage_remove(&key(LOCK, &lock.id));
    let mut tombstone = vec![lock.state.code()];
    tombstone.extend_from_slice(&lock.locked_height.to_le_bytes());
    if let Some(secret) = &lock.secret {
        tombstone.extend_from_slice(secret);
    }
    env::storage_write(&key(TOMBSTONE, &lock.id), &tombstone);
}

/// What is left of an ended lock.
pub struct Tombstone {
    pub state: State,
    pub locked_height: u64,
    pub secret: Option<[u8; 32]>,
}

/// The final state, lock height and secret of an ended lock.
pub fn read_tombstone(id: &LockId) -> Option<Tombstone> {
    let bytes = env::storage_read(&key(TOMBSTONE, id))?;
    let mut reader = Reader { bytes: &bytes };
    let state = State::from_code(reader.u8());
    let locked_height = reader.u64();
    let secret = if reader.bytes.is_empty() { None } else { Some(reader.bytes32()) };
    Some(Tombstone { state, locked_height, secret })
}

/// A lock with this id exists or existed.
pub fn lock_id_taken(id: &LockId) -> bool {
    env::storage_has_key(&key(LOCK, id)) || env::storage_has_key(&key(TOMBSTONE, id))
}

// The active index ------------------------------------------------------------------------------------------

fn read_u64(key: &[u8]) -> u64 {
    match env::storage_read(key) {
        None => 0,
        Some(bytes) => {
            let mut buffer = [0u8; 8];
            if bytes.len() != 8 {
                fail("corrupt counter");
            }
            buffer.copy_from_slice(&bytes);
            u64::from_le_bytes(buffer)
        }
    }
}

fn position_key(position: u64) -> Vec<u8> {
    key(ACTIVE_AT, &position.to_be_bytes())
}

pub fn active_count() -> u64 {
    read_u64(ACTIVE_COUNT)
}

pub fn active_id_at(position: u64) -> Option<LockId> {
    let bytes = env::storage_read(&position_key(position))?;
    let mut id = [0u8; 32];
    if bytes.len() != 32 {
        fail("corrupt active index");
    }
    id.copy_from_slice(&bytes);
    Some(id)
}

/// Appends the lock to the active index and sets its position; the caller writes the record.
pub fn index_push(lock: &mut Lock) {
    let count = active_count();
    lock.position = count;
    env::storage_write(&position_key(count), &lock.id);
    env::storage_write(ACTIVE_COUNT, &(count + 1).to_le_bytes());
}

/// Takes the lock out of the active index: the last active lock moves into its position (its record is
/// rewritten with the new position).
pub fn index_remove(lock: &Lock) {
    let count = active_count();
    if count == 0 || active_id_at(lock.position) != Some(lock.id) {
        fail("corrupt active index");
    }
    let last = count - 1;
    if lock.position != last {
        let moved_id = active_id_at(last).unwrap_or_else(|| fail("corrupt active index"));
        let mut moved = read_lock(&moved_id).unwrap_or_else(|| fail("corrupt active index"));
        moved.position = lock.position;
        write_lock(&moved);
        env::storage_write(&position_key(lock.position), &moved_id);
    }
    env::storage_remove(&position_key(last));
    env::storage_write(ACTIVE_COUNT, &last.to_le_bytes());
}

// Prepaid native balances -----------------------------------------------------------------------------------

fn read_u128(key: &[u8]) -> Option<u128> {
    env::storage_read(key).map(|bytes| {
        let mut buffer = [0u8; 16];
        if bytes.len() != 16 {
            fail("corrupt amount");
        }
        buffer.copy_from_slice(&bytes);
        u128::from_le_bytes(buffer)
    })
}

pub fn native_balance(account_id: &str) -> Balance {
    read_u128(&key(NATIVE_BALANCE, account_id.as_bytes())).unwrap_or(0)
}

/// Stores the balance; a zero balance frees its entry.
pub fn set_native_balance(account_id: &str, amount: Balance) {
    let key = key(NATIVE_BALANCE, account_id.as_bytes());
    if amount == 0 {
        env::storage_remove(&key);
    } else {
        env::storage_write(&key, &amount.to_le_bytes());
    }
}

// Configuration ---------------------------------------------------------------------------------------------

pub fn is_initialized() -> bool {
    env::storage_has_key(OWNER)
}

/// The owner; an HTLC never initialised is owned by its own account.
pub fn owner() -> String {
    match env::storage_read(OWNER) {
        Some(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| fail("corrupt owner")),
        None => env::current_account_id(),
    }
}

pub fn set_owner(account_id: &str) {
    env::storage_write(OWNER, account_id.as_bytes());
}

pub fn min_lock_amount() -> Balance {
    read_u128(MIN_LOCK_AMOUNT).unwrap_or(DEFAULT_MIN_LOCK_AMOUNT)
}

pub fn set_min_lock_amount(amount: Balance) {
    env::storage_write(MIN_LOCK_AMOUNT, &amount.to_le_bytes());
}

/// The accepted NEP-141 contracts; `None` accepts any.
pub fn token_allowlist() -> Option<Vec<String>> {
    let bytes = env::storage_read(ALLOWLIST)?;
    let text = String::from_utf8(bytes).unwrap_or_else(|_| fail("corrupt token allowlist"));
    if text.is_empty() {
        return Some(Vec::new());
    }
    Some(text.split('\n').map(String::from).collect())
}

pub fn set_token_allowlist(tokens: Option<&[String]>) {
    match tokens {
        None => {
            env::storage_remove(ALLOWLIST);
        }
        Some(tokens) => {
            env::storage_write(ALLOWLIST, tokens.join("\n").as_bytes());
        }
    }
}
