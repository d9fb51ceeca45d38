// Secret mode maker in the browser (docs/api.md, "Secret modes"; docs/web.md): the secret is drawn here, kept in
// this browser's storage until its swap ends, and released only after the page has read the destination lock
// from the destination chain's own RPC and found it to be what the maker asked for. The same checks as swapctl's
// (cli/src/swapctl/verify.py).

const SECRET_PREFIX = "swap.secret.";
export const MIN_TIME_LEFT_S = 20;
// EscrowBase.getEscrow(bytes32): keccak256("getEscrow(bytes32)")[:4]; the reply is thirteen 32-byte words.
const GET_ESCROW = "0xf023b811";
const BASE_STATES = ["absent", "active", "withdrawn", "cancelled"];
const NEAR_STATES = { active: "active", withdrawn: "withdrawn", refunded: "cancelled" };
const NS = 1_000_000_000n;
const ZERO_ADDRESS = `0x${"0".repeat(40)}`;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// crypto.subtle exists only in secure contexts (https, or localhost / 127.0.0.1).
export function makerModeAvailable(chains, dstChain) {
  return Boolean(window.isSecureContext && crypto.subtle && chains && chains[dstChain]);
}

export async function drawSecret(terms) {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const hashlock = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", secret)));
  const held = {
    secret: hex(secret),
    hashlock,
    receiver: terms.receiver,
    dst_chain: terms.dst.chain,
    dst_token: terms.dst.token,
    session_id: "",
    released: false,
  };
  saveHeld(held); // before anyone learns the hashlock: a crash from here on loses nothing
  return held;
}

export function saveHeld(held) {
  localStorage.setItem(SECRET_PREFIX + held.hashlock, JSON.stringify(held));
}

export function findHeld(sessionId) {
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(SECRET_PREFIX)) continue;
    try {
      const held = JSON.parse(localStorage.getItem(key) || "null");
      if (held && held.session_id === sessionId) return held;
    } catch (e) {
      // Not ours to read.
    }
  }
  return null;
}

export function forgetHeld(held) {
  localStorage.removeItem(SECRET_PREFIX + held.hashlock);
}

async function rpc(url, method, params) {
  let body;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    body = await response.json();
  } catch (e) {
    throw new Error(`The destination chain's RPC ${url} did not answer ${method}.`);
  }
  if (body.error) throw new Error(`The destination chain's RPC ${url} refused ${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

function words(data) {
  const raw = String(data || "0x").replace(/^0x/, "");
  if (raw.length < 13 * 64) return null;
  const out = Array.from({ length: 13 }, (_, i) => BigInt(`0x${raw.slice(i * 64, (i + 1) * 64)}`));
  return out[12] === 0n ? null : out;
}

const address = (word) => `0x${word.toString(16).padStart(40, "0")}`;

async function readBase(access, lockId) {
  const head = await rpc(access.rpc_url, "eth_getBlockByNumber", ["latest", false]);
  const height = Number(BigInt(head.number));
  const now = Number(BigInt(head.timestamp));
  const call = { to: access.escrow_dst, data: GET_ESCROW + lockId.replace(/^0x/, "").padStart(64, "0") };
  const latest = words(await rpc(access.rpc_url, "eth_call", [call, `0x${height.toString(16)}`]));
  // Final: the same lock is already there `confirmations - 1` blocks below the head.
  const deep = Math.max(height - Number(access.confirmations || 2) + 1, 0);
  const settled = words(await rpc(access.rpc_url, "eth_call", [call, `0x${deep.toString(16)}`]));
  if (!latest) return { state: "absent", chain_now: now };
  const lockedAt = Number(latest[11]);
  const timelocks = [7, 8, 9, 10].map((i) => Number(latest[i]));
  return {
    state: BASE_STATES[Number(latest[12])] || "unknown",
    hashlock: latest[6].toString(16).padStart(64, "0"),
    token: address(latest[3]),
    amount: latest[4],
    beneficiary: address(latest[1]),
    timelocks,
    cancellation_at: lockedAt + timelocks[2],
    final: Boolean(settled && settled.slice(0, 12).every((w, i) => w === latest[i])),
    chain_now: now,
  };
}

async function nearLock(access, lockId, finality) {
  const result = await rpc(access.rpc_url, "query", {
    request_type: "call_function",
    finality,
    account_id: access.htlc,
    method_name: "get_lock",
    args_base64: btoa(JSON.stringify({ lock_id: lockId })),
  });
  if (!result || !result.result) return null;
  const value = JSON.parse(new TextDecoder().decode(new Uint8Array(result.result)));
  return value && typeof value === "object" ? value : null;
}

async function readNear(access, lockId) {
  const block = await rpc(access.rpc_url, "block", { finality: "final" });
  const now = Number(BigInt(block.header.timestamp) / NS);
  let lock = await nearLock(access, lockId, "final");
  const final = lock !== null;
  if (!lock) lock = await nearLock(access, lockId, "optimistic");
  if (!lock) return { state: "absent", chain_now: now };
  const t = lock.timelocks;
  const offsets = [t.withdrawal, t.public_withdrawal, t.cancellation, t.public_cancellation].map((v) => BigInt(v));
  const lockedAt = BigInt(lock.locked_at);
  return {
    state: NEAR_STATES[lock.state] || String(lock.state),
    hashlock: String(lock.hashlock).toLowerCase(),
    token: String(lock.token),
    amount: BigInt(lock.amount),
    beneficiary: String(lock.beneficiary),
    timelocks: offsets.map((o) => Number(o / NS)),
    cancellation_at: Number((lockedAt + offsets[2]) / NS),
    final,
    chain_now: now,
  };
}

export function readDestinationLock(chains, chain, lockId) {
  const access = chains[chain];
  if (!access) throw new Error(`No ${chain} RPC is configured for this page.`);
  return chain === "base" ? readBase(access, lockId) : readNear(access, lockId);
}

function sameToken(chain, seen, wanted) {
  if (chain !== "base") return seen === wanted;
  return seen.toLowerCase() === (wanted === "native" ? ZERO_ADDRESS : wanted).toLowerCase();
}

// Every way the lock falls short of what the maker asked for; empty when the secret may go.
export function lockProblems(lock, session, held, minLeft = MIN_TIME_LEFT_S) {
  if (lock.state !== "active") return [`the destination lock is ${lock.state}, not active`];
  const found = [];
  const base = held.dst_chain === "base";
  if (lock.hashlock !== held.hashlock) found.push("its hashlock is not the hash of your secret");
  const receiverOk = base
    ? lock.beneficiary.toLowerCase() === held.receiver.toLowerCase()
    : lock.beneficiary === held.receiver;
  if (!receiverOk) found.push(`it pays ${lock.beneficiary}, not your receiver ${held.receiver}`);
  if (!sameToken(held.dst_chain, lock.token, held.dst_token)) found.push(`it locks token ${lock.token}, not ${held.dst_token}`);
  const quote = session.quote || {};
  const minimum = BigInt(quote.min_received || "0");
  if (minimum <= 0n || lock.amount < minimum) found.push(`it locks ${lock.amount}, less than the quoted minimum ${minimum}`);
  const plan = (quote.timelocks || {}).dst || {};
  const agreed = ["withdrawal_after_s", "public_withdrawal_after_s", "cancellation_after_s", "public_cancellation_after_s"]
    .map((k) => Number(plan[k]));
  if (agreed.some((v, i) => v !== lock.timelocks[i])) found.push(`its timelocks ${lock.timelocks} are not the quoted ${agreed}`);
  if (!lock.final) found.push("it is not final yet");
  const left = lock.cancellation_at - lock.chain_now;
  if (left < minLeft) found.push(`only ${left} s are left before it can be cancelled (at least ${minLeft} s needed)`);
  return found;
}
