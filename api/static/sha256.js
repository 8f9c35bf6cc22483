/*
 * sha256.js: an incremental SHA-256 (FIPS 180-4) in plain JavaScript.
 *
 * Written for tracemark, which vendors it so that the page can fingerprint a file in the
 * browser where WebCrypto is missing: crypto.subtle exists only in secure contexts (https or
 * localhost), not on a registry opened over plain http on a LAN address, and it cannot hash
 * incrementally anyway (digest() takes the whole file at once). No dependencies; works in a
 * page and in a Web Worker (importScripts).
 *
 * Copyright 2026 the tracemark authors.
 * SPDX-License-Identifier: Apache-2.0
 * Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file
 * except in compliance with the License. You may obtain a copy of the License at
 * http://www.apache.org/licenses/LICENSE-2.0. Unless required by applicable law or agreed to
 * in writing, software distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 *
 * API:
 *   const h = new TracemarkSha256(); h.update(uint8array); ...; h.digest()  -> Uint8Array(32)
 *   TracemarkSha256.hex(bytes)                                             -> "0x…"
 *   await TracemarkSha256.hashBlob(blob, {chunkSize, onProgress})         -> Uint8Array(32)
 * hashBlob reads the Blob (a File) in slices of chunkSize bytes (4 MiB by default), so only
 * one slice is in memory at a time, whatever the file's size.
 */
(function (global) {
  "use strict";

  // FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of
  // the first 64 primes.
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  // Section 5.3.3: the initial hash value.
  var H0 = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ];
  var BLOCK = 64;
  var DEFAULT_CHUNK = 4 * 1024 * 1024;

  function Sha256() {
    this.h = new Int32Array(H0);
    this.w = new Int32Array(64);
    this.buffer = new Uint8Array(BLOCK); // a partial block carried between updates
    this.buffered = 0;
    this.length = 0; // bytes hashed so far (a Number: exact up to 2^53 bytes)
    this.finished = false;
  }

  // Section 6.2.2: compress the 64-byte blocks of `data` from `offset`, `count` blocks.
  Sha256.prototype._blocks = function (data, offset, count) {
    var w = this.w, h = this.h;
    var a, b, c, d, e, f, g, hh, i, j, t1, t2, x, y;
    for (var n = 0; n < count; n++, offset += BLOCK) {
      for (i = 0, j = offset; i < 16; i++, j += 4) {
        w[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
      }
      for (i = 16; i < 64; i++) {
        x = w[i - 15];
        y = w[i - 2];
        w[i] =
          (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
          w[i - 7] +
          (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) +
          w[i - 16] | 0;
      }
      a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
      for (i = 0; i < 64; i++) {
        t1 = hh +
          (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
          ((e & f) ^ (~e & g)) + K[i] + w[i] | 0;
        t2 = (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
          ((a & b) ^ (a & c) ^ (b & c)) | 0;
        hh = g; g = f; f = e; e = d + t1 | 0; d = c; c = b; b = a; a = t1 + t2 | 0;
      }
      h[0] = h[0] + a | 0; h[1] = h[1] + b | 0; h[2] = h[2] + c | 0; h[3] = h[3] + d | 0;
      h[4] = h[4] + e | 0; h[5] = h[5] + f | 0; h[6] = h[6] + g | 0; h[7] = h[7] + hh | 0;
    }
  };

  /** Feed bytes (a Uint8Array or an ArrayBuffer); returns this, for chaining. */
  Sha256.prototype.update = function (data) {
    if (this.finished) throw new Error("sha256: update after digest");
    if (!(data instanceof Uint8Array)) data = new Uint8Array(data);
    var offset = 0, left = data.length;
    this.length += left;
    if (this.buffered > 0) {
      var take = Math.min(BLOCK - this.buffered, left);
      this.buffer.set(data.subarray(0, take), this.buffered);
      this.buffered += take;
      offset += take;
      left -= take;
      if (this.buffered < BLOCK) return this;
      this._blocks(this.buffer, 0, 1);
      this.buffered = 0;
    }
    var whole = Math.floor(left / BLOCK);
    if (whole > 0) {
      this._blocks(data, offset, whole);
      offset += whole * BLOCK;
      left -= whole * BLOCK;
    }
    if (left > 0) {
      this.buffer.set(data.subarray(offset, offset + left), 0);
      this.buffered = left;
    }
    return this;
  };

  /** Section 5.1.1 padding, then the 32-byte digest. The hasher is spent afterwards. */
  Sha256.prototype.digest = function () {
    if (this.finished) throw new Error("sha256: digest called twice");
    this.finished = true;
    var bytes = this.length;
    var tail = new Uint8Array(this.buffered < 56 ? BLOCK : 2 * BLOCK);
    tail.set(this.buffer.subarray(0, this.buffered), 0);
    tail[this.buffered] = 0x80;
    // The message length in bits as a 64-bit big-endian integer, from a byte count that
    // may exceed 2^32: high word = floor(bytes / 2^29), low word = (bytes mod 2^29) * 8.
    var hi = Math.floor(bytes / 0x20000000);
    var lo = (bytes % 0x20000000) * 8;
    var end = tail.length;
    tail[end - 8] = hi >>> 24; tail[end - 7] = hi >>> 16; tail[end - 6] = hi >>> 8; tail[end - 5] = hi;
    tail[end - 4] = lo >>> 24; tail[end - 3] = lo >>> 16; tail[end - 2] = lo >>> 8; tail[end - 1] = lo;
    this._blocks(tail, 0, tail.length / BLOCK);
    var out = new Uint8Array(32);
    for (var i = 0; i < 8; i++) {
      var v = this.h[i];
      out[4 * i] = v >>> 24; out[4 * i + 1] = v >>> 16; out[4 * i + 2] = v >>> 8; out[4 * i + 3] = v;
    }
    return out;
  };

  /** Bytes as 0x-prefixed lower-case hex: the project's edge format. */
  Sha256.hex = function (bytes) {
    var s = "0x";
    for (var i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return s;
  };

  function readSlice(blob) {
    if (typeof blob.arrayBuffer === "function") return blob.arrayBuffer();
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsArrayBuffer(blob);
    });
  }

  /**
   * Hash a Blob or File slice by slice (File.slice: only one slice in memory at a time).
   * options.chunkSize: bytes per slice (4 MiB); options.onProgress(done, total) after each.
   */
  Sha256.hashBlob = async function (blob, options) {
    options = options || {};
    var chunk = options.chunkSize || DEFAULT_CHUNK;
    var onProgress = options.onProgress || function () {};
    var hasher = new Sha256();
    var total = blob.size;
    for (var offset = 0; offset < total; ) {
      var end = Math.min(offset + chunk, total);
      hasher.update(new Uint8Array(await readSlice(blob.slice(offset, end))));
      offset = end;
      onProgress(offset, total);
    }
    if (total === 0) onProgress(0, 0);
    return hasher.digest();
  };

  Sha256.DEFAULT_CHUNK = DEFAULT_CHUNK;
  global.TracemarkSha256 = Sha256;
})(typeof globalThis !== "undefined" ? globalThis : self);
