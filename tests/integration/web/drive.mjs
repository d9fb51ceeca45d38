// Drives the swap page in headless Chromium (Debian's /usr/bin/chromium through playwright-core): enter the API
// key, quote, start a swap, let the dev maker key sign, and wait until the page shows a terminal state.
// Prints one JSON line with what the page showed; exits 0 only when it showed the expected final state.
//
//   node drive.mjs --url http://127.0.0.1:PORT --api-key KEY --screenshot out.png --profile DIR
//                  [--direction base-near|near-base] [--amount 25] [--expect completed] [--timeout-ms 90000]
//                  [--wallet-rpc URL --wallet-account ADDR] [--secret-mode maker|service] [--reload-at STATE]
//                  [--wrong-key KEY]
//
// --secret-mode picks who keeps the secret (the page's default is this browser, "maker"); --reload-at reloads the
// page once the session reaches STATE (the page comes back to the session from its address); --wrong-key first
// saves a key the gateway refuses and records what the page says.
//
// With --wallet-rpc the page gets a window.ethereum whose requests go to that JSON-RPC endpoint (anvil, whose dev
// accounts are unlocked, answers eth_signTypedData_v4 itself) and the swap is signed through the wallet path.

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
  },
});
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
    await context.exposeFunction("__walletRpc", async (method, params) => {
      rpcId += 1;
      const response = await fetch(opts["wallet-rpc"], {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: rpcId, method, params: params || [] }),
      });
      const reply = await response.json();
      if (reply.error) return { error: reply.error.message || JSON.stringify(reply.error) };
      return { result: reply.result };
    });
    await context.addInitScript((account) => {
      window.__walletCalls = [];
      window.ethereum = {
        request: async ({ method, params }) => {
          window.__walletCalls.push(method);
          if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
          const reply = await window.__walletRpc(method, params);
          if (reply.error) throw new Error(reply.error);
          return reply.result;
        },
      };
    }, opts["wallet-account"]);
  }
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeout);
  report.websockets = 0;
  report.ws_updates = 0;
  page.on("websocket", (ws) => {
    report.websockets += 1;
    ws.on("framereceived", (frame) => {
      const text = typeof frame.payload === "string" ? frame.payload : frame.payload.toString();
      if (/"event":\s*"update"/.test(text)) report.ws_updates += 1;
    });
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
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

  if (wallet) {
    await page.getByRole("button", { name: "Sign with wallet" }).click();
  } else {
    await page.getByRole("button", { name: "Sign with dev maker key" }).click();
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
  if (wallet) report.wallet_calls = await page.evaluate(() => window.__walletCalls);
  await page.getByRole("button", { name: "Show my swaps" }).click();
  await page.locator("#history li").first().waitFor();
  report.history = await page.locator("#history li").evaluateAll((items) =>
    items.map((li) => ({ session_id: li.dataset.sessionId, text: li.textContent.replace(/\s+/g, " ").trim() })),
  );
  await page.screenshot({ path: opts.screenshot, fullPage: true });
  exitCode = report.state === opts.expect && report.shown_state === opts.expect ? 0 : 1;
} catch (err) {
  report.error = String(err && err.stack ? err.stack : err);
  try {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: opts.screenshot, fullPage: true });
  } catch (e) {
    // The screenshot of a failure is a courtesy; the error above is what matters.
  }
} finally {
  report.problems = problems;
  report.external_requests = external;
  if (problems.length || external.length) exitCode = 1;
  console.log(JSON.stringify(report));
  await context.close();
}
process.exit(exitCode);
