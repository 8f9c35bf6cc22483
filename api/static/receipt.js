/*
 * receipt.js: the delivery receipt's page (/r/<id>). The buyer types the code they received;
 * the page asks for a challenge, solves its proof of work (pow.js, in a Web Worker when there
 * is one: pow-worker.js) for the binding a public code check of that code under the receipt's
 * creator carries, and POSTs the code in the body of /v1/receipts/<id>/check: never in a URL.
 * The answer is match or no match.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function () {
  "use strict";
  var TM = window.TM, el = TM.el;

  var form = document.getElementById("form-receipt-code");
  var input = document.getElementById("receipt-code");
  var result = document.getElementById("receipt-result");

  // Times are rendered here, in UTC words, from the unix seconds the server wrote.
  Array.prototype.forEach.call(document.querySelectorAll("time.unix-time"), function (node) {
    var seconds = Number(node.getAttribute("data-unix"));
    if (seconds > 0) node.textContent = TM.time(seconds);
  });

  function show(nodes) {
    TM.clear(result);
    TM.append(result, nodes);
    result.hidden = false;
  }

  function busy(text) {
    show(el("p", { class: "status", role: "status" }, text));
  }

  function verdict(match) {
    if (match) {
      return el("div", { class: "verdict tone-ok", id: "receipt-match", "data-match": "true" },
        el("p", { class: "verdict-word" }, el("span", { class: "verdict-icon", "aria-hidden": "true" }, "\u2714"), " ", TM.t("js.receipt.match")),
        el("p", { class: "verdict-say" }, TM.t("js.receipt.match_say")));
    }
    return el("div", { class: "verdict tone-bad", id: "receipt-match", "data-match": "false" },
      el("p", { class: "verdict-word" }, el("span", { class: "verdict-icon", "aria-hidden": "true" }, "\u2716"), " ", TM.t("js.receipt.no_match")),
      el("p", { class: "verdict-say" }, TM.t("js.receipt.no_match_say")));
  }

  function solve(challenge, body) {
    if (typeof Worker !== "function") return Promise.resolve().then(function () { return window.TracemarkPow.solve(challenge, body); });
    return new Promise(function (resolve, reject) {
      var worker;
      try { worker = new Worker("/static/pow-worker.js"); } catch (e) { reject(e); return; }
      worker.onmessage = function (event) {
        worker.terminate();
        if (event.data.type === "done") resolve(event.data);
        else reject(new Error(event.data.message));
      };
      worker.onerror = function (event) { worker.terminate(); reject(new Error(event.message || "the worker failed")); };
      worker.postMessage({ challenge: challenge, body: body });
    }).catch(function () { return window.TracemarkPow.solve(challenge, body); });
  }

  async function check(code) {
    busy(TM.t("js.pow.challenge"));
    var challenge = await TM.api("/v1/verify/challenge", { method: "POST" });
    if (!challenge.ok) { show(el("p", { class: "problem" }, TM.problemText(challenge))); return; }
    busy(TM.t("js.pow.working"));
    var solved;
    try {
      // The binding of a public code check of this code under the receipt's creator.
      solved = await solve(challenge.data, { good_type: "code", creator: form.getAttribute("data-creator"), code: code });
    } catch (e) {
      show(el("p", { class: "problem" }, TM.t("js.pow.failed", { message: e.message })));
      return;
    }
    var headers = {};
    headers[window.TracemarkPow.HEADER] = solved.proof;
    busy(TM.t("js.receipt.comparing"));
    var res = await TM.api("/v1/receipts/" + encodeURIComponent(form.getAttribute("data-receipt")) + "/check",
      { method: "POST", json: { code: code }, headers: headers });
    if (!res.ok) { show(el("p", { class: "problem" }, TM.problemText(res))); return; }
    show(verdict(res.data.match === true));
    result.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = input.value;
    if (!code.trim()) {
      input.setAttribute("aria-invalid", "true");
      show(el("p", { class: "status" }, TM.t("js.receipt.type_code")));
      return;
    }
    input.removeAttribute("aria-invalid");
    check(code);
  });
})();
