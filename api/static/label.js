/*
 * label.js: the label page's print button (no inline handlers: the page's CSP forbids them).
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function () {
  "use strict";
  var button = document.getElementById("print-label");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
