/**
 * The TypeScript client against a real `vinr serve` (see server.ts): the money path, the error
 * mapping, a real webhook delivery verified, and retry safety under the server's injected
 * faults (SPEC §12).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  createVinrClient,
  paginate,
  retryAfterMsOf,
  TEST_FAULT_HEADER,
  unwrap,
  verifyWebhook,
  VinrError,
  VinrNetworkError,
  type BalanceTransaction,
  type Page,
  type Payment,
  type RetryInfo,
  type VinrClient,
} from "../src/index.js";
import { eventually, skipReason, startReceiver, startServer, type Served } from "./server.js";

const CARD_APPROVED = "4242424242424242";
const RETURN_URL = "https://shop.example/return";
const skip = skipReason();

/** Retries quick enough for tests; Retry-After still wins when it is longer. */
const FAST_RETRY = { maxRetries: 4, initialBackoffMs: 20, maxBackoffMs: 200, maxElapsedMs: 20_000 };

let served: Served;

before(async () => {
  if (!skip) served = await startServer();
});
after(async () => {
  await served?.stop();
});

/** A fresh account (platform key) and a client with its key: tests never see each other's data. */
async function freshClient(onRetry?: (info: RetryInfo) => void, retry = FAST_RETRY): Promise<VinrClient> {
  const platform = createVinrClient({ apiKey: served.platformKey, baseUrl: served.base });
  const account = await unwrap(platform.POST("/v1/accounts", { body: { name: "ts client test" } }));
  assert.ok(account.secretKey?.startsWith("sk_test_"));
  return createVinrClient({ apiKey: account.secretKey!, baseUrl: served.base, retry, onRetry });
}

async function createPayment(client: VinrClient, extra: { capture?: boolean; amount?: number } = {}): Promise<Payment> {
  return unwrap(
    client.POST("/v1/payments", {
      body: { amount: extra.amount ?? 1000, currency: "EUR", returnUrl: RETURN_URL, capture: extra.capture },
    }),
  );
}

async function allPayments(client: VinrClient): Promise<Payment[]> {
  const payments: Payment[] = [];
  for await (const payment of paginate((starting_after) =>
    unwrap(client.GET("/v1/payments", { params: { query: { limit: 100, starting_after } } })),
  )) {
    payments.push(payment);
  }
  return payments;
}

async function injectedFaults(kind: string): Promise<number> {
  const text = await (await fetch(`${served.base}/metrics`)).text();
  const line = text.split("\n").find((entry) => entry.startsWith(`vinr_injected_faults_total{kind="${kind}"} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

async function expectError(call: Promise<unknown>, status: number, type: string, code: string, param: string | null): Promise<VinrError> {
  const error = await call.then(
    () => assert.fail(`expected HTTP ${status} ${code}`),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof VinrError, `a VinrError, not ${String(error)}`);
  assert.equal(error.status, status, error.message);
  assert.equal(error.type, type, error.message);
  assert.equal(error.code, code, error.message);
  assert.equal(error.param, param, error.message);
  assert.match(error.requestId ?? "", /^req_/);
  return error;
}

test("Retry-After is read as seconds or as an HTTP-date", () => {
  const now = Date.parse("2026-12-02T10:00:00Z");
  assert.equal(retryAfterMsOf("1", now), 1000);
  assert.equal(retryAfterMsOf(" 120 ", now), 120_000);
  assert.equal(retryAfterMsOf("Wed, 02 Dec 2026 10:00:30 GMT", now), 30_000);
  assert.equal(retryAfterMsOf("Wed, 02 Dec 2026 09:59:00 GMT", now), 0);
  assert.equal(retryAfterMsOf("12abc", now), undefined);
  assert.equal(retryAfterMsOf("-1", now), undefined);
  assert.equal(retryAfterMsOf(null, now), undefined);
});

describe("vinr TypeScript client against vinr serve", { skip }, () => {
  test("create, pay, capture, refund, list with paging, settle and reconcile", async () => {
    const client = await freshClient();
    const payment = await createPayment(client, { capture: false });
    assert.equal(payment.status, "pending");
    const paid = await unwrap(
      client.POST("/v1/test_helpers/payments/{id}/pay", { params: { path: { id: payment.id } }, body: { card: CARD_APPROVED } }),
    );
    assert.equal(paid.status, "authorized");
    const captured = await unwrap(
      client.POST("/v1/payments/{id}/capture", { params: { path: { id: payment.id } }, body: { amount: 800 } }),
    );
    assert.equal(captured.status, "completed");
    assert.equal(captured.amountCaptured, 800);
    const refund = await unwrap(client.POST("/v1/refunds", { body: { payment: payment.id, amount: 300 } }));
    assert.equal(refund.amount, 300);
    assert.equal(refund.payment, payment.id);

    // Paging: five more payments, read two per page, newest first, each exactly once.
    const created = [payment.id];
    for (let index = 0; index < 5; index++) created.push((await createPayment(client)).id);
    const pages: number[] = [];
    const listed: string[] = [];
    for await (const object of paginate(async (starting_after) => {
      const page = await unwrap(client.GET("/v1/payments", { params: { query: { limit: 2, starting_after } } }));
      pages.push(page.data.length);
      return page;
    })) {
      listed.push(object.id);
    }
    assert.deepEqual(pages, [2, 2, 2]);
    assert.deepEqual(listed, [...created].reverse());

    // Wait for the refund to leave `pending` (the sandbox settles it within a second).
    for (let tries = 0; ; tries++) {
      const current = await unwrap(client.GET("/v1/refunds/{id}", { params: { path: { id: refund.id } } }));
      if (current.status === "succeeded") break;
      assert.ok(tries < 100, `refund still ${current.status}`);
      await new Promise((done) => setTimeout(done, 50));
    }
    const settlements = await unwrap(client.POST("/v1/test_helpers/settlements/run", { body: {} }));
    assert.equal(settlements.data.length, 1);
    const settlement = settlements.data[0]!;
    assert.equal(settlement.gross, 800);
    assert.equal(settlement.refunds, 300);
    const transactions: BalanceTransaction[] = [];
    // The operation answers JSON, or CSV with `Accept: text/csv`: without it, the JSON page.
    for await (const transaction of paginate(
      async (starting_after) =>
        (await unwrap(
          client.GET("/v1/settlements/{id}/transactions", {
            params: { path: { id: settlement.id }, query: { limit: 1, starting_after } },
          }),
        )) as Page<BalanceTransaction>,
    )) {
      transactions.push(transaction);
    }
    assert.equal(transactions.length, settlement.transactionCount);
    assert.deepEqual(new Set(transactions.map((transaction) => transaction.source)), new Set([payment.id, refund.id]));
    assert.equal(
      transactions.reduce((sum, transaction) => sum + transaction.net, 0),
      settlement.net,
    );
    const csv = await client.GET("/v1/settlements/{id}/transactions", {
      params: { path: { id: settlement.id } },
      headers: { Accept: "text/csv" },
      parseAs: "text",
    });
    assert.equal(csv.response.status, 200);
    const rows = (csv.data as string).trim().split("\r\n");
    assert.equal(rows[0], "id,type,source,amount,fee,net,currency,created_at,availableOn");
    assert.equal(rows.length, 1 + transactions.length);
  });

  test("errors come back typed: 400, 401, 403, 404, 409, 422", async () => {
    const client = await freshClient();
    await expectError(
      unwrap(client.POST("/v1/payments", { body: { amount: -5, currency: "EUR", returnUrl: RETURN_URL } })),
      400,
      "invalid_request_error",
      "parameter_invalid",
      "amount",
    );
    const stranger = createVinrClient({ apiKey: `sk_test_${"0".repeat(40)}`, baseUrl: served.base, retry: FAST_RETRY });
    await expectError(unwrap(stranger.GET("/v1/payments")), 401, "authentication_error", "api_key_invalid", null);
    const platform = createVinrClient({ apiKey: served.platformKey, baseUrl: served.base });
    await expectError(unwrap(platform.GET("/v1/payments")), 403, "permission_error", "account_key_required", null);
    await expectError(
      unwrap(client.GET("/v1/payments/{id}", { params: { path: { id: "pay_doesnotexist" } } })),
      404,
      "invalid_request_error",
      "resource_missing",
      "id",
    );
    const body = { amount: 1000, currency: "EUR" as const, returnUrl: RETURN_URL };
    await unwrap(client.POST("/v1/payments", { body, headers: { "Idempotency-Key": "order-409" } }));
    const reused = await unwrap(
      client.POST("/v1/payments", { body: { ...body, amount: 2000 }, headers: { "Idempotency-Key": "order-409" } }),
    ).catch((thrown: unknown) => thrown);
    assert.ok(reused instanceof VinrError);
    assert.equal(reused.status, 409);
    assert.equal(reused.type, "idempotency_error");
    assert.equal(reused.code, "idempotency_key_reused");
    assert.equal(reused.param, "Idempotency-Key");
    const pending = await createPayment(client);
    await expectError(
      unwrap(client.POST("/v1/payments/{id}/capture", { params: { path: { id: pending.id } }, body: {} })),
      422,
      "invalid_request_error",
      "payment_state_invalid",
      null,
    );
  });

  test("a real webhook delivery verifies with standardwebhooks; a tampered one does not", async () => {
    const client = await freshClient();
    const receiver = await startReceiver();
    try {
      const endpoint = await unwrap(
        client.POST("/v1/webhooks", { body: { url: receiver.url, events: ["payment.completed"] } }),
      );
      const secret = endpoint.secret!;
      assert.match(secret, /^whsec_/);
      const payment = await createPayment(client);
      await unwrap(
        client.POST("/v1/test_helpers/payments/{id}/pay", { params: { path: { id: payment.id } }, body: { card: CARD_APPROVED } }),
      );
      const delivery = await eventually("the payment.completed delivery", 10_000, () => receiver.received[0]);
      const event = verifyWebhook(secret, delivery.body, delivery.headers as Record<string, string>);
      assert.equal(event.type, "payment.completed");
      assert.equal((event.data.object as unknown as { id: string }).id, payment.id);
      assert.equal(delivery.headers["webhook-id"], event.id);
      assert.throws(() => verifyWebhook(secret, delivery.body.replace("1000", "9000"), delivery.headers as Record<string, string>));
      const otherSecret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
      assert.throws(() => verifyWebhook(otherSecret, delivery.body, delivery.headers as Record<string, string>));
    } finally {
      await receiver.close();
    }
  });

  for (const fault of ["commit-then-500", "commit-then-drop"]) {
    test(`${fault} on create: the retry with the same key gets the real answer, one payment`, async () => {
      const retries: RetryInfo[] = [];
      const client = await freshClient((info) => retries.push(info));
      await unwrap(
        client.POST("/v1/test_helpers/faults", { body: { method: "POST", path: "/v1/payments", fault, count: 1 } }),
      );
      const kind = fault.replaceAll("-", "_");
      const before = await injectedFaults(kind);
      const result = await client.POST("/v1/payments", {
        body: { amount: 4321, currency: "EUR", returnUrl: RETURN_URL, description: fault },
      });
      assert.equal(result.response.status, 201, JSON.stringify(result.error));
      const payment = result.data!;
      assert.equal(result.response.headers.get("idempotent-replayed"), "true");
      assert.equal(retries.length, 1, "one retry");
      assert.equal(retries[0]!.status, fault === "commit-then-500" ? 500 : undefined);
      assert.ok(retries[0]!.idempotencyKey, "the retry carried a generated key");
      assert.equal(await injectedFaults(kind), before + 1);
      const payments = await allPayments(client);
      assert.deepEqual(
        payments.map((listed) => listed.id),
        [payment.id],
      );
      assert.equal(payment.amount, 4321);
      assert.equal(payment.description, fault);
    });
  }

  test("a key given in the body is the key every attempt sends", async () => {
    const retries: RetryInfo[] = [];
    const client = await freshClient((info) => retries.push(info));
    await unwrap(
      client.POST("/v1/test_helpers/faults", {
        body: { method: "POST", path: "/v1/payments", fault: "commit-then-500", count: 1 },
      }),
    );
    const body = { amount: 777, currency: "EUR" as const, returnUrl: RETURN_URL, idempotencyKey: "order-ts-1" };
    const result = await client.POST("/v1/payments", { body });
    assert.equal(result.response.status, 201, JSON.stringify(result.error));
    assert.equal(result.response.headers.get("idempotent-replayed"), "true");
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.idempotencyKey, "order-ts-1");
    // The same order sent again later, as a fresh call: the same payment.
    const again = await unwrap(client.POST("/v1/payments", { body }));
    assert.equal(again.id, result.data!.id);
    assert.equal((await allPayments(client)).length, 1);
  });

  test("a create that outlives the timeout is retried with its key: one payment", async () => {
    const platform = createVinrClient({ apiKey: served.platformKey, baseUrl: served.base });
    const account = await unwrap(platform.POST("/v1/accounts", { body: { name: "ts timeout test" } }));
    const retries: RetryInfo[] = [];
    const client = createVinrClient({
      apiKey: account.secretKey!,
      baseUrl: served.base,
      retry: FAST_RETRY,
      timeoutMs: 500,
      onRetry: (info) => retries.push(info),
    });
    await unwrap(
      client.POST("/v1/test_helpers/faults", { body: { method: "POST", path: "/v1/payments", fault: "latency=1500", count: 1 } }),
    );
    const payment = await createPayment(client, { amount: 1234 });
    assert.ok(retries.length >= 1 && retries[0]!.status === undefined, JSON.stringify(retries));
    // Let the first attempt finish on the server (it waits 1.5 s, then runs), if it still runs.
    await new Promise((done) => setTimeout(done, 1500));
    assert.deepEqual(
      (await allPayments(client)).map((listed) => listed.id),
      [payment.id],
    );
  });

  test("a 429 storm is waited out, honouring Retry-After", async () => {
    const retries: RetryInfo[] = [];
    const client = await freshClient((info) => retries.push(info));
    await unwrap(
      client.POST("/v1/test_helpers/faults", { body: { method: "POST", path: "/v1/payments", fault: "status=429", count: 3 } }),
    );
    const started = Date.now();
    const payment = await createPayment(client);
    const elapsedMs = Date.now() - started;
    assert.equal(retries.length, 3);
    assert.ok(retries.every((info) => info.status === 429 && info.waitMs >= 1000), JSON.stringify(retries));
    // Backoff alone (20 ms doubling) would be done in well under a second.
    assert.ok(elapsedMs >= 3000, `waited ${elapsedMs} ms`);
    assert.deepEqual(
      (await allPayments(client)).map((listed) => listed.id),
      [payment.id],
    );
  });

  test("a persistent 503 is retried, then surfaced as a typed error; nothing is created", async () => {
    const retries: RetryInfo[] = [];
    const client = await freshClient((info) => retries.push(info), { ...FAST_RETRY, maxRetries: 2 });
    const before = await injectedFaults("status_503");
    const error = await expectError(
      unwrap(
        client.POST("/v1/payments", {
          body: { amount: 1000, currency: "EUR", returnUrl: RETURN_URL },
          headers: { [TEST_FAULT_HEADER]: "status=503" },
        }),
      ),
      503,
      "api_error",
      "injected_fault",
      null,
    );
    assert.equal(retries.length, 2);
    assert.equal(new Set(retries.map((info) => info.idempotencyKey)).size, 1, "one key for every attempt");
    assert.equal(await injectedFaults("status_503"), before + 3);
    assert.ok(error.message.includes("503"));
    assert.deepEqual(await allPayments(client), []);
  });

  test("no answer at all surfaces as VinrNetworkError after the retries", async () => {
    const client = createVinrClient({
      apiKey: served.secretKey,
      baseUrl: "http://127.0.0.1:9",
      retry: { ...FAST_RETRY, maxRetries: 1 },
    });
    const error = await client.GET("/v1/payments").catch((thrown: unknown) => thrown);
    assert.ok(error instanceof VinrNetworkError, String(error));
    assert.equal(error.attempts, 2);
  });
});
