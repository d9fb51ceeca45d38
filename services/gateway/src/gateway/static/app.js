// The swap page: quote, start, maker's step (browser wallet, or the maker's NEAR key), live
// progress over /ws. Speaks the gateway's public API (docs/api.md); amounts on the wire are decimal strings of base
// units. In secret mode maker it also reads the destination lock from the destination chain's RPC (maker.js); with
// a NEAR key it sends the maker's NEAR call to the NEAR RPC itself (near-api-js, bundled in static/).

import {
  drawSecret,
  findHeld,
  forgetHeld,
  lockProblems,
  makerModeAvailable,
  readDestinationLock,
  saveHeld,
} from "./maker.js";

const API = "/api/v1";
const KEY_STORAGE = "swap.apiKey";
const LAST_SESSION_STORAGE = "swap.lastSession";

// The session state table's happy path (docs/session-states.md), in order.
const HAPPY_PATH = [
  "initialized",
  "executing",
  "source_locking",
  "source_locked",
  "destination_locking",
  "both_locked",
  "revealing_secret",
  "completed",
];
// Secret mode maker adds one state between both_locked and revealing_secret.
const MAKER_PATH = [...HAPPY_PATH.slice(0, 6), "awaiting_secret", ...HAPPY_PATH.slice(6)];
const TERMINAL = new Set(["completed", "cancelled", "refunded", "failed", "timeout"]);
const LABELS = {
  initialized: "Session created; waiting for the maker",
  executing: "Maker's order accepted",
  source_locking: "Locking the source leg",
  source_locked: "Source lock confirmed",
  destination_locking: "Locking the destination leg",
  both_locked: "Both legs locked and final",
  awaiting_secret: "Waiting for your secret: checking the destination lock on chain",
  revealing_secret: "Secret revealed; withdrawing both legs",
  completed: "Completed: the receiver has the funds",
  cancelling: "Cancelling",
  cancelled: "Cancelled before anything was locked",
  refunding: "Refunding the locked legs",
  refunded: "Refunded: every lock cancelled, funds back",
  failed: "Failed before anything was locked",
  timeout: "Timed out before execution",
};
const STATUS_WORDS = { done: "done", current: "in progress", pending: "pending", ended: "ended", failed: "failed" };
// Request fields the gateway may name in an error -> the input that holds them.
const FIELD_INPUTS = {
  src_amount: "amount",
  maker: "maker",
  receiver: "receiver",
  "src.token": "src-token",
  "dst.token": "dst-token",
  slippage_bps: "slippage",
};
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000];

const DEFAULT_CONFIG = {
  explorers: { base: "", near: "" },
  directions: {
    "base-near": {
      src: { chain: "base", token: "", symbol: "", decimals: 6 },
      dst: { chain: "near", token: "", symbol: "", decimals: 6 },
      maker: "",
      receiver: "",
    },
    "near-base": {
      src: { chain: "near", token: "", symbol: "", decimals: 6 },
      dst: { chain: "base", token: "", symbol: "", decimals: 6 },
      maker: "",
      receiver: "",
    },
  },
};

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
};

const app = {
  config: DEFAULT_CONFIG,
  quote: null,
  quoteTimer: null,
  session: null,
  sessionId: null,
  ws: null,
  cursor: null,
  wsFailures: 0,
  wsTimer: null,
  walletAccount: null,
  busy: false,
  chains: {},
  releasing: false,
  secretKept: null, // the session whose destination lock failed the check: its secret stays here
};

export class ApiError extends Error {
  constructor(status, error) {
    const field = error && error.field ? error.field : null;
    const message = (error && error.message) || `HTTP ${status}`;
    super(field ? `${field}: ${message.replace(new RegExp(`^${escapeRegExp(field)}: `), "")}` : message);
    this.status = status;
    this.code = error && error.code;
    this.reason = error && error.reason;
    this.field = field;
  }
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// --- amounts ----------------------------------------------------------------------------------------------

export function toBaseUnits(text, decimals) {
  const raw = String(text).trim().replace(/_/g, "");
  const match = /^(\d*)(?:\.(\d*))?$/.exec(raw);
  if (!match || raw === "" || raw === ".") throw new Error("Enter an amount such as 25 or 25.5.");
  const frac = (match[2] || "").replace(/0+$/, "");
  if (frac.length > decimals) throw new Error(`The token has ${decimals} decimals: use at most ${decimals} decimal places.`);
  const scale = 10n ** BigInt(decimals);
  const value = BigInt(match[1] || "0") * scale + BigInt(frac.padEnd(decimals, "0") || "0");
  if (value <= 0n) throw new Error("The amount must be greater than zero.");
  return value.toString();
}

export function formatUnits(baseUnits, decimals, symbol = "") {
  if (baseUnits === null || baseUnits === undefined || baseUnits === "") return "–";
  const text = String(baseUnits);
  if (!/^\d+$/.test(text)) return text;
  const padded = text.padStart(decimals + 1, "0");
  const whole = padded.slice(0, padded.length - decimals) || "0";
  const frac = decimals ? padded.slice(padded.length - decimals).replace(/0+$/, "") : "";
  const human = frac ? `${whole}.${frac}` : whole;
  return `${human}${symbol ? ` ${symbol}` : ""}`;
}

// crypto.randomUUID exists only in secure contexts; a page served over plain http on a LAN address is not one.
function newRequestId() {
  if (window.isSecureContext && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function clock(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "";
}

// --- API --------------------------------------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error("Cannot reach the gateway. Is it running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    if (data && data.error) throw new ApiError(response.status, data.error);
    throw new ApiError(response.status, { message: `The gateway answered HTTP ${response.status}.` });
  }
  return data;
}

function describeError(error) {
  if (error instanceof ApiError) {
    let text = error.message;
    // The gateway's messages may end without a full stop; the hint is a sentence of its own.
    if (error.status === 401 || error.status === 403) text = `${text.replace(/[.\s]*$/, ".")} Check the API key.`;
    const tags = [error.code, error.reason].filter((t, i, all) => t && all.indexOf(t) === i).join(" ");
    return tags ? `${text} [${tags}]` : text;
  }
  return error && error.message ? error.message : String(error);
}

// --- form -------------------------------------------------------------------------------------------------

function direction() {
  const checked = document.querySelector('input[name="direction"]:checked');
  return checked ? checked.value : "base-near";
}

function applyDirectionDefaults() {
  const d = app.config.directions[direction()] || DEFAULT_CONFIG.directions[direction()];
  $("src-token").value = d.src.token;
  $("src-decimals").value = String(d.src.decimals);
  $("dst-token").value = d.dst.token;
  $("dst-decimals").value = String(d.dst.decimals);
  const walletMaker = d.src.chain === "base" && app.walletAccount;
  $("maker").value = walletMaker ? app.walletAccount : d.maker;
  $("receiver").value = d.receiver;
  $("amount-unit").textContent = d.src.symbol ? `(${d.src.symbol} on ${d.src.chain.toUpperCase()})` : "";
  $("connect-wallet").hidden = !(window.ethereum && d.src.chain === "base");
  const maker = makerModeAvailable(app.chains, d.dst.chain);
  $("secret-maker").disabled = !maker;
  if (!maker) $("secret-service").checked = true;
  $("secret-help").textContent = maker
    ? "This browser keeps the secret and releases it only after reading the destination lock on its chain."
    : "This page cannot read the destination chain here (no RPC configured, or not https): the service keeps the secret.";
  clearQuote();
}

function secretMode() {
  const checked = document.querySelector('input[name="secret-mode"]:checked');
  return checked ? checked.value : "service";
}

// Decimals and symbol of an asset: the form's fields first (the user may have changed them), then the config.
function unitsFor(asset) {
  if (!asset) return null;
  const d = app.config.directions[direction()] || DEFAULT_CONFIG.directions[direction()];
  const candidates = [];
  for (const [side, tokenId, decId] of [["src", "src-token", "src-decimals"], ["dst", "dst-token", "dst-decimals"]]) {
    const token = $(tokenId).value.trim();
    const decimals = Number.parseInt($(decId).value, 10);
    const symbol = d[side].token === token ? d[side].symbol : "";
    if (Number.isInteger(decimals)) candidates.push({ chain: d[side].chain, token, decimals, symbol });
  }
  for (const dir of Object.values(app.config.directions)) candidates.push(dir.src, dir.dst);
  return candidates.find((c) => c && c.chain === asset.chain && c.token === asset.token) || null;
}

function amountOf(baseUnits, asset) {
  const units = unitsFor(asset);
  if (!units) return baseUnits ? `${baseUnits} (base units)` : "–";
  return formatUnits(baseUnits, units.decimals, units.symbol);
}

function decimalsOf(id) {
  const value = Number.parseInt($(id).value, 10);
  if (!Number.isInteger(value) || value < 0 || value > 36) {
    throw Object.assign(new Error("Token decimals must be a whole number from 0 to 36."), { input: id });
  }
  return value;
}

function tradeRequest() {
  const d = app.config.directions[direction()] || DEFAULT_CONFIG.directions[direction()];
  let amount;
  try {
    amount = toBaseUnits($("amount").value, decimalsOf("src-decimals"));
  } catch (e) {
    throw Object.assign(e, { input: e.input || "amount" });
  }
  decimalsOf("dst-decimals");
  const body = {
    src: { chain: d.src.chain, token: $("src-token").value.trim() },
    dst: { chain: d.dst.chain, token: $("dst-token").value.trim() },
    src_amount: amount,
  };
  const slippage = Number.parseInt($("slippage").value || "0", 10);
  if (slippage) body.slippage_bps = slippage;
  return body;
}

function showFormError(error) {
  const box = $("form-error");
  clearInvalid();
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = describeError(error);
  box.hidden = false;
  const inputId = error.input || (error.field && (FIELD_INPUTS[error.field] || FIELD_INPUTS[error.field.split(".")[0]]));
  if (inputId) {
    const input = $(inputId);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", "form-error");
    const details = input.closest("details");
    if (details) details.open = true;
    input.focus();
  }
}

function clearInvalid() {
  for (const el of document.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
}

async function busy(button, work) {
  if (app.busy) return;
  app.busy = true;
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
    app.busy = false;
  }
}

// --- quote ------------------------------------------------------------------------------------------------

function clearQuote() {
  app.quote = null;
  if (app.quoteTimer) clearInterval(app.quoteTimer);
  app.quoteTimer = null;
  $("quote-section").hidden = true;
}

async function getQuote() {
  showFormError(null);
  let body;
  try {
    body = tradeRequest();
  } catch (e) {
    showFormError(e);
    return;
  }
  try {
    const quote = await api("POST", `${API}/quotes`, body);
    renderQuote(quote);
  } catch (e) {
    clearQuote();
    showFormError(e);
  }
}

function fact(list, term, value, id) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (id) dd.id = id;
  list.append(dt, dd);
}

function renderQuote(quote) {
  app.quote = quote;
  const dst = (v) => amountOf(v, quote.dst);
  const list = $("quote");
  list.replaceChildren();
  const a = quote.auction || {};
  fact(list, "You pay", amountOf(quote.src_amount, quote.src));
  fact(list, "Auction now", dst(a.current_amount), "quote-current");
  fact(list, "Auction start", dst(a.start_amount));
  fact(list, "Auction end", dst(a.end_amount));
  if (a.start_time) {
    fact(list, "Auction runs", `${clock(a.start_time)} → ${clock(a.start_time + a.duration_s)} (${a.duration_s} s)`);
  }
  fact(list, "Protocol fee", dst(quote.protocol_fee));
  fact(list, "Network fee", dst(quote.network_fee));
  fact(list, "Slippage", `${quote.slippage_bps} bps`);
  fact(list, "Minimum received", dst(quote.min_received), "quote-min");
  fact(list, "Refund guaranteed by", clock(quote.refund_guaranteed_by));
  // The quote id is the signed quote itself (hundreds of characters); the page keeps it whole to bind it.
  const id = quote.quote_id || "";
  fact(list, "Quote id", id.length > 24 ? `${id.slice(0, 24)}…` : id);
  $("quote-section").hidden = false;
  $("start-swap").disabled = false;
  if (app.quoteTimer) clearInterval(app.quoteTimer);
  const tick = () => {
    const left = Math.floor(quote.valid_until - Date.now() / 1000);
    if (left > 0) {
      $("quote-validity").textContent = `Valid until ${clock(quote.valid_until)} (${left} s left).`;
    } else {
      $("quote-validity").textContent = "This quote expired: get a new one.";
      $("start-swap").disabled = true;
      clearInterval(app.quoteTimer);
      app.quoteTimer = null;
    }
  };
  tick();
  app.quoteTimer = setInterval(tick, 1000);
}

// --- session ----------------------------------------------------------------------------------------------

async function startSwap() {
  showFormError(null);
  let body;
  try {
    body = tradeRequest();
  } catch (e) {
    showFormError(e);
    return;
  }
  body.maker = $("maker").value.trim();
  body.receiver = $("receiver").value.trim();
  if (app.quote && app.quote.src_amount === body.src_amount) body.quote_id = app.quote.quote_id;
  body.request_id = newRequestId();
  let held = null;
  if (secretMode() === "maker") {
    held = await drawSecret(body);
    body.secret_mode = "maker";
    body.hashlock = held.hashlock;
  }
  try {
    const session = await api("POST", `${API}/sessions`, body);
    if (held) {
      held.session_id = session.session_id;
      saveHeld(held);
    }
    clearQuote();
    follow(session.session_id, session);
  } catch (e) {
    if (held) forgetHeld(held);
    showFormError(e);
  }
}

function follow(sessionId, session) {
  stopWatching();
  app.sessionId = sessionId;
  app.session = null;
  app.cursor = null;
  app.wsFailures = 0;
  localStorage.setItem(LAST_SESSION_STORAGE, sessionId);
  // In the address, so that a reload or a shared link comes back to this session (a fragment: never sent).
  history.replaceState(null, "", `#session=${encodeURIComponent(sessionId)}`);
  $("session-section").hidden = false;
  $("session-id").textContent = sessionId;
  $("result").hidden = true;
  $("steps").replaceChildren();
  $("new-swap").hidden = true;
  setSecretStatus("");
  app.secretKept = null;
  // A NEAR key typed for another session goes with it.
  $("near-account").value = "";
  $("near-key").value = "";
  if (session) applySession(session);
  connect();
  $("session-title").scrollIntoView({ block: "start" });
}

function applySession(session) {
  if (!session || session.session_id !== app.sessionId) return;
  if (app.session && Number.isInteger(app.session.version) && Number.isInteger(session.version)) {
    if (session.version < app.session.version) return;
  }
  app.session = session;
  renderSession(session);
  considerRelease(session);
  if (TERMINAL.has(session.state)) stopWatching();
}

// --- the maker's secret (secret mode maker) ---------------------------------------------------------------

function setSecretStatus(text, isError = false) {
  const el = $("secret-status");
  el.textContent = text;
  el.hidden = !text;
  el.classList.toggle("error-text", isError);
}

async function considerRelease(session) {
  const held = findHeld(session.session_id);
  if (!held) return;
  if (TERMINAL.has(session.state)) {
    forgetHeld(held);
    if (session.state === "completed") setSecretStatus("Your secret was released and is now public on chain.");
    else setSecretStatus("Your secret was never used; nothing of yours stays locked.");
    return;
  }
  if (session.state !== "awaiting_secret" || held.released || app.releasing || app.secretKept === session.session_id) return;
  app.releasing = true;
  try {
    let problems;
    let lock;
    for (;;) {
      setSecretStatus(`Reading the destination lock on ${held.dst_chain.toUpperCase()}…`);
      lock = await readDestinationLock(app.chains, held.dst_chain, session.dst_lock_id || "");
      problems = lockProblems(lock, session, held);
      if (problems.length !== 1 || problems[0] !== "it is not final yet") break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    if (problems.length) {
      app.secretKept = session.session_id;
      setSecretStatus(
        `Secret kept: the destination lock on chain is not what you asked for (${problems.join("; ")}). ` +
          "The swap refunds your funds when its window opens.",
        true,
      );
      return;
    }
    const left = lock.cancellation_at - lock.chain_now;
    setSecretStatus(`Destination lock checked on ${held.dst_chain.toUpperCase()} (${left} s to spare); releasing your secret…`);
    const reply = await api("POST", `${API}/sessions/${encodeURIComponent(session.session_id)}/secret`, {
      secret: held.secret,
    });
    held.released = true;
    saveHeld(held);
    setSecretStatus(`Destination lock checked on ${held.dst_chain.toUpperCase()}; your secret is released.`);
    applySession(reply);
  } catch (e) {
    setSecretStatus(`The secret was not released: ${describeError(e)}`, true);
  } finally {
    app.releasing = false;
  }
}

function renderSession(session) {
  const state = session.state || "";
  const stateEl = $("session-state");
  stateEl.textContent = state;
  stateEl.dataset.state = state;
  renderSummary(session);
  renderMakerStep(session);
  renderSteps(session);
  $("cancel-swap").hidden = TERMINAL.has(state) || ["cancelling", "refunding"].includes(state);
  if (TERMINAL.has(state)) renderResult(session);
}

function renderSummary(session) {
  const list = $("session-summary");
  const quote = session.quote || {};
  list.replaceChildren();
  const chain = (asset) => (asset ? asset.chain.toUpperCase() : "?");
  fact(list, "Pays", `${amountOf(session.src_amount, session.src)} on ${chain(session.src)} from ${session.maker}`);
  fact(list, "Receives", `${amountOf(session.dst_amount || quote.auction?.current_amount, session.dst)} on ${chain(session.dst)} to ${session.receiver}`);
  fact(list, "Minimum received", amountOf(quote.min_received, session.dst));
}

function renderMakerStep(session) {
  const box = $("maker-step");
  const action = session.maker_action;
  if (session.state !== "initialized" || !action) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const text = $("maker-step-text");
  $("maker-action").textContent = JSON.stringify(action, null, 2);
  if (action.sign_order) {
    const o = action.sign_order;
    text.textContent =
      `The maker ${session.maker} signs an EIP-712 order; the escrow then pulls the tokens ` +
      `(token ${o.token} needs an allowance of ${o.allowance} for ${o.spender}).` +
      (window.ethereum ? "" : ` No browser wallet here: sign with swapctl execute ${session.session_id} --sign.`);
    $("sign-wallet").hidden = !window.ethereum;
    $("near-done").hidden = true;
    $("near-key-form").hidden = true;
  } else if (action.near_call) {
    const c = action.near_call;
    const p = action.near_prepay;
    const first = p
      ? `first ${p.contract}.${p.method} with a deposit of ${p.deposit} yoctoNEAR (the lock's storage fee, ` +
        `prepaid on the HTLC), then `
      : "";
    text.textContent =
      `The maker ${session.maker} calls ${first}${c.contract}.${c.method} with a deposit of ${c.deposit} ` +
      `yoctoNEAR and ${c.gas} gas (arguments below), then continues here.`;
    $("sign-wallet").hidden = true;
    $("near-done").hidden = false;
    // Offered only when the gateway names a NEAR RPC (/chains.json), the one the page's policy lets it reach.
    const near = app.chains.near;
    $("near-key-form").hidden = !(near && near.rpc_url);
    if (near && near.rpc_url) $("near-rpc").textContent = near.rpc_url;
    if (!$("near-account").value) $("near-account").value = session.maker;
  }
}

export function stepRows(session) {
  const current = session.state || "";
  const seen = new Map();
  for (const step of session.steps || []) {
    if (!seen.has(step.state)) seen.set(step.state, { state: step.state, status: "done", at: step.at, txs: [], notes: [] });
    const row = seen.get(step.state);
    if (step.tx_hash) row.txs.push({ chain: step.chain, hash: step.tx_hash });
    if (step.note && !row.notes.includes(step.note)) row.notes.push(step.note);
  }
  if (current && !seen.has(current)) seen.set(current, { state: current, status: "done", at: null, txs: [], notes: [] });
  const path = session.secret_mode === "maker" ? MAKER_PATH : HAPPY_PATH;
  const detour = [...seen.keys()].some((s) => !path.includes(s));
  const furthest = Math.max(-1, ...[...seen.keys()].map((s) => path.indexOf(s)));
  const rows = [];
  path.forEach((state, index) => {
    if (seen.has(state)) rows.push(seen.get(state));
    else if (index < furthest) rows.push({ state, status: "done", at: null, txs: [], notes: [] });
    else if (!detour) rows.push({ state, status: "pending", at: null, txs: [], notes: [] });
  });
  for (const [state, row] of seen) if (!path.includes(state)) rows.push(row);
  for (const row of rows) {
    if (row.state !== current) continue;
    if (!TERMINAL.has(current)) row.status = "current";
    else if (current === "completed") row.status = "done";
    else row.status = ["refunded", "cancelled"].includes(current) ? "ended" : "failed";
  }
  return rows;
}

function txElement(tx) {
  const pattern = (app.config.explorers || {})[tx.chain] || "";
  const label = `${tx.chain ? tx.chain.toUpperCase() : "tx"} `;
  const wrap = document.createElement("span");
  wrap.className = "tx";
  wrap.append(label);
  if (pattern && pattern.includes("{tx}")) {
    const a = document.createElement("a");
    a.href = pattern.replace("{tx}", encodeURIComponent(tx.hash));
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = tx.hash;
    wrap.append(a);
  } else {
    const code = document.createElement("code");
    code.textContent = tx.hash;
    wrap.append(code);
  }
  return wrap;
}

function renderSteps(session) {
  const list = $("steps");
  const items = stepRows(session).map((row) => {
    const li = document.createElement("li");
    li.dataset.state = row.state;
    li.dataset.status = row.status;
    if (row.status === "current") li.setAttribute("aria-current", "step");
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.setAttribute("aria-hidden", "true");
    const status = document.createElement("span");
    status.className = "visually-hidden";
    status.textContent = `${STATUS_WORDS[row.status]}: `;
    const name = document.createElement("code");
    name.className = "state";
    name.textContent = row.state;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = row.at ? clock(row.at) : "";
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = row.notes.join("; ") || LABELS[row.state] || "";
    li.append(mark, status, name, when, what);
    for (const tx of row.txs) li.append(txElement(tx));
    return li;
  });
  list.replaceChildren(...items);
}

function renderResult(session) {
  const box = $("result");
  const quote = session.quote || {};
  box.replaceChildren();
  const head = document.createElement("p");
  head.className = `outcome outcome-${session.state}`;
  const dl = document.createElement("dl");
  dl.className = "facts";
  if (session.state === "completed") {
    head.textContent = `Completed: ${session.receiver} received the funds.`;
    fact(dl, "Received", amountOf(session.dst_amount, session.dst), "result-received");
    fact(dl, "Minimum was", amountOf(quote.min_received, session.dst), "result-min");
    if (session.secret) fact(dl, "Secret (now public)", session.secret);
  } else {
    head.textContent = `The swap ended ${session.state}.`;
    if (session.error) fact(dl, "Why", `${session.error.message} [${session.error.reason}]`);
  }
  box.append(head, dl);
  box.hidden = false;
  $("new-swap").hidden = false;
  $("maker-step").hidden = true;
}

// --- maker's step -----------------------------------------------------------------------------------------

async function execute(signature) {
  const body = { request_id: newRequestId() };
  if (signature) body.signature = signature;
  applySession(await api("POST", `${API}/sessions/${encodeURIComponent(app.sessionId)}/execute`, body));
}

async function walletAccount() {
  const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
  if (!accounts || !accounts.length) throw new Error("The wallet shared no account.");
  return accounts[0];
}

function pad32(hex) {
  return hex.replace(/^0x/, "").toLowerCase().padStart(64, "0");
}

async function ensureAllowance(owner, order) {
  if (!order.token || !order.spender || order.token === "native") return;
  // allowance(owner, spender) then, when short, approve(spender, amount): the escrow pulls with transferFrom.
  const have = await window.ethereum.request({
    method: "eth_call",
    params: [{ to: order.token, data: `0xdd62ed3e${pad32(owner)}${pad32(order.spender)}` }, "latest"],
  });
  const need = BigInt(order.allowance || "0");
  if (BigInt(have && have !== "0x" ? have : "0x0") >= need) return;
  setConnection("Approve the token allowance in your wallet…");
  const hash = await window.ethereum.request({
    method: "eth_sendTransaction",
    params: [{ from: owner, to: order.token, data: `0x095ea7b3${pad32(order.spender)}${need.toString(16).padStart(64, "0")}` }],
  });
  for (let i = 0; i < 120; i += 1) {
    const receipt = await window.ethereum.request({ method: "eth_getTransactionReceipt", params: [hash] });
    if (receipt) {
      if (receipt.status !== "0x1") throw new Error(`The approval transaction ${hash} failed.`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`The approval transaction ${hash} is not mined yet; try again shortly.`);
}

// EIP-1193 error codes (EIP-1193, EIP-3326): the user refused; the wallet does not know the chain.
const USER_REJECTED = 4001;
const UNKNOWN_CHAIN = 4902;

// Some wallets wrap the provider error (MetaMask Mobile: data.originalError).
function walletErrorCode(error) {
  if (!error) return null;
  if (Number.isInteger(error.code)) return error.code;
  const inner = error.data && error.data.originalError;
  return inner && Number.isInteger(inner.code) ? inner.code : null;
}

const chainText = (id) => `${id} (0x${id.toString(16)})`;

class WrongChain extends Error {
  constructor(have, want, why) {
    super(
      `Your wallet is on the wrong chain: it is on chain ${chainText(have)}, this swap's order is for BASE chain ` +
        `${chainText(want)}. ${why} Nothing was signed; switch the wallet to chain ${want} and press ` +
        "Sign with wallet again.",
    );
  }
}

function addChainParams(want) {
  const base = app.chains.base;
  if (!base || !base.rpc_url) return null;
  // A chains file that names another chain id for this RPC is not offered to the wallet.
  if (base.chain_id !== undefined && BigInt(base.chain_id) !== want) return null;
  const params = {
    chainId: `0x${want.toString(16)}`,
    chainName: base.name || "BASE",
    rpcUrls: [base.rpc_url],
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  };
  const explorer = (app.config.explorers || {}).base || "";
  if (explorer.includes("{tx}")) {
    try {
      params.blockExplorerUrls = [new URL(explorer.replace("{tx}", "0")).origin];
    } catch (e) {
      // No explorer link for the wallet, then.
    }
  }
  return params;
}

// The order's EIP-712 domain names the chain it is valid on: the wallet must be on that chain before it
// approves or signs anything (EIP-3326 switch; EIP-3085 add when the wallet does not know the chain).
async function ensureChain(order) {
  const domain = (order.typed_data && order.typed_data.domain) || {};
  if (domain.chainId === undefined || domain.chainId === null) throw new Error("The order names no chain; nothing was signed.");
  const want = BigInt(domain.chainId);
  const readChain = async () => BigInt(await window.ethereum.request({ method: "eth_chainId" }));
  const have = await readChain();
  if (have === want) return;
  const chainId = `0x${want.toString(16)}`;
  const refused = (e, what) =>
    walletErrorCode(e) === USER_REJECTED ? new WrongChain(have, want, `You declined ${what}.`) : null;
  setConnection(`Your wallet is on chain ${chainText(have)}; approve the switch to BASE chain ${chainText(want)} in it…`);
  try {
    await window.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
  } catch (e) {
    if (walletErrorCode(e) !== UNKNOWN_CHAIN) {
      throw refused(e, "the switch") || new WrongChain(have, want, `The wallet did not switch: ${describeError(e)}`);
    }
    const params = addChainParams(want);
    if (!params) {
      throw new WrongChain(have, want, "The wallet does not know that chain and this gateway names no RPC for it.");
    }
    setConnection(`Your wallet does not know BASE chain ${chainText(want)}; approve adding it (${params.rpcUrls[0]})…`);
    try {
      await window.ethereum.request({ method: "wallet_addEthereumChain", params: [params] });
      await window.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (err) {
      throw refused(err, "adding or switching to it") || new WrongChain(have, want, `The wallet did not add it: ${describeError(err)}`);
    }
  }
  const now = await readChain();
  if (now !== want) throw new WrongChain(now, want, "The wallet did not switch.");
}

async function signWithWallet() {
  const session = app.session;
  const order = session && session.maker_action && session.maker_action.sign_order;
  if (!order) return;
  try {
    const account = await walletAccount();
    if (account.toLowerCase() !== String(session.maker).toLowerCase()) {
      throw new Error(`The wallet account ${account} is not this session's maker ${session.maker}.`);
    }
    await ensureChain(order);
    await ensureAllowance(account, order);
    setConnection("Sign the order in your wallet…");
    const signature = await window.ethereum.request({
      method: "eth_signTypedData_v4",
      params: [account, JSON.stringify(order.typed_data)],
    });
    await execute(signature);
    setConnection("");
  } catch (e) {
    setConnection(describeError(e), true);
  }
}

async function nearCallDone() {
  try {
    await execute(null);
  } catch (e) {
    setConnection(describeError(e), true);
  }
}

let nearApi = null; // near-api-js, loaded the first time a NEAR key is used

// The maker's NEAR call, signed here with the key typed into the page and sent to the NEAR RPC of /chains.json;
// then execute, so that the session adopts the lock. The key is read from the input and dropped once sent: it is
// never stored, and never goes to the gateway.
async function signWithNearKey() {
  const session = app.session;
  const call = session && session.maker_action && session.maker_action.near_call;
  if (!call) return;
  const accountInput = $("near-account");
  const keyInput = $("near-key");
  for (const input of [accountInput, keyInput]) input.removeAttribute("aria-invalid");
  const fail = (input, text) => {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    setConnection(text, true);
  };
  const accountId = accountInput.value.trim();
  if (accountId !== session.maker) {
    fail(accountInput, `The NEAR account ${accountId || "(empty)"} is not this session's maker ${session.maker}.`);
    return;
  }
  const keyText = keyInput.value.trim();
  if (!/^ed25519:[1-9A-HJ-NP-Za-km-z]{40,100}$/.test(keyText)) {
    fail(keyInput, "Enter the account's ed25519 private key, in the form ed25519:… (base58).");
    return;
  }
  const rpcUrl = app.chains.near && app.chains.near.rpc_url;
  if (!rpcUrl) {
    setConnection("This gateway names no NEAR RPC (/chains.json): make the call with your own wallet.", true);
    return;
  }
  let hash;
  try {
    nearApi = nearApi || (await import("./near-api-js.js"));
    try {
      nearApi.KeyPair.fromString(keyText);
    } catch (e) {
      fail(keyInput, "That is not an ed25519 private key (ed25519:…).");
      return;
    }
    const provider = new nearApi.JsonRpcProvider({ url: rpcUrl });
    const account = new nearApi.Account(accountId, provider, keyText);
    const prepay = session.maker_action.near_prepay;
    for (const each of prepay ? [prepay, call] : [call]) {
      setConnection(`Sending ${each.contract}.${each.method} from ${accountId} to ${rpcUrl}…`);
      const outcome = await account.callFunctionRaw({
        contractId: each.contract,
        methodName: each.method,
        args: each.args,
        deposit: BigInt(each.deposit),
        gas: BigInt(each.gas),
      });
      hash = outcome.transaction.hash;
    }
  } catch (e) {
    setConnection(`The NEAR call did not complete: ${describeError(e)}`, true);
    return;
  }
  keyInput.value = "";
  try {
    setConnection(`NEAR call sent (${hash}); asking the service to adopt the lock…`);
    await execute(null);
    setConnection("");
  } catch (e) {
    setConnection(
      `The NEAR call went through (${hash}), but the service was not told: ${describeError(e)} ` +
        "Press I made the NEAR call to tell it.",
      true,
    );
  }
}

async function cancelSwap() {
  try {
    applySession(await api("POST", `${API}/sessions/${encodeURIComponent(app.sessionId)}/cancel`, {}));
  } catch (e) {
    setConnection(describeError(e), true);
  }
}

async function connectWallet() {
  try {
    app.walletAccount = await walletAccount();
    $("maker").value = app.walletAccount;
  } catch (e) {
    showFormError(e);
  }
}

// --- live progress ----------------------------------------------------------------------------------------

function setConnection(text, isError = false) {
  const el = $("connection");
  el.textContent = text;
  el.classList.toggle("error-text", isError);
}

function wsUrl() {
  const url = new URL("/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket, hence the query parameter.
  if (apiKey()) url.searchParams.set("api_key", apiKey());
  return url.toString();
}

function connect() {
  const id = app.sessionId;
  if (!id || (app.session && TERMINAL.has(app.session.state))) return;
  const ws = new WebSocket(wsUrl());
  app.ws = ws;
  ws.addEventListener("open", () => {
    const arg = app.cursor ? { session_id: id, cursor: app.cursor } : id;
    ws.send(JSON.stringify({ op: "subscribe", channel: "session", args: [arg] }));
  });
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (message.event === "subscribed") {
      setConnection("Live.");
    } else if (message.event === "update") {
      app.wsFailures = 0;
      for (const item of message.args || []) {
        if (!item || !item.session || item.session.session_id !== id) continue;
        if (item.cursor) app.cursor = item.cursor;
        applySession(item.session);
      }
    } else if (message.event === "error") {
      const first = (message.args || [])[0] || {};
      setConnection(`${first.message || "error"} [${first.reason || "ERROR"}]`, true);
    }
  });
  ws.addEventListener("close", () => {
    if (app.ws !== ws) return;
    app.ws = null;
    if (app.sessionId !== id || (app.session && TERMINAL.has(app.session.state))) return;
    app.wsFailures += 1;
    const delay = RETRY_DELAYS_MS[Math.min(app.wsFailures - 1, RETRY_DELAYS_MS.length - 1)];
    setConnection(`Connection lost; reconnecting in ${delay / 1000} s…`);
    app.wsTimer = setTimeout(() => {
      app.wsTimer = null;
      refreshThenConnect(id);
    }, delay);
  });
}

async function refreshThenConnect(id) {
  // A reconnect resumes from the last cursor; the GET also covers a session that ended while disconnected.
  try {
    applySession(await api("GET", `${API}/sessions/${encodeURIComponent(id)}`));
  } catch (e) {
    setConnection(describeError(e), true);
  }
  if (app.sessionId === id) connect();
}

function stopWatching() {
  if (app.wsTimer) clearTimeout(app.wsTimer);
  app.wsTimer = null;
  const ws = app.ws;
  app.ws = null;
  if (ws) ws.close();
  if (app.session && TERMINAL.has(app.session.state)) setConnection("");
}

async function resume(id) {
  try {
    const session = await api("GET", `${API}/sessions/${encodeURIComponent(id)}`);
    follow(id, session);
  } catch (e) {
    showFormError(e);
  }
}

// --- start ------------------------------------------------------------------------------------------------

async function loadConfig() {
  try {
    const response = await fetch(new URL("config.json", import.meta.url));
    if (!response.ok) return DEFAULT_CONFIG;
    const config = await response.json();
    return {
      explorers: { ...DEFAULT_CONFIG.explorers, ...(config.explorers || {}) },
      directions: { ...DEFAULT_CONFIG.directions, ...(config.directions || {}) },
    };
  } catch (e) {
    return DEFAULT_CONFIG;
  }
}

async function loadChains() {
  try {
    const response = await fetch(new URL("../chains.json", import.meta.url));
    return response.ok ? await response.json() : {};
  } catch (e) {
    return {};
  }
}

async function main() {
  app.config = await loadConfig();
  app.chains = await loadChains();
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    busy(event.submitter || $("key-form").querySelector("button"), checkKey);
  });
  // Requests read the key from storage, so a key typed without pressing Save must count as well.
  $("api-key").addEventListener("input", () => localStorage.setItem(KEY_STORAGE, $("api-key").value.trim()));
  for (const radio of document.querySelectorAll('input[name="direction"]')) {
    radio.addEventListener("change", applyDirectionDefaults);
  }
  for (const id of ["amount", "src-token", "dst-token", "src-decimals", "dst-decimals", "slippage"]) {
    $(id).addEventListener("input", clearQuote);
  }
  $("trade-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("get-quote"), getQuote);
  });
  $("start-swap").addEventListener("click", () => busy($("start-swap"), startSwap));
  $("sign-wallet").addEventListener("click", () => busy($("sign-wallet"), signWithWallet));
  $("near-done").addEventListener("click", () => busy($("near-done"), nearCallDone));
  $("near-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("sign-near"), signWithNearKey);
  });
  $("cancel-swap").addEventListener("click", () => busy($("cancel-swap"), cancelSwap));
  $("connect-wallet").addEventListener("click", () => busy($("connect-wallet"), connectWallet));
  $("show-history").addEventListener("click", () => busy($("show-history"), showHistory));
  $("new-swap").addEventListener("click", () => {
    stopWatching();
    app.sessionId = null;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    $("session-section").hidden = true;
    $("amount").focus();
  });
  $("resume-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("resume-id").value.trim();
    if (id) busy(event.submitter || $("resume-form").querySelector("button"), () => resume(id));
  });
  $("resume-id").value = localStorage.getItem(LAST_SESSION_STORAGE) || "";
  applyDirectionDefaults();
  document.body.dataset.ready = "true";
  // A reload (or a shared link) of a session's page follows that session again.
  const linked = sessionInUrl();
  if (linked) resume(linked);
}

// --- history: the API key's sessions ------------------------------------------------------------------------

async function showHistory() {
  const list = $("history");
  const status = $("history-status");
  status.textContent = "Loading…";
  try {
    const page = await api("GET", `${API}/sessions?page_size=20`);
    const items = (page.sessions || []).map((s) => {
      const li = document.createElement("li");
      li.dataset.sessionId = s.session_id;
      const what = document.createElement("span");
      const when = s.created_at ? `${new Date(s.created_at * 1000).toLocaleString()}: ` : "";
      what.textContent =
        `${when}${amountOf(s.src_amount, s.src)} ${s.src.chain.toUpperCase()} → ${s.dst.chain.toUpperCase()}, ` +
        `${s.state} `;
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = "Follow";
      open.setAttribute("aria-label", `Follow session ${s.session_id}`);
      open.addEventListener("click", () => busy(open, () => resume(s.session_id)));
      li.append(what, open);
      return li;
    });
    list.replaceChildren(...items);
    status.textContent = items.length ? "" : "No swaps yet for this key.";
  } catch (e) {
    list.replaceChildren();
    status.textContent = describeError(e);
  }
}

// Saving a key asks the gateway whether it takes it (a one-item list of the key's own sessions).
async function checkKey() {
  const status = $("key-status");
  status.classList.remove("error-text");
  status.textContent = "Checking the key…";
  try {
    await api("GET", `${API}/sessions?page_size=1`);
    status.textContent = "Saved: the gateway accepts this key.";
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      status.textContent = "Saved, but the gateway refuses this key: check it.";
      status.classList.add("error-text");
    } else {
      status.textContent = `Saved; the key could not be checked now (${describeError(e)}).`;
    }
  }
}

function sessionInUrl() {
  const match = /(?:^#|&)session=([A-Za-z0-9_-]{1,64})(?:&|$)/.exec(window.location.hash);
  return match ? match[1] : null;
}

main();
