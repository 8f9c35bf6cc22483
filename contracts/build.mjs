// Compile contracts/TracemarkAnchor.sol with the solc pinned in package.json and write (or,
// with --check, compare against) the committed artifact contracts/TracemarkAnchor.json.
// Deterministic in any clone folder: the source is named by its path relative to the repo
// and the metadata hash is left out of the bytecode.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const EVM_VERSION = "cancun"; // run by both py-evm (stops at prague) and anvil; solc defaults to osaka
const SOURCE = "contracts/TracemarkAnchor.sol";
const NAME = "TracemarkAnchor";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const artifactPath = join(root, "contracts", `${NAME}.json`);

const source = readFileSync(join(root, SOURCE), "utf8");
const input = {
  language: "Solidity",
  sources: { [SOURCE]: { content: source } },
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 10000 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (output.errors || []).filter((e) => e.severity === "error");
if (problems.length) {
  for (const e of problems) console.error(e.formattedMessage);
  process.exit(1);
}
const compiled = output.contracts[SOURCE][NAME];
const artifact = {
  contractName: NAME,
  source: SOURCE,
  sourceSha256: createHash("sha256").update(source).digest("hex"),
  compiler: solc.version(),
  evmVersion: EVM_VERSION,
  optimizer: input.settings.optimizer,
  abi: compiled.abi,
  bytecode: "0x" + compiled.evm.bytecode.object,
  deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(artifactPath, "utf8");
  } catch {
    committed = "";
  }
  if (committed !== text) {
    console.error(`${artifactPath} is not what ${SOURCE} compiles to: run 'node contracts/build.mjs'`);
    process.exit(1);
  }
  console.log(`${NAME}: committed artifact matches the source (solc ${solc.version()}, ${EVM_VERSION})`);
} else {
  writeFileSync(artifactPath, text);
  console.log(`wrote ${artifactPath}`);
}
