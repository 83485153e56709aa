// Review page: search stored calls, or replay one call with its evidence and scorecard.
//
// /review.html                 the call list (filters in the URL) and per-agent statistics
// /review.html?call=ID         one call: audio in step with the two-speaker transcript, a
//                              timeline with silences, overlaps, warnings and suggestions,
//                              the scorecard with cited moments and supervisor overrides

import { api, clock, el, label, scoreClass, signedIn, when } from "./common.js";

const $ = (id) => document.querySelector(`[data-testid=${id}]`);
const params = new URLSearchParams(window.location.search);
let me = null;

// -------------------------------------------------------------------- the list

const FILTERS = ["agent", "since", "until", "signal", "warning", "min_score", "max_score", "q"];

async function listView() {
  $("list-view").hidden = false;
  const form = $("filters");
  const vocab = await api("/api/vocabulary");
  for (const s of vocab.signals) form.elements.signal.append(el("option", { value: s, text: label(s) }));
  for (const w of vocab.warnings) form.elements.warning.append(el("option", { value: w, text: w }));
  for (const key of FILTERS) if (params.get(key) && form.elements[key]) form.elements[key].value = params.get(key);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const key of FILTERS) {
      const field = form.elements[key];
      if (field && field.value && !(key === "agent" && field.closest("[hidden]"))) q.set(key, field.value);
    }
    history.replaceState(null, "", `/review.html${q.toString() ? `?${q}` : ""}`);
    loadList(q);
  });
  const q = new URLSearchParams();
  for (const key of FILTERS) if (params.get(key)) q.set(key, params.get(key));
  await loadList(q);
}

async function loadList(q) {
  const rows = await api(`/api/calls?${q}`);
  $("call-count").textContent = String(rows.length);
  $("no-calls").hidden = rows.length > 0;
  $("call-rows").replaceChildren(...rows.map((r) => {
    const tr = el("tr", { "data-testid": "call-row", dataset: { call: r.call_id } },
      el("td", { class: "mono", text: when(r.started_at) }),
      el("td", { text: r.agent || "—" }),
      el("td", {}, el("div", { text: r.title || r.call_id }), el("div", { class: "muted mono", text: r.call_id })),
      el("td", { class: "mono", text: r.duration_ms === null ? "live" : clock(r.duration_ms) }),
      el("td", { text: (r.language || "").toUpperCase() }),
      el("td", {}, el("span", { class: scoreClass(r.score), text: r.score === null ? "—" : r.score.toFixed(0) }),
        r.failed ? el("span", { class: "autofail", text: " auto-fail" }) : null));
    tr.addEventListener("click", () => window.location.assign(`/review.html?call=${encodeURIComponent(r.call_id)}`));
    return tr;
  }));
  const sq = new URLSearchParams();
  for (const key of ["agent", "since", "until"]) if (q.get(key)) sq.set(key, q.get(key));
  const suffix = sq.toString() ? `&${sq}` : "";
  $("export-csv").href = `/api/stats?format=csv${suffix}`;
  $("export-lines").href = `/api/stats?format=csv&table=lines${suffix}`;
  $("export-json").href = `/api/stats${sq.toString() ? `?${sq}` : ""}`;
  const stats = await api(`/api/stats?${sq}`);
  const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
  const money = (x, cur) => `${x >= 0 ? "+" : ""}${Math.round(x).toLocaleString()} ${cur}`;
  $("stats-rows").replaceChildren(...stats.map((s) => el("tr", { "data-testid": "stats-row", dataset: { agent: s.agent } },
    el("td", { text: s.agent }), el("td", { text: s.calls }),
    el("td", {}, el("span", { class: scoreClass(s.average_score), text: s.average_score === null ? "—" : s.average_score.toFixed(1) })),
    el("td", { text: s.offers.suggested }), el("td", { text: s.offers.used }),
    el("td", { text: s.offers.accepted }), el("td", { text: s.offers.declined }),
    el("td", { text: pct(s.offers.acceptance_rate) }),
    el("td", { class: "mono", text: money(s.revenue_monthly, s.currency) }),
    el("td", { class: "mono", text: money(s.lifetime_value, s.currency) }),
    el("td", { text: Object.values(s.warnings_by_rule).reduce((a, b) => a + b, 0) }))));
}

// -------------------------------------------------------------------- one call

const state = { review: null, audio: null, hasAudio: false, duration: 1, cursor: 0, lines: [] };

async function callView(callId) {
  $("call-view").hidden = false;
  let review;
  try {
    review = await api(`/api/calls/${encodeURIComponent(callId)}`);
  } catch (err) {
    $("call-view").replaceChildren(el("section", { class: "panel empty-note", "data-testid": "call-error", dataset: { status: String(err.status || "") } },
      err.status === 403 ? "This call belongs to another agent." : err.status === 404 ? "No such call." : `Cannot load the call: ${err.message}`));
    return;
  }
  state.review = review;
  state.duration = Math.max(1, review.timeline.duration_ms, review.call.duration_ms || 0);
  renderHead(review);
  renderTimeline(review);
  renderTranscript(review);
  renderShare(review.timeline);
  renderScore(review.score);
  renderSuggestions(review);
  renderWarnings(review);
  setupAudio(review);
  const t = Number(params.get("t"));
  if (t) seek(t, false);
}

function renderHead(r) {
  const c = r.call;
  document.title = `${c.title || c.call_id} · Call review`;
  $("call-title").textContent = c.title || c.call_id;
  $("call-meta").replaceChildren(
    el("span", { "data-testid": "call-agent", text: `Agent: ${c.agent || "unassigned"}` }),
    el("span", { text: when(c.started_at) }),
    el("span", { class: "mono", text: c.duration_ms === null ? "live" : clock(c.duration_ms) }),
    el("span", { text: (c.language || "").toUpperCase() }),
    el("span", { class: "mono", text: c.call_id }));
  renderTotal(r.score);
}

function renderTotal(score) {
  const total = score.total;
  $("total").replaceChildren(total === null ? "—" : total.toFixed(0), el("small", { text: " / 100" }));
  $("total").className = `bigscore ${scoreClass(total).replace("score ", "")}`;
  $("auto-total").textContent = score.auto_total === null ? "" : `automatic ${score.auto_total.toFixed(0)}`;
  $("call-failed").hidden = !score.failed;
}

function pct(ms) {
  return `${(100 * ms) / state.duration}%`;
}

function renderTimeline(r) {
  const finals = r.events.filter((e) => e.type === "transcript.final");
  for (const speaker of ["agent", "customer"]) {
    $(`lane-${speaker}`).replaceChildren(...finals.filter((e) => e.data.speaker === speaker).map((e) =>
      el("div", { class: "seg", title: e.data.text, style: `left:${pct(e.t_ms)};width:${pct(e.data.end_ms - e.t_ms)}` })));
  }
  const lanes = $("lanes");
  for (const old of lanes.querySelectorAll(".gap, .ovl, .pin")) old.remove();
  for (const [a, b] of r.timeline.silences) lanes.append(el("div", { class: "gap", "data-testid": "silence", title: `silence ${((b - a) / 1000).toFixed(1)} s`, style: `left:${pct(a)};width:${pct(b - a)}` }));
  for (const [a, b, who] of r.timeline.overlaps) lanes.append(el("div", { class: "ovl", "data-testid": "overlap", title: `overlap ${((b - a) / 1000).toFixed(1)} s (${who} talked over)`, style: `left:${pct(a)};width:${pct(b - a)}` }));
  for (const e of r.events.filter((x) => x.type === "warning" || x.type === "suggestion")) {
    const pin = el("div", { class: `pin pin--${e.type}`, title: e.type === "warning" ? e.data.title : e.data.offer, style: `left:${pct(e.t_ms)}` });
    lanes.append(pin);
  }
  lanes.addEventListener("click", (ev) => {
    const box = lanes.getBoundingClientRect();
    seek(((ev.clientX - box.left) / box.width) * state.duration, false);
  });
  lanes.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowRight") seek(state.cursor + 5000, false);
    if (ev.key === "ArrowLeft") seek(state.cursor - 5000, false);
  });
}

function highlightQuote(text, spans) {
  // spans: [{start, end, kind}] over text; returns nodes with <mark>s.
  const nodes = [];
  let at = 0;
  for (const s of spans.sort((a, b) => a.start - b.start)) {
    if (s.start < at || s.end > text.length) continue;
    nodes.push(text.slice(at, s.start), el("mark", { class: `q q--${s.kind}`, text: text.slice(s.start, s.end) }));
    at = s.end;
  }
  nodes.push(text.slice(at));
  return nodes;
}

function renderTranscript(r) {
  const spans = new Map();
  for (const e of r.events) {
    const ev = e.data && e.data.evidence;
    if (!ev || !ev.utterance_id || !["signal", "warning"].includes(e.type)) continue;
    if (!spans.has(ev.utterance_id)) spans.set(ev.utterance_id, []);
    const list = spans.get(ev.utterance_id);
    if (!list.some((s) => s.start === ev.start)) list.push({ start: ev.start, end: ev.end, kind: e.type });
  }
  const items = [];
  state.lines = [];
  for (const e of r.events) {
    if (e.type === "transcript.final") {
      const d = e.data;
      const words = (d.words || []).length ? d.words.map((w) => el("span", { class: "word", dataset: { start: w.start_ms, end: w.end_ms }, text: w.text })) : null;
      const li = el("li", { class: `line line--${d.speaker}`, "data-testid": "line", dataset: { utterance: d.utterance_id, speaker: d.speaker, start: e.t_ms, end: d.end_ms } },
        el("div", { class: "line__meta" },
          el("span", { class: "line__who", text: d.speaker === "agent" ? "Agent" : "Customer" }),
          el("span", { class: "line__time", "data-testid": "line-time", text: clock(e.t_ms), onclick: () => seek(e.t_ms, true) })),
        el("div", { class: "line__bubble" }, el("p", { class: "line__text", "data-testid": "line-text" },
          words && !spans.has(d.utterance_id) ? words.flatMap((w, i) => (i ? [" ", w] : [w])) : highlightQuote(d.text, spans.get(d.utterance_id) || []))));
      items.push(li);
      state.lines.push({ start: e.t_ms, end: d.end_ms, node: li, id: d.utterance_id });
    } else if (e.type === "warning" || e.type === "suggestion") {
      const d = e.data;
      const time = el("span", { class: "event__time", text: clock(e.t_ms), onclick: () => seek(e.t_ms, true) });
      items.push(e.type === "warning"
        ? el("li", { class: "event event--warning", "data-testid": "inline-warning" }, time, el("span", { class: `sev sev--${d.severity}`, text: d.severity }), el("b", { text: d.title }), el("q", { class: "event__quote", text: d.evidence.quote }))
        : el("li", { class: "event", "data-testid": "inline-suggestion" }, time, el("span", { class: `kind kind--${d.kind}`, text: label(d.kind) }), el("b", { text: d.offer }), el("span", { class: "muted", text: d.line })));
    }
  }
  $("transcript").replaceChildren(...items);
}

function renderShare(t) {
  const agent = t.talk_ms.agent || 0;
  const customer = t.talk_ms.customer || 0;
  const silence = t.silences.reduce((n, [a, b]) => n + (b - a), 0);
  const total = Math.max(1, agent + customer + silence);
  $("talk-share").replaceChildren(
    el("div", { class: "share__bar", "data-testid": "share-bar" },
      el("span", { class: "sw--agent", title: "agent", style: `width:${(100 * agent) / total}%` }),
      el("span", { class: "sw--customer", title: "customer", style: `width:${(100 * customer) / total}%` }),
      el("span", { class: "sw--gap", title: "silence", style: `width:${(100 * silence) / total}%` })),
    el("div", { class: "share__nums" },
      el("div", {}, el("b", { "data-testid": "customer-share", text: t.customer_share === null ? "—" : `${Math.round(t.customer_share * 100)}%` }), "customer talk share"),
      el("div", {}, el("b", { text: clock(agent) }), "agent talking"),
      el("div", {}, el("b", { "data-testid": "silence-count", text: String(t.silences.length) }), `silences ≥ 3 s (${clock(silence)})`),
      el("div", {}, el("b", { "data-testid": "overlap-count", text: String(t.overlaps.length) }), "overlaps ≥ 1 s")));
}

function points(fraction, weight) {
  return fraction === null || fraction === undefined ? "—" : `${(fraction * weight).toFixed(1).replace(/\.0$/, "")}/${weight}`;
}

function renderScore(score) {
  $("card-version").textContent = score.version;
  renderTotal(score);
  const supervisor = me && me.role === "supervisor";
  $("scorecard").replaceChildren(...score.items.map((item) => {
    const cls = ["item"];
    if (item.final === null) cls.push("item--none");
    if (item.auto_fail && item.final === 0) cls.push("item--breach");
    const li = el("li", { class: cls.join(" "), "data-testid": "item", dataset: { item: item.item_id, status: item.status, auto: item.auto ?? "", final: item.final ?? "" } },
      el("div", { class: "item__top" },
        el("span", { class: "item__title", text: item.title }),
        item.auto_fail ? el("span", { class: "autofail", text: "auto-fail" }) : null,
        item.override ? el("span", { class: "item__auto", "data-testid": "item-auto", text: `auto ${points(item.auto, item.weight)}` }) : null,
        el("span", { class: "item__pts", "data-testid": "item-points", text: points(item.final, item.weight) })),
      el("div", { class: "item__summary", text: item.summary }),
      item.override ? el("div", { class: "override", "data-testid": "item-override" }, `Override by ${item.override.by}: ${item.override.reason}`) : null,
      item.moments.length ? el("div", { class: "item__moments" }, item.moments.map((m) =>
        el("button", { type: "button", class: "moment", "data-testid": "moment", dataset: { t: m.t_ms, utterance: m.utterance_id }, title: m.note, onclick: () => seek(m.t_ms, true, m.utterance_id) },
          `${clock(m.t_ms)} · ${m.quote ? `«${m.quote.slice(0, 48)}»` : m.note}`))) : null);
    if (supervisor) {
      li.append(el("details", { class: "override-toggle", "data-testid": "override-toggle" },
        el("summary", { text: item.override ? "Change override" : "Override" }), overrideForm(item)));
    }
    return li;
  }));
}

function overrideForm(item) {
  const form = el("form", { class: "override-form", "data-testid": "override-form", dataset: { item: item.item_id } },
    el("label", { class: "field" }, `Points (0–${item.weight})`,
      el("input", { name: "points", type: "number", min: 0, max: item.weight, step: 0.5, required: true, value: item.final === null ? "" : (item.final * item.weight).toFixed(1) })),
    el("label", { class: "field" }, "Reason", el("input", { name: "reason", required: true, maxlength: 500, placeholder: "why this score", value: item.override ? item.override.reason : "" })),
    el("div", {}, el("button", { type: "submit", class: "btn btn--small", text: "Save" }),
      item.override ? el("button", { type: "button", class: "btn btn--small", "data-testid": "override-clear", text: "Clear", onclick: () => saveOverride(item, null, "") }) : null));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const pts = Number(form.elements.points.value);
    if (!(pts >= 0 && pts <= item.weight)) return;
    saveOverride(item, item.weight ? pts / item.weight : 0, form.elements.reason.value);
  });
  return form;
}

async function saveOverride(item, fraction, reason) {
  const q = new URLSearchParams({ item: item.item_id, score: fraction === null ? "" : String(fraction), reason });
  try {
    const score = await api(`/api/calls/${encodeURIComponent(state.review.call.call_id)}/override?${q}`, { method: "POST" });
    state.review.score = score;
    renderScore(score);
  } catch (err) {
    window.alert(`The override was not saved: ${err.message}`);
  }
}

function renderSuggestions(r) {
  const outcome = new Map(r.offers.map((o) => [o.suggestion_id, o]));
  const list = r.events.filter((e) => e.type === "suggestion");
  $("suggestion-count").textContent = String(list.length);
  $("suggestions").replaceChildren(...(list.length ? list.map((e) => {
    const d = e.data;
    const o = outcome.get(d.suggestion_id);
    return el("div", { class: "offer", "data-testid": "suggestion", dataset: { kind: d.kind, outcome: o ? o.outcome : "", used: o ? String(o.used) : "" } },
      el("div", { class: "offer__top" },
        el("span", { class: `kind kind--${d.kind}`, text: label(d.kind) }), el("b", { text: d.offer }),
        o && o.used ? el("span", { class: "badge badge--used", text: "used" }) : null,
        o && o.outcome !== "open" ? el("span", { class: `badge badge--${o.outcome}`, text: o.outcome }) : null,
        el("button", { type: "button", class: "moment spacer", text: clock(e.t_ms), onclick: () => seek(e.t_ms, true) })),
      el("div", { class: "offer__line", text: d.line }),
      el("div", { class: "warn__ref", text: `${d.rule_id} · because «${d.evidence.quote}»` }));
  }) : [el("p", { class: "empty-note", text: "No suggestions in this call." })]));
}

function renderWarnings(r) {
  const list = r.events.filter((e) => e.type === "warning");
  $("warning-count").textContent = String(list.length);
  $("warning-count").className = list.length ? "count count--warn" : "count";
  $("warnings").replaceChildren(...(list.length ? list.map((e) => {
    const d = e.data;
    return el("div", { class: "warn", "data-testid": "warning", dataset: { rule: d.rule_id } },
      el("div", { class: "offer__top" }, el("span", { class: `sev sev--${d.severity}`, text: d.severity }), el("span", { class: "warn__title", text: d.title }),
        el("button", { type: "button", class: "moment spacer", text: clock(e.t_ms), onclick: () => seek(e.t_ms, true) })),
      el("div", { class: "offer__line" }, "«", el("b", { text: d.evidence.quote }), "» ", d.message),
      el("div", { class: "offer__line", text: `Instead: ${d.instead}` }),
      el("div", { class: "warn__ref", text: `${d.rule_id} · ${d.reference}` }));
  }) : [el("p", { class: "empty-note", text: "No warnings in this call." })]));
}

// -------------------------------------------------------------------- audio and the cursor

function setupAudio(r) {
  const audio = $("audio");
  state.audio = audio;
  state.hasAudio = r.has_audio;
  const play = $("play");
  if (!r.has_audio) {
    play.disabled = true;
    $("no-audio").hidden = false;
    updateTime();
    return;
  }
  audio.src = `/api/calls/${encodeURIComponent(r.call.call_id)}/audio`;
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  audio.addEventListener("play", () => { play.textContent = "❚❚"; play.setAttribute("aria-label", "Pause"); });
  audio.addEventListener("pause", () => { play.textContent = "▶"; play.setAttribute("aria-label", "Play"); });
  audio.addEventListener("timeupdate", () => { state.cursor = audio.currentTime * 1000; follow(); });
  audio.addEventListener("seeked", () => { state.cursor = audio.currentTime * 1000; follow(); });
  audio.addEventListener("loadedmetadata", updateTime);
}

function updateTime() {
  const total = state.hasAudio && Number.isFinite(state.audio.duration) ? state.audio.duration * 1000 : state.duration;
  $("time").textContent = `${clock(state.cursor)} / ${clock(total)}`;
  $("playhead").style.left = pct(Math.min(state.cursor, state.duration));
}

/** Highlight the utterance (and word) under the cursor; keep it in view while playing. */
function follow(scroll = false) {
  updateTime();
  const t = state.cursor;
  let current = null;
  for (const line of state.lines) {
    const on = t >= line.start && t <= line.end + 150;
    line.node.classList.toggle("line--now", on);
    if (on) current = line;
    if (on || line.node.querySelector(".word--now")) {
      for (const w of line.node.querySelectorAll(".word")) w.classList.toggle("word--now", on && t >= Number(w.dataset.start) && t <= Number(w.dataset.end));
    }
  }
  if (current && (scroll || (state.hasAudio && !state.audio.paused))) {
    const box = $("transcript-scroll");
    const top = current.node.offsetTop - box.offsetTop - box.clientHeight / 3;
    if (scroll || Math.abs(box.scrollTop - top) > box.clientHeight / 2) box.scrollTop = top;
  }
}

function seek(ms, play, utteranceId) {
  state.cursor = Math.max(0, Math.min(ms, state.duration));
  if (state.hasAudio) {
    state.audio.currentTime = state.cursor / 1000;
    if (play) state.audio.play().catch(() => {});
  }
  follow(true);
  const target = state.lines.find((l) => l.id === utteranceId) || state.lines.find((l) => ms >= l.start && ms <= l.end + 150);
  if (target) {
    target.node.classList.remove("line--cited");
    void target.node.offsetWidth;
    target.node.classList.add("line--cited");
    $("transcript").dataset.cited = target.id;
  }
}

async function main() {
  me = await signedIn();
  const callId = params.get("call");
  if (callId) await callView(callId);
  else await listView();
}

main();
