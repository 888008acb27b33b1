/* kubefit console: a hand-written page script, served by the controller (no framework, nothing
 * fetched from elsewhere). Routes: #/ (jobs) and #/jobs/<namespace>/<name> (one job).
 * Data: GET /api/... with the user's Kubernetes token (Authorization: Bearer), and a WebSocket
 * on /api/watch that pushes every change. The token lives in this tab's sessionStorage only; it
 * can be given once in the address as #token=... (never sent to the server in a URL). */
"use strict";

(function () {
  const TOKEN_KEY = "kubefit.token";
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    route: null,
    jobs: new Map(),      // "ns/name" -> summary
    detail: null,         // the job page's job
    points: [],           // its progress points
    labelSort: { key: "f1", dir: -1 },
    filter: { namespace: "", phase: "" },
    ws: null, wsRetry: 0, wsTimer: null,
    logTimer: null, eventsTimer: null,
    user: null,
  };
  /* For tests and the curious: what the feed has delivered on this page (no reloads in between). */
  const stats = { loaded: Date.now(), wsOpen: 0, wsMessages: 0, jobUpdates: 0, progressPoints: 0, snapshots: 0,
    feedErrors: [] };
  window.kubefit = { stats, state };

  // ---- small helpers ----
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const main = () => $("main");
  function fmtNum(x, digits = 3) { return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "–"; }
  function fmtPct(x) { return typeof x === "number" ? (x >= 99.95 ? "100" : x.toFixed(1)) + "%" : "–"; }
  function fmtDur(s) {
    if (typeof s !== "number" || !isFinite(s) || s < 0) return "";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
  }
  function age(ts) {
    const t = Date.parse(ts || "");
    return isNaN(t) ? "" : fmtDur((Date.now() - t) / 1000).replace(/(\d+[a-z])\d+[a-z]$/, "$1");
  }
  function key(j) { return j.namespace + "/" + j.name; }
  function headers() { return state.token ? { Authorization: "Bearer " + state.token } : {}; }

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path, text) {
    const r = await fetch(path, { headers: headers(), cache: "no-store" });
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
      throw new HttpError(r.status, msg);
    }
    return text ? r.text() : r.json();
  }

  // ---- sign in ----
  function takeTokenFromAddress() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!m) return;
    state.token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, state.token);
    history.replaceState(null, "", location.pathname + "#/");
  }
  function signOut() {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    state.user = null;
    if (state.ws) state.ws.close();
    renderLogin("Signed out.");
  }
  function renderLogin(why) {
    stopTimers();
    $("who").textContent = "";
    $("signout").hidden = true;
    $("crumbs").textContent = "";
    const ta = h("textarea", { id: "token", placeholder: "eyJhbGciOi...", autocomplete: "off", spellcheck: "false" });
    main().replaceChildren(h("div", { class: "card login" },
      h("h1", { text: "Sign in" }),
      why ? h("p", { class: "error", id: "login-error", text: why }) : null,
      h("p", {}, "The console shows what your Kubernetes identity may read. Paste a bearer token, e.g. from ",
        h("code", { text: "kubectl create token <service-account>" }), " or your cluster's login tool."),
      ta,
      h("p", {}, h("button", {
        class: "primary", type: "button", id: "signin", onclick: () => {
          state.token = ta.value.trim();
          if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
          start();
        }
      }, "Sign in")),
      h("p", { class: "muted", text: "The token stays in this browser tab (sessionStorage) and is sent to the controller only." })));
  }

  // ---- the feed ----
  function setLive(on) {
    const el = $("live");
    el.textContent = on ? "live" : "offline";
    el.classList.toggle("on", on);
  }
  function subscribe() {
    if (!state.ws || state.ws.readyState !== 1) return;
    const r = state.route;
    const msg = r.page === "job" ? { type: "subscribe", namespace: r.ns, job: r.name }
      : { type: "subscribe", namespace: state.filter.namespace };
    state.ws.send(JSON.stringify(msg));
  }
  function connect() {
    if (state.ws) return;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/watch");
    state.ws = ws;
    ws.onopen = () => {
      stats.wsOpen++;
      state.wsRetry = 0;
      if (state.token) ws.send(JSON.stringify({ type: "auth", token: state.token }));
      subscribe();
    };
    ws.onmessage = (ev) => {
      stats.wsMessages++;
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      onFeed(m);
    };
    ws.onclose = () => {
      state.ws = null;
      setLive(false);
      if (!state.user) return;
      const wait = Math.min(30000, 500 * Math.pow(2, state.wsRetry++));
      state.wsTimer = setTimeout(connect, wait);
    };
  }
  function onFeed(m) {
    if (m.type === "hello") {
      setLive(true);
    } else if (m.type === "error") {
      stats.feedErrors.push(m.status);
      setLive(false);
      if (m.status === 401) renderLogin(m.message);
      else if (m.status === 403) showForbidden(m.message);
    } else if (m.type === "snapshot") {
      stats.snapshots++;
      setLive(true);
      state.jobs = new Map(m.jobs.map((j) => [key(j), j]));
      if (state.route.page === "jobs") renderJobs();
    } else if (m.type === "job") {
      stats.jobUpdates++;
      if (m.event === "DELETED") state.jobs.delete(key(m.job));
      else state.jobs.set(key(m.job), m.job);
      if (state.route.page === "jobs") renderJobs();
    } else if (m.type === "detail") {
      setLive(true);
      if (state.route.page !== "job") return;
      if (m.event === "DELETED") {
        state.detail = null;
        main().replaceChildren(h("p", { class: "notice", text: "This TrainingJob no longer exists." }));
        return;
      }
      const prevRun = state.detail && state.detail.currentRun;
      if (m.event === "SNAPSHOT") {
        stats.snapshots++;
        state.points = m.job.history || [];
      } else if (prevRun !== m.job.currentRun) {
        state.points = [];
      }
      state.detail = m.job;
      renderJob();
      scheduleEvents();
    } else if (m.type === "progress") {
      if (state.route.page !== "job" || !state.detail) return;
      stats.progressPoints++;
      state.points.push(m.point);
      drawCharts();
    }
  }

  // ---- jobs table ----
  function progressCell(j) {
    const p = j.progress || {};
    const done = j.phase === "Succeeded";
    const pct = done ? 100 : typeof p.percent === "number" ? p.percent : 0;
    const bits = [];
    if (p.stage) bits.push(p.stage);
    if (p.epoch) bits.push("epoch " + p.epoch + (p.epochs ? "/" + p.epochs : ""));
    bits.push(fmtPct(pct));
    if (j.phase === "Running" && typeof p.etaSeconds === "number" && p.etaSeconds > 0) bits.push("ETA " + fmtDur(p.etaSeconds));
    const cls = "bar" + (done ? " done" : j.phase === "Failed" ? " failed" : "");
    const fill = h("span", {});
    fill.style.width = Math.max(0, Math.min(100, pct)).toFixed(1) + "%"; // CSSOM: allowed by the page's CSP
    return h("td", { class: "progress" },
      h("div", { class: cls, "data-percent": pct.toFixed(1), role: "progressbar", "aria-valuenow": pct.toFixed(1) }, fill),
      h("div", { class: "text", text: bits.join(" · ") }));
  }
  function jobsFilters() {
    const ns = h("input", { id: "f-namespace", value: state.filter.namespace, placeholder: "all namespaces", size: 18 });
    const ph = h("select", { id: "f-phase" }, ["", "Pending", "Running", "Succeeded", "Failed", "Suspended"].map(
      (p) => h("option", { value: p, selected: p === state.filter.phase }, p || "all phases")));
    ns.addEventListener("change", () => { state.filter.namespace = ns.value.trim(); subscribe(); });
    ph.addEventListener("change", () => { state.filter.phase = ph.value; renderJobs(); });
    return h("div", { class: "filters" }, h("label", {}, "Namespace", ns), h("label", {}, "Phase", ph));
  }
  function renderJobs() {
    $("crumbs").textContent = "";
    const rows = [...state.jobs.values()]
      .filter((j) => !state.filter.phase || (j.phase || "") === state.filter.phase)
      .filter((j) => !state.filter.namespace || j.namespace === state.filter.namespace)
      .sort((a, b) => (b.creationTimestamp || "").localeCompare(a.creationTimestamp || "") || key(a).localeCompare(key(b)));
    const body = h("tbody", {}, rows.length ? rows.map((j) => h("tr", { "data-job": key(j) },
      h("td", { text: j.namespace }),
      h("td", {}, h("a", { href: "#/jobs/" + encodeURIComponent(j.namespace) + "/" + encodeURIComponent(j.name), text: j.name })),
      h("td", { text: j.language || "" }),
      h("td", {}, h("span", { class: "phase " + (j.phase || ""), text: j.phase || "New" })),
      progressCell(j),
      h("td", { class: "num", text: fmtNum((j.metrics || {}).microF1) }),
      h("td", { class: "num", text: fmtNum((j.metrics || {}).accuracy ?? (j.metrics || {}).subsetAccuracy) }),
      h("td", { class: "num", text: age(j.creationTimestamp) }))) :
      h("tr", {}, h("td", { class: "empty", colspan: 8, text: "No TrainingJobs here yet." })));
    const count = rows.length + " shown · updates live";
    const table = $("jobs");
    if (table) { // only the rows change: the filters keep what is being typed
      table.tBodies[0].replaceWith(body);
      $("jobs-count").textContent = count;
      return;
    }
    main().replaceChildren(
      h("h1", { text: "Training jobs" }),
      h("div", { class: "sub", id: "jobs-count", text: count }),
      jobsFilters(),
      h("div", { class: "card" }, h("table", { id: "jobs" },
        h("thead", {}, h("tr", {}, ["Namespace", "Name", "Language", "Phase", "Progress"].map((t) => h("th", { text: t })),
          h("th", { class: "num", text: "Micro-F1" }), h("th", { class: "num", text: "Accuracy" }), h("th", { class: "num", text: "Age" }))),
        body)));
  }
  function showForbidden(msg) {
    const box = h("div", { class: "error", id: "forbidden" }, h("strong", { text: "Forbidden (403). " }),
      (msg || "You may not see this.") + ". Ask for read access (get/list trainingjobs) in Kubernetes.");
    if (state.route.page === "jobs") main().replaceChildren(h("h1", { text: "Training jobs" }), jobsFilters(), box);
    else main().replaceChildren(box);
  }

  // ---- one job ----
  function series(points, pick) {
    const by = new Map();
    for (const p of points) {
      const y = pick(p);
      if (typeof y !== "number" || !isFinite(y)) continue;
      const s = p.stage || "";
      if (!by.has(s)) by.set(s, []);
      by.get(s).push([p, y]);
    }
    return [...by.entries()];
  }
  function chart(id, title, groups, xOf, xLabel, yLabel) {
    const W = 640, H = 240, L = 52, R = 12, T = 12, B = 34;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const add = (tag, attrs, text) => {
      const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      if (text !== undefined) el.textContent = text;
      svg.append(el);
      return el;
    };
    const all = groups.flatMap(([, pts]) => pts);
    const xs = all.map(([p]) => xOf(p)), ys = all.map(([, y]) => y);
    let x0 = Math.min(...xs, 0), x1 = Math.max(...xs, 1), y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (!all.length) { y0 = 0; y1 = 1; }
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
    const X = (x) => L + (x - x0) / (x1 - x0 || 1) * (W - L - R), Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const yv = y0 + (y1 - y0) * i / 4;
      add("line", { class: "gridline", x1: L, x2: W - R, y1: Y(yv), y2: Y(yv) });
      add("text", { class: "tick", x: L - 6, y: Y(yv) + 4, "text-anchor": "end" }, yv.toFixed(yv >= 10 ? 1 : 2));
      const xv = x0 + (x1 - x0) * i / 4;
      add("text", { class: "tick", x: X(xv), y: H - B + 16, "text-anchor": "middle" }, xv.toFixed(x1 - x0 < 8 ? 1 : 0));
    }
    add("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B });
    add("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B });
    add("text", { class: "tick", x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, xLabel);
    groups.forEach(([, pts], i) => {
      const d = pts.map(([p, y], k) => (k ? "L" : "M") + X(xOf(p)).toFixed(1) + " " + Y(y).toFixed(1)).join(" ");
      add("path", { class: "series s" + (i % 4), d, "data-points": pts.length });
      const [lp, ly] = pts[pts.length - 1]; // the newest point, visible even when it is the only one
      add("circle", { class: "s" + (i % 4), cx: X(xOf(lp)).toFixed(1), cy: Y(ly).toFixed(1), r: 3, fill: "currentColor" });
    });
    return h("div", { class: "card chart", id },
      h("h2", {}, title, h("span", { class: "muted", text: "  " + yLabel })),
      svg,
      h("div", { class: "legend" }, groups.length ? groups.map(([name], i) => h("span", {}, h("i", { class: "s" + (i % 4) }), name || "–"))
        : h("span", { text: "waiting for the trainer's first report" })));
  }
  function drawCharts() {
    const holder = $("charts");
    if (!holder) return;
    const pts = state.points;
    const t0 = pts.length ? pts[0].t : 0;
    holder.replaceChildren(
      chart("chart-loss", "Training loss", series(pts, (p) => p.loss), (p) => p.percent || 0, "% of the run", "smoothed, per stage"),
      chart("chart-progress", "Progress", series(pts, (p) => p.percent), (p) => p.t - t0, "seconds since the first report", "% of the run"));
  }
  function labelsTable(labels) {
    const cols = [["name", "Label", false], ["precision", "Precision", true], ["recall", "Recall", true], ["f1", "F1", true], ["support", "Support", true]];
    const s = state.labelSort;
    const sorted = [...labels].sort((a, b) => {
      const x = a[s.key], y = b[s.key];
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return c * s.dir || String(a.name).localeCompare(String(b.name));
    });
    return h("table", { id: "labels" },
      h("thead", {}, h("tr", {}, cols.map(([k, t, num]) => h("th", {
        class: "sortable" + (num ? " num" : "") + (s.key === k ? (s.dir > 0 ? " sorted-asc" : " sorted-desc") : ""),
        "data-key": k, text: t,
        onclick: () => { state.labelSort = { key: k, dir: s.key === k ? -s.dir : (num ? -1 : 1) }; renderJob(); }
      })))),
      h("tbody", {}, sorted.map((l) => h("tr", { "data-label": l.name },
        h("td", { text: l.name }),
        ["precision", "recall", "f1"].map((k) => h("td", { class: "num", "data-value": l[k], text: fmtNum(l[k]) })),
        h("td", { class: "num", "data-value": l.support, text: l.support ?? "–" })))));
  }
  function renderJob() {
    const j = state.detail;
    if (!j) return;
    const m = j.metrics || {};
    const r = state.route;
    $("crumbs").replaceChildren(h("a", { href: "#/", text: "jobs" }), " / " + r.ns + " / " + r.name);
    const scroll = window.scrollY;
    const logText = $("log") ? $("log").textContent : "";
    const eventsBody = $("events") ? $("events").cloneNode(true) : null;
    const runs = (j.runs || []).slice().reverse();
    const conds = j.conditions || [];
    main().replaceChildren(
      h("h1", {}, j.name + " ", h("span", { class: "phase " + (j.phase || ""), id: "phase", text: j.phase || "New" })),
      h("div", { class: "sub" }, j.namespace + " · language " + (j.language || "?") +
        (j.message && /^run \d/.test(j.message) ? "" : " · run " + (j.currentRun || "–")) + (j.message ? " · " + j.message : "")),
      h("div", { class: "card" }, h("table", { id: "summary" }, h("tbody", {}, h("tr", {}, progressCell(j)))),
        h("div", { class: "stats" },
          [["Micro-F1", m.microF1], ["Macro-F1", m.macroF1], ["Accuracy", m.accuracy], ["Subset accuracy", m.subsetAccuracy],
            ["Label accuracy", m.labelAccuracy], ["Loss", m.loss], ["Valid loss", m.validLoss]]
            .filter(([, v]) => typeof v === "number")
            .map(([k, v]) => h("div", { class: "stat" }, h("div", { class: "v", text: fmtNum(v) }), h("div", { class: "k", text: k }))))),
      h("div", { class: "grid", id: "charts" }),
      h("div", { class: "grid" },
        h("div", { class: "card" }, h("h2", { text: "Per-label metrics" }),
          m.labels && m.labels.length ? labelsTable(m.labels) : h("p", { class: "muted", text: "After the run finishes." })),
        h("div", { class: "card" }, h("h2", { text: "Outputs" }), h("dl", { class: "kv" },
          h("dt", { text: "Model" }), h("dd", { class: "mono", id: "model-uri", text: j.modelURI || "–" }),
          h("dt", { text: "Metrics" }), h("dd", { class: "mono", id: "metrics-uri", text: j.metricsURI || "–" }),
          h("dt", { text: "Trainer Pod" }), h("dd", { class: "mono", text: j.podName || "–" }),
          h("dt", { text: "Started" }), h("dd", { text: j.startTime || "–" }),
          h("dt", { text: "Finished" }), h("dd", { text: j.completionTime || "–" }),
          h("dt", { text: "Attempts" }), h("dd", { text: (j.attempts ?? "–") + (j.failures ? " (" + j.failures + " failed)" : "") })))),
      h("div", { class: "card" }, h("h2", { text: "Runs" }), h("table", { id: "runs" },
        h("thead", {}, h("tr", {}, ["Run", "Phase", "Started", "Duration"].map((t) => h("th", { text: t })),
          h("th", { class: "num", text: "Accuracy" }), h("th", { class: "num", text: "Micro-F1" }), h("th", { text: "Model" }))),
        h("tbody", {}, runs.length ? runs.map((x) => h("tr", { "data-run": x.run },
          h("td", { text: x.run }), h("td", {}, h("span", { class: "phase " + (x.phase || ""), text: x.phase || "" })),
          h("td", { text: x.startTime || "" }),
          h("td", { text: x.startTime && x.completionTime ? fmtDur((Date.parse(x.completionTime) - Date.parse(x.startTime)) / 1000) : "" }),
          h("td", { class: "num", text: fmtNum(x.accuracy) }), h("td", { class: "num", text: fmtNum(x.microF1) }),
          h("td", { class: "mono", text: x.modelURI || "" }))) : h("tr", {}, h("td", { colspan: 7, class: "empty", text: "No runs yet." }))))),
      h("div", { class: "grid" },
        h("div", { class: "card" }, h("h2", { text: "Conditions" }), h("table", {}, h("tbody", {}, conds.map((c) => h("tr", {},
          h("td", { text: c.type }), h("td", { class: "cond-" + c.status, text: c.status }), h("td", { text: c.reason || "" }),
          h("td", { class: "muted", text: c.message || "" })))))),
        h("div", { class: "card" }, h("h2", { text: "Events" }), eventsBody || h("table", { id: "events" }, h("tbody", {})))),
      h("div", { class: "card" }, h("h2", {}, "Trainer log ", h("span", { class: "muted", text: "(last 200 lines)" })),
        h("pre", { class: "log", id: "log", text: logText || "…" })));
    drawCharts();
    window.scrollTo(0, scroll);
    if (!state.logTimer) loadLog();
  }
  async function loadEvents() {
    const r = state.route;
    if (r.page !== "job") return;
    let rows;
    try {
      const ev = (await api(`/api/jobs/${r.ns}/${r.name}/events`)).events;
      rows = ev.length ? ev.slice(-30).reverse().map((e) => h("tr", { class: "ev-" + e.type },
        h("td", { text: e.type }), h("td", { text: e.reason }), h("td", { text: e.message }),
        h("td", { class: "muted", text: age(e.lastTimestamp || e.eventTime) }))) : [h("tr", {}, h("td", { class: "empty", text: "No events." }))];
    } catch (e) {
      rows = [h("tr", {}, h("td", { class: "muted", text: "Events unavailable: " + e.message }))];
    }
    const t = $("events");
    if (t) t.replaceChildren(h("tbody", {}, rows));
  }
  function scheduleEvents() {
    if (state.eventsTimer) return;
    state.eventsTimer = setTimeout(() => { state.eventsTimer = null; loadEvents(); }, 300);
  }
  async function loadLog() {
    const r = state.route;
    if (r.page !== "job") return;
    let text;
    try {
      text = await api(`/api/jobs/${r.ns}/${r.name}/log?tailLines=200`, true);
    } catch (e) {
      text = "(log unavailable: " + e.message + ")";
    }
    if ($("log")) {
      const el = $("log");
      const atEnd = el.dataset.loaded !== "1" || el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
      el.dataset.loaded = "1";
      el.textContent = text || "(empty)";
      if (atEnd) el.scrollTop = el.scrollHeight;
    }
    const running = state.detail && (state.detail.phase === "Running" || state.detail.phase === "Pending");
    state.logTimer = setTimeout(loadLog, running ? 5000 : 30000);
  }

  // ---- routing ----
  function stopTimers() {
    clearTimeout(state.logTimer); state.logTimer = null;
    clearTimeout(state.eventsTimer); state.eventsTimer = null;
  }
  function parseRoute() {
    const m = location.hash.match(/^#\/jobs\/([^/]+)\/([^/]+)$/);
    return m ? { page: "job", ns: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]) } : { page: "jobs" };
  }
  function route() {
    stopTimers();
    state.route = parseRoute();
    state.detail = null;
    state.points = [];
    if (state.route.page === "job") {
      main().replaceChildren(h("p", { class: "muted", text: "Loading…" }));
      // The page does not wait for the feed: the API answers first (and says 403/404 plainly).
      api(`/api/jobs/${state.route.ns}/${state.route.name}`).then((j) => {
        if (state.detail || state.route.page !== "job") return;
        state.detail = j;
        state.points = j.history || [];
        renderJob();
        loadEvents();
      }).catch((e) => {
        if (e.status === 401) renderLogin(e.message);
        else if (e.status === 403) showForbidden(e.message);
        else main().replaceChildren(h("p", { class: "error", text: e.message }));
      });
    } else {
      renderJobs();
      const ns = state.filter.namespace;
      api("/api/jobs" + (ns ? "?namespace=" + encodeURIComponent(ns) : "")).then((r) => {
        if (state.route.page !== "jobs" || stats.snapshots) return; // the feed got there first
        state.jobs = new Map(r.jobs.map((j) => [key(j), j]));
        renderJobs();
      }).catch((e) => {
        if (e.status === 401) renderLogin(e.message);
        else if (e.status === 403) showForbidden(e.message);
      });
    }
    subscribe();
  }
  async function start() {
    try {
      state.user = await api("/api/whoami");
    } catch (e) {
      state.user = null;
      renderLogin(e.status === 401 ? (state.token ? "That token was not accepted: " + e.message : "") : e.message);
      return;
    }
    $("who").textContent = state.user.anonymous ? "anonymous (read-only)" : state.user.username;
    $("signout").hidden = !state.token;
    route();
    connect();
  }

  takeTokenFromAddress();
  $("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => { takeTokenFromAddress(); if (state.user) route(); });
  setInterval(() => { if (state.route && state.route.page === "jobs" && state.user) renderJobs(); }, 10000);
  start();
})();
