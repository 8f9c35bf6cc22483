/*
 * tm.js: what every page of tracemark's web view shares: building DOM (never from HTML
 * strings: every server value goes in as text), calling the API, formatting, verdict words.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function (global) {
  "use strict";

  /** el("p", {class: "x"}, "text", child, ...): an element; strings become text nodes. */
  function el(tag, attrs) {
    var node = tag === "svg" || (attrs && attrs._svg)
      ? document.createElementNS("http://www.w3.org/2000/svg", tag)
      : document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (name === "_svg" || value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = String(value);
        else node.setAttribute(name, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // -- the credential of this tab (auditor's API key or creator's session token) ------------

  var CREDENTIAL_KEY = "tracemark.credential";

  function credential() {
    try { return global.sessionStorage.getItem(CREDENTIAL_KEY); } catch (e) { return null; }
  }

  function setCredential(value) {
    if (value) global.sessionStorage.setItem(CREDENTIAL_KEY, value);
    else global.sessionStorage.removeItem(CREDENTIAL_KEY);
  }

  /** What to show of a credential: its kind and first characters, never all of it. */
  function describeCredential(value) {
    if (!value) return "none";
    var kind = value.indexOf("tm_siwe_") === 0 ? "creator session" : "API key";
    return kind + " (" + value.slice(0, 12) + "…)";
  }

  // -- the API ------------------------------------------------------------------------------

  /**
   * Call the registry's API on this origin. options: method, json (a body), headers (more
   * request headers), auth (send this tab's credential as a Bearer header), text (the answer
   * is text, not JSON). Resolves to {ok, status, data, problem, retryAfter}:
   * data is the JSON answer, problem the RFC 9457 document of a refusal.
   */
  async function api(path, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    var init = { method: options.method || "GET", headers: headers, credentials: "omit", cache: "no-store" };
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    if (options.headers) {
      Object.keys(options.headers).forEach(function (name) { headers[name] = options.headers[name]; });
    }
    if (options.auth) {
      var token = credential();
      if (token) headers.Authorization = "Bearer " + token;
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, problem: { title: "The registry did not answer", detail: String(e) } };
    }
    var body = null;
    if (options.text && response.ok) {
      body = await response.text();
    } else {
      try { body = await response.json(); } catch (e) { body = null; }
    }
    var result = { ok: response.ok, status: response.status, retryAfter: response.headers.get("Retry-After") };
    if (response.ok) result.data = body;
    else result.problem = body || { title: response.statusText || "HTTP " + response.status };
    return result;
  }

  /** One sentence for a refused call. */
  function problemText(result) {
    var p = result.problem || {};
    if (result.status === 429) {
      return "Too many requests from here: try again in " + (result.retryAfter || "a few") + " s.";
    }
    if (result.status === 401) return "Not signed in, or the credential was refused: " + (p.detail || p.title || "") ;
    if (result.status === 403) return "This credential may not do that: " + (p.detail || p.title || "");
    var text = p.detail || p.title || "HTTP " + result.status;
    if (typeof text !== "string") text = JSON.stringify(text);
    return text;
  }

  // -- formatting ---------------------------------------------------------------------------

  /** Unix seconds as "2026-09-21 10:00:00 UTC". */
  function time(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  /** "1 platform", "2 platforms". */
  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many || one + "s");
  }

  function short(hex, keep) {
    keep = keep || 10;
    if (!hex || hex.length <= 2 * keep + 1) return hex || "";
    return hex.slice(0, keep) + "…" + hex.slice(-6);
  }

  /** A decimal string (may exceed 2^53) with thousands separators. */
  function amount(text) {
    return String(text).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  var FINGERPRINT = /^0x[0-9a-fA-F]{64}$/;
  var ADDRESS = /^0x[0-9a-fA-F]{40}$/;

  // Each verdict as a word, a symbol and a sentence: the page never says anything by colour
  // alone. tone picks the colour and the border pattern.
  var VERDICTS = {
    authentic: { word: "Authentic", icon: "\u2714", tone: "ok",
      say: "Registered by its creator, not revoked, and anchored on chain." },
    not_authentic: { word: "Not authentic", icon: "\u2716", tone: "bad",
      say: "No valid good of that creator matches this code. An anonymous check does not say " +
        "why (unknown, revoked, used up, or another creator's): ask the seller for the " +
        "fingerprint, or scan the label, to learn more." },
    unknown: { word: "Unknown", icon: "?", tone: "bad",
      say: "Nobody registered this good: the registry has never heard of it." },
    revoked: { word: "Revoked", icon: "\u2716", tone: "bad",
      say: "Its creator revoked it (leaked, stolen or withdrawn): do not accept it." },
    consumed: { word: "Consumed", icon: "\u2716", tone: "bad",
      say: "A single-use good that was already redeemed or sold as final." },
    conflict: { word: "Conflict", icon: "!", tone: "warn",
      say: "Registered, but not by the creator or product you named." },
    pending_anchor: { word: "Pending anchor", icon: "\u231B", tone: "warn",
      say: "Registered, but not under a mined anchor yet: check again in a few seconds." },
  };

  function verdictInfo(verdict) {
    return VERDICTS[verdict] || { word: String(verdict), icon: "?", tone: "warn", say: "" };
  }

  global.TM = {
    el: el, append: append, clear: clear, api: api, problemText: problemText,
    credential: credential, setCredential: setCredential, describeCredential: describeCredential,
    time: time, short: short, plural: plural, amount: amount, verdictInfo: verdictInfo,
    FINGERPRINT: FINGERPRINT, ADDRESS: ADDRESS,
  };
})(window);
