// Compiles contracts/src/*.sol with the pinned solcjs and writes one artifact per deployable contract to
// contracts/build/<ContractName>.json as {"abi": [...], "bytecode": "0x..."}. Exits 1 on any compile error.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
const buildDir = join(here, "build");

// Base mainnet and anvil's default hardfork both support cancun; later forks are not needed.
const EVM_VERSION = "cancun";

function main() {
  const files = readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort();
  if (files.length === 0) {
    console.error(`no .sol files in ${srcDir}`);
    return 1;
  }
  const sources = Object.fromEntries(files.map((f) => [f, { content: readFileSync(join(srcDir, f), "utf8") }]));
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };

  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) {
    console.error((d.formattedMessage ?? d.message).trimEnd());
  }
  if (diagnostics.some((d) => d.severity === "error")) {
    console.error(`compilation failed (solc ${solc.version()})`);
    return 1;
  }

  // Start clean so that a renamed or deleted contract leaves no stale artifact behind.
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  const written = [];
  for (const [file, contracts] of Object.entries(output.contracts ?? {})) {
    for (const [name, artifact] of Object.entries(contracts)) {
      const bytecode = artifact.evm?.bytecode?.object ?? "";
      if (bytecode.length === 0) continue; // abstract contracts and interfaces cannot be deployed
      const out = { abi: artifact.abi, bytecode: `0x${bytecode}` };
      writeFileSync(join(buildDir, `${name}.json`), `${JSON.stringify(out, null, 2)}\n`);
      written.push(`${name} (${file})`);
    }
  }
  if (written.length === 0) {
    console.error("no deployable contracts were produced");
    return 1;
  }
  console.log(`solc ${solc.version()}: wrote ${written.length} artifacts to ${buildDir}: ${written.join(", ")}`);
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exitCode = 1;
}
