// Writes src/schema.ts, the client's types, from the API's OpenAPI document (the committed
// golden, tests/golden/openapi_v1.json): the operations the client calls (method, path,
// parameters, body and answer types) and every schema they reach. `--check` writes nothing
// and fails when src/schema.ts is not exactly what the golden makes (the types drifted).
// No dependency but Node: the golden is JSON Schema 2020-12 as FastAPI writes it.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const GOLDEN = join(ROOT, "..", "..", "tests", "golden", "openapi_v1.json");
const TARGET = join(ROOT, "src", "schema.ts");

/** The operations the client covers, by operationId (verify, transfers, orders, credit,
 * trust root). A new one is added here, then `npm run generate`. */
export const OPERATIONS = [
  "get_trust_root",
  "get_registry",
  "verify_good",
  "record_transfer",
  "get_transfer",
  "list_transfers",
  "authorize_handover",
  "open_order",
  "get_order",
  "list_orders",
  "deliver_order",
  "confirm_order",
  "cancel_order",
  "dispute_order",
  "get_delivery_receipt",
  "get_platform_credit",
  "get_seller_credit",
];

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function refName(ref) {
  const prefix = "#/components/schemas/";
  if (!ref.startsWith(prefix)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(prefix.length);
}

function comment(text, indent) {
  if (!text) return "";
  const lines = String(text).replace(/\*\//g, "*\\/").trim().split("\n");
  return `${indent}/** ${lines.join(`\n${indent} * `)} */\n`;
}

function union(parts) {
  const unique = [...new Set(parts)];
  return unique.length === 1 ? unique[0] : unique.map((p) => (p.includes("=>") ? `(${p})` : p)).join(" | ");
}

/** A JSON Schema as a TypeScript type. */
function tsType(schema, indent) {
  if (schema === true || schema === undefined || schema === null) return "unknown";
  if (schema === false) return "never";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return union(schema.enum.map((v) => JSON.stringify(v)));
  if (schema.anyOf) return union(schema.anyOf.map((s) => tsType(s, indent)));
  if (schema.oneOf) return union(schema.oneOf.map((s) => tsType(s, indent)));
  if (schema.allOf) return schema.allOf.map((s) => tsType(s, indent)).join(" & ");
  if (Array.isArray(schema.type)) {
    return union(schema.type.map((type) => tsType({ ...schema, type }, indent)));
  }
  switch (schema.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array":
      return `Array<${tsType(schema.items, indent)}>`;
    case "object":
    case undefined:
      if (schema.type === undefined && !schema.properties) return "unknown";
      return objectType(schema, indent);
    default:
      throw new Error(`unsupported type ${schema.type}`);
  }
}

function objectType(schema, indent) {
  const inner = indent + "  ";
  const required = new Set(schema.required ?? []);
  const lines = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const key = IDENTIFIER.test(name) ? name : JSON.stringify(name);
    const optional = required.has(name) ? "" : "?";
    lines.push(
      comment(property.description, inner) + `${inner}${key}${optional}: ${tsType(property, inner)};`,
    );
  }
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false) {
    const value = extra === true || Object.keys(extra).length === 0 ? "unknown" : tsType(extra, inner);
    lines.push(`${inner}[key: string]: ${lines.length ? "unknown" : value};`);
  }
  // No properties and no additionalProperties: JSON Schema leaves the object open.
  if (!lines.length) return extra === false ? "Record<string, never>" : "{ [key: string]: unknown }";
  return `{\n${lines.join("\n")}\n${indent}}`;
}

function collectRefs(schema, found) {
  if (Array.isArray(schema)) {
    for (const item of schema) collectRefs(item, found);
  } else if (schema && typeof schema === "object") {
    for (const [key, value] of Object.entries(schema)) {
      if (key === "$ref" && typeof value === "string") found.add(refName(value));
      else collectRefs(value, found);
    }
  }
}

function operationsOf(document) {
  const byId = new Map();
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (operation.operationId) byId.set(operation.operationId, { path, method, operation });
    }
  }
  return OPERATIONS.map((id) => {
    const found = byId.get(id);
    if (!found) throw new Error(`the OpenAPI document has no operation ${id}`);
    return { id, ...found };
  });
}

function answerSchema(operation) {
  for (const [status, response] of Object.entries(operation.responses)) {
    if (!/^2\d\d$/.test(status)) continue;
    const schema = response.content?.["application/json"]?.schema;
    if (schema && Object.keys(schema).length) return { status: Number(status), schema };
  }
  const first = Object.keys(operation.responses).find((s) => /^2\d\d$/.test(s));
  return { status: Number(first ?? 200), schema: undefined };
}

function parameters(operation, where, indent) {
  const list = (operation.parameters ?? []).filter((p) => p.in === where);
  if (!list.length) return "Record<string, never>";
  return objectType(
    {
      properties: Object.fromEntries(list.map((p) => [p.name, { ...p.schema, description: p.description }])),
      required: list.filter((p) => p.required).map((p) => p.name),
    },
    indent,
  );
}

export function generate(document) {
  const operations = operationsOf(document);
  const schemas = document.components.schemas;
  // Every schema the operations reach, transitively.
  const reached = new Set();
  const pending = [];
  for (const { operation } of operations) {
    const refs = new Set();
    collectRefs([operation.requestBody ?? {}, answerSchema(operation).schema ?? {}, operation.parameters ?? []], refs);
    pending.push(...refs);
  }
  while (pending.length) {
    const name = pending.pop();
    if (reached.has(name)) continue;
    if (!schemas[name]) throw new Error(`the OpenAPI document has no schema ${name}`);
    reached.add(name);
    const refs = new Set();
    collectRefs(schemas[name], refs);
    pending.push(...refs);
  }
  const out = [
    "// Generated by scripts/generate.mjs from tests/golden/openapi_v1.json: do not edit.",
    `// The API's ${document.info.title} ${document.info.version}; \`npm run generate\` rewrites it,`,
    "// `npm run check` fails when it differs from what the golden makes.",
    "/* eslint-disable */",
    "",
  ];
  for (const name of [...reached].sort()) {
    const schema = schemas[name];
    const body = tsType(schema, "");
    const doc = comment(schema.description, "");
    if (body.startsWith("{")) out.push(`${doc}export interface ${name} ${body}\n`);
    else out.push(`${doc}export type ${name} = ${body};\n`);
  }
  out.push("/** Each covered operation's method and path (its parameters in braces). */");
  out.push("export const OPERATIONS = {");
  for (const { id, path, method } of operations) {
    out.push(`  ${id}: { method: ${JSON.stringify(method.toUpperCase())}, path: ${JSON.stringify(path)} },`);
  }
  out.push("} as const;\n");
  out.push("export type OperationId = keyof typeof OPERATIONS;\n");
  out.push("/** Each covered operation's path and query parameters, body and answer (success status). */");
  out.push("export interface Operations {");
  for (const { id, operation } of operations) {
    const body = operation.requestBody?.content?.["application/json"]?.schema;
    const answer = answerSchema(operation);
    out.push(comment(operation.summary, "  ") + `  ${id}: {`);
    out.push(`    path: ${parameters(operation, "path", "    ")};`);
    out.push(`    query: ${parameters(operation, "query", "    ")};`);
    out.push(`    body: ${body ? tsType(body, "    ") : "undefined"};`);
    out.push(`    status: ${answer.status};`);
    out.push(`    answer: ${answer.schema ? tsType(answer.schema, "    ") : "unknown"};`);
    out.push("  };");
  }
  out.push("}\n");
  out.push("/** A problem+json answer (RFC 9457), as every error of the API is. */");
  const problem = operations[0].operation.responses["4XX"]?.content?.["application/problem+json"]?.schema
    ?? operations[0].operation.responses["4XX"]?.content?.["application/json"]?.schema;
  out.push(`export interface ProblemDocument ${tsType(problem ?? { type: "object" }, "")}\n`);
  return out.filter((line) => line !== "").join("\n").replace(/\n{3,}/g, "\n\n");
}

function main() {
  // --golden PATH: another OpenAPI document (the drift test hands in an altered one).
  const at = process.argv.indexOf("--golden");
  const golden = at > 0 ? process.argv[at + 1] : GOLDEN;
  const document = JSON.parse(readFileSync(golden, "utf8"));
  const text = generate(document);
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(TARGET, "utf8");
    } catch {
      current = "";
    }
    if (current !== text) {
      console.error(
        "clients/js/src/schema.ts differs from what tests/golden/openapi_v1.json makes: " +
          "run `npm run generate` in clients/js (then fix the client where tsc complains)",
      );
      process.exit(1);
    }
    console.log("clients/js/src/schema.ts matches the OpenAPI golden");
    return;
  }
  writeFileSync(TARGET, text);
  console.log(`wrote ${TARGET}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
