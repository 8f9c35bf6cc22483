// A registry's trust root (tracemark-trust/v1) and its fingerprint: "sha256:" and the hex
// SHA-256 of its RFC 8785 (JCS) JSON, the value an operator publishes out of band and a
// platform pins. The same function as verifier.trust.TrustRoot.fingerprint in Python.
import { TracemarkError } from "./errors.js";

export const TRUST_FORMAT = "tracemark-trust/v1";

/** The members a platform reads; the document may carry more (kept as they are). */
export interface TrustRoot {
  format: typeof TRUST_FORMAT;
  name: string;
  registry_url: string;
  chain_id: number;
  contract: string;
  signing_keys: Array<{
    address: string;
    from_size: number;
    until_size: number | null;
    handover_signature: string | null;
  }>;
  finality: { confirmations?: number | null; finalized?: boolean };
  [member: string]: unknown;
}

/** The trust root is not the one pinned, or not a trust root at all. */
export class TrustRootMismatch extends TracemarkError {}

/** RFC 8785: keys sorted by UTF-16 code units, no whitespace, ECMAScript number and string
 * serialisation (which JSON.stringify already is). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("not JSON: a non-finite number");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** Node's WebCrypto (a global since Node 19): no dependency, the same in a browser. */
export async function trustRootFingerprint(document: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(document));
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The document as a trust root, refused when it is not one (or not the pinned one). */
export async function checkTrustRoot(document: unknown, pinned?: string): Promise<TrustRoot> {
  if (typeof document !== "object" || document === null || (document as { format?: unknown }).format !== TRUST_FORMAT) {
    throw new TrustRootMismatch(`not a trust root: this client reads ${TRUST_FORMAT}`);
  }
  if (pinned !== undefined) {
    const found = await trustRootFingerprint(document);
    if (found !== pinned) {
      throw new TrustRootMismatch(`the registry's trust root is ${found}, not the pinned ${pinned}`);
    }
  }
  return document as TrustRoot;
}
