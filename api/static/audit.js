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
    signalCode.appendChild(el("option", { value: "" }, "every signal (" + signals.length + ")"));
    codes.forEach(function (code) {
      var count = signals.filter(function (x) { return x.code === code; }).length;
      signalCode.appendChild(el("option", { value: code, selected: code === chosen }, code + " (" + count + ")"));
    });
    renderSignals();
  }

  function renderSignals() {
    var code = signalCode.value, needle = signalSearch.value.trim().toLowerCase();
    var shown = signals.filter(function (x) {
      if (code && x.code !== code) return false;
      var text = [x.code, x.detail, x.evidence, x.about, x.platforms].join(" ").toLowerCase();
      if (needle && text.indexOf(needle) < 0) return false;
      return true;
    });
    TM.clear(signalsOut);
    if (!signals.length) { signalsOut.appendChild(el("p", { class: "muted" }, "No standing signals.")); return; }
    signalsOut.appendChild(el("p", { class: "status", role: "status" }, shown.length + " of " + signals.length + " signals shown."));
    if (!shown.length) return;
    signalsOut.appendChild(el("div", { class: "table-scroll", tabindex: "0", "aria-label": "Signals table" },
      el("table", { class: "data", id: "signals-table" },
        el("thead", {}, el("tr", {}, ["Signal", "About", "Why (evidence)", "Platforms", "Goods", "Weight"].map(function (h) {
          return el("th", { scope: "col" }, h);
        }))),
        el("tbody", {}, shown.map(function (x) {
          return el("tr", {}, el("td", {}, el("strong", {}, x.code)),
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
    return el("div", { class: "table-scroll", tabindex: "0", "aria-label": "Events table" },
      el("table", { class: "data", id: "trace-events" },
        el("caption", {}, "The good's history, in order"),
        el("thead", {}, el("tr", {}, ["#", "Event", "When", "What happened"].map(function (h) { return el("th", { scope: "col" }, h); }))),
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
      el("div", { class: "graph-scroll", tabindex: "0", "aria-label": "Provenance graph (scrolls sideways)" }, svg),
      el("figcaption", {}, "Provenance graph, left to right in the order things happened."));
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
    signalsLoad.textContent = "Load the signals of " + signalsFor.label;
  }

  async function loadSignals(target) {
    TM.clear(signalsOut).appendChild(el("p", { class: "status", role: "status" }, "Loading the signals…"));
    signalsStatus.hidden = true;
    var items = [], cursor = null, built = 0;
    for (var page = 0; page < MAX_SIGNAL_PAGES; page++) {
      var query = "?limit=200" + (target ? "&good=" + encodeURIComponent(target.good) : "") +
        (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      var res = await TM.api("/v1/signals" + query, { auth: true });
      if (!res.ok) {
        var hint = res.status === 401 || res.status === 403 ? " The signals need an auditor's API key (audit scope)." : "";
        TM.clear(signalsOut).appendChild(el("p", { class: "status problem" }, TM.problemText(res) + hint));
        return;
      }
      items = items.concat(res.data.items);
      built = res.data.built_at;
      cursor = res.data.next_cursor;
      if (!cursor) break;
    }
    setSignals(items, target ? "good" : "all");
    signalsStatus.textContent = (target ? "Signals implicating " + target.label : "Every standing signal") +
      (built ? ", as the risk worker saw the market at " + TM.time(built) : ", none computed yet") +
      (cursor ? " (the first " + items.length + ")." : ".");
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
    add("Status", data.status);
    add("Creator", data.creator, true);
    add("Product", data.product);
    add("Use", data.use);
    add("Holder", data.holder && data.holder.label);
    var v = data.verifications;
    if (v) add("Checks", v.times ? "verified " + TM.plural(v.times, "time") + " by " + TM.plural(v.platforms, "platform") + ", first at " + TM.time(v.first_at) : "never verified");
    var c = data.counts;
    if (c) add("History", TM.plural(c.entries, "log entry", "log entries") + " (" + c.entries_shown + " shown), " + TM.plural(c.transfers, "transfer") + ", " + TM.plural(c.conflicts, "conflicting claim") + ", " + TM.plural(c.verifications, "verification") + " (" + c.verifications_shown + " shown)" +
      (c.refused ? ", " + TM.plural(c.refused, "refused transfer") : ""));
    if (!rows.length) return null;
    return el("dl", { class: "facts", id: "trace-summary" }, rows);
  }

  function renderTrace(data, goodType, fp) {
    var nodes = [el("h3", {}, "Trace of " + goodType + " " + TM.short(fp, 12)), traceSummary(data)];
    if (data.graph) nodes.push(drawGraph(data.graph, "Provenance graph of " + goodType + " " + fp));
    var events = data.events || data.timeline || data.history || [];
    if (events.length) nodes.push(eventsTable(events));
    return nodes;
  }

  async function showMermaid(path) {
    var res = await TM.api(path + "?format=mermaid", { auth: true, text: true });
    if (!res.ok || typeof res.data !== "string") return;
    traceOut.appendChild(el("details", {}, el("summary", {}, "The graph as Mermaid text"),
      el("pre", { class: "mono", id: "trace-mermaid" }, res.data)));
  }

  async function trace(goodType, fp) {
    TM.clear(traceOut).appendChild(el("p", { class: "status", role: "status" }, "Tracing…"));
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
        " A trace needs an auditor's API key (audit scope), or the good's creator signed in."));
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
        history.status === 404 ? "The registry has no entry for this good." : TM.problemText(history)));
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
    traceOut.appendChild(el("p", { class: "help" }, "This registry has no trace route: shown from the good's log entries."));
    offerSignals(goodType, fp);
  }

  document.getElementById("form-trace").addEventListener("submit", function (event) {
    event.preventDefault();
    var fp = traceFp.value.trim().toLowerCase();
    if (!TM.FINGERPRINT.test(fp)) {
      traceFp.setAttribute("aria-invalid", "true");
      TM.clear(traceOut).appendChild(el("p", { class: "status problem" }, "A fingerprint is 0x followed by 64 hexadecimal digits."));
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
    if (!currencies.length) return [el("p", { class: "muted", id: "no-royalties" }, "No royalties yet: they are owed on resales of your goods.")];
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
        el("div", { class: "graph-scroll", tabindex: "0", "aria-label": "Royalties chart, " + currency },
          window.TMsvg.bars(data, { title: "Royalties owed per " + statement.period + ", " + currency + " (minor units)" })),
        el("figcaption", {}, "Royalties owed per " + statement.period + " in " + currency + " (minor units).")));
    });
    out.push(el("div", { class: "table-scroll", tabindex: "0", "aria-label": "Royalty totals" },
      el("table", { class: "data", id: "royalty-totals" },
        el("caption", {}, "Totals per recipient"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Recipient"), el("th", { scope: "col" }, "Currency"), el("th", { scope: "col" }, "Amount (minor units)"))),
        el("tbody", {}, statement.totals.map(function (t) {
          return el("tr", {}, el("td", { class: "mono" }, t.recipient), el("td", {}, t.currency), el("td", { class: "num" }, TM.amount(t.amount)));
        })))));
    return out;
  }

  // Owed (due, unpaid), paid and overdue per period, platform and recipient (issue 17:
  // royalties paid, not only owed). Amounts are decimal text in minor units.
  function balancesTable(balances) {
    if (!balances.lines.length) return el("p", { class: "muted", id: "no-balances" }, "Nothing due yet: lines become due when their sale stands.");
    var overdueDays = Math.round(balances.overdue_after / 86400);
    return el("div", { class: "table-scroll", tabindex: "0", "aria-label": "Paid and owed" },
      el("table", { class: "data", id: "payout-balances" },
        el("caption", {}, "Due royalties: owed, paid, and overdue (owed for more than " + overdueDays + " days)"),
        el("thead", {}, el("tr", {}, ["Period", "Platform", "Recipient", "Currency", "Owed", "Paid", "Overdue"].map(function (h) {
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
        "The dashboard needs a creator's session: sign in with Ethereum, or paste a tm_siwe_ token above."));
      return;
    }
    TM.clear(dashboardOut).appendChild(el("p", { class: "status", role: "status" }, "Loading your goods and royalties…"));
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
        el("dt", {}, "Goods"), el("dd", {}, String(items.length) + (goods.more ? "+ (the first " + items.length + " shown)" : "")),
        el("dt", {}, "Anchored"), el("dd", { id: "dashboard-anchored" }, anchored + " of " + items.length +
          (anchor ? " (up to log size " + anchor.tree_size + ", " + anchor.state + ", block " + anchor.block_number + ")" : " (no anchor yet)")),
        anchor && anchor.tx_hash ? [el("dt", {}, "Latest anchor"), el("dd", { class: "mono" }, anchor.tx_hash)] : null,
        el("dt", {}, "Pending"), el("dd", {}, String(items.length - anchored))),
      el("h3", {}, "Goods by product"),
      el("div", { class: "table-scroll", tabindex: "0", "aria-label": "Goods by product" },
        el("table", { class: "data" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Kind · product"), el("th", { scope: "col" }, "Goods"))),
          el("tbody", {}, Object.keys(byProduct).sort().map(function (k) {
            return el("tr", {}, el("td", {}, k), el("td", { class: "num" }, String(byProduct[k])));
          })))),
      el("h3", {}, "Royalties over time"),
      royaltyChart(statement.data),
      el("h3", {}, "Paid and owed"),
      balances.ok ? balancesTable(balances.data) : el("p", { class: "status problem" }, TM.problemText(balances)),
      el("h3", {}, "Newest goods"),
      el("ul", { class: "goods" }, items.slice(-10).reverse().map(function (g) {
        return el("li", {}, g.good_type + (g.product ? " · " + g.product : "") + " ",
          el("span", { class: "mono" }, TM.short(g.fingerprint, 12)), " ",
          el("a", { href: "/?type=" + g.good_type + "&fp=" + g.fingerprint }, "check"), " · ",
          el("a", { href: "/label/" + g.good_type + "/" + g.fingerprint }, "label"));
      })),
    ];
    TM.clear(dashboardOut);
    TM.append(dashboardOut, nodes);
  }

  document.getElementById("form-dashboard").addEventListener("submit", function (event) {
    event.preventDefault();
    dashboard(document.getElementById("royalty-period").value);
  });

  // A link with ?type=&fp= traces at once when a credential is already in this tab.
  if (TM.FINGERPRINT.test(traceFp.value.trim()) && TM.credential()) {
    trace(traceType.value, traceFp.value.trim().toLowerCase());
  }
})();
