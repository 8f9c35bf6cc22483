/* tracemark's badge, inserted by a script (issue 18 item 6): every element of the embedding
   page marked data-tracemark-badge="<good_type>/<fingerprint>" becomes an <iframe> of this
   registry's /badge/<good_type>/<fingerprint>. Only a fingerprint is ever read: a code
   never goes in a URL, so anything that does not look like one is left alone.

   Runs under a strict CSP on the embedding page: it needs script-src and frame-src for this
   registry's origin, nothing inline (sizes are attributes, not style), no eval. The frame is
   sandboxed (the badge has no script) and sends no referrer. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin = new URL(script.src).origin;
  var GOOD = /^(code|file|item)\/0x[0-9a-fA-F]{64}$/;
  var LANGS = { "en": true, "zh-Hans": true };

  function embed(host) {
    var good = (host.getAttribute("data-tracemark-badge") || "").trim();
    if (!GOOD.test(good) || host.getAttribute("data-tracemark-done")) return;
    var url = new URL("/badge/" + good.toLowerCase(), origin);
    var lang = host.getAttribute("data-lang") || script.getAttribute("data-lang");
    if (lang && LANGS[lang]) url.searchParams.set("lang", lang);
    var frame = document.createElement("iframe");
    frame.src = url.href;
    frame.width = host.getAttribute("data-width") || "320";
    frame.height = host.getAttribute("data-height") || "200";
    frame.title = host.getAttribute("data-title") || host.textContent.trim() || "tracemark";
    frame.setAttribute("loading", "lazy");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
    frame.setAttribute("frameborder", "0");
    frame.className = "tracemark-badge";
    host.setAttribute("data-tracemark-done", "1");
    host.textContent = "";
    host.appendChild(frame);
  }

  function run() {
    var hosts = document.querySelectorAll("[data-tracemark-badge]");
    for (var i = 0; i < hosts.length; i++) embed(hosts[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
