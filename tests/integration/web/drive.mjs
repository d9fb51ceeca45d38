// Drives the swap page in headless Chromium (Debian's /usr/bin/chromium through playwright-core): enter the API
// key, quote, start a swap, make the maker's step (a wallet or a NEAR key, below), and wait until the page shows
// a terminal state.
// Prints one JSON line with what the page showed; exits 0 only when it showed the expected final state.
//
//   node drive.mjs --url http://127.0.0.1:PORT --api-key KEY --screenshot out.png --profile DIR
//                  [--direction base-near|near-base] [--amount 25] [--expect completed] [--timeout-ms 90000]
//                  [--wallet-rpc URL --wallet-account ADDR [--wallet-chain ID] [--wallet-switch accept|refuse]]
//                  [--near-account ID --near-key ed25519:...] [--secret-mode maker|service] [--reload-at STATE]
//                  [--wrong-key KEY]
//
// --secret-mode picks who keeps the secret (the page's default is this browser, "maker"); --reload-at reloads the
// page once the session reaches STATE (the page comes back to the session from its address); --wrong-key first
// saves a key the gateway refuses and records what the page says.
//
// With --wallet-rpc the page gets a window.ethereum whose requests go to that JSON-RPC endpoint (anvil, whose dev
// accounts are unlocked, answers eth_signTypedData_v4 itself) and the swap is signed through the wallet path.
// --wallet-chain starts that wallet on another chain, which it knows and has no RPC for: it then answers only
// eth_chainId, eth_accounts and the EIP-3326 / EIP-3085 calls, refuses everything else (4901), and knows the
// RPC's chain only once the page has added it (wallet_switchEthereumChain answers 4902 until then).
// --wallet-switch refuse declines every switch and add (4001); with --expect wrong-chain the driver then waits for
// the page to say so instead of for the end of the swap, and exits 0 when the session was left initialized.
//
// With --near-key the maker's NEAR call is made by the page itself, signed with that key (NEAR source); the report
// says whether the key ever reached the gateway (requests, WebSocket frames) or the page's storage.

import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    "api-key": { type: "string" },
    screenshot: { type: "string" },
    profile: { type: "string" },
    direction: { type: "string", default: "base-near" },
    amount: { type: "string", default: "25" },
    expect: { type: "string", default: "completed" },
    "timeout-ms": { type: "string", default: "90000" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "wallet-rpc": { type: "string", default: "" },
    "wallet-account": { type: "string", default: "" },
    "secret-mode": { type: "string", default: "maker" },
    "reload-at": { type: "string", default: "" },
    "wrong-key": { type: "string", default: "" },
    "wallet-chain": { type: "string", default: "" },
    "wallet-switch": { type: "string", default: "accept" },
    "near-account": { type: "string", default: "" },
    "near-key": { type: "string", default: "" },
  },
});
if (!opts["wallet-rpc"] && !opts["near-key"]) {
  console.error("the maker's step needs --wallet-rpc (BASE source) or --near-key (NEAR source)");
  process.exit(2);
}
for (const required of ["url", "api-key", "screenshot", "profile"]) {
  if (!opts[required]) {
    console.error(`missing --${required}`);
    process.exit(2);
  }
}
const timeout = Number(opts["timeout-ms"]);

// Everything outside loopback is refused, so the page provably needs no network.
const LOCAL = /^(https?|wss?):\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//;

const context = await chromium.launchPersistentContext(opts.profile, {
  executablePath: opts.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1100, height: 1400 },
});

// Thrown to end a run early once it has what it came for.
class Done extends Error {}

const problems = [];
const external = [];
let exitCode = 1;
const report = { state: null, steps: [], received: null, minimum: null, session_id: null };

try {
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (LOCAL.test(url) || url.startsWith("data:")) return route.continue();
    external.push(url);
    return route.abort();
  });
  const wallet = Boolean(opts["wallet-rpc"]);
  if (wallet) {
    let rpcId = 0;
    // The node side makes the RPC call: the page's own policy lets it talk to the gateway only.
    const walletRpc = async (method, params) => {
      rpcId += 1;
      const response = await fetch(opts["wallet-rpc"], {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: rpcId, method, params: params || [] }),
      });
      const reply = await response.json();
      if (reply.error) return { error: reply.error.message || JSON.stringify(reply.error) };
      return { result: reply.result };
    };
    await context.exposeFunction("__walletRpc", walletRpc);
    const rpcChain = (await walletRpc("eth_chainId", [])).result;
    const setup = {
      account: opts["wallet-account"],
      rpcChain,
      startChain: opts["wallet-chain"] || rpcChain,
      refuse: opts["wallet-switch"] === "refuse",
    };
    // An EIP-1193 provider: errors carry the numeric `code` wallets use.
    await context.addInitScript(({ account, rpcChain, startChain, refuse }) => {
      const hex = (id) => `0x${BigInt(id).toString(16)}`;
      const fail = (code, message) => Object.assign(new Error(message), { code });
      let chainId = hex(startChain);
      const known = new Set([chainId]);
      window.__walletCalls = [];
      window.__walletAdded = [];
      window.ethereum = {
        request: async ({ method, params }) => {
          window.__walletCalls.push(method);
          if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
          if (method === "eth_chainId") return chainId;
          if (method === "wallet_switchEthereumChain") {
            if (refuse) throw fail(4001, "User rejected the request.");
            const target = hex(params[0].chainId);
            if (!known.has(target)) throw fail(4902, `Unrecognized chain ID "${target}".`);
            chainId = target;
            return null;
          }
          if (method === "wallet_addEthereumChain") {
            if (refuse) throw fail(4001, "User rejected the request.");
            const chain = params[0];
            window.__walletAdded.push(chain);
            if (hex(chain.chainId) !== hex(rpcChain) || !(chain.rpcUrls || []).length || !chain.chainName) {
              throw fail(-32602, "Invalid chain parameters.");
            }
            known.add(hex(chain.chainId));
            return null;
          }
          if (chainId !== hex(rpcChain)) throw fail(4901, `This wallet has no RPC for chain ${chainId}.`);
          const reply = await window.__walletRpc(method, params);
          if (reply.error) throw new Error(reply.error);
          return reply.result;
        },
      };
    }, setup);
  }
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeout);
  report.websockets = 0;
  report.ws_updates = 0;
  page.on("websocket", (ws) => {
    report.websockets += 1;
    ws.on("framesent", (frame) => {
      const text = typeof frame.payload === "string" ? frame.payload : frame.payload.toString();
      if (nearKey && text.includes(nearKey)) report.key_sent_to_gateway += 1;
    });
    ws.on("framereceived", (frame) => {
      const text = typeof frame.payload === "string" ? frame.payload : frame.payload.toString();
      if (/"event":\s*"update"/.test(text)) report.ws_updates += 1;
    });
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  // What the page sent where: executes to the gateway, JSON-RPC methods to the chains, and any copy of the NEAR key
  // on its way to the gateway.
  const nearKey = opts["near-key"];
  const gatewayOrigin = new URL(opts.url).origin;
  report.execute_posts = 0;
  report.rpc_calls = [];
  report.key_sent_to_gateway = 0;
  page.on("request", (request) => {
    const url = request.url();
    const body = request.postData() || "";
    if (url.startsWith(gatewayOrigin)) {
      if (request.method() === "POST" && /\/api\/v1\/sessions\/[^/]+\/execute$/.test(url)) report.execute_posts += 1;
      if (nearKey && (url.includes(nearKey) || body.includes(nearKey))) report.key_sent_to_gateway += 1;
    } else if (request.method() === "POST") {
      try {
        report.rpc_calls.push({ origin: new URL(url).origin, method: JSON.parse(body).method });
      } catch (e) {
        report.rpc_calls.push({ origin: new URL(url).origin, method: null });
      }
    }
  });
  page.on("response", async (response) => {
    const request = response.request();
    if (request.url().startsWith(gatewayOrigin) || request.method() !== "POST") return;
    try {
      if (JSON.parse(request.postData() || "{}").method !== "send_tx") return;
      const reply = await response.json();
      if (reply.result && reply.result.transaction) report.near_tx = reply.result.transaction.hash;
    } catch (e) {
      // Not a NEAR send_tx answer.
    }
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });

  await page.goto(opts.url, { waitUntil: "load" });
  await page.locator('body[data-ready="true"]').waitFor();
  if (opts["wrong-key"]) {
    const before = problems.length;
    await page.getByLabel("API key").fill(opts["wrong-key"]);
    await page.getByRole("button", { name: "Save key" }).click();
    await page.getByText("the gateway refuses this key").waitFor();
    report.wrong_key_status = (await page.locator("#key-status").textContent()).trim();
    // The browser logs the refused check (HTTP 401) itself; that one is expected here, nothing else is.
    const expected = (p) => /status of 401/.test(p);
    const during = problems.splice(before);
    problems.push(...during.filter((p) => !expected(p)));
  }
  await page.getByLabel("API key").fill(opts["api-key"]);
  await page.getByRole("button", { name: "Save key" }).click();
  await page.getByText("Saved: the gateway accepts this key.").waitFor();

  const label = opts.direction === "near-base" ? "NEAR → BASE" : "BASE → NEAR";
  await page.getByLabel(label).check();
  if (wallet) await page.getByRole("button", { name: "Use my wallet as maker" }).click();
  await page.getByLabel(opts["secret-mode"] === "service" ? "The service" : "This browser").check();
  await page.getByLabel(/Amount you pay/).fill(opts.amount);
  await page.getByRole("button", { name: "Get quote" }).click();
  await page.locator("#quote-min").waitFor();
  report.quote_min = await page.locator("#quote-min").textContent();
  report.quote_now = await page.locator("#quote-current").textContent();

  await page.getByRole("button", { name: "Start swap" }).click();
  await page.locator("#session-section").waitFor({ state: "visible" });
  await page.locator('#session-state[data-state="initialized"], #session-state[data-state="executing"]').first().waitFor();
  report.session_id = await page.locator("#session-id").textContent();

  report.maker_action = JSON.parse((await page.locator("#maker-action").textContent()) || "null");
  if (wallet) {
    await page.getByRole("button", { name: "Sign with wallet" }).click();
  } else if (nearKey) {
    if (opts["near-account"]) await page.getByLabel("NEAR account").fill(opts["near-account"]);
    await page.getByLabel(/NEAR private key/).fill(nearKey);
    await page.locator("#maker-step").screenshot({ path: opts.screenshot.replace(/\.png$/, "-maker-step.png") });
    await page.getByRole("button", { name: "Sign and send the NEAR call" }).click();
  }

  if (opts.expect === "wrong-chain") {
    // The page must refuse to sign and say why; the session stays where it was.
    await page.locator("#connection.error-text", { hasText: "wrong chain" }).waitFor({ timeout });
    report.connection = (await page.locator("#connection").textContent()).trim();
    report.shown_state = (await page.locator("#session-state").textContent()).trim();
    report.state = report.shown_state;
    report.wallet_calls = await page.evaluate(() => window.__walletCalls);
    report.wallet_added = await page.evaluate(() => window.__walletAdded);
    report.sign_button_enabled = await page.getByRole("button", { name: "Sign with wallet" }).isEnabled();
    await page.screenshot({ path: opts.screenshot, fullPage: true });
    exitCode = report.shown_state === "initialized" && report.execute_posts === 0 ? 0 : 1;
    throw new Done();
  }

  if (opts["reload-at"]) {
    await page.locator(`#steps li[data-state="${opts["reload-at"]}"]:not([data-status="pending"])`).waitFor({ timeout });
    report.secrets_before_reload = await page.evaluate(
      () => Object.keys(localStorage).filter((k) => k.startsWith("swap.secret.")).length,
    );
    report.url_before_reload = page.url();
    await page.reload({ waitUntil: "load" });
    await page.locator('body[data-ready="true"]').waitFor();
    report.reloaded = true;
    // The session is in the address: the reloaded page follows it by itself.
    await page.locator("#session-section").waitFor({ state: "visible" });
  }

  const terminal = ["completed", "refunded", "cancelled", "failed", "timeout"]
    .map((s) => `#session-state[data-state="${s}"]`)
    .join(", ");
  await page.locator(terminal).first().waitFor({ timeout });
  await page.locator("#result").waitFor({ state: "visible" });
  report.state = await page.locator("#session-state").getAttribute("data-state");
  report.shown_state = (await page.locator("#session-state").textContent()).trim();
  report.steps = await page.locator("#steps li").evaluateAll((items) =>
    items.map((li) => ({
      state: li.dataset.state,
      status: li.dataset.status,
      text: li.textContent.replace(/\s+/g, " ").trim(),
    })),
  );
  report.txs = await page.locator("#steps .tx").allTextContents();
  report.secret_status = ((await page.locator("#secret-status").textContent()) || "").trim();
  report.secrets_left = await page.evaluate(
    () => Object.keys(localStorage).filter((k) => k.startsWith("swap.secret.")).length,
  );
  report.result = (await page.locator("#result").textContent()).replace(/\s+/g, " ").trim();
  if (await page.locator("#result-received").count()) {
    report.received = await page.locator("#result-received").textContent();
    report.minimum = await page.locator("#result-min").textContent();
  }
  if (wallet) {
    report.wallet_calls = await page.evaluate(() => window.__walletCalls);
    report.wallet_added = await page.evaluate(() => window.__walletAdded);
  }
  if (nearKey) {
    report.key_in_storage = await page.evaluate(
      (key) => [localStorage, sessionStorage].some((store) => Object.values(store).some((v) => v.includes(key))),
      nearKey,
    );
    report.key_left_in_input = (await page.getByLabel(/NEAR private key/).inputValue()) !== "";
  }
  await page.getByRole("button", { name: "Show my swaps" }).click();
  await page.locator("#history li").first().waitFor();
  report.history = await page.locator("#history li").evaluateAll((items) =>
    items.map((li) => ({ session_id: li.dataset.sessionId, text: li.textContent.replace(/\s+/g, " ").trim() })),
  );
  await page.screenshot({ path: opts.screenshot, fullPage: true });
  exitCode = report.state === opts.expect && report.shown_state === opts.expect ? 0 : 1;
} catch (err) {
  if (!(err instanceof Done)) {
    report.error = String(err && err.stack ? err.stack : err);
    try {
      const page = context.pages()[0];
      if (page) await page.screenshot({ path: opts.screenshot, fullPage: true });
    } catch (e) {
      // The screenshot of a failure is a courtesy; the error above is what matters.
    }
  }
} finally {
  report.problems = problems;
  report.external_requests = external;
  if (problems.length || external.length) exitCode = 1;
  console.log(JSON.stringify(report));
  await context.close();
}
process.exit(exitCode);
