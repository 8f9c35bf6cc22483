// The client's errors: every refusal of the API is an RFC 9457 problem+json answer, raised as
// a TracemarkProblem of the class its status (and for a double sale, its code) names, so a
// platform catches what it can act on (`catch (e) { if (e instanceof DoubleSale) ... }`). A
// registry that does not answer, or answers something that is not the API, is a TransportError.
import type { ProblemDocument } from "./schema.js";

/** The prefix of every problem type URI; the rest is the problem's stable code. */
export const PROBLEM_PREFIX = "https://tracemark.dev/problems/";
/** Characters of a problem's detail kept: an error stays one readable line. */
export const MAX_PROBLEM_DETAIL = 1000;

/** The root of the client's errors. */
export class TracemarkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The registry could not be reached, timed out, or did not answer as the API does. */
export class TransportError extends TracemarkError {}

/** The registry refused the request with a problem+json answer. */
export class TracemarkProblem extends TracemarkError {
  /** The answer's HTTP status. */
  readonly status: number;
  /** The problem's type URI (stable across languages). */
  readonly type: string;
  /** Its code: the type URI's last segment (`double-sale`, `not-found`, `rate-limited`...). */
  readonly code: string;
  /** A short title, in the language asked for (`language: "zh-Hans"`: Chinese). */
  readonly title: string;
  readonly detail: string;
  /** Seconds to wait before sending again (429 and 503), when the registry said. */
  readonly retryAfter: number | null;
  /** The whole answer, e.g. `earlier` (the earlier transfer of a double sale) or `errors`. */
  readonly problem: ProblemDocument;

  constructor(status: number, problem: ProblemDocument, retryAfter: number | null) {
    const detail = String(problem.detail ?? "").slice(0, MAX_PROBLEM_DETAIL);
    super(`${status} ${problem.title}: ${detail}`);
    this.status = status;
    this.type = String(problem.type);
    this.code = this.type.startsWith(PROBLEM_PREFIX) ? this.type.slice(PROBLEM_PREFIX.length) : "problem";
    this.title = String(problem.title);
    this.detail = detail;
    this.retryAfter = retryAfter;
    this.problem = problem;
  }
}

/** 400, 413, 415, 422: the request is malformed; fix it (nothing was changed). */
export class InvalidRequest extends TracemarkProblem {}
/** 401: no valid API key (or creator token) where one is needed. */
export class Unauthorized extends TracemarkProblem {}
/** 403: the key is valid but lacks the scope, or the platform may not do this. */
export class Forbidden extends TracemarkProblem {}
/** 404: no such good, transfer, order, product or receipt. */
export class NotFound extends TracemarkProblem {}
/** 409: refused by the log's state (revoked, consumed, reserved, already done...). */
export class Conflict extends TracemarkProblem {}
/** 409 `double-sale`: the seller does not hold the good; `problem.earlier` is the transfer
 * that made the real holder. */
export class DoubleSale extends Conflict {}
/** 428: an anonymous code lookup needs a proof of work (send an API key instead). */
export class ProofOfWorkRequired extends TracemarkProblem {}
/** 429: over the rate limit; `retryAfter` says when to send again. */
export class RateLimited extends TracemarkProblem {}
/** 5xx: the registry failed or is busy; nothing was applied, the same request may be resent. */
export class ServerProblem extends TracemarkProblem {}

type ProblemClass = new (status: number, problem: ProblemDocument, retryAfter: number | null) => TracemarkProblem;

const BY_STATUS: ReadonlyMap<number, ProblemClass> = new Map<number, ProblemClass>([
  [400, InvalidRequest],
  [413, InvalidRequest],
  [415, InvalidRequest],
  [422, InvalidRequest],
  [401, Unauthorized],
  [403, Forbidden],
  [404, NotFound],
  [409, Conflict],
  [428, ProofOfWorkRequired],
  [429, RateLimited],
]);

const BY_CODE: ReadonlyMap<string, ProblemClass> = new Map<string, ProblemClass>([["double-sale", DoubleSale]]);

function isProblem(value: unknown): value is ProblemDocument {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.type === "string" && typeof v.title === "string" && typeof v.status === "number";
}

/** The error for a refused answer: its problem in the class its code or status names. */
export function problemFrom(status: number, body: unknown, retryAfter: string | null): TracemarkError {
  if (!isProblem(body)) {
    return new TransportError(`the registry answered ${status} without a problem+json document`);
  }
  const seconds = retryAfter !== null && /^\d{1,6}$/.test(retryAfter) ? Number(retryAfter) : null;
  const code = body.type.startsWith(PROBLEM_PREFIX) ? body.type.slice(PROBLEM_PREFIX.length) : "";
  const kind = BY_CODE.get(code) ?? BY_STATUS.get(status) ?? (status >= 500 ? ServerProblem : TracemarkProblem);
  return new kind(status, body, seconds);
}
