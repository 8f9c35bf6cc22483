// Drives the built TypeScript client against a live registry, as a Node platform would, and
// prints one JSON document of what it saw (tests/clients/test_js_client.py checks it).
// argv: <the built client's index.js> <a JSON scenario: url, keys, goods, pinned trust root>
const [, , clientPath, scenarioJson] = process.argv;
const tm = await import(clientPath);
const s = JSON.parse(scenarioJson);

function problem(error) {
  return {
    class: error.constructor.name,
    chain: Object.getPrototypeOf(error) && [
      error instanceof tm.TracemarkProblem,
      error instanceof tm.Conflict,
      error instanceof tm.DoubleSale,
      error instanceof tm.InvalidRequest,
      error instanceof tm.Unauthorized,
      error instanceof tm.NotFound,
    ],
    status: error.status,
    code: error.code,
    title: error.title,
    detail: error.detail,
    earlier: error.problem?.earlier ?? null,
    errors: error.problem?.errors ?? null,
  };
}

async function refused(promise) {
  try {
    await promise;
    return { class: "none" };
  } catch (error) {
    return error instanceof tm.TracemarkError ? problem(error) : { class: "untyped", message: String(error) };
  }
}

const out = {};
const client = new tm.TracemarkClient({ baseUrl: s.url, apiKey: s.apiKey });
const chinese = new tm.TracemarkClient({ baseUrl: s.url, apiKey: s.apiKey, language: "zh-Hans" });
const anonymous = new tm.TracemarkClient({ baseUrl: s.url });

const root = await client.trustRoot(s.pinned);
out.trust = { name: root.name, chain_id: root.chain_id, fingerprint: await tm.trustRootFingerprint(root) };
try {
  await client.trustRoot("sha256:" + "0".repeat(64));
  out.wrongPin = "accepted";
} catch (error) {
  out.wrongPin = error.constructor.name;
}

out.verifyFile = await client.verify({ good_type: "file", fingerprint: s.file });
out.verifyCode = await client.verify({ good_type: "code", code: s.code, creator: s.creator });
out.verifyUnknown = await anonymous.verify({ good_type: "file", fingerprint: s.unknown });

const sale = {
  good_type: "file",
  fingerprint: s.file,
  seller: { creator: true },
  buyer: { platform: "cardhub", reference: "alice" },
  price: "5000",
  currency: "CNY",
};
out.receipt = await client.recordTransfer(sale, { idempotencyKey: "sale-1" });
out.replayed = await client.recordTransfer(sale, { idempotencyKey: "sale-1" });
out.fetched = await client.getTransfer(out.receipt.transfer_id);
const double = { ...sale, seller: { platform: "cardhub", reference: "mallory" }, buyer: { platform: "cardhub", reference: "eve" } };
out.doubleSale = await refused(client.recordTransfer(double));
out.doubleSaleZh = await refused(chinese.recordTransfer(double));
out.malformed = await refused(client.verify({ good_type: "file", fingerprint: "0x12" }));
out.badKey = await refused(new tm.TracemarkClient({ baseUrl: s.url, apiKey: "tm_live_" + "x".repeat(40) }).verify({ good_type: "file", fingerprint: s.file }));
out.noOrder = await refused(client.getOrder(987654));
// Anonymous: a code lookup needs a proof of work (428), and the tier's budget runs out (429).
out.needsPow = await refused(anonymous.verify({ good_type: "code", code: s.code, creator: s.creator }));
out.limited = { class: "none" };
for (let i = 0; i < 30 && out.limited.class !== "RateLimited"; i++) {
  out.limited = await refused(anonymous.verify({ good_type: "file", fingerprint: s.unknown }));
}
try {
  await anonymous.verify({ good_type: "file", fingerprint: s.unknown });
} catch (error) {
  out.retryAfter = error instanceof tm.RateLimited ? error.retryAfter : null;
}

const order = await client.openOrder({
  good_type: "code",
  fingerprint: s.codeFingerprint,
  seller: { creator: true },
  buyer_reference: "wang-fang",
  price: "4999",
  currency: "CNY",
});
const delivered = await client.deliverOrder(order.order_id, { code: s.code });
const confirmed = await client.confirmOrder(order.order_id);
out.order = { opened: order.state, delivered: delivered.order.state, receipt: delivered.receipt?.receipt_id ?? null, confirmed: confirmed.state, id: order.order_id };
out.platformCredit = await client.platformCredit("cardhub");
out.sellerCredit = await client.sellerCredit("cardhub", s.aliceRef);
process.stdout.write(JSON.stringify(out));
