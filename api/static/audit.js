/*
 * audit.js: the audit view. A credential kept in this tab's sessionStorage and sent only as
 * an Authorization header; a good's trace (GET /v1/goods/{type}/{fp}/trace) drawn as a
 * left-to-right provenance graph; its signals, filtered; a creator's dashboard (goods,
 * anchors, royalties over time) from /v1/creators/me/*.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function () {
  "use strict";
  var TM = window.TM, el = TM.el;

  // -- the credential -----------------------------------------------------------------------

  var credentialInput = document.getElementById("credential");
  var credentialStatus = document.getElementById("credential-status");
  var forgetButton = document.getElementById("forget-credential");

  function showCredential() {
    var value = TM.credential();
    credentialStatus.textContent = value
      ? TM.t("js.audit.using", { credential: TM.describeCredential(value) })
      : TM.t("js.audit.no_credential");
    forgetButton.hidden = !value;
  }

  document.getElementById("form-credential").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = credentialInput.value.trim();
    if (!/^tm_(live|siwe)_[A-Za-z0-9_.\-]+$/.test(value)) {
      credentialInput.setAttribute("aria-invalid", "true");
      credentialStatus.textContent = TM.t("js.audit.not_a_credential");
      return;
    }
    credentialInput.removeAttribute("aria-invalid");
    TM.setCredential(value);
    credentialInput.value = "";
    showCredential();
  });

  forgetButton.addEventListener("click", function () {
    TM.setCredential(null);
    showCredential();
    credentialInput.focus();
  });

  // -- Sign-In with Ethereum (EIP-4361), when the browser has a wallet ----------------------

  var siweButton = document.getElementById("siwe-button");
  var siweHelp = document.getElementById("siwe-help");

  function utf8Hex(text) {
    var bytes = new TextEncoder().encode(text), out = "0x";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  /** The message laid out exactly as the registry parses it (verifier.client.siwe_message). */
  function siweMessage(offer, address) {
    var issued = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    return [
      offer.domain + " wants you to sign in with your Ethereum account:", address, "",
      "Sign in to tracemark.", "",
      "URI: " + offer.uri, "Version: 1", "Chain ID: " + offer.chain_id,
      "Nonce: " + offer.nonce, "Issued At: " + issued,
    ].join("\n");
  }

  async function signInWithEthereum() {
    var wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      credentialStatus.textContent = TM.t("js.audit.no_wallet");
      return;
    }
    try {
      var accounts = await wallet.request({ method: "eth_requestAccounts" });
      var address = window.TracemarkKeccak.checksumAddress(accounts[0]);
      var offer = await TM.api("/v1/auth/siwe/nonce", { method: "POST" });
      if (!offer.ok) { credentialStatus.textContent = TM.problemText(offer); return; }
      var message = siweMessage(offer.data, address);
      var signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(message), accounts[0]] });
      var token = await TM.api("/v1/auth/siwe", { method: "POST", json: { message: message, signature: signature } });
      if (!token.ok) { credentialStatus.textContent = TM.problemText(token); return; }
      TM.setCredential(token.data.token);
      showCredential();
    } catch (e) {
      credentialStatus.textContent = TM.t("js.audit.siwe_refused", { message: e && e.message ? e.message : e });
    }
  }

  if (!window.ethereum) {
    siweButton.hidden = true;
    siweHelp.textContent = TM.t("js.audit.no_wallet_help");
  }
  siweButton.addEventListener("click", signInWithEthereum);
  showCredential();

  // -- signals ------------------------------------------------------------------------------

  var signals = [];
  var signalCode = document.getElementById("signal-code");
  var signalSearch = document.getElementById("signal-search");
  var signalsOut = document.getElementById("signals-out");

  function evidenceText(signal) {
    var evidence = signal.evidence !== undefined ? signal.evidence : signal.detail;
    if (evidence === undefined || evidence === null) return "";
    if (Array.isArray(evidence)) {
      return evidence.map(function (e) { return e.ref + " (" + e.detail + ")"; }).join("; ");
    }
    return typeof evidence === "string" ? evidence : JSON.stringify(evidence);
  }

  function setSignals(list, source) {
    signals = (list || []).map(function (sig) {
      return { code: sig.code || "signal", detail: sig.detail || "", evidence: evidenceText(sig),
        about: sig.subject ? sig.subject.kind + " " + sig.subject.id : "",
        platforms: (sig.platforms || []).join(", "),
        goods: sig.goods_total, severity: sig.weight, source: source };
    });
    var codes = Array.from(new Set(signals.map(function (x) { return x.code; }))).sort();
    var chosen = signalCode.value;
    TM.clear(signalCode);
    signalCode.appendChild(el("option", { value: "" }, TM.t("js.audit.every_signal", { n: signals.length })));
    codes.forEach(function (code) {
      var count = signals.filter(function (x) { return x.code === code; }).length;
      signalCode.appendChild(el("option", { value: code, selected: code === chosen }, TM.signalText(code, "title") + " \u00B7 " + code + " (" + count + ")"));
    });
    renderSignals();
  }

  function renderSignals() {
    var code = signalCode.value, needle = signalSearch.value.trim().toLowerCase();
    var shown = signals.filter(function (x) {
      if (code && x.code !== code) return false;
      // Found by its code or by its title in the page's language.
      var text = [x.code, TM.signalText(x.code, "title"), x.detail, x.evidence, x.about, x.platforms].join(" ").toLowerCase();
      if (needle && text.indexOf(needle) < 0) return false;
      return true;
    });
    TM.clear(signalsOut);
    if (!signals.length) { signalsOut.appendChild(el("p", { class: "muted" }, TM.t("js.audit.no_signals"))); return; }
    signalsOut.appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.signals_shown", { shown: shown.length, total: signals.length })));
    if (!shown.length) return;
    signalsOut.appendChild(el("div", { class: "table-scroll", tabindex: "0", "aria-label": TM.t("js.audit.signals_table") },
      el("table", { class: "data", id: "signals-table" },
        el("thead", {}, el("tr", {}, ["js.audit.col.signal", "js.audit.col.about", "js.audit.col.why", "js.audit.col.platforms", "js.audit.col.goods", "js.audit.col.weight"].map(function (key) { return TM.t(key); }).map(function (h) {
          return el("th", { scope: "col" }, h);
        }))),
        el("tbody", {}, shown.map(function (x) {
          return el("tr", {}, el("td", {}, TM.signalNode(x.code)),
            el("td", { class: "mono" }, x.about || "—"),
            el("td", {}, x.evidence ? [x.detail, " ", el("span", { class: "mono" }, x.evidence)] : x.detail),
            el("td", {}, x.platforms || "—"),
            el("td", {}, x.goods === undefined || x.goods === null ? "—" : String(x.goods)),
            el("td", {}, x.severity === undefined || x.severity === null ? "—" : String(x.severity)));
        })))));
  }

  signalCode.addEventListener("change", renderSignals);
  signalSearch.addEventListener("input", renderSignals);
  document.getElementById("signal-filters").addEventListener("submit", function (e) { e.preventDefault(); renderSignals(); });

  // -- the trace ----------------------------------------------------------------------------

  var traceOut = document.getElementById("trace-out");
  var traceType = document.getElementById("trace-type");
  var traceFp = document.getElementById("trace-fp");

  function scalar(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function eventTime(ev) {
    var t = ev.timestamp !== undefined ? ev.timestamp : ev.at !== undefined ? ev.at : ev.time;
    return typeof t === "number" ? TM.time(t) : scalar(t);
  }

  // Fields of an event that its summary already says, or that are too long for a table.
  var EVENT_SKIP = { kind: 1, at: 1, timestamp: 1, time: 1, type: 1, summary: 1, signature: 1,
    receipt_signature: 1, royalty_policy: 1, seller: 1, buyer: 1, royalties: 1 };

  function eventsTable(events) {
    return el("div", { class: "table-scroll", tabindex: "0", "aria-label": TM.t("js.audit.events_table") },
      el("table", { class: "data", id: "trace-events" },
        el("caption", {}, TM.t("js.audit.history_caption")),
        el("thead", {}, el("tr", {}, ["#", TM.t("js.audit.col.event"), TM.t("js.audit.col.when"), TM.t("js.audit.col.what")].map(function (h) { return el("th", { scope: "col" }, h); }))),
        el("tbody", {}, events.map(function (ev, i) {
          var details = Object.keys(ev).filter(function (k) {
            return !EVENT_SKIP[k] && ev[k] !== null && ev[k] !== undefined && ev[k] !== "";
          }).map(function (k) {
            return el("span", { class: "kv" }, el("span", { class: "k" }, k + ":"), " ", el("span", { class: "mono" }, scalar(ev[k])));
          });
          return el("tr", { "data-kind": scalar(ev.kind || ev.type) }, el("td", {}, String(i + 1)),
            el("td", {}, el("strong", {}, scalar(ev.kind || ev.type))),
            el("td", {}, eventTime(ev)),
            el("td", { class: "details" }, ev.summary ? el("p", { class: "event-summary" }, ev.summary) : null, details));
        }))));
  }

  function drawGraph(graph, title) {
    var svg = window.TMsvg.graph(graph.nodes || [], graph.edges || [], { title: title });
    return el("figure", { class: "graph-figure" },
      el("div", { class: "graph-scroll", tabindex: "0", "aria-label": TM.t("js.audit.graph_label") }, svg),
      el("figcaption", {}, TM.t("js.audit.graph_caption")));
  }

  /** A graph from a good's log entries, for a registry that has no trace route yet. */
  function graphFromHistory(entries, anchor) {
    var nodes = [], edges = [];
    entries.forEach(function (e, i) {
      var label = e.kind === "REGISTER" || e.kind === "register" ? "by " + TM.short(e.actor, 8) : "log #" + (e.leaf_index === null ? "queued" : e.leaf_index);
      nodes.push({ id: "e" + e.entry_id, kind: String(e.kind).toLowerCase(), label: label });
      if (i > 0) edges.push({ from: "e" + entries[i - 1].entry_id, to: "e" + e.entry_id, label: "then" });
    });
    if (anchor && entries.length) {
      nodes.push({ id: "anchor", kind: "anchor", label: "tx " + TM.short(anchor.tx_hash || "", 8) });
      edges.push({ from: "e" + entries[0].entry_id, to: "anchor", label: "anchored (size " + anchor.tree_size + ")" });
    }
    return { nodes: nodes, edges: edges };
  }

  // The standing signals come from GET /v1/signals, for an auditor's API key (audit scope):
  // every one, or those implicating the traced good. The risk worker writes them behind the
  // requests, so they describe the market as it was a few seconds ago.
  var signalsLoad = document.getElementById("signals-load");
  var signalsStatus = document.getElementById("signals-verdict");
  var signalsFor = null;
  var MAX_SIGNAL_PAGES = 5;

  function offerSignals(goodType, fp) {
    signalsFor = { good: goodType + ":" + fp, label: goodType + " " + TM.short(fp, 10) };
    signalsLoad.disabled = false;
    signalsLoad.textContent = TM.t("js.audit.load_signals_of", { good: signalsFor.label });
  }

  async function loadSignals(target) {
    TM.clear(signalsOut).appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.loading_signals")));
    signalsStatus.hidden = true;
    var items = [], cursor = null, built = 0;
    for (var page = 0; page < MAX_SIGNAL_PAGES; page++) {
      var query = "?limit=200" + (target ? "&good=" + encodeURIComponent(target.good) : "") +
        (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      var res = await TM.api("/v1/signals" + query, { auth: true });
      if (!res.ok) {
        var hint = res.status === 401 || res.status === 403 ? " " + TM.t("js.audit.signals_need_key") : "";
        TM.clear(signalsOut).appendChild(el("p", { class: "status problem" }, TM.problemText(res) + hint));
        return;
      }
      items = items.concat(res.data.items);
      built = res.data.built_at;
      cursor = res.data.next_cursor;
      if (!cursor) break;
    }
    setSignals(items, target ? "good" : "all");
    signalsStatus.textContent = (target ? TM.t("js.audit.signals_of", { good: target.label }) : TM.t("js.audit.every_standing")) +
      (built ? TM.t("js.audit.as_seen_at", { time: TM.time(built) }) : TM.t("js.audit.none_computed")) +
      (cursor ? TM.t("js.audit.first_n", { n: items.length }) : TM.t("js.audit.end"));
    signalsStatus.hidden = false;
  }

  signalsLoad.addEventListener("click", function () { if (signalsFor) loadSignals(signalsFor); });
  document.getElementById("signals-all").addEventListener("click", function () { loadSignals(null); });

  function traceSummary(data) {
    var rows = [];
    function add(term, value, mono) {
      if (value === null || value === undefined || value === "") return;
      rows.push(el("dt", {}, term), el("dd", mono ? { class: "mono" } : {}, value));
    }
    add(TM.t("js.audit.row.status"), data.status);
    add(TM.t("js.check.row.creator"), data.creator, true);
    add(TM.t("js.check.row.product"), data.product);
    add(TM.t("js.check.row.use"), data.use);
    add(TM.t("js.check.row.holder"), data.holder && data.holder.label);
    var v = data.verifications;
    if (v) add(TM.t("js.check.row.checks"), v.times ? TM.t("js.audit.verified", { times: TM.count(v.times, "js.count.time"), platforms: TM.count(v.platforms, "js.count.platform"), first: TM.time(v.first_at) }) : TM.t("js.audit.never_verified"));
    var c = data.counts;
    if (c) add(TM.t("js.audit.row.history"), TM.t("js.audit.history", { entries: TM.count(c.entries, "js.count.entry"), entries_shown: c.entries_shown,
      transfers: TM.count(c.transfers, "js.count.transfer"), conflicts: TM.count(c.conflicts, "js.count.conflict"),
      verifications: TM.count(c.verifications, "js.count.verification"), verifications_shown: c.verifications_shown }) +
      (c.refused ? TM.t("js.list.sep") + TM.count(c.refused, "js.count.refused") : ""));
    if (!rows.length) return null;
    return el("dl", { class: "facts", id: "trace-summary" }, rows);
  }

  function renderTrace(data, goodType, fp) {
    var nodes = [el("h3", {}, TM.t("js.audit.trace_of", { good: goodType + " " + TM.short(fp, 12) })), traceSummary(data)];
    if (data.graph) nodes.push(drawGraph(data.graph, TM.t("js.audit.graph_of", { good: goodType + " " + fp })));
    var events = data.events || data.timeline || data.history || [];
    if (events.length) nodes.push(eventsTable(events));
    return nodes;
  }

  async function showMermaid(path) {
    var res = await TM.api(path + "?format=mermaid", { auth: true, text: true });
    if (!res.ok || typeof res.data !== "string") return;
    traceOut.appendChild(el("details", {}, el("summary", {}, TM.t("js.audit.mermaid")),
      el("pre", { class: "mono", id: "trace-mermaid" }, res.data)));
  }

  async function trace(goodType, fp) {
    TM.clear(traceOut).appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.tracing")));
    var base = "/v1/goods/" + goodType + "/" + fp;
    var res = await TM.api(base + "/trace", { auth: true });
    if (res.ok) {
      TM.clear(traceOut);
      TM.append(traceOut, renderTrace(res.data, goodType, fp));
      await showMermaid(base + "/trace");
      offerSignals(goodType, fp);
      return;
    }
    if (res.status === 401 || res.status === 403) {
      TM.clear(traceOut).appendChild(el("p", { class: "status problem" }, TM.problemText(res) +
        " " + TM.t("js.audit.trace_needs")));
      return;
    }
    if (res.status !== 404) {
      TM.clear(traceOut).appendChild(el("p", { class: "status problem" }, TM.problemText(res)));
      return;
    }
    // 404: no such good, or a registry without the trace route: its history says which.
    var history = await TM.api(base + "/history?limit=200", { auth: true });
    if (!history.ok) {
      TM.clear(traceOut).appendChild(el("p", { class: "status problem" },
        history.status === 404 ? TM.t("js.audit.no_entry") : TM.problemText(history)));
      return;
    }
    var bundle = await TM.api(base + "/proof");
    var anchor = bundle.ok ? bundle.data.anchor : null;
    var entries = history.data.items || [];
    TM.clear(traceOut);
    TM.append(traceOut, renderTrace({
      graph: graphFromHistory(entries, anchor),
      events: entries.map(function (e) {
        return { kind: e.kind, timestamp: e.timestamp, leaf_index: e.leaf_index, actor: e.actor, payload_hash: e.payload_hash };
      }),
    }, goodType, fp));
    traceOut.appendChild(el("p", { class: "help" }, TM.t("js.audit.no_trace_route")));
    offerSignals(goodType, fp);
  }

  document.getElementById("form-trace").addEventListener("submit", function (event) {
    event.preventDefault();
    var fp = traceFp.value.trim().toLowerCase();
    if (!TM.FINGERPRINT.test(fp)) {
      traceFp.setAttribute("aria-invalid", "true");
      TM.clear(traceOut).appendChild(el("p", { class: "status problem" }, TM.t("js.check.bad_fp")));
      return;
    }
    traceFp.removeAttribute("aria-invalid");
    trace(traceType.value, fp);
  });

  // -- the creator's dashboard --------------------------------------------------------------

  var dashboardOut = document.getElementById("dashboard-out");
  var MAX_GOOD_PAGES = 5;

  async function allGoods() {
    var items = [], cursor = null, pages = 0, more = false;
    do {
      var res = await TM.api("/v1/creators/me/goods?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), { auth: true });
      if (!res.ok) return { error: res };
      items = items.concat(res.data.items);
      cursor = res.data.next_cursor;
      pages++;
    } while (cursor && pages < MAX_GOOD_PAGES);
    more = Boolean(cursor);
    return { items: items, more: more };
  }

  function royaltyChart(statement) {
    var currencies = Array.from(new Set(statement.lines.map(function (l) { return l.currency; }))).sort();
    if (!currencies.length) return [el("p", { class: "muted", id: "no-royalties" }, TM.t("js.audit.no_royalties"))];
    var out = [];
    currencies.forEach(function (currency) {
      var perPeriod = {};
      statement.lines.filter(function (l) { return l.currency === currency; }).forEach(function (l) {
        perPeriod[l.period] = (perPeriod[l.period] || 0n) + BigInt(l.amount);
      });
      var periods = Object.keys(perPeriod).sort();
      var data = periods.map(function (p) {
        return { label: p, value: Number(perPeriod[p]), text: TM.amount(perPeriod[p].toString()) };
      });
      out.push(el("figure", { class: "chart-figure" },
        el("div", { class: "graph-scroll", tabindex: "0", "aria-label": TM.t("js.audit.chart_label", { currency: currency }) },
          window.TMsvg.bars(data, { title: TM.t("js.audit.chart_title", { period: TM.t("js.audit.period." + statement.period), currency: currency }) })),
        el("figcaption", {}, TM.t("js.audit.chart_caption", { period: TM.t("js.audit.period." + statement.period), currency: currency }))));
    });
    out.push(el("div", { class: "table-scroll", tabindex: "0", "aria-label": TM.t("js.audit.totals_label") },
      el("table", { class: "data", id: "royalty-totals" },
        el("caption", {}, TM.t("js.audit.totals_caption")),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, TM.t("js.audit.col.recipient")), el("th", { scope: "col" }, TM.t("js.audit.col.currency")), el("th", { scope: "col" }, TM.t("js.audit.col.amount")))),
        el("tbody", {}, statement.totals.map(function (t) {
          return el("tr", {}, el("td", { class: "mono" }, t.recipient), el("td", {}, t.currency), el("td", { class: "num" }, TM.amount(t.amount)));
        })))));
    return out;
  }

  // Owed (due, unpaid), paid and overdue per period, platform and recipient (issue 17:
  // royalties paid, not only owed). Amounts are decimal text in minor units. The creator's
  // dashboard and the agents' section share it: `id` names the table and its empty note.
  function balancesTable(balances, id) {
    id = id || "payout-balances";
    var emptyId = id === "payout-balances" ? "no-balances" : id + "-none";
    if (!balances.lines.length) return el("p", { class: "muted", id: emptyId }, TM.t("js.audit.nothing_due"));
    var overdueDays = Math.round(balances.overdue_after / 86400);
    return el("div", { class: "table-scroll", tabindex: "0", "aria-label": TM.t("js.audit.paid_owed") },
      el("table", { class: "data", id: id },
        el("caption", {}, TM.t("js.audit.due_caption", { days: overdueDays })),
        el("thead", {}, el("tr", {}, ["js.audit.col.period", "js.audit.col.platform", "js.audit.col.recipient", "js.audit.col.currency", "js.audit.col.owed", "js.audit.col.paid", "js.audit.col.overdue"].map(function (key) { return TM.t(key); }).map(function (h) {
          return el("th", { scope: "col" }, h);
        }))),
        el("tbody", {}, balances.lines.map(function (b) {
          return el("tr", { class: b.overdue !== "0" ? "overdue" : null },
            el("td", {}, b.period), el("td", {}, b.platform), el("td", { class: "mono", title: b.payee }, TM.short(b.payee, 10)),
            el("td", {}, b.currency), el("td", { class: "num" }, TM.amount(b.owed)),
            el("td", { class: "num" }, TM.amount(b.paid)), el("td", { class: "num" }, TM.amount(b.overdue)));
        }))));
  }

  async function dashboard(period) {
    var token = TM.credential();
    if (!token || token.indexOf("tm_siwe_") !== 0) {
      TM.clear(dashboardOut).appendChild(el("p", { class: "status problem" },
        TM.t("js.audit.dash_needs")));
      return;
    }
    TM.clear(dashboardOut).appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.loading_dash")));
    var goods = await allGoods();
    if (goods.error) { TM.clear(dashboardOut).appendChild(el("p", { class: "status problem" }, TM.problemText(goods.error))); return; }
    var statement = await TM.api("/v1/creators/me/royalties?period=" + period, { auth: true });
    if (!statement.ok) { TM.clear(dashboardOut).appendChild(el("p", { class: "status problem" }, TM.problemText(statement))); return; }
    var balances = await TM.api("/v1/creators/me/balances?period=" + period, { auth: true });
    var items = goods.items;
    // Anchors: the bundle of the oldest good names the largest anchor that covers it; every
    // good logged below that anchor's size is anchored with it (public; no verification is
    // recorded, unlike a verify call).
    var anchor = null;
    if (items.length) {
      var bundle = await TM.api("/v1/goods/" + items[0].good_type + "/" + items[0].fingerprint + "/proof");
      if (bundle.ok) anchor = bundle.data.anchor;
    }
    var anchored = items.filter(function (g) { return anchor && g.leaf_index !== null && g.leaf_index < anchor.tree_size; }).length;
    var byProduct = {};
    items.forEach(function (g) {
      var key = g.good_type + (g.product ? " · " + g.product : "");
      byProduct[key] = (byProduct[key] || 0) + 1;
    });
    var nodes = [
      el("dl", { class: "facts", id: "dashboard-summary" },
        el("dt", {}, TM.t("js.audit.col.goods")), el("dd", {}, String(items.length) + (goods.more ? TM.t("js.audit.more", { n: items.length }) : "")),
        el("dt", {}, TM.t("js.audit.anchored")), el("dd", { id: "dashboard-anchored" }, TM.t("js.audit.anchored_of", { n: anchored, total: items.length }) +
          (anchor ? TM.t("js.audit.anchor_detail", { size: anchor.tree_size, state: anchor.state, block: anchor.block_number }) : TM.t("js.audit.no_anchor"))),
        anchor && anchor.tx_hash ? [el("dt", {}, TM.t("js.audit.latest_anchor")), el("dd", { class: "mono" }, anchor.tx_hash)] : null,
        el("dt", {}, TM.t("js.audit.pending")), el("dd", {}, String(items.length - anchored))),
      el("h3", {}, TM.t("js.audit.by_product")),
      el("div", { class: "table-scroll", tabindex: "0", "aria-label": TM.t("js.audit.by_product") },
        el("table", { class: "data" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, TM.t("js.audit.col.kind_product")), el("th", { scope: "col" }, TM.t("js.audit.col.goods")))),
          el("tbody", {}, Object.keys(byProduct).sort().map(function (k) {
            return el("tr", {}, el("td", {}, k), el("td", { class: "num" }, String(byProduct[k])));
          })))),
      el("h3", {}, TM.t("js.audit.royalties_over_time")),
      royaltyChart(statement.data),
      el("h3", {}, TM.t("js.audit.paid_owed")),
      balances.ok ? balancesTable(balances.data) : el("p", { class: "status problem" }, TM.problemText(balances)),
      el("h3", {}, TM.t("js.audit.newest")),
      el("ul", { class: "goods" }, items.slice(-10).reverse().map(function (g) {
        return el("li", {}, g.good_type + (g.product ? " · " + g.product : "") + " ",
          el("span", { class: "mono" }, TM.short(g.fingerprint, 12)), " ",
          el("a", { href: "/?type=" + g.good_type + "&fp=" + g.fingerprint }, TM.t("js.audit.check_link")), " · ",
          el("a", { href: "/label/" + g.good_type + "/" + g.fingerprint }, TM.t("js.audit.label_link")));
      })),
    ];
    TM.clear(dashboardOut);
    TM.append(dashboardOut, nodes);
  }

  document.getElementById("form-dashboard").addEventListener("submit", function (event) {
    event.preventDefault();
    dashboard(document.getElementById("royalty-period").value);
  });

  // -- a platform's agents: their rebates owed, paid and overdue (issue 17 item 7) -----------
  var agentsOut = document.getElementById("agents-out");
  var agentsCsvUrl = null;

  // The CSV is fetched with the credential in its header (never in a URL) and offered as a
  // blob link, so the download needs no second way to authenticate.
  async function agentsCsvLink(period) {
    var res = await TM.api("/v1/payouts/agent-balances?format=csv&period=" + period, { auth: true, text: true });
    if (!res.ok) return el("p", { class: "status problem" }, TM.problemText(res));
    if (agentsCsvUrl) URL.revokeObjectURL(agentsCsvUrl);
    agentsCsvUrl = URL.createObjectURL(new Blob([res.data], { type: "text/csv" }));
    return el("p", {}, el("a", { id: "agents-csv", href: agentsCsvUrl, download: "agent-balances-" + period + ".csv" }, TM.t("js.audit.agents_csv")));
  }

  async function agentBalances(period) {
    var token = TM.credential();
    if (!token || token.indexOf("tm_siwe_") === 0) {
      TM.clear(agentsOut).appendChild(el("p", { class: "status problem" }, TM.t("js.audit.agents_needs")));
      return;
    }
    TM.clear(agentsOut).appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.loading_agents")));
    var balances = await TM.api("/v1/payouts/agent-balances?period=" + period, { auth: true });
    if (!balances.ok) { TM.clear(agentsOut).appendChild(el("p", { class: "status problem", id: "agents-problem" }, TM.problemText(balances))); return; }
    var link = await agentsCsvLink(period);
    TM.clear(agentsOut);
    TM.append(agentsOut, [balancesTable(balances.data, "agent-balances"), link]);
  }

  document.getElementById("form-agents").addEventListener("submit", function (event) {
    event.preventDefault();
    agentBalances(document.getElementById("agent-period").value);
  });

  // -- every platform's credit (issue 18 item 1): public, the scores as last refreshed ------
  var creditOut = document.getElementById("credit-out");
  var CREDIT_INPUTS = ["sales_completed", "fake_deliveries_refused", "disputes_lost",
    "bad_sale_attempts", "dead_goods_offered", "overdue_royalties", "days_active"];

  function creditTable(items) {
    var head = [TM.t("js.audit.credit.col.platform"), TM.t("js.audit.credit.col.score")]
      .concat(CREDIT_INPUTS.map(function (name) { return TM.t("js.audit.credit.input." + name); }))
      .concat([TM.t("js.audit.credit.col.as_of"), TM.t("js.audit.credit.col.inputs")]);
    return el("table", { class: "data", id: "credit-table" },
      el("thead", {}, el("tr", {}, head.map(function (h) { return el("th", { scope: "col" }, h); }))),
      el("tbody", {}, items.map(function (c) {
        var score = c.rating === "rated" ? String(c.score) : TM.t("js.audit.credit.unrated");
        return el("tr", { "data-platform": c.platform },
          [el("td", {}, c.platform), el("td", { class: "credit-score" }, score)]
            .concat(CREDIT_INPUTS.map(function (name) { return el("td", { class: "num" }, String(c.inputs[name])); }))
            .concat([el("td", {}, TM.time(c.as_of)),
              el("td", {}, el("a", { href: "/v1/credit/platforms/" + encodeURIComponent(c.platform) }, TM.t("js.audit.credit.live")))]));
      })));
  }

  async function platformCredit() {
    TM.clear(creditOut).appendChild(el("p", { class: "status", role: "status" }, TM.t("js.audit.credit.loading")));
    var res = await TM.api("/v1/credit/platforms");
    TM.clear(creditOut);
    if (!res.ok) { creditOut.appendChild(el("p", { class: "status problem" }, TM.problemText(res))); return; }
    if (!res.data.items.length) { creditOut.appendChild(el("p", { class: "muted" }, TM.t("js.audit.credit.none"))); return; }
    TM.append(creditOut, [
      el("p", { class: "help", id: "credit-formula" }, TM.t("js.audit.credit.formula", {
        formula: res.data.items[0].formula, minutes: Math.round(res.data.refreshed_every / 60) })),
      creditTable(res.data.items)]);
  }

  document.getElementById("credit-load").addEventListener("click", platformCredit);

  // A link with ?type=&fp= traces at once when a credential is already in this tab.
  if (TM.FINGERPRINT.test(traceFp.value.trim()) && TM.credential()) {
    trace(traceType.value, traceFp.value.trim().toLowerCase());
  }
})();
