/**
 * The VINR API client for TypeScript.
 *
 * Every operation, its parameters and bodies are typed from `openapi.json` (generated into
 * `src/generated/schema.ts` by `npm run generate`; never edit it by hand) and called through
 * `openapi-fetch`: `client.POST("/v1/payments", { body })`. This file is the thin layer on
 * top: a fetch that gives every POST an `Idempotency-Key` (the caller's, or one generated per
 * call) and retries with that same key and body on network errors, 409
 * `idempotency_key_in_use`, 429 (waiting at least `Retry-After`) and 5xx, with exponential
 * backoff and jitter, bounded by a count and a total time; typed errors; cursor paging; and a
 * Standard Webhooks verifier.
 */
import createClient, { type Client } from "openapi-fetch";
import { Webhook } from "standardwebhooks";
import type { components, operations, paths } from "./generated/schema.js";

export type { components, operations, paths };
export type Schemas = components["schemas"];
export type Payment = Schemas["Payment"];
export type Refund = Schemas["Refund"];
export type Dispute = Schemas["Dispute"];
export type Event = Schemas["Event"];
export type WebhookEndpoint = Schemas["WebhookEndpoint"];
export type Settlement = Schemas["Settlement"];
export type BalanceTransaction = Schemas["BalanceTransaction"];
export type ErrorBody = Schemas["ErrorBody"];

/** How the client retries. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: never retry). */
  maxRetries: number;
  /** The wait before the first retry; each further one doubles it, up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** No retry starts after this long since the first attempt. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 4,
  initialBackoffMs: 250,
  maxBackoffMs: 8_000,
  maxElapsedMs: 60_000,
};

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";

/** What `onRetry` is told before each wait. */
export interface RetryInfo {
  method: string;
  url: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  waitMs: number;
  /** The status of the failed attempt, or undefined when no answer came. */
  status?: number;
  error?: unknown;
  idempotencyKey?: string;
}

export interface VinrClientOptions {
  /** `sk_test_…`, `rk_…`, or a platform key `plk_…` for `/v1/accounts`. */
  apiKey: string;
  /** Without `/v1` (default `http://127.0.0.1:8080`). */
  baseUrl?: string;
  retry?: Partial<RetryPolicy>;
  /** The most one attempt may take (default 30 000 ms). */
  timeoutMs?: number;
  /** Called before every retry's wait (logging, tests). */
  onRetry?: (info: RetryInfo) => void;
  /** The fetch underneath (default the global one). */
  fetch?: (request: Request) => Promise<Response>;
}

/** The `openapi-fetch` client of the whole API, typed from `openapi.json`. */
export type VinrClient = Client<paths>;

/** A client whose every call goes through {@link retryingFetch}. */
export function createVinrClient(options: VinrClientOptions): VinrClient {
  return createClient<paths>({
    baseUrl: (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, ""),
    headers: { Authorization: `Bearer ${options.apiKey}` },
    fetch: retryingFetch(options),
  });
}

/** An error answer of the API, with its body's fields (SPEC §2). */
export class VinrError extends Error {
  readonly status: number;
  /** `invalid_request_error`, `authentication_error`, `permission_error`, `idempotency_error`, `rate_limit_error`, `api_error`. */
  readonly type: string;
  /** The stable code: `parameter_invalid`, `resource_missing`, `payment_state_invalid`, … */
  readonly code: string;
  readonly param: string | null;
  readonly requestId: string | null;
  readonly retryAfterSeconds: number | null;

  constructor(status: number, body: unknown, headers: Headers) {
    const detail = (body as Partial<ErrorBody> | undefined)?.error;
    const code = detail?.code ?? "unexpected_response";
    super(`HTTP ${status} ${detail?.type ?? "unknown"} ${code}: ${detail?.message ?? "no API error body"}`);
    this.name = "VinrError";
    this.status = status;
    this.type = detail?.type ?? (status >= 500 ? "api_error" : "unknown");
    this.code = code;
    this.param = detail?.param ?? null;
    this.requestId = detail?.request_id ?? headers.get("x-request-id");
    const retryAfterMs = retryAfterMsOf(headers.get("retry-after"));
    this.retryAfterSeconds = retryAfterMs === undefined ? null : Math.ceil(retryAfterMs / 1000);
  }
}

/** No answer came (connection refused or dropped, a timeout), after every retry. */
export class VinrNetworkError extends Error {
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super(`no answer from the VINR API after ${attempts} attempt(s): ${String(cause)}`, { cause });
    this.name = "VinrNetworkError";
    this.attempts = attempts;
  }
}

/**
 * The data of an `openapi-fetch` result, or a thrown {@link VinrError}:
 * `const payment = await unwrap(client.GET("/v1/payments/{id}", { params: { path: { id } } }))`.
 */
export async function unwrap<T>(
  result: Promise<{ data?: T; error?: unknown; response: Response }> | { data?: T; error?: unknown; response: Response },
): Promise<T> {
  const { data, error, response } = await result;
  if (!response.ok || error !== undefined) {
    throw new VinrError(response.status, error, response.headers);
  }
  return data as T;
}

/** One page of a list. */
export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor?: string | null;
}

/**
 * Every object of a list, page after page: `fetchPage` gets the cursor (undefined for the
 * first page) and answers the page, e.g.
 * `paginate((starting_after) => unwrap(client.GET("/v1/payments", { params: { query: { starting_after } } })))`.
 */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.data;
    if (!page.has_more || !page.next_cursor) return;
    cursor = page.next_cursor;
  }
}

/** A fresh idempotency key: 128 random bits. */
export function generateIdempotencyKey(): string {
  return `vinr-client-${crypto.randomUUID()}`;
}

/** The wait before retry number `retry` (1 for the first), or undefined to stop. */
export function waitBeforeMs(policy: RetryPolicy, retry: number, elapsedMs: number, retryAfterMs?: number): number | undefined {
  if (retry < 1 || retry > policy.maxRetries) return undefined;
  const step = Math.min(policy.initialBackoffMs * 2 ** (retry - 1), policy.maxBackoffMs);
  // "Equal jitter": half the step plus a random part of up to the other half.
  const backoff = step / 2 + Math.random() * (step / 2);
  const wait = Math.max(backoff, retryAfterMs ?? 0);
  return elapsedMs + wait <= policy.maxElapsedMs ? wait : undefined;
}

async function retryableCode(response: Response): Promise<boolean> {
  if (response.status === 429 || response.status >= 500) return true;
  if (response.status !== 409) return false;
  try {
    const body = (await response.clone().json()) as Partial<ErrorBody>;
    return body.error?.code === "idempotency_key_in_use";
  } catch {
    return false;
  }
}

/**
 * `Retry-After` in milliseconds: delay-seconds (`120`) or an HTTP-date (as a proxy may send
 * it; a date in the past is no wait); `undefined` for anything else.
 */
export function retryAfterMsOf(value: string | null, now: number = Date.now()): number | undefined {
  const text = (value ?? "").trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  if (text === "" || !/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The `idempotencyKey` of a JSON body, if it has one. */
function bodyIdempotencyKey(body: ArrayBuffer | undefined): string | undefined {
  if (body === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
    const key = (parsed as { idempotencyKey?: unknown } | null)?.idempotencyKey;
    return typeof key === "string" ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A fetch that retries what is safe to retry. The request's body is read once and sent again
 * as the same bytes; a POST without an `Idempotency-Key` gets one, the same on every attempt.
 * It answers the first answer that is final, or the last one when the policy stops; it throws
 * {@link VinrNetworkError} when no answer came at all.
 */
export function retryingFetch(options: Omit<VinrClientOptions, "apiKey" | "baseUrl">): (request: Request) => Promise<Response> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const inner = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const timeoutMs = options.timeoutMs ?? 30_000;
  return async (request: Request): Promise<Response> => {
    const headers = new Headers(request.headers);
    const body = request.body === null ? undefined : await request.arrayBuffer();
    if (request.method === "POST" && !headers.has("idempotency-key")) {
      // A key given in the body (`idempotencyKey`, as `POST /v1/payments` takes it) is the
      // key: a different generated header would make the server refuse the request.
      headers.set("idempotency-key", bodyIdempotencyKey(body) ?? generateIdempotencyKey());
    }
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]);
      const attemptRequest = new Request(request.url, { method: request.method, headers, body, signal });
      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await inner(attemptRequest);
      } catch (error) {
        if (request.signal.aborted) throw error;
        failure = error;
      }
      let retryAfterMs: number | undefined;
      if (response !== undefined) {
        if (response.ok || !(await retryableCode(response))) return response;
        retryAfterMs = retryAfterMsOf(response.headers.get("retry-after"));
      }
      const waitMs = waitBeforeMs(policy, attempt, Date.now() - started, retryAfterMs);
      if (waitMs === undefined) {
        if (response !== undefined) return response;
        throw new VinrNetworkError(attempt, failure);
      }
      await response?.body?.cancel();
      options.onRetry?.({
        method: request.method,
        url: request.url,
        attempt,
        waitMs,
        status: response?.status,
        error: failure,
        idempotencyKey: headers.get("idempotency-key") ?? undefined,
      });
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  };
}

/** The request header that asks a test-mode server for a fault (SPEC §12). */
export const TEST_FAULT_HEADER = "Vinr-Test-Fault";

/**
 * Verifies a webhook delivery with the official `standardwebhooks` package and answers the
 * event. `payload` is the raw body as received (re-serialized JSON does not verify); `headers`
 * the request's headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Throws when
 * the signature or the timestamp (± 5 minutes) does not verify.
 */
export function verifyWebhook(secret: string, payload: string | Buffer, headers: Headers | Record<string, string | string[] | undefined>): Event {
  const pick = (name: string): string => {
    const value = headers instanceof Headers ? headers.get(name) : headers[name];
    return (Array.isArray(value) ? value[0] : value) ?? "";
  };
  const webhook = new Webhook(secret);
  const text = typeof payload === "string" ? payload : payload.toString("utf8");
  return webhook.verify(text, {
    "webhook-id": pick("webhook-id"),
    "webhook-timestamp": pick("webhook-timestamp"),
    "webhook-signature": pick("webhook-signature"),
  }) as Event;
}
