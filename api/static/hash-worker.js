/*
 * hash-worker.js: hashes one File off the page's thread, so that a large file keeps the page
 * responsive. Reads it in 4 MiB slices (sha256.js hashBlob); posts progress, then the
 * fingerprint as 0x-hex. The file never leaves the browser.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
"use strict";
importScripts("/static/sha256.js");

self.onmessage = function (event) {
  var file = event.data.file;
  var last = 0;
  self.TracemarkSha256.hashBlob(file, {
    onProgress: function (done, total) {
      var now = Date.now();
      // At most ten progress messages a second: posting is not free.
      if (done === total || now - last >= 100) {
        last = now;
        self.postMessage({ type: "progress", done: done, total: total });
      }
    },
  }).then(function (digest) {
    self.postMessage({ type: "done", fingerprint: self.TracemarkSha256.hex(digest) });
  }, function (error) {
    self.postMessage({ type: "error", message: String(error && error.message || error) });
  });
};
