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

  // -- the page's texts (issue 18 item 5) ---------------------------------------------------

  // The page embeds its language's js.* texts as a JSON data block (never run: the CSP
  // holds); every text a script writes comes from there, never from a literal here.
  var MESSAGES = (function () {
    var node = document.getElementById("tm-messages");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  })();
  var LANG = document.documentElement.lang || "en";

  /** t("js.key", {name: value}): the text with each {name} filled in (as text, never HTML). */
  function t(key, values) {
    var text = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    if (!values) return text;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  /** count(n, "js.count.time"): the ".one" or ".other" text with {n} (English plurals; the
   *  Chinese catalogue says both the same). */
  function count(n, key) {
    return t(key + (n === 1 ? ".one" : ".other"), { n: n });
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
    if (!value) return t("js.cred.none");
    var kind = value.indexOf("tm_siwe_") === 0 ? t("js.cred.session") : t("js.cred.api_key");
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
    // Problems (RFC 9457) come back in the page's language, whatever the browser's default.
    var headers = { Accept: "application/json", "Accept-Language": LANG };
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
      return { ok: false, status: 0, problem: { title: t("js.api.no_answer"), detail: String(e) } };
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
      return t("js.api.too_many", { seconds: result.retryAfter || t("js.api.a_few") });
    }
    if (result.status === 401) return t("js.api.unauthorized", { detail: p.detail || p.title || "" });
    if (result.status === 403) return t("js.api.forbidden", { detail: p.detail || p.title || "" });
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
    authentic: { icon: "\u2714", tone: "ok" },
    not_authentic: { icon: "\u2716", tone: "bad" },
    unknown: { icon: "?", tone: "bad" },
    revoked: { icon: "\u2716", tone: "bad" },
    consumed: { icon: "\u2716", tone: "bad" },
    conflict: { icon: "!", tone: "warn" },
    pending_anchor: { icon: "\u231B", tone: "warn" },
  };

  function verdictInfo(verdict) {
    var known = VERDICTS[verdict];
    if (!known) return { word: String(verdict), icon: "?", tone: "warn", say: "" };
    return { word: t("js.verdict." + verdict + ".word"), icon: known.icon, tone: known.tone,
      say: t("js.verdict." + verdict + ".say") };
  }

  /** A risk signal's title and one-sentence meaning in the page's language (the catalogue's
   *  signal.<code>.title and .meaning, one for each code of readmodels.signals); a code the
   *  catalogue does not know yet (a newer server) is shown as itself, never as a key. */
  function signalText(code, part) {
    var key = "signal." + code + "." + part;
    return Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : (part === "title" ? String(code) : "");
  }

  /** The signal's title, its code kept beside it, small (auditors search by code), and its
   *  meaning as the title's tooltip. */
  function signalNode(code) {
    var meaning = signalText(code, "meaning");
    return el("span", { class: "signal-name" },
      el("strong", meaning ? { title: meaning } : {}, signalText(code, "title")), " ",
      el("small", { class: "mono muted signal-code" }, String(code)));
  }

  /** A parameter of a catalogued detail as the page's language writes it: a number with
   *  its separators, null as a dash, anything else as text. */
  function param(value) {
    if (value === null || value === undefined) return "\u2014";
    if (typeof value === "number") return value.toLocaleString(LANG);
    return String(value);
  }

  /** A template's parameter as the page writes it: a word the catalogue translates
   *  ("js.param." + name + "." + value: a real-name level, an anomaly feature); a list of
   *  parties (", "-joined, a market signal's), each translated when it is a word ("js.param.party." + item: the
   *  creator) and joined as the language lists; else param(). */
  function paramText(name, value, lists) {
    if (typeof value !== "string") return param(value);
    var has = Object.prototype.hasOwnProperty;
    if (has.call(MESSAGES, "js.param." + name + "." + value)) return MESSAGES["js.param." + name + "." + value];
    if (!lists) return value;
    return value.split(", ").map(function (item) {
      return has.call(MESSAGES, "js.param.party." + item) ? MESSAGES["js.param.party." + item] : item;
    }).join(t("js.list.sep"));
  }

  function paramValues(params, lists) {
    var values = {};
    Object.keys(params || {}).forEach(function (name) { values[name] = paramText(name, params[name], lists); });
    return values;
  }

  /** Whether a message names a template of the catalogue under the signal's own code. */
  function known(message, pattern) {
    return !!message && typeof message.key === "string" && pattern.test(message.key) &&
      Object.prototype.hasOwnProperty.call(MESSAGES, message.key);
  }

  /** A signal's detail in the page's language. A verdict signal's answer names its template
   *  (message.key, a verdict.<code>.detail of the catalogue) and parameters; a market signal's
   *  its rule's clauses (parts: signal.<code>.detail[.<variant>] templates and parameters),
   *  said in order and joined by the language's separator. An English page shows the server's
   *  sentence; a detail with no template the page knows (an older registry's) says the code's
   *  meaning and keeps the English under a collapsed "details (English)". */
  function signalDetail(signal) {
    var message = signal.message;
    if (known(message, /^verdict\.[a-z-]+\.detail$/)) {
      return el("span", { class: "signal-detail" }, t(message.key, paramValues(message.params)));
    }
    if (LANG.indexOf("en") === 0) return el("span", { class: "signal-detail" }, String(signal.detail));
    var parts = Array.isArray(signal.parts) ? signal.parts : [];
    var own = new RegExp("^signal\\." + String(signal.code).replace(/[^a-z-]/g, "") + "\\.detail(\\.[a-z-]+)?$");
    if (parts.length && parts.every(function (part) { return known(part, own); })) {
      return el("span", { class: "signal-detail" }, parts.map(function (part) {
        return t(part.key, paramValues(part.params, true));
      }).join(t("js.signal.joiner")));
    }
    return el("span", { class: "signal-detail" }, signalText(signal.code, "meaning"), " ",
      el("details", { class: "signal-english" },
        el("summary", {}, t("js.signal.details_english")),
        el("span", { lang: "en" }, String(signal.detail))));
  }

  global.TM = {
    signalText: signalText, signalNode: signalNode, signalDetail: signalDetail,
    el: el, append: append, clear: clear, api: api, problemText: problemText, t: t, count: count, lang: LANG,
    credential: credential, setCredential: setCredential, describeCredential: describeCredential,
    time: time, short: short, plural: plural, amount: amount, verdictInfo: verdictInfo,
    FINGERPRINT: FINGERPRINT, ADDRESS: ADDRESS,
  };
})(window);
