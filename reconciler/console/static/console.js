// The console's only script (the CSP allows no inline script). It does three things:
// 1. every htmx request carries the session's CSRF token (from <meta name="csrf">);
// 2. the live panel follows the server-sent events of /events;
// 3. when a cycle finishes, the overview's parts that changed are fetched again.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf; }
  });

  function line(list, text, cls) {
    var item = document.createElement("li");
    item.textContent = text;
    if (cls) { item.className = cls; }
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 200) { list.removeChild(list.lastChild); }
  }

  function time(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : ""; }

  function start() {
    var list = document.getElementById("live");
    if (!list || !window.EventSource) { return; }
    var source = new EventSource(list.getAttribute("data-stream"));
    var last = null;
    source.addEventListener("loop", function (event) {
      var s = JSON.parse(event.data);
      var state = document.getElementById("loop-state");
      if (state) {
        state.textContent = s.running ? "cycle running" : "idle";
        state.className = s.running ? "state-running" : "state-idle";
      }
      var cycles = document.getElementById("cycles");
      if (cycles) { cycles.textContent = String(s.cycles); }
      if (!s.loop) { return; }
      if (s.running) {
        line(list, "cycle started", "cycle");
      } else if (last !== null && s.cycles !== last.cycles) {
        var done = "cycle finished: " + s.outcome + " (" + s.changes + " changes, " + s.applied +
          " applied, " + s.failed + " failed)";
        line(list, done, "cycle");
        var cycle = document.getElementById("last-cycle");
        if (cycle) { cycle.textContent = s.outcome + " just now: " + s.changes + " changes, " + s.applied + " applied"; }
        if (window.htmx && document.getElementById("servers")) {
          setTimeout(function () {
            window.htmx.ajax("GET", window.location.pathname + "?part=servers" +
              window.location.search.replace(/^\?/, "&"), { target: "#servers", swap: "outerHTML" });
          }, 300);
        }
      }
      last = s;
    });
    source.addEventListener("audit", function (event) {
      var e = JSON.parse(event.data);
      line(list, time(e.at) + "  " + e.text + "  (" + e.actor + ")", "audit outcome-" + e.outcome);
    });
    source.addEventListener("signed-out", function () {
      source.close();
      line(list, "signed out: reload the page", "cycle");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
