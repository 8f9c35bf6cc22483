/*
 * pow-worker.js: solves a code check's proof of work (pow.js) off the page's thread, so the
 * page stays responsive while it works. Posts {type: "done", proof, tries, ms} or an error.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
"use strict";
importScripts("/static/sha256.js", "/static/pow.js");

self.onmessage = function (event) {
  try {
    var solved = self.TracemarkPow.solve(event.data.challenge, event.data.body);
    self.postMessage({ type: "done", proof: solved.proof, tries: solved.tries, ms: solved.ms });
  } catch (error) {
    self.postMessage({ type: "error", message: String(error && error.message || error) });
  }
};
