// Live wall: every active call at a glance, from one websocket subscribed to "*".
//
// Per-call summaries (phase, latest signals, warnings, temperature) are derived here from
// the same events the agent console gets, so the server's hot path does no extra work.
// A compliance warning raises an alert; clicking a call follows it live, read-only.

import { Connection, defaultUrl } from "./protocol.js";
import { api, clock, el, label, signedIn } from "./common.js";

/** How much each customer signal heats a call up (anger / churn risk), 0..100. */
const HEAT = {
  anger: 35, cancel_intent: 40, competitor_mention: 20, price_objection: 15,
  speed_complaint: 10, usage_limit: 5, refusal: 10, satisfaction: -20, agreement: -15,
};
const ENDED_KEEP_MS = 10 * 60 * 1000;

const calls = new Map();
const backlogUntil = new Map(); // call id -> last seq that was already history at connect
let followed = null;
let alerts = 0;

const $ = (id) => document.querySelector(`[data-testid=${id}]`);

function newCall(id) {
  return {
    id, agent: null, title: "", customer: null, language: "", phase: "opening", ended: false,
    durationMs: 0, base: 0, baseAt: Date.now(), signals: [], warnings: [], suggestions: 0,
    lines: new Map(), heat: 0, lastSeq: 0, tile: null, agentAsked: false,
  };
}

function call(id) {
  if (!calls.has(id)) calls.set(id, newCall(id));
  return calls.get(id);
}

async function askAgent(c) {
  if (c.agent || c.agentAsked) return;
  c.agentAsked = true;
  try {
    const rows = await api(`/api/calls?q=${encodeURIComponent(c.id)}&limit=1`);
    const row = rows.find((r) => r.call_id === c.id);
    if (row) {
      c.agent = row.agent;
      c.customer = c.customer || row.customer_id;
      render(c);
    }
  } catch {
    /* the tile shows "unassigned" */
  }
}

function onEnvelope(env) {
  if (env.type === "ready") {
    for (const a of env.data.active_calls || []) {
      const c = call(a.call_id);
      c.agent = a.agent || c.agent;
      c.title = a.title || c.title;
      backlogUntil.set(a.call_id, a.last_seq || 0);
    }
    return;
  }
  if (!env.call_id || env.type === "error") return;
  const c = call(env.call_id);
  if (Number.isInteger(env.seq) && env.seq <= c.lastSeq) return; // seen (reconnect)
  c.lastSeq = env.seq || c.lastSeq;
  const live = env.seq > (backlogUntil.get(env.call_id) || 0);
  const d = env.data || {};
  c.base = Math.max(c.base, env.emitted_ms || 0, env.t_ms || 0);
  c.baseAt = Date.now();
  switch (env.type) {
    case "call.started":
      c.title = d.title || c.title;
      c.customer = d.customer_id;
      c.language = d.language;
      askAgent(c);
      break;
    case "transcript.partial":
    case "transcript.final":
      c.lines.set(d.utterance_id, { speaker: d.speaker, text: d.text, t: env.t_ms, partial: env.type === "transcript.partial" });
      break;
    case "signal":
      c.signals.push({ signal: d.signal, speaker: d.speaker, quote: (d.evidence || {}).quote });
      if (d.speaker === "customer" && d.signal in HEAT) c.heat = Math.max(0, Math.min(100, c.heat + HEAT[d.signal]));
      break;
    case "phase":
      c.phase = d.to;
      break;
    case "suggestion":
      c.suggestions += 1;
      break;
    case "warning":
      c.warnings.push(d);
      if (live) alert(c, d);
      break;
    case "call.ended":
      c.ended = true;
      c.durationMs = d.duration_ms || c.base;
      c.endedAt = Date.now();
      break;
    default:
      break;
  }
  render(c);
  if (followed === c.id) renderDrawer();
}

function alert(c, w) {
  alerts += 1;
  const quote = (w.evidence || {}).quote;
  const toast = el("div", { class: "toast", "data-testid": "alert", role: "alert", dataset: { call: c.id, rule: w.rule_id } },
    el("div", { class: "toast__title", text: `Compliance: ${w.title}` }),
    el("div", { class: "toast__body" }, `${c.agent || "Unassigned"} · ${c.title || c.id}`, quote ? ` — «${quote}»` : ""));
  toast.addEventListener("click", () => { follow(c.id); toast.remove(); });
  $("toasts").prepend(toast);
  setTimeout(() => toast.remove(), 12000);
  if (c.tile) {
    c.tile.classList.remove("tile--alert");
    void c.tile.offsetWidth; // restart the animation
    c.tile.classList.add("tile--alert");
  }
}

function heatLevel(heat) {
  return heat >= 60 ? "hot" : heat >= 30 ? "warm" : "calm";
}

function duration(c) {
  return c.ended ? c.durationMs : c.base + (Date.now() - c.baseAt);
}

function lastLine(c) {
  let last = null;
  for (const line of c.lines.values()) if (!last || line.t >= last.t) last = line;
  return last;
}

function render(c) {
  if (!c.tile) {
    c.tile = el("button", { type: "button", class: "tile", "data-testid": "wall-tile", dataset: { call: c.id }, "aria-pressed": "false" });
    c.tile.addEventListener("click", () => follow(c.id));
  }
  const level = heatLevel(c.heat);
  const recent = c.signals.slice(-4).reverse();
  const last = lastLine(c);
  const rank = { high: 3, medium: 2, low: 1 };
  const warn = c.warnings.reduce((best, w) => (!best || (rank[w.severity] || 0) >= (rank[best.severity] || 0) ? w : best), null);
  c.tile.classList.toggle("tile--ended", c.ended);
  c.tile.dataset.phase = c.phase;
  c.tile.dataset.warnings = String(c.warnings.length);
  c.tile.replaceChildren(
    el("div", { class: "tile__top" },
      el("span", { class: "tile__agent", "data-testid": "tile-agent", text: c.agent || "Unassigned" }),
      el("span", { class: "phase", "data-testid": "tile-phase", dataset: { phase: c.phase }, text: c.ended ? "ended" : label(c.phase) }),
      el("span", { class: "tile__dur", "data-testid": "tile-duration", text: clock(duration(c)) })),
    el("div", { class: "tile__sub" },
      el("span", { class: "tile__title", text: c.title || c.id }),
      c.customer ? el("span", { class: "chip", text: `Customer ${c.customer}` }) : null,
      c.language ? el("span", { class: "chip", text: c.language.toUpperCase() }) : null),
    el("div", { class: "temp", "data-testid": "tile-temp", dataset: { level, heat: String(c.heat) } },
      el("span", { text: "Temperature" }),
      el("div", { class: "temp__bar" }, el("div", { class: "temp__fill", style: `width:${Math.max(4, c.heat)}%` })),
      el("span", { class: "temp__label", text: level })),
    el("div", { class: "tile__signals", "data-testid": "tile-signals" },
      recent.length ? recent.map((s) => el("span", { class: `chip chip--${s.speaker}`, dataset: { signal: s.signal }, text: label(s.signal) }))
        : el("span", { class: "muted", text: "No signals yet" })),
    el("div", { class: "tile__last" }, last ? [el("b", { text: last.speaker === "agent" ? "Agent" : "Customer" }), last.text] : el("span", { class: "muted", text: "Waiting for speech…" })),
    el("div", { class: warn ? "tile__warn" : "tile__warn tile__warn--none", "data-testid": "tile-warnings" },
      warn ? [el("span", { class: "count count--warn", text: String(c.warnings.length) }), warn.title] : "No warnings"),
  );
  const home = c.ended ? $("ended-tiles") : $("tiles");
  if (c.tile.parentElement !== home) home.prepend(c.tile);
  summary();
}

function summary() {
  const live = [...calls.values()].filter((c) => !c.ended);
  $("active-count").textContent = String(live.length);
  $("alert-count").textContent = String(alerts);
  $("hot-count").textContent = String(live.filter((c) => heatLevel(c.heat) === "hot").length);
  $("offer-count").textContent = String(live.reduce((n, c) => n + c.suggestions, 0));
  $("wall-empty").hidden = live.length > 0;
  $("ended-title").hidden = !$("ended-tiles").children.length;
}

function follow(id) {
  followed = id;
  for (const c of calls.values()) if (c.tile) c.tile.setAttribute("aria-pressed", String(c.id === id));
  $("drawer").hidden = false;
  renderDrawer();
}

function renderDrawer() {
  const c = calls.get(followed);
  if (!c) return;
  $("drawer").dataset.call = c.id;
  $("drawer-title").textContent = `${c.agent || "Unassigned"} · ${c.title || c.id}`;
  $("drawer-review").href = `/review.html?call=${encodeURIComponent(c.id)}`;
  const body = $("drawer-body");
  const atBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 40;
  const lines = [...c.lines.entries()].sort((a, b) => a[1].t - b[1].t);
  $("drawer-lines").replaceChildren(
    ...lines.map(([uid, l]) => el("li", { class: `line line--${l.speaker}${l.partial ? " line--partial" : ""}`, "data-testid": "drawer-line", dataset: { utterance: uid, speaker: l.speaker } },
      el("div", { class: "line__meta" }, el("span", { class: "line__who", text: l.speaker === "agent" ? "Agent" : "Customer" }), el("span", { class: "mono", text: clock(l.t) })),
      el("div", { class: "line__bubble" }, el("p", { class: "line__text", text: l.text })))),
    ...c.warnings.map((w) => el("li", { class: "event event--warning", "data-testid": "drawer-warning" },
      el("span", { class: `sev sev--${w.severity}`, text: w.severity }), el("b", { text: w.title }),
      el("q", { class: "event__quote", text: (w.evidence || {}).quote || "" }))),
  );
  if (atBottom) body.scrollTop = body.scrollHeight;
}

function tick() {
  const now = Date.now();
  for (const c of calls.values()) {
    if (c.ended && c.endedAt && now - c.endedAt > ENDED_KEEP_MS) {
      c.tile?.remove();
      calls.delete(c.id);
      continue;
    }
    if (!c.ended && c.tile) {
      const d = c.tile.querySelector("[data-testid=tile-duration]");
      if (d) d.textContent = clock(duration(c));
    }
  }
  summary();
}

const LEVEL_TEXT = {
  full: "full quality", partials: "partials paused", early_finals: "no early finals",
  greedy_finals: "greedy finals", fallback_model: "fallback model",
};

/** The box's load from the health report (no call data in it): calls / capacity, lag, level. */
async function pollLoad() {
  try {
    const res = await fetch("/api/health", { credentials: "same-origin" });
    const h = await res.json();
    $("box-load").dataset.accepting = String(h.accepting);
    $("box-load").dataset.level = String(h.level);
    $("box-load-calls").textContent = `${h.calls} / ${h.max_calls}`;
    const lag = `lag ${(h.lag_ms / 1000).toFixed(1)} s`;
    const state = h.accepting ? LEVEL_TEXT[h.level_name] || h.level_name : "full: new calls refused";
    $("box-load-detail").textContent = `${state} · ${lag}`;
  } catch {
    $("box-load-detail").textContent = "load unknown";
  }
}

function onState(state) {
  const status = $("status");
  status.dataset.state = state;
  status.querySelector(".status__text").textContent = state === "open" ? "Live" : state === "connecting" ? "Connecting…" : "Reconnecting…";
}

/** The cluster behind this gateway (hidden on a single box); false: stop asking. */
async function pollCluster() {
  try {
    const c = await api("/api/cluster");
    $("cluster").hidden = !c.enabled;
    if (!c.enabled) return false;
    $("cluster-workers").textContent = String(c.workers);
    const langs = c.languages.length ? c.languages.join(", ") : "no language served";
    const busy = `workers busy ${Math.round(c.worker_busy * 100)}%`;
    $("cluster-detail").textContent =
      `${c.gateways} gateway(s) · ${c.calls} call(s) · audio ${c.audio_calls} of ${c.capacity} · ${langs} · ${busy}`;
    return true;
  } catch {
    $("cluster-detail").textContent = "cluster unknown";
    return true;
  }
}

async function main() {
  await signedIn();
  $("drawer-close").addEventListener("click", () => {
    followed = null;
    $("drawer").hidden = true;
    for (const c of calls.values()) c.tile?.setAttribute("aria-pressed", "false");
  });
  const conn = new Connection({ url: defaultUrl(), onEnvelope, onState, getResume: () => null });
  conn.start();
  setInterval(tick, 1000);
  pollLoad();
  setInterval(pollLoad, 3000);
  summary();
  if (await pollCluster()) setInterval(pollCluster, 3000);
}

main();
