/*
 * keccak.js: Keccak-256 (the pre-standard padding Ethereum uses) and EIP-55 checksummed
 * addresses, for the page's Sign-In with Ethereum: the registry accepts an EIP-4361 message
 * only with the address in its checksummed form, and wallets hand addresses out in lower case.
 *
 * Written for tracemark; BigInt lanes keep it short, and speed does not matter for 20-byte
 * inputs. Keccak reference: https://keccak.team/keccak_specs_summary.html
 *
 * Copyright 2026 the tracemark authors.
 * SPDX-License-Identifier: Apache-2.0
 */
(function (global) {
  "use strict";

  var MASK = (1n << 64n) - 1n;
  var RC = [
    0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
    0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
    0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
    0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
    0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
    0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
  ];
  // Rotation offsets r[x + 5y].
  var R = [
    0, 1, 62, 28, 27,
    36, 44, 6, 55, 20,
    3, 10, 43, 25, 39,
    41, 45, 15, 21, 8,
    18, 2, 61, 56, 14,
  ];
  var RATE = 136; // bytes: 1600 - 2 * 256 bits

  function rotl(v, n) {
    if (n === 0) return v;
    var b = BigInt(n);
    return ((v << b) | (v >> (64n - b))) & MASK;
  }

  function permute(A) {
    var C = new Array(5), B = new Array(25), x, y;
    for (var round = 0; round < 24; round++) {
      for (x = 0; x < 5; x++) C[x] = A[x] ^ A[x + 5] ^ A[x + 10] ^ A[x + 15] ^ A[x + 20];
      for (x = 0; x < 5; x++) {
        var D = C[(x + 4) % 5] ^ rotl(C[(x + 1) % 5], 1);
        for (y = 0; y < 25; y += 5) A[x + y] ^= D;
      }
      for (x = 0; x < 5; x++) {
        for (y = 0; y < 5; y++) B[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(A[x + 5 * y], R[x + 5 * y]);
      }
      for (x = 0; x < 5; x++) {
        for (y = 0; y < 25; y += 5) A[x + y] = B[x + y] ^ (~B[(x + 1) % 5 + y] & MASK & B[(x + 2) % 5 + y]);
      }
      A[0] ^= RC[round];
    }
  }

  /** Keccak-256 of a Uint8Array: a Uint8Array(32). */
  function keccak256(data) {
    var A = new Array(25).fill(0n);
    var padded = new Uint8Array((Math.floor(data.length / RATE) + 1) * RATE);
    padded.set(data, 0);
    padded[data.length] ^= 0x01;
    padded[padded.length - 1] ^= 0x80;
    for (var block = 0; block < padded.length; block += RATE) {
      for (var lane = 0; lane < RATE / 8; lane++) {
        var v = 0n;
        for (var k = 7; k >= 0; k--) v = (v << 8n) | BigInt(padded[block + 8 * lane + k]);
        A[lane] ^= v;
      }
      permute(A);
    }
    var out = new Uint8Array(32);
    for (var i = 0; i < 32; i++) out[i] = Number((A[i >> 3] >> BigInt(8 * (i & 7))) & 0xffn);
    return out;
  }

  /** EIP-55: an address with the letters of its hex upper-cased by its own Keccak-256. */
  function checksumAddress(address) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new Error("not an address: " + address);
    var lower = address.slice(2).toLowerCase();
    var hash = keccak256(new TextEncoder().encode(lower));
    var out = "0x";
    for (var i = 0; i < 40; i++) {
      var nibble = (hash[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0xf;
      out += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
    }
    return out;
  }

  global.TracemarkKeccak = { keccak256: keccak256, checksumAddress: checksumAddress };
})(typeof globalThis !== "undefined" ? globalThis : self);
