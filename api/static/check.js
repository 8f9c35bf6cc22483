/*
 * check.js: the "Check a good" page. Three ways to name a good, one verdict:
 *   - a fingerprint (typed, or prefilled from a label's link ?type=…&fp=…);
 *   - a code with the creator it claims (the anonymous tier: authentic or not, nothing more);
 *   - a file, hashed here with the vendored SHA-256 (sha256.js), slice by slice, in a Web
 *     Worker when there is one: never uploaded, no WebCrypto needed (plain http on a LAN).
 * Every check is POST /v1/verify without credentials; a code check first fetches a challenge
 * and solves its proof of work (pow.js, in a Web Worker when there is one: pow-worker.js), so
 * that guessing codes costs CPU time whatever address it comes from.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function () {
  "use strict";
  var TM = window.TM, el = TM.el;

  var result = document.getElementById("result");
  var resultBody = document.getElementById("result-body");

  function show(nodes) {
    TM.clear(resultBody);
    TM.append(resultBody, nodes);
    result.hidden = false;
  }

  function showBusy(text) {
    show(el("p", { class: "status", role: "status" }, text));
  }

  function showProblem(res) {
    show(el("div", { class: "verdict tone-warn", "data-verdict": "error" },
      el("p", { class: "verdict-word" }, el("span", { class: "verdict-icon", "aria-hidden": "true" }, "!"), " ", TM.t("js.check.could_not")),
      el("p", {}, TM.problemText(res))));
    result.focus();
  }

  function row(term, value) {
    if (value === null || value === undefined || value === "") return null;
    return [el("dt", {}, term), el("dd", {}, value)];
  }

  function anchorText(anchor) {
    if (!anchor) return TM.t("js.check.not_anchored");
    var parts = [anchor.state === "final" ? TM.t("js.check.final") : TM.t("js.check.mined"),
      TM.t("js.check.chain", { id: anchor.chain_id }), TM.t("js.check.block", { n: anchor.block_number })];
    if (anchor.confirmations !== null && anchor.confirmations !== undefined) {
      parts.push(TM.count(anchor.confirmations, "js.count.confirmation"));
    }
    parts.push(TM.t("js.check.log_size", { n: anchor.tree_size }));
    return parts.join(TM.t("js.list.sep"));
  }

  function verificationsText(v) {
    if (!v || !v.times) return TM.t("js.check.never_verified");
    return TM.t("js.check.verified", { times: TM.count(v.times, "js.count.time"),
      platforms: TM.count(v.platforms, "js.count.platform"), first: TM.time(v.first_at) });
  }

  function holderText(holder) {
    if (!holder || !holder.platform) return TM.t("js.check.holder_creator");
    return TM.t("js.check.holder", { platform: holder.platform, since: holder.since_transfer });
  }

  /** The creator's proven name next to its address: verified, or visibly no longer so. A name
   *  the registry never verified is never shown (the answer has none to show). */
  function creatorNode(address, identity) {
    var mono = el("span", { class: "mono" }, address);
    if (!identity) return mono;
    var day = TM.time(identity.checked_at).slice(0, 10);
    var line = identity.status === "verified"
      ? el("span", { class: "identity identity-verified", id: "answer-identity", "data-status": "verified", title: identity.method },
          el("span", { "aria-hidden": "true" }, "\u2713 "), el("strong", {}, identity.name),
          " \u2014 " + TM.t("js.check.identity_ok", { domain: identity.domain, day: day }))
      : el("span", { class: "identity identity-lapsed", id: "answer-identity", "data-status": "lapsed", title: identity.method },
          el("span", { "aria-hidden": "true" }, "\u26a0 "), el("s", {}, identity.name),
          " \u2014 " + TM.t("js.check.identity_lapsed", { domain: identity.domain, day: day }));
    return el("span", {}, mono, el("br"), line,
      el("br"), el("span", { class: "muted help" }, TM.t("js.check.identity_how", { method: identity.method })));
  }

  /** One credit score (its formula named in it): its number (or "unrated") and a link to the inputs it came from. */
  function scoreNode(score, url, id) {
    var text = score.rating === "rated"
      ? TM.t("js.check.credit.score", { score: score.score })
      : TM.t("js.check.credit.unrated");
    return el("span", { id: id, "data-score": score.score === null ? "" : String(score.score) },
      el("strong", {}, text), " ",
      el("a", { href: url, class: "credit-inputs" }, TM.t("js.check.credit.inputs")));
  }

  /** The holder's credit (answer.credit): its platform's score and, when a seller reference
   *  holds the good, that seller's; each with a link to its inputs, to recompute it. */
  function creditNode(credit) {
    if (!credit) return null;
    var parts = [];
    if (credit.platform) {
      parts.push(TM.t("js.check.credit.platform", { platform: credit.platform.platform }), " ",
        scoreNode(credit.platform, credit.platform_url, "answer-credit-platform"));
    }
    if (credit.seller) {
      if (parts.length) parts.push(el("br"));
      parts.push(TM.t("js.check.credit.seller"), " ",
        scoreNode(credit.seller, credit.seller_url, "answer-credit-seller"));
    }
    var formula = (credit.platform || credit.seller).formula;
    parts.push(el("br"), el("span", { class: "muted help" },
      TM.t("js.check.credit.how", { formula: formula, minutes: Math.round(credit.refreshed_every / 60) })));
    return el("span", { id: "answer-credit" }, parts);
  }

  /** The verdict card for a VerifyOut answer. */
  function renderAnswer(answer, how) {
    var info = TM.verdictInfo(answer.verdict);
    var card = el("div", { class: "verdict tone-" + info.tone, "data-verdict": answer.verdict },
      el("p", { class: "verdict-word", id: "verdict-word" },
        el("span", { class: "verdict-icon", "aria-hidden": "true" }, info.icon), " ", info.word),
      el("p", { class: "verdict-say" }, info.say),
      el("p", { class: "verdict-how muted" }, how));
    var nodes = [card];
    if (answer.coarse) {
      nodes.push(el("p", { class: "help" }, TM.t("js.check.coarse")));
      return nodes;
    }
    var dl = el("dl", { class: "facts" },
      row(TM.t("js.check.row.kind"), answer.good_type),
      row(TM.t("js.check.row.fingerprint"), answer.fingerprint ? el("span", { class: "mono", id: "answer-fingerprint" }, answer.fingerprint) : null),
      row(TM.t("js.check.row.creator"), answer.creator ? creatorNode(answer.creator, answer.creator_identity) : null),
      row(TM.t("js.check.row.product"), answer.product),
      row(TM.t("js.check.row.use"), answer.use),
      answer.creator ? row(TM.t("js.check.row.holder"), holderText(answer.holder)) : null,
      row(TM.t("js.check.row.credit"), creditNode(answer.credit)),
      answer.creator ? row(TM.t("js.check.row.anchoring"), anchorText(answer.anchor)) : null,
      answer.anchor ? row(TM.t("js.check.row.transaction"), el("span", { class: "mono", id: "answer-tx" }, answer.anchor.tx_hash)) : null,
      answer.creator ? row(TM.t("js.check.row.checks"), el("span", { id: "answer-verifications" }, verificationsText(answer.verifications))) : null,
      answer.risk ? row(TM.t("js.check.row.risk"), TM.t("js.check.risk", { score: answer.risk.score.toFixed(2) })) : null,
      row(TM.t("js.check.row.chain_view"), answer.chain_block !== null && answer.chain_block !== undefined
        ? TM.t("js.check.chain_view", { block: answer.chain_block, seen: TM.time(answer.chain_seen_at) }) : null));
    nodes.push(dl);
    if (answer.risk && answer.risk.signals && answer.risk.signals.length) {
      nodes.push(el("h3", {}, TM.t("js.check.signals")));
      nodes.push(el("ul", { class: "signals" }, answer.risk.signals.map(function (s) {
        return el("li", {}, TM.signalNode(s.code), ": ", TM.signalDetail(s));
      })));
    }
    if (answer.fingerprint && answer.creator) {
      var base = "/v1/goods/" + encodeURIComponent(answer.good_type) + "/" + answer.fingerprint;
      nodes.push(el("p", { class: "actions" },
        el("a", { class: "button", href: base + "/proof", download: "bundle-" + answer.fingerprint.slice(2, 14) + ".json", id: "proof-link" },
          TM.t("js.check.download")),
        " ",
        el("a", { class: "button secondary", href: "/label/" + answer.good_type + "/" + answer.fingerprint, id: "label-link" }, TM.t("js.check.print_label")),
        " ",
        el("a", { class: "button secondary", href: "/audit?type=" + answer.good_type + "&fp=" + answer.fingerprint }, TM.t("js.check.trace"))));
      nodes.push(el("p", { class: "help" }, TM.t("js.check.bundle_help")));
    }
    return nodes;
  }

  async function verify(body, how, headers) {
    showBusy(TM.t("js.check.asking"));
    var res = await TM.api("/v1/verify", { method: "POST", json: body, headers: headers });
    if (!res.ok) { showProblem(res); return; }
    show(renderAnswer(res.data, how));
    result.focus();
  }

  // -- by fingerprint ----------------------------------------------------------------------

  var fpForm = document.getElementById("form-fingerprint");
  var fpType = document.getElementById("fp-type");
  var fpValue = document.getElementById("fp-value");

  function checkFingerprint() {
    var fp = fpValue.value.trim();
    if (!TM.FINGERPRINT.test(fp)) {
      fpValue.setAttribute("aria-invalid", "true");
      show(el("p", { class: "status" }, TM.t("js.check.bad_fp")));
      fpValue.focus();
      return;
    }
    fpValue.removeAttribute("aria-invalid");
    verify({ good_type: fpType.value, fingerprint: fp.toLowerCase() }, TM.t("js.check.by_fp"));
  }

  fpForm.addEventListener("submit", function (event) { event.preventDefault(); checkFingerprint(); });

  // -- by code ------------------------------------------------------------------------------

  var codeForm = document.getElementById("form-code");
  codeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = document.getElementById("code-value");
    var creator = document.getElementById("code-creator");
    var product = document.getElementById("code-product");
    var problems = [];
    [code, creator, product].forEach(function (input) { input.removeAttribute("aria-invalid"); });
    if (!code.value.trim()) { problems.push(TM.t("js.check.type_code")); code.setAttribute("aria-invalid", "true"); }
    if (!TM.ADDRESS.test(creator.value.trim())) {
      problems.push(TM.t("js.check.bad_creator"));
      creator.setAttribute("aria-invalid", "true");
    }
    var slug = product.value.trim();
    if (slug && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(slug)) {
      problems.push(TM.t("js.check.bad_product"));
      product.setAttribute("aria-invalid", "true");
    }
    if (problems.length) { show(el("p", { class: "status" }, problems.join(" "))); return; }
    var body = { good_type: "code", code: code.value, creator: creator.value.trim() };
    if (slug) body.product = slug;
    checkCode(body);
  });

  /** A public code check: a challenge, its proof of work for this very body, the check. */
  async function checkCode(body) {
    showBusy(TM.t("js.pow.challenge"));
    var challenge = await TM.api("/v1/verify/challenge", { method: "POST" });
    if (!challenge.ok) { showProblem(challenge); return; }
    showBusy(TM.t("js.pow.working"));
    var solved;
    try {
      solved = await solvePow(challenge.data, body);
    } catch (e) {
      show(el("p", { class: "status" }, TM.t("js.pow.failed", { message: e.message })));
      return;
    }
    codeForm.setAttribute("data-pow-ms", String(solved.ms));
    var headers = {};
    headers[window.TracemarkPow.HEADER] = solved.proof;
    verify(body, TM.t("js.check.by_code", { seconds: (solved.ms / 1000).toFixed(2) }), headers);
  }

  /**
   * A job done in a Web Worker, so that the page stays responsive: the worker at ``url`` gets
   * ``message``, may post {type: "progress", done, total} (to ``onProgress``), and ends with
   * {type: "done", ...}, which ``fromWorker`` turns into the job's result, or {type: "error",
   * message}. Without a Worker, or when it cannot start (a locked-down browser) or fails,
   * ``here`` does the job on this thread instead.
   */
  function inWorker(url, message, fromWorker, here, onProgress) {
    if (typeof Worker !== "function") return Promise.resolve().then(here);
    return new Promise(function (resolve, reject) {
      var worker;
      try { worker = new Worker(url); } catch (e) { reject(e); return; }
      worker.onmessage = function (event) {
        var m = event.data;
        if (m.type === "progress") { if (onProgress) onProgress(m.done, m.total); return; }
        worker.terminate();
        if (m.type === "done") resolve(m);
        else reject(new Error(m.message));
      };
      worker.onerror = function (event) { worker.terminate(); reject(new Error(event.message || "the worker failed")); };
      worker.postMessage(message);
    }).then(fromWorker, here);
  }

  /** The proof of work: in a Web Worker (the page stays responsive), else right here. */
  function solvePow(challenge, body) {
    return inWorker("/static/pow-worker.js", { challenge: challenge, body: body }, function (m) {
      codeForm.setAttribute("data-pow-by", "worker");
      return m;
    }, function () {
      return solveHere(challenge, body);
    });
  }

  function solveHere(challenge, body) {
    codeForm.setAttribute("data-pow-by", "page");
    return window.TracemarkPow.solve(challenge, body);
  }

  // -- by file: hashed here ----------------------------------------------------------------

  var fileInput = document.getElementById("file-input");
  var dropZone = document.getElementById("drop-zone");
  var progress = document.getElementById("file-progress");
  var fileStatus = document.getElementById("file-status");
  var fpLine = document.getElementById("file-fingerprint-line");
  var fpOut = document.getElementById("file-fingerprint");
  var hashing = null;

  function sizeText(bytes) {
    var units = [TM.t("js.check.bytes"), "KiB", "MiB", "GiB", "TiB"], i = 0, n = bytes;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function onProgress(done, total) {
    progress.max = total || 1;
    progress.value = total ? done : 1;
    progress.textContent = total ? Math.floor((100 * done) / total) + "%" : "100%";
  }

  /** SHA-256 of a File: in a Web Worker (the page stays responsive), else right here. */
  function hashFile(file) {
    return inWorker("/static/hash-worker.js", { file: file }, function (m) {
      fileStatus.setAttribute("data-hashed-by", "worker");
      return m.fingerprint;
    }, function () {
      return hashHere(file);
    }, onProgress);
  }

  function hashHere(file) {
    fileStatus.setAttribute("data-hashed-by", "page");
    return window.TracemarkSha256.hashBlob(file, { onProgress: onProgress })
      .then(window.TracemarkSha256.hex);
  }

  async function checkFile(file) {
    if (!file || hashing) return;
    hashing = file;
    fpLine.hidden = true;
    fpOut.value = "";
    fpOut.textContent = "";
    progress.hidden = false;
    onProgress(0, file.size);
    fileStatus.textContent = TM.t("js.check.hashing", { name: file.name, size: sizeText(file.size) });
    var started = Date.now();
    try {
      var fingerprint = await hashFile(file);
      var seconds = (Date.now() - started) / 1000;
      fpOut.textContent = fingerprint;
      fpLine.hidden = false;
      fileStatus.textContent = TM.t("js.check.hashed", { name: file.name, size: sizeText(file.size),
        seconds: seconds.toFixed(1) });
      fileStatus.setAttribute("data-done", "true");
      await verify({ good_type: "file", fingerprint: fingerprint }, TM.t("js.check.by_file", { name: file.name }));
    } catch (e) {
      fileStatus.textContent = TM.t("js.check.read_failed", { message: e.message });
    } finally {
      progress.hidden = true;
      hashing = null;
    }
  }

  fileInput.addEventListener("change", function () {
    fileStatus.removeAttribute("data-done");
    fileStatus.removeAttribute("data-hashed-by");
    if (fileInput.files && fileInput.files[0]) checkFile(fileInput.files[0]);
  });
  document.getElementById("form-file").addEventListener("submit", function (event) { event.preventDefault(); });
  ["dragenter", "dragover"].forEach(function (name) {
    dropZone.addEventListener(name, function (event) {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    dropZone.addEventListener(name, function () { dropZone.classList.remove("dragging"); });
  });
  dropZone.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files[0]) { fileStatus.removeAttribute("data-done"); checkFile(files[0]); }
  });
  // A file dropped anywhere else would make the browser navigate to it: keep the page.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  // A label's link (/?type=…&fp=…) checks at once.
  if (TM.FINGERPRINT.test(fpValue.value.trim())) checkFingerprint();
})();
