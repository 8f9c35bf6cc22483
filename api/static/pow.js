/*
 * pow.js: the proof of work a public (anonymous) code check carries, solved in plain
 * JavaScript with the vendored SHA-256 (sha256.js; no WebCrypto: plain http on a LAN has none).
 * The format is the server's (api/pow.py); a change there is a change here:
 *   binding = SHA-256(UTF-8 JSON ["tracemark/verify-pow/v1", good_type, creator, product|null, code])
 *   seed    = SHA-256(ASCII challenge || binding)
 *   find an 8-byte nonce with SHA-256(seed || nonce) starting with `difficulty` zero bits;
 *   the header is X-Tracemark-Pow: <challenge>.<nonce as 16 hex digits>.
 * Works in a page and in a Web Worker (pow-worker.js).
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function (global) {
  "use strict";
  var Sha256 = global.TracemarkSha256;
  var TAG = "tracemark/verify-pow/v1";
  var HEADER = "X-Tracemark-Pow";

  function utf8(text) {
    return new TextEncoder().encode(text);
  }

  function concat(a, b) {
    var out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  /** SHA-256 of the lookup's canonical body (the fields exactly as sent). */
  function binding(body) {
    var product = body.product === undefined ? null : body.product;
    var doc = JSON.stringify([TAG, body.good_type, body.creator, product, body.code]);
    return new Sha256().update(utf8(doc)).digest();
  }

  function zeroBits(state0, difficulty) {
    return difficulty === 0 || (state0 >>> (32 - difficulty)) === 0;
  }

  function hex8(n) {
    var s = (n >>> 0).toString(16);
    return "00000000".slice(s.length) + s;
  }

  /**
   * The header value for `challenge` (POST /v1/verify/challenge's answer) and `body`.
   * Each try is one SHA-256 block: the 40-byte message seed || nonce is padded here (FIPS
   * 180-4 section 5.1.1) and compressed with sha256.js's block function, no allocation per
   * try. The nonce found is checked again with the plain digest before it is sent.
   * Returns {proof, tries, ms}.
   */
  function solve(challenge, body) {
    var difficulty = challenge.difficulty;
    if (!(difficulty >= 0 && difficulty <= 32)) throw new Error("unsupported difficulty " + difficulty);
    var started = Date.now();
    var seed = new Sha256().update(concat(utf8(challenge.challenge), binding(body))).digest();
    var block = new Uint8Array(64);
    block.set(seed, 0);
    block[40] = 0x80;
    block[62] = 0x01; // 320 bits: the message's length, big-endian, in the last 8 bytes
    block[63] = 0x40;
    var hasher = new Sha256();
    var initial = new Int32Array(hasher.h);
    var hi = 0, lo = 0, tries = 0;
    for (;;) {
      block[32] = hi >>> 24; block[33] = hi >>> 16; block[34] = hi >>> 8; block[35] = hi;
      block[36] = lo >>> 24; block[37] = lo >>> 16; block[38] = lo >>> 8; block[39] = lo;
      hasher.h.set(initial);
      hasher._blocks(block, 0, 1);
      tries++;
      if (zeroBits(hasher.h[0], difficulty)) break;
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
    var nonce = block.slice(32, 40);
    var check = new Sha256().update(concat(seed, nonce)).digest();
    var first = ((check[0] << 24) | (check[1] << 16) | (check[2] << 8) | check[3]) | 0;
    if (!zeroBits(first, difficulty)) throw new Error("pow.js: the block function and the digest disagree");
    return { proof: challenge.challenge + "." + hex8(hi) + hex8(lo), tries: tries, ms: Date.now() - started };
  }

  global.TracemarkPow = { solve: solve, binding: binding, HEADER: HEADER };
})(typeof globalThis !== "undefined" ? globalThis : self);
