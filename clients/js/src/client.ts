// The typed client for platforms whose stack is Node (issue 18 item 6): the API's operations
// for verify, transfers, orders, credit and the trust root, each typed by src/schema.ts (made
// from the OpenAPI golden), each refusal a typed TracemarkProblem. Uses Node's own fetch; no
// dependency. The API key goes in the Authorization header only, and a code only ever in a
// request body (verify, deliver), never in a URL.
import {
  problemFrom,
  TransportError,
  type TracemarkError,
} from "./errors.js";
import {
  OPERATIONS,
  type OperationId,
  type Operations,
  type CreditOut,
  type DeliveryIn,
  type DeliveryOut,
  type DeliveryReceiptOut,
  type HandoverIn,
  type HandoverOut,
  type OrderIn,
  type OrderOut,
  type Page_OrderOut_,
  type Page_ReceiptOut_,
  type ReceiptOut,
  type RegistryOut,
  type TransferIn,
  type VerifyIn,
  type VerifyOut,
} from "./schema.js";
import { checkTrustRoot, type TrustRoot } from "./trustroot.js";

/** The largest answer read (bytes): a registry that sends more is not answering the API. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  /** The registry's base URL, e.g. `https://registry.example` (http(s) only). */
  baseUrl: string;
  /** A platform API key (`tm_live_...`); absent: the anonymous tier. */
  apiKey?: string;
  /** The language of problem titles and details: English by default. */
  language?: "en" | "zh-Hans";
  timeoutMs?: number;
  /** Another fetch (a proxy agent, a test double); Node's global fetch by default. */
  fetch?: typeof fetch;
}

export interface WriteOptions {
  /** Makes a retry of the same write answer the first result instead of writing twice. */
  idempotencyKey?: string;
}

interface CallArgs<Id extends OperationId> {
  path?: Operations[Id]["path"];
  query?: Partial<Operations[Id]["query"]>;
  body?: Operations[Id]["body"];
  idempotencyKey?: string;
}

export class TracemarkClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #language: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError("baseUrl must be http(s)");
    if (url.username || url.password) throw new TypeError("baseUrl must carry no credentials: pass apiKey");
    this.baseUrl = url.origin + url.pathname.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#language = options.language ?? "en";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  /** Any covered operation, by its OpenAPI operationId: the typed way in for what the named
   * methods below do not wrap. */
  async call<Id extends OperationId>(id: Id, args: CallArgs<Id> = {}): Promise<Operations[Id]["answer"]> {
    const { method, path } = OPERATIONS[id];
    const params = (args.path ?? {}) as Record<string, string | number>;
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined) throw new TypeError(`${id} needs the path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const url = new URL(this.baseUrl + filled);
    for (const [name, value] of Object.entries((args.query ?? {}) as Record<string, unknown>)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {
      Accept: "application/json, application/problem+json",
      "Accept-Language": this.#language,
    };
    if (this.#apiKey !== undefined) headers.Authorization = `Bearer ${this.#apiKey}`;
    if (args.idempotencyKey !== undefined) headers["Idempotency-Key"] = args.idempotencyKey;
    let body: string | undefined;
    if (args.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(args.body);
    }
    let answer: Response;
    try {
      answer = await this.#fetch(url, {
        method,
        headers,
        body,
        redirect: "error",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      // The URL and the error's kind only: the headers (the API key) stay out of messages.
      const kind = error instanceof Error ? error.name : "error";
      throw new TransportError(`${method} ${url.pathname}: the registry did not answer (${kind})`);
    }
    const document = await readJson(answer, `${method} ${url.pathname}`);
    if (!answer.ok) throw problemFrom(answer.status, document, answer.headers.get("retry-after")) as TracemarkError;
    return document as Operations[Id]["answer"];
  }

  /** The registry's trust root; with `pinned` ("sha256:..."), refused unless it is that one. */
  async trustRoot(pinned?: string): Promise<TrustRoot> {
    return await checkTrustRoot(await this.call("get_trust_root"), pinned);
  }

  registry(): Promise<RegistryOut> {
    return this.call("get_registry");
  }

  /** Is this good authentic? By fingerprint, or by code (in the body) and its creator. */
  verify(request: VerifyIn): Promise<VerifyOut> {
    return this.call("verify_good", { body: request });
  }

  /** Report a hand-over or sale: the receipt, with the royalty split. A seller that does not
   * hold the good is refused with DoubleSale. */
  recordTransfer(transfer: TransferIn, options: WriteOptions = {}): Promise<ReceiptOut> {
    return this.call("record_transfer", { body: transfer, idempotencyKey: options.idempotencyKey });
  }

  getTransfer(transferId: number): Promise<ReceiptOut> {
    return this.call("get_transfer", { path: { transfer_id: transferId } }) as Promise<ReceiptOut>;
  }

  listTransfers(query: Partial<Operations["list_transfers"]["query"]> = {}): Promise<Page_ReceiptOut_> {
    return this.call("list_transfers", { query });
  }

  authorizeHandover(request: HandoverIn): Promise<HandoverOut> {
    return this.call("authorize_handover", { body: request });
  }

  openOrder(order: OrderIn, options: WriteOptions = {}): Promise<OrderOut> {
    return this.call("open_order", { body: order, idempotencyKey: options.idempotencyKey });
  }

  getOrder(orderId: number): Promise<OrderOut> {
    return this.call("get_order", { path: { order_id: orderId } });
  }

  listOrders(query: Partial<Operations["list_orders"]["query"]> = {}): Promise<Page_OrderOut_> {
    return this.call("list_orders", { query });
  }

  /** Deliver the order: the code you delivered goes in the body, hashed by the registry and
   * never stored; the answer carries the buyer's signed receipt. */
  deliverOrder(orderId: number, delivery: DeliveryIn, options: WriteOptions = {}): Promise<DeliveryOut> {
    return this.call("deliver_order", {
      path: { order_id: orderId },
      body: delivery,
      idempotencyKey: options.idempotencyKey,
    });
  }

  confirmOrder(orderId: number, options: WriteOptions = {}): Promise<OrderOut> {
    return this.call("confirm_order", { path: { order_id: orderId }, idempotencyKey: options.idempotencyKey });
  }

  cancelOrder(orderId: number, options: WriteOptions = {}): Promise<OrderOut> {
    return this.call("cancel_order", { path: { order_id: orderId }, idempotencyKey: options.idempotencyKey });
  }

  disputeOrder(orderId: number, options: WriteOptions = {}): Promise<OrderOut> {
    return this.call("dispute_order", { path: { order_id: orderId }, idempotencyKey: options.idempotencyKey });
  }

  deliveryReceipt(orderId: number): Promise<DeliveryReceiptOut> {
    return this.call("get_delivery_receipt", { path: { order_id: orderId } });
  }

  /** A platform's credit score (credit/v2) with its inputs. */
  platformCredit(platform: string): Promise<CreditOut> {
    return this.call("get_platform_credit", { path: { platform } });
  }

  /** A seller's credit on a platform, by its keyed reference hash (0x + 64 hex). */
  sellerCredit(platform: string, seller: string): Promise<CreditOut> {
    return this.call("get_seller_credit", { path: { platform, seller } });
  }
}

async function readJson(answer: Response, what: string): Promise<unknown> {
  const declared = Number(answer.headers.get("content-length") ?? "0");
  if (declared > MAX_ANSWER_BYTES) throw new TransportError(`${what}: an answer of ${declared} bytes is too large`);
  let text: string;
  try {
    text = await answer.text();
  } catch {
    throw new TransportError(`${what}: the answer was cut off`);
  }
  if (text.length > MAX_ANSWER_BYTES) throw new TransportError(`${what}: the answer is too large`);
  const type = answer.headers.get("content-type") ?? "";
  if (!/^application\/(problem\+)?json\b/.test(type)) {
    if (!answer.ok) return undefined;
    throw new TransportError(`${what}: the registry answered ${type || "no content type"}, not JSON`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new TransportError(`${what}: the answer is not JSON`);
  }
}
