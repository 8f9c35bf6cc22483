/*
 * svg.js: the audit view's drawings as inline SVG, with no library: a provenance graph laid
 * out left to right (layers by longest path, cycles drawn as arcs underneath), and a bar
 * chart. Both come with a <title>/<desc>; the page also shows their data as tables.
 *
 * Copyright 2026 the tracemark authors. SPDX-License-Identifier: Apache-2.0
 */
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function s(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clip(text, max) {
    text = String(text === null || text === undefined ? "" : text);
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  var NODE_W = 184, NODE_H = 52, GAP_X = 170, GAP_Y = 30, PAD = 16;

  /**
   * A provenance graph. nodes: [{id, label, kind}]; edges: [{from|source, to|target, label}].
   * Returns an <svg class="graph">, its nodes <g class="node" data-node-id=…>.
   */
  function graph(nodes, edges, options) {
    options = options || {};
    var byId = {}, order = [];
    (nodes || []).forEach(function (n, i) {
      var id = String(n.id);
      if (byId[id]) return;
      byId[id] = { id: id, label: n.label || id, kind: n.kind || n.type || "", index: i, out: [], in: [] };
      order.push(byId[id]);
    });
    var links = [];
    (edges || []).forEach(function (e) {
      var from = String(e.from !== undefined ? e.from : e.source);
      var to = String(e.to !== undefined ? e.to : e.target);
      if (!byId[from] || !byId[to]) return;
      links.push({ from: byId[from], to: byId[to], label: e.label || "", kind: e.kind || "", back: false });
    });
    // 1. Break cycles (circular transfers do happen): a depth-first search in node order marks
    //    edges that close a cycle as "back"; the rest form a DAG.
    var state = {};
    links.forEach(function (l) { l.from.out.push(l); });
    function visit(n) {
      state[n.id] = 1;
      n.out.forEach(function (l) {
        if (state[l.to.id] === 1 || l.to === n) l.back = true;
        else if (!state[l.to.id]) visit(l.to);
      });
      state[n.id] = 2;
    }
    order.forEach(function (n) { if (!state[n.id]) visit(n); });
    // 2. Layers: the longest path from a source, in topological order (Kahn).
    var indegree = {};
    order.forEach(function (n) { indegree[n.id] = 0; n.layer = 0; });
    links.forEach(function (l) { if (!l.back) { indegree[l.to.id]++; l.to.in.push(l); } });
    var queue = order.filter(function (n) { return indegree[n.id] === 0; });
    while (queue.length) {
      var n = queue.shift();
      n.out.forEach(function (l) {
        if (l.back) return;
        l.to.layer = Math.max(l.to.layer, n.layer + 1);
        if (--indegree[l.to.id] === 0) queue.push(l.to);
      });
    }
    // 3. Rows within a layer: by the mean row of the predecessors (fewer crossings), then by
    //    the order the server gave.
    var layers = [];
    order.forEach(function (n) { (layers[n.layer] = layers[n.layer] || []).push(n); });
    layers.forEach(function (layer, li) {
      if (li > 0) {
        layer.forEach(function (n) {
          var rows = n.in.map(function (l) { return l.from.row; });
          n.weight = rows.length ? rows.reduce(function (a, b) { return a + b; }, 0) / rows.length : n.index;
        });
        layer.sort(function (a, b) { return a.weight - b.weight || a.index - b.index; });
      }
      layer.forEach(function (n, row) { n.row = row; });
    });
    var rowsMax = Math.max.apply(null, layers.map(function (l) { return l.length; }).concat([1]));
    var hasBack = links.some(function (l) { return l.back || l.from.layer === l.to.layer; });
    var width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
    var height = PAD * 2 + rowsMax * NODE_H + (rowsMax - 1) * GAP_Y + (hasBack ? 60 : 0);
    order.forEach(function (n) {
      n.x = PAD + n.layer * (NODE_W + GAP_X);
      n.y = PAD + n.row * (NODE_H + GAP_Y);
    });

    var svg = s("svg", {
      class: "graph", viewBox: "0 0 " + width + " " + height, width: width, height: height,
      role: "img", "aria-labelledby": "graph-title graph-desc",
    });
    svg.appendChild(s("title", { id: "graph-title" }, options.title || "Provenance graph"));
    svg.appendChild(s("desc", { id: "graph-desc" },
      order.length + " nodes and " + links.length + " edges, left to right in the order things happened; the table below lists the same events."));
    var defs = s("defs");
    var marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
    marker.appendChild(s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
    defs.appendChild(marker);
    svg.appendChild(defs);

    var edgeLayer = s("g", { class: "edges" });
    links.forEach(function (l) {
      var x1 = l.from.x + NODE_W, y1 = l.from.y + NODE_H / 2;
      var x2 = l.to.x, y2 = l.to.y + NODE_H / 2, d, lx, ly;
      if (l.back || l.from.layer >= l.to.layer) {
        // Back to an earlier layer (or within one): an arc under the drawing.
        var bottom = height - 18;
        x1 = l.from.x + NODE_W / 2; y1 = l.from.y + NODE_H;
        x2 = l.to.x + NODE_W / 2; y2 = l.to.y + NODE_H;
        d = "M" + x1 + "," + y1 + " C" + x1 + "," + bottom + " " + x2 + "," + bottom + " " + x2 + "," + y2;
        lx = (x1 + x2) / 2; ly = bottom - 4;
      } else {
        var mid = (x1 + x2) / 2;
        d = "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2;
        lx = mid; ly = (y1 + y2) / 2 - 4;
      }
      var kind = String(l.kind).toLowerCase().replace(/[^a-z0-9]+/g, "-");
      var g = s("g", { class: "edge" + (kind ? " edge-" + kind : "") + (l.back ? " edge-back" : "") });
      g.appendChild(s("path", { d: d, "marker-end": "url(#arrow)" }));
      if (l.label) {
        var t = s("text", { x: lx, y: ly, "text-anchor": "middle", class: "edge-label" }, clip(l.label, 24));
        t.appendChild(s("title", {}, l.label));
        g.appendChild(t);
      }
      edgeLayer.appendChild(g);
    });
    svg.appendChild(edgeLayer);

    var nodeLayer = s("g", { class: "nodes" });
    order.forEach(function (n) {
      var kind = String(n.kind).toLowerCase().replace(/[^a-z0-9]+/g, "-");
      var g = s("g", { class: "node kind-" + kind, "data-node-id": n.id, transform: "translate(" + n.x + "," + n.y + ")" });
      g.appendChild(s("title", {}, (n.kind ? n.kind + ": " : "") + n.label));
      g.appendChild(s("rect", { width: NODE_W, height: NODE_H, rx: 8, ry: 8 }));
      g.appendChild(s("text", { x: 10, y: 18, class: "node-kind" }, clip(n.kind || "", 26)));
      g.appendChild(s("text", { x: 10, y: 38, class: "node-label" }, clip(n.label, 24)));
      nodeLayer.appendChild(g);
    });
    svg.appendChild(nodeLayer);
    return svg;
  }

  /**
   * A bar chart. bars: [{label, value (a Number, for the height), text (shown)}].
   * Returns an <svg class="chart">, one <rect class="bar"> a bar.
   */
  function bars(data, options) {
    options = options || {};
    var n = Math.max(1, data.length);
    var barW = Math.max(18, Math.min(56, Math.floor(560 / n) - 10));
    var gap = 10, top = 28, plot = 160, bottom = 48, left = 12;
    var width = left * 2 + n * (barW + gap);
    var height = top + plot + bottom;
    var max = Math.max.apply(null, data.map(function (d) { return d.value; }).concat([0]));
    var svg = s("svg", {
      class: "chart", viewBox: "0 0 " + width + " " + height, width: width, height: height,
      role: "img", "aria-labelledby": "chart-title chart-desc",
    });
    svg.appendChild(s("title", { id: "chart-title" }, options.title || "Chart"));
    svg.appendChild(s("desc", { id: "chart-desc" }, data.map(function (d) { return d.label + ": " + d.text; }).join("; ")));
    svg.appendChild(s("line", { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: "axis" }));
    data.forEach(function (d, i) {
      var h = max > 0 ? Math.max(2, Math.round((d.value / max) * plot)) : 2;
      var x = left + i * (barW + gap) + gap / 2;
      var g = s("g", { class: "bar-group" });
      var rect = s("rect", { x: x, y: top + plot - h, width: barW, height: h, class: "bar" });
      rect.appendChild(s("title", {}, d.label + ": " + d.text));
      g.appendChild(rect);
      g.appendChild(s("text", { x: x + barW / 2, y: top + plot - h - 6, "text-anchor": "middle", class: "bar-value" }, clip(d.text, 12)));
      g.appendChild(s("text", { x: x + barW / 2, y: top + plot + 16, "text-anchor": "middle", class: "bar-label" }, clip(d.label, 10)));
      svg.appendChild(g);
    });
    return svg;
  }

  global.TMsvg = { graph: graph, bars: bars };
})(window);
