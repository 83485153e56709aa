// agent-assist console: follows live calls and shows transcript, suggestions, warnings.
//
// Rules this file keeps:
// - Server text never goes through innerHTML; every node is built with textContent.
// - Every event is applied idempotently, keyed by (call_id, seq): duplicates (after a
//   resume, or from a history fetch overlapping live events) are dropped, and the view
//   is derived from seq order, so events that arrive out of order still end right.
// - Unknown types and missing fields are tolerated; nothing here may throw on bad data.

import { Connection, defaultUrl, fetchHistory } from "./protocol.js";

// ---------------------------------------------------------------- text & i18n

const UI = {
  en: {
    agent: "Agent",
    customer: "Customer",
    transcript: "Transcript",
    suggestion: "Suggestion",
    warnings: "Warnings",
    history: "Earlier suggestions",
    noSuggestion: "No suggestion yet. Listen to the customer.",
    noWarning: "No warnings. Keep going.",
    waiting: "Waiting for a call…",
    jump: "New messages",
    phase: "Phase",
    pickerLabel: "Call",
    auto: "Follow latest call",
    autoFollowing: "Auto · following latest",
    ended: "ended",
    newCall: "New call",
    because: "Because the customer said",
    saidBy: "Said by",
    instead: "Instead",
    reference: "Reference",
    agentSaid: "You said",
    callEnded: "Call ended",
    connecting: "Connecting…",
    open: "Live",
    closed: "Disconnected",
    retry: (s) => `Reconnecting in ${s}s`,
    severity: { high: "High", medium: "Medium", low: "Low" },
    kind: { upsell: "Upsell", cross_sell: "Cross-sell", downsell: "Downsell", retention: "Retention" },
    phaseName: {
      opening: "opening", discovery: "discovery", offer_open: "offer open", declined: "declined",
      accepted: "accepted", retention: "retention", care: "customer care", closing: "closing",
    },
    reason: { hangup: "hang-up", disconnected: "disconnected" },
    // the agent's marks on a suggestion: button, state, tooltip
    fbButton: { used: "Used", accepted: "Accepted", declined: "Declined", dismissed: "Dismiss" },
    fbState: { used: "Used", accepted: "Accepted", declined: "Declined", dismissed: "Dismissed" },
    fbHint: {
      used: "I said this line",
      accepted: "The customer said yes",
      declined: "The customer said no",
      dismissed: "Not for this customer: not suggested again in this call",
    },
    fbSending: "Sending…",
    notConnected: "Not connected: try again in a moment.",
    expired: "Expired",
    expiredHint: "This suggestion is stale: the conversation has moved on.",
    why: "Why?",
    outcome: { shown: "Shown", suppressed: "Suppressed" },
    subject: { suggestion: "suggestion", warning: "warning" },
    decidedBy: "by",
    customerBox: "Customer",
    customerIdLabel: "Customer ID",
    linkPlaceholder: "Customer ID, e.g. C-1001",
    link: "Link",
    linking: "Linking…",
    noCustomer: "No customer linked.",
    notInCrm: "not in the CRM",
    perMonth: "/mo",
    lastMonth: "Last month",
    renews: "Renews",
    tenure: (n) => `${n} mo with us`,
    tier: "Tier",
    churn: "Churn risk",
    risk: { low: "low", medium: "medium", high: "high" },
    price: (n) => `¥${n.toLocaleString("en-US")}`,
    errors: {
      "customer.unknown": "No such customer in the CRM.",
      "feedback.unknown_suggestion": "The server does not know this suggestion.",
      "call.unknown": "The call is no longer live.",
    },
  },
  ja: {
    agent: "担当者",
    customer: "お客様",
    transcript: "会話",
    suggestion: "提案",
    warnings: "注意",
    history: "これまでの提案",
    noSuggestion: "提案はまだありません。お客様のお話を伺ってください。",
    noWarning: "注意事項はありません。",
    waiting: "通話を待っています…",
    jump: "新しい発言",
    phase: "フェーズ",
    pickerLabel: "通話",
    auto: "最新の通話を自動表示",
    autoFollowing: "自動 · 最新の通話",
    ended: "終了",
    newCall: "新しい通話",
    because: "お客様の発言",
    saidBy: "発言",
    instead: "代わりに",
    reference: "根拠",
    agentSaid: "担当者の発言",
    callEnded: "通話終了",
    connecting: "接続中…",
    open: "ライブ",
    closed: "切断",
    retry: (s) => `${s}秒後に再接続`,
    severity: { high: "重大", medium: "注意", low: "軽微" },
    kind: { upsell: "アップセル", cross_sell: "クロスセル", downsell: "ダウンセル", retention: "解約防止" },
    phaseName: {
      opening: "オープニング", discovery: "ヒアリング", offer_open: "提案中", declined: "辞退",
      accepted: "承諾", retention: "解約防止", care: "お客様ケア", closing: "クロージング",
    },
    reason: { hangup: "終話", disconnected: "切断" },
    fbButton: { used: "案内した", accepted: "承諾", declined: "お断り", dismissed: "対象外" },
    fbState: { used: "案内済み", accepted: "承諾", declined: "お断り", dismissed: "対象外" },
    fbHint: {
      used: "このトークを案内しました",
      accepted: "お客様が承諾されました",
      declined: "お客様がお断りになりました",
      dismissed: "このお客様には不適: この通話では再提案しません",
    },
    fbSending: "送信中…",
    notConnected: "未接続です。少し待ってからもう一度お試しください。",
    expired: "期限切れ",
    expiredHint: "会話が進んだため、この提案は古くなっています。",
    why: "判断の理由",
    outcome: { shown: "表示", suppressed: "見送り" },
    subject: { suggestion: "提案", warning: "注意" },
    decidedBy: "判定",
    customerBox: "顧客",
    customerIdLabel: "顧客ID",
    linkPlaceholder: "顧客ID (例: C-1001)",
    link: "紐付け",
    linking: "紐付け中…",
    noCustomer: "顧客が紐付いていません。",
    notInCrm: "CRMに登録なし",
    perMonth: "/月",
    lastMonth: "先月",
    renews: "更新",
    tenure: (n) => `契約${n}か月`,
    tier: "ランク",
    churn: "解約リスク",
    risk: { low: "低", medium: "中", high: "高" },
    price: (n) => `${n.toLocaleString("ja-JP")}円`,
    errors: {
      "customer.unknown": "CRMにこの顧客IDは登録されていません。",
      "feedback.unknown_suggestion": "サーバーがこの提案を認識していません。",
      "call.unknown": "この通話はすでに終了しています。",
    },
  },
};

const KINDS = new Set(["upsell", "cross_sell", "downsell", "retention"]);
const SEVERITIES = new Set(["high", "medium", "low"]);
const FEEDBACK_ACTIONS = ["used", "accepted", "declined", "dismissed"];
const FINAL_FEEDBACK = new Set(["accepted", "declined", "dismissed"]); // after these the card is settled
const OUTCOMES = new Set(["shown", "suppressed"]);
const PENDING_TIMEOUT_MS = 10000; // no answer to a request by then: let the agent try again

function browserLang() {
  const l = (navigator.language || "en").toLowerCase();
  return l.startsWith("ja") ? "ja" : "en";
}

function uiLang(call) {
  const l = call ? call.uiLanguage() : browserLang();
  return l === "ja" ? "ja" : "en";
}

function t(lang) {
  return UI[lang] || UI.en;
}

/** map[key] for own keys only (server strings must never reach Object.prototype). */
function pick(map, key) {
  return typeof key === "string" && Object.hasOwn(map, key) ? map[key] : undefined;
}

const str = (v, dflt = "") => (typeof v === "string" ? v : v === null || v === undefined ? dflt : String(v));
const int = (v, dflt = null) => (Number.isFinite(v) ? Math.trunc(v) : dflt);
const obj = (v) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});

function fmtMs(ms) {
  const total = Math.max(0, Math.floor((int(ms, 0) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function humanize(name) {
  return str(name).replace(/[._]+/g, " ").trim();
}

/** el("div", {class: "x", "data-testid": "y"}, child, "text", ...) — text via text nodes only. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = str(v);
      else node.setAttribute(k, v === true ? "" : str(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(str(c)));
  }
  return node;
}

// ------------------------------------------------------------ evidence offsets

/**
 * Resolve an evidence span to code-point offsets [start, end) into `text`.
 * Protocol offsets are Python string indices (code points), so we index Array.from(text),
 * never the UTF-16 string. Falls back to searching the quote when the offsets do not
 * match the text (e.g. the evidence came from a partial that the final revised).
 */
function resolveSpan(text, evidence) {
  const ev = obj(evidence);
  const cps = Array.from(text);
  const quote = str(ev.quote);
  const s = int(ev.start);
  const e = int(ev.end);
  if (s !== null && e !== null && s >= 0 && e > s && e <= cps.length) {
    if (!quote || cps.slice(s, e).join("") === quote) return [s, e];
  }
  if (quote) {
    const idx = text.indexOf(quote);
    if (idx >= 0) {
      const start = Array.from(text.slice(0, idx)).length;
      return [start, start + Array.from(quote).length];
    }
  }
  return null;
}

/** Fill `node` with `text`, wrapping the given code-point ranges in <mark>s. */
function renderMarked(node, text, ranges) {
  node.replaceChildren();
  const cps = Array.from(text);
  const n = cps.length;
  const spans = ranges.filter((r) => r && r.start < r.end && r.start >= 0 && r.end <= n);
  if (!spans.length) {
    node.textContent = text;
    return;
  }
  const cuts = new Set([0, n]);
  for (const r of spans) {
    cuts.add(r.start);
    cuts.add(r.end);
  }
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i++) {
    const a = points[i];
    const b = points[i + 1];
    const piece = cps.slice(a, b).join("");
    const active = spans.filter((r) => r.start <= a && r.end >= b);
    if (!active.length) {
      node.append(document.createTextNode(piece));
      continue;
    }
    const cls = new Set(["mark"]);
    const titles = [];
    for (const r of active) {
      cls.add(`mark--${r.kind}`);
      if (r.title && !titles.includes(r.title)) titles.push(r.title);
    }
    node.append(el("mark", { class: [...cls].join(" "), title: titles.join(" · ") || null }, piece));
  }
}

// ---------------------------------------------------------------------- state

class Call {
  constructor(id, order) {
    this.id = id;
    this.order = order; // arrival order, a tie-breaker for "most recent"
    this.language = null;
    this.title = "";
    this.startedAt = null;
    this.mode = null;
    this.customerId = null;
    this.seqs = new Set();
    this.hw = 0; // contiguous high-water mark: every seq 1..hw is held
    this.maxSeq = 0;
    this.knownLastSeq = 0; // from `ready`
    this.utterances = new Map(); // utterance_id -> {id, speaker, t_ms, end_ms, text, final, seq, language}
    this.signals = new Map(); // utterance_id -> [{seq, signal, rule_id, speaker, evidence}]
    this.warnMarks = new Map(); // utterance_id -> [{seq, title, evidence}]
    this.phase = null; // {name, seq, from, rule_id}
    this.suggestions = []; // sorted by seq ascending
    this.warnings = []; // sorted by seq ascending
    this.ended = null; // {reason, duration_ms, seq}
    this.feedback = new Map(); // suggestion_id -> [{action, seq, t}] sorted by seq
    this.decisions = []; // sorted by seq ascending
    this.customer = null; // latest customer.linked payload, {..., __seq}
    this.fbPending = new Map(); // suggestion_id -> action sent, not yet answered
    this.fbError = null; // {suggestionId, text} of the last refused mark
    this.linkPending = null; // customer id sent, not yet answered
    this.linkError = null; // {code, text}
    this.audioMs = 0;
    this.firstLanguage = null;
    this.syncing = false;
    this.resumable = true;
  }

  uiLanguage() {
    if (this.language === "ja" || this.language === "en") return this.language;
    return this.firstLanguage || browserLang();
  }

  startedKey() {
    const ms = this.startedAt ? Date.parse(this.startedAt) : NaN;
    return Number.isFinite(ms) ? ms : null;
  }

  /** Record a seq; false when we already hold it. */
  take(seq) {
    if (!Number.isInteger(seq) || seq < 1) return true; // no usable seq: apply, cannot dedupe
    if (this.seqs.has(seq)) return false;
    this.seqs.add(seq);
    if (seq > this.maxSeq) this.maxSeq = seq;
    while (this.seqs.has(this.hw + 1)) this.hw += 1;
    return true;
  }

  /** The agent's latest mark on a suggestion, or null. */
  feedbackFor(suggestionId) {
    const list = suggestionId ? this.feedback.get(suggestionId) : null;
    return list && list.length ? list[list.length - 1] : null;
  }

  bumpAudio(...values) {
    for (const v of values) {
      const n = int(v);
      if (n !== null && n > this.audioMs) this.audioMs = n;
    }
  }
}

let localId = 0; // unique id per stored warning, for keyed rendering

const state = {
  calls: new Map(),
  order: 0,
  followed: null, // call id
  pinned: false,
  newerCall: null, // a call that started while pinned on another
  conn: "connecting",
  connInfo: {},
  events: [],
  errors: [],
};

window.agentAssist = { events: state.events, errors: state.errors, state };

function getCall(id, create = true) {
  let c = state.calls.get(id);
  if (!c && create) {
    state.order += 1;
    c = new Call(id, state.order);
    state.calls.set(id, c);
  }
  return c || null;
}

function isNewer(a, b) {
  // Is call a more recent than call b?
  if (!b) return true;
  const ka = a.startedKey();
  const kb = b.startedKey();
  if (ka !== null && kb !== null && ka !== kb) return ka > kb;
  return a.order > b.order;
}

// --------------------------------------------------------------- event intake

// Always the page's own origin: a console must never be pointed elsewhere by a link.
const url = defaultUrl();

function onEnvelope(env, meta) {
  state.events.push(env);
  const data = obj(env.data);
  switch (env.type) {
    case "ready":
      onReady(data, meta);
      return;
    case "error":
      onError(env, data, meta);
      return;
    default:
      break;
  }
  const callId = typeof env.call_id === "string" && env.call_id ? env.call_id : null;
  if (!callId) return; // connection-level message of a type we do not know
  const isNew = !state.calls.has(callId);
  const call = getCall(callId);
  if (!call.take(env.seq)) return; // duplicate
  if (isNew) renderPicker();
  applyCallEvent(call, env, data, meta);
}

const CATCH_UP_DELAY_MS = 1200;
let catchUpTimer = null;

function onReady(data, meta) {
  const active = Array.isArray(data.active_calls) ? data.active_calls : [];
  let latest = null;
  for (const a of active) {
    const info = obj(a);
    const id = str(info.call_id);
    if (!id) continue;
    const call = getCall(id);
    if (!call.language && info.language) call.language = str(info.language);
    if (!call.startedAt && info.started_at) call.startedAt = str(info.started_at);
    const last = int(info.last_seq, 0);
    if (last > call.knownLastSeq) call.knownLastSeq = last;
    if (!latest || isNewer(call, latest)) latest = call;
  }
  if (!state.pinned && latest) {
    const cur = state.followed ? getCall(state.followed, false) : null;
    if (!cur || isNewer(latest, cur)) follow(latest.id);
  }
  // Catch up on what this socket will not bring: the server may send active calls'
  // backlogs after `ready` (the docs do not promise it), so look again in a moment and
  // fetch only what is still missing then.
  const resumedId = meta && meta.resumed ? meta.resumed.call_id : null;
  const activeIds = new Set(active.map((a) => str(obj(a).call_id)));
  clearTimeout(catchUpTimer);
  catchUpTimer = setTimeout(() => {
    for (const call of state.calls.values()) {
      if (call.id === resumedId) continue;
      const behind = activeIds.has(call.id) && call.knownLastSeq > call.hw;
      const endedWhileAway = !activeIds.has(call.id) && !call.ended && call.hw > 0;
      if ((behind || endedWhileAway) && (call.hw > 0 || call.id === state.followed)) syncHistory(call);
    }
  }, CATCH_UP_DELAY_MS);
  renderAll();
}

function onError(env, data, meta) {
  const entry = {
    code: str(data.code, "error"),
    message: str(data.message),
    fault: str(data.fault),
    fatal: data.fatal === true,
    call_id: env.call_id || null,
    at: Date.now(),
  };
  state.errors.push(entry);
  // The server refused our resume (e.g. its store was reset): stop asking for that call,
  // or every reconnect would be refused the same way.
  if (entry.code === "call.unknown" && meta && meta.source === "main" && meta.beforeReady && meta.resumed) {
    const call = getCall(meta.resumed.call_id, false);
    if (call) call.resumable = false;
  }
  console.warn("agent-assist: server error", entry);
  // An answer to one of our own requests (feedback, customer.link): shown where it was made.
  const ref = int(data.ref_seq);
  const req = ref !== null && meta && meta.source === "main" ? requests.get(ref) : undefined;
  if (req) {
    settleRequest(ref);
    const call = getCall(req.callId, false);
    if (call) {
      const text = entry.message || entry.code;
      if (req.type === "feedback") {
        call.fbPending.delete(req.suggestionId);
        call.fbError = { suggestionId: req.suggestionId, code: entry.code, text };
        if (call.id === state.followed) renderSuggestions(call);
      } else if (req.type === "customer.link") {
        call.linkPending = null;
        call.linkError = { code: entry.code, text, customerId: req.customerId };
        if (call.id === state.followed) renderCustomer(call);
      }
      return;
    }
  }
  toast(entry.code, entry.message, entry.fatal ? "bad" : "info");
}

// ------------------------------------------------------------ requests (out)

const requests = new Map(); // client seq -> {type, callId, suggestionId?, customerId?, timer}

/** Send a request about a live call; remember it so an error naming its seq finds it. */
function sendRequest(type, call, data, info, onTimeout) {
  const seq = conn.send(type, call.id, data);
  if (!seq) return false;
  const timer = setTimeout(() => {
    if (requests.delete(seq)) onTimeout();
  }, PENDING_TIMEOUT_MS);
  requests.set(seq, { type, callId: call.id, ...info, timer });
  return seq;
}

function settleRequest(seq) {
  const req = requests.get(seq);
  if (req) clearTimeout(req.timer);
  requests.delete(seq);
}

/** A new socket numbers its messages afresh: old requests can no longer be answered. */
function forgetRequests() {
  for (const seq of [...requests.keys()]) settleRequest(seq);
  for (const call of state.calls.values()) {
    call.fbPending.clear();
    call.linkPending = null;
  }
}

function sendFeedback(call, suggestionId, action) {
  if (!call || !suggestionId || call.ended || call.fbPending.size) return;
  call.fbError = null;
  const seq = sendRequest("feedback", call, { suggestion_id: suggestionId, action }, { suggestionId }, () => {
    call.fbPending.delete(suggestionId);
    if (call.id === state.followed) renderSuggestions(call);
  });
  if (seq) call.fbPending.set(suggestionId, action);
  else call.fbError = { suggestionId, code: "offline", text: t(uiLang(call)).notConnected };
  renderSuggestions(call);
}

function sendCustomerLink(call, customerId) {
  if (!call || call.ended || call.linkPending) return;
  call.linkError = null;
  const seq = sendRequest("customer.link", call, { customer_id: customerId }, { customerId }, () => {
    call.linkPending = null;
    if (call.id === state.followed) renderCustomer(call);
  });
  if (seq) call.linkPending = customerId;
  else call.linkError = { code: "offline", text: t(uiLang(call)).notConnected, customerId };
  renderCustomer(call);
}

function applyCallEvent(call, env, data, meta) {
  const tms = int(env.t_ms);
  switch (env.type) {
    case "call.started": {
      if (data.language) call.language = str(data.language);
      call.title = str(data.title, call.title);
      call.mode = str(data.mode, call.mode);
      call.customerId = data.customer_id ?? call.customerId;
      if (data.started_at) call.startedAt = str(data.started_at);
      if (call.id !== state.followed) {
        const cur = state.followed ? getCall(state.followed, false) : null;
        if (!state.pinned) {
          // The newest call takes over (by started_at). Backlogs replay older calls'
          // call.started too (late join, resume), and those must not steal the view.
          if (!cur || isNewer(call, cur)) follow(call.id);
        } else if (isNewer(call, cur) && !call.ended) {
          state.newerCall = call.id;
        }
      }
      renderPicker();
      if (call.id === state.followed) renderHeader();
      return;
    }
    case "transcript.partial":
    case "transcript.final": {
      const uid = str(data.utterance_id) || `${str(data.speaker, "unknown")}@${tms ?? env.seq}`;
      const isFinal = env.type === "transcript.final";
      let u = call.utterances.get(uid);
      if (u && u.final && !isFinal) return; // a late partial never overwrites the final
      if (u && !isFinal && int(env.seq, 0) < u.seq) return; // an older revision
      const text = str(data.text);
      if (!text.trim()) {
        // Nothing was said after all (an empty final, or a blank partial): drop the bubble.
        if (u && isFinal) {
          call.utterances.delete(uid);
          if (call.id === state.followed) removeUtterance(uid);
        }
        return;
      }
      if (!u) {
        u = { id: uid, speaker: str(data.speaker, "unknown"), t_ms: tms ?? 0, end_ms: null, text, final: false, seq: 0 };
        call.utterances.set(uid, u);
      }
      const oldT = u.t_ms;
      u.text = text;
      u.seq = int(env.seq, u.seq);
      if (data.speaker) u.speaker = str(data.speaker);
      if (isFinal) {
        u.final = true;
        if (tms !== null) u.t_ms = tms; // final t_ms is the utterance start
        u.end_ms = int(data.end_ms);
        if (data.language) {
          u.language = str(data.language);
          if (!call.firstLanguage && (u.language === "ja" || u.language === "en")) call.firstLanguage = u.language;
        }
      } else if (tms !== null && tms < u.t_ms) {
        u.t_ms = tms;
      }
      call.bumpAudio(tms, data.end_ms);
      if (call.id === state.followed) {
        upsertUtterance(call, u, oldT !== u.t_ms);
        renderHeader();
      }
      return;
    }
    case "signal": {
      const ev = obj(data.evidence);
      const uid = str(ev.utterance_id);
      call.bumpAudio(tms);
      if (!uid) return;
      const list = call.signals.get(uid) || [];
      list.push({ seq: int(env.seq, 0), signal: str(data.signal, "signal"), detail: str(data.detail), rule_id: str(data.rule_id), speaker: str(data.speaker), evidence: ev });
      list.sort((a, b) => a.seq - b.seq);
      call.signals.set(uid, list);
      if (call.id === state.followed) refreshUtterance(call, uid);
      return;
    }
    case "phase": {
      const to = str(data.to);
      if (to && (!call.phase || int(env.seq, 0) >= call.phase.seq)) {
        call.phase = { name: to, from: str(data.from), rule_id: str(data.rule_id), seq: int(env.seq, 0) };
      }
      call.bumpAudio(tms);
      if (call.id === state.followed) renderHeader();
      return;
    }
    case "suggestion": {
      call.suggestions.push({ ...data, __seq: int(env.seq, 0), __t: tms });
      call.suggestions.sort((a, b) => a.__seq - b.__seq);
      call.bumpAudio(tms);
      if (call.id === state.followed) {
        renderSuggestions(call);
        renderHeader();
      }
      return;
    }
    case "warning": {
      localId += 1;
      const w = { ...data, __seq: int(env.seq, 0), __id: localId, __t: tms, __live: !meta || meta.source === "main" };
      call.warnings.push(w);
      call.warnings.sort((a, b) => a.__seq - b.__seq || a.__id - b.__id);
      const ev = obj(data.evidence);
      const uid = str(ev.utterance_id);
      if (uid) {
        const marks = call.warnMarks.get(uid) || [];
        marks.push({ seq: w.__seq, title: str(data.title), evidence: ev });
        call.warnMarks.set(uid, marks);
      }
      call.bumpAudio(tms);
      if (call.id === state.followed) {
        renderWarnings(call);
        if (uid) refreshUtterance(call, uid);
        renderHeader();
      }
      return;
    }
    case "offer.feedback": {
      const sid = str(data.suggestion_id);
      const action = str(data.action);
      call.bumpAudio(tms);
      if (!sid || !action) return;
      const list = call.feedback.get(sid) || [];
      list.push({ action, seq: int(env.seq, 0), t: tms });
      list.sort((a, b) => a.seq - b.seq);
      call.feedback.set(sid, list);
      call.fbPending.delete(sid);
      if (call.fbError && call.fbError.suggestionId === sid) call.fbError = null;
      if (call.id === state.followed) {
        renderSuggestions(call);
        renderHeader();
      }
      return;
    }
    case "customer.linked": {
      const seq = int(env.seq, 0);
      if (!call.customer || seq >= call.customer.__seq) {
        call.customer = { ...data, __seq: seq };
        if (data.customer_id) call.customerId = str(data.customer_id);
      }
      call.linkPending = null;
      call.linkError = null;
      call.bumpAudio(tms);
      if (call.id === state.followed) {
        renderCustomer(call);
        renderHeader();
      }
      return;
    }
    case "decision": {
      call.decisions.push({ ...data, __seq: int(env.seq, 0), __t: tms });
      call.decisions.sort((a, b) => a.__seq - b.__seq);
      call.bumpAudio(tms);
      if (call.id === state.followed) {
        renderDecisions(call);
        renderHeader();
      }
      return;
    }
    case "call.ended": {
      call.ended = { reason: str(data.reason), duration_ms: int(data.duration_ms), seq: int(env.seq, 0) };
      call.bumpAudio(tms, data.duration_ms);
      if (state.newerCall === call.id) state.newerCall = null;
      renderPicker();
      if (call.id === state.followed) {
        renderHeader();
        renderEnded(call);
        renderSuggestions(call);
        renderCustomer(call);
      }
      return;
    }
    default:
      // Unknown event type for a call: kept in agentAssist.events, otherwise ignored.
      call.bumpAudio(tms);
      if (call.id === state.followed) renderHeader();
  }
}

/** Fetch stored events of a call we joined late (or that moved on while we were away). */
function syncHistory(call) {
  if (call.syncing) return;
  call.syncing = true;
  fetchHistory({ url, callId: call.id, afterSeq: call.hw, onEnvelope }).then(() => {
    call.syncing = false;
  });
}

function follow(callId, { byUser = false } = {}) {
  if (state.followed === callId) return;
  state.followed = callId;
  if (state.newerCall === callId) state.newerCall = null;
  const call = getCall(callId);
  // The user picked a call we hold only part of: fetch the rest now.
  if (byUser && call.knownLastSeq > call.hw) syncHistory(call);
  renderAll();
}

// --------------------------------------------------------------------- render

const $ = (sel) => document.querySelector(sel);
const dom = {
  status: $("[data-testid=status]"),
  statusText: $(".status__text"),
  picker: $("[data-testid=call-picker]"),
  newCall: $("[data-testid=new-call]"),
  callId: $("[data-testid=call-id]"),
  callLang: $("[data-testid=call-language]"),
  callTitle: $("[data-testid=call-title]"),
  callEnded: $(".callmeta__ended"),
  elapsed: $("[data-testid=elapsed]"),
  phase: $("[data-testid=phase]"),
  phaseBox: $(".phase"),
  ended: $(".ended-slot"),
  scroll: $("[data-testid=transcript]"),
  empty: $("[data-testid=empty]"),
  list: $(".utterances"),
  jump: $("[data-testid=jump-latest]"),
  suggestBody: $(".suggest__body"),
  history: $("[data-testid=suggestion-history]"),
  historyList: $(".history__list"),
  historyCount: $("[data-testid=suggestion-history] .count"),
  why: $("[data-testid=why]"),
  whyList: $(".why__list"),
  whyCount: $("[data-testid=why] .count"),
  customerBox: $("[data-testid=customer-box]"),
  customerBody: $(".custbox__body"),
  warnList: $(".warns__list"),
  warnCount: $("[data-testid=warning-count]"),
  noWarning: $("[data-testid=no-warning]"),
  toasts: $("[data-testid=toasts]"),
};

const uttNodes = new Map(); // utterance_id -> <li> of the followed call
let renderedCallId = null;
let stickToBottom = true;

function followedCall() {
  return state.followed ? getCall(state.followed, false) : null;
}

function renderAll() {
  const call = followedCall();
  const lang = uiLang(call);
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    const v = pick(t(lang), node.getAttribute("data-i18n"));
    if (typeof v === "string") node.textContent = v;
  }
  renderStatus();
  renderPicker();
  renderHeader();
  renderTranscript(call);
  renderCustomer(call);
  renderSuggestions(call);
  renderDecisions(call);
  renderWarnings(call);
  renderEnded(call);
}

function renderStatus() {
  const call = followedCall();
  const L = t(uiLang(call));
  const s = state.conn;
  dom.status.setAttribute("data-state", s);
  let text = pick(L, s) || s;
  if (s === "closed" && state.connInfo.retryAt) {
    const secs = Math.max(0, Math.ceil((state.connInfo.retryAt - Date.now()) / 1000));
    text = `${L.closed} · ${L.retry(secs)}`;
  }
  dom.statusText.textContent = text;
  dom.status.title = url;
}

function renderPicker() {
  const call = followedCall();
  const L = t(uiLang(call));
  const calls = [...state.calls.values()].sort((a, b) => (isNewer(a, b) ? -1 : 1));
  const opts = [el("option", { value: "" }, state.pinned ? L.auto : L.autoFollowing)];
  for (const c of calls) {
    const bits = [c.id];
    if (c.title) bits.push(c.title);
    if (c.language) bits.push(c.language.toUpperCase());
    const label = `${c.ended ? "○" : "●"} ${bits.join(" · ")}${c.ended ? ` (${L.ended})` : ""}`;
    opts.push(el("option", { value: c.id }, label));
  }
  dom.picker.replaceChildren(...opts);
  dom.picker.value = state.pinned && state.followed ? state.followed : "";
  if (state.pinned && state.newerCall && state.newerCall !== state.followed) {
    dom.newCall.hidden = false;
    dom.newCall.textContent = `${L.newCall}: ${state.newerCall} →`;
  } else {
    dom.newCall.hidden = true;
  }
}

function renderHeader() {
  const call = followedCall();
  const L = t(uiLang(call));
  dom.callId.textContent = call ? call.id : "";
  dom.callId.title = call ? call.id : "";
  if (call && call.language) {
    dom.callLang.hidden = false;
    dom.callLang.textContent = call.language.toUpperCase();
  } else {
    dom.callLang.hidden = true;
  }
  dom.callTitle.textContent = call ? call.title : "";
  dom.callTitle.title = call ? call.title : "";
  dom.callEnded.hidden = !(call && call.ended);
  dom.callEnded.textContent = L.ended;
  dom.elapsed.textContent = fmtMs(call ? call.audioMs : 0);
  const phase = call && call.phase ? call.phase.name : "";
  const phaseLabel = phase ? pick(L.phaseName, phase) || humanize(phase) : "";
  dom.phase.textContent = phaseLabel;
  dom.phase.setAttribute("data-phase", phase);
  dom.phaseBox.setAttribute("data-phase", phase);
  dom.phaseBox.title = phase ? `${L.phase}: ${phaseLabel} (${phase})` : "";
  dom.phaseBox.hidden = !phase;
  const lang = uiLang(call);
  if (document.documentElement.lang !== lang) {
    renderAll();
    return;
  }
  // Audio time moved on: the current card may have just expired (keyed, cheap otherwise).
  if (call) renderSuggestions(call);
}

function renderEnded(call) {
  if (!call || !call.ended) {
    dom.ended.hidden = true;
    dom.ended.replaceChildren();
    return;
  }
  const L = t(uiLang(call));
  const reason = call.ended.reason ? pick(L.reason, call.ended.reason) || call.ended.reason : "";
  const dur = call.ended.duration_ms !== null ? fmtMs(call.ended.duration_ms) : "";
  const atBottom = isAtBottom();
  dom.ended.hidden = false;
  dom.ended.replaceChildren(
    el("div", { class: "ended", "data-testid": "call-ended", "data-reason": call.ended.reason },
      el("span", { class: "ended__icon", "aria-hidden": "true" }),
      el("strong", null, L.callEnded),
      reason ? el("span", null, reason) : null,
      dur ? el("span", { class: "ended__dur" }, dur) : null),
  );
  afterContentChange(atBottom);
}

// transcript -------------------------------------------------------------------

function speakerLabel(call, speaker) {
  const L = t(uiLang(call));
  if (speaker === "agent") return L.agent;
  if (speaker === "customer") return L.customer;
  return humanize(speaker) || "?";
}

function utteranceRanges(call, u) {
  const ranges = [];
  for (const s of call.signals.get(u.id) || []) {
    const span = resolveSpan(u.text, s.evidence);
    if (span) ranges.push({ start: span[0], end: span[1], kind: "signal", title: humanize(s.signal) });
  }
  for (const w of call.warnMarks.get(u.id) || []) {
    const span = resolveSpan(u.text, w.evidence);
    if (span) ranges.push({ start: span[0], end: span[1], kind: "warning", title: w.title });
  }
  return ranges;
}

function buildUtterance(call, u) {
  const li = el("li", { class: "utt", "data-testid": "utterance" });
  const meta = el("div", { class: "utt__meta" }, el("span", { class: "utt__who" }), el("span", { class: "utt__time" }));
  const text = el("p", { class: "utt__text", "data-testid": "utterance-text" });
  const tags = el("div", { class: "utt__tags" });
  const bubble = el("div", { class: "utt__bubble" }, text, tags);
  li.append(meta, bubble);
  fillUtterance(call, u, li);
  return li;
}

function fillUtterance(call, u, li) {
  const speaker = u.speaker === "agent" || u.speaker === "customer" ? u.speaker : "other";
  li.className = `utt utt--${speaker}${u.final ? "" : " utt--partial"}${call.warnMarks.has(u.id) ? " utt--warned" : ""}`;
  li.setAttribute("data-speaker", u.speaker);
  li.setAttribute("data-utterance-id", u.id);
  li.setAttribute("data-final", u.final ? "true" : "false");
  li.setAttribute("data-t-ms", String(u.t_ms));
  if (u.language === "ja" || u.language === "en") li.lang = u.language;
  const [meta, bubble] = li.children;
  meta.children[0].textContent = speakerLabel(call, u.speaker);
  meta.children[1].textContent = fmtMs(u.t_ms);
  const textNode = bubble.children[0];
  const tags = bubble.children[1];
  renderMarked(textNode, u.text, utteranceRanges(call, u));
  const sigs = call.signals.get(u.id) || [];
  const seen = new Set();
  const chips = [];
  for (const s of sigs) {
    const key = `${s.signal}\u0000${s.detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    chips.push(el("span", { class: "tag", "data-testid": "signal", "data-signal": s.signal, "data-detail": s.detail || null, title: s.rule_id || null },
      humanize(s.signal), s.detail ? el("span", { class: "tag__detail" }, humanize(s.detail)) : null));
  }
  tags.replaceChildren(...chips);
  tags.hidden = chips.length === 0;
}

function uttKey(u) {
  return [u.t_ms, u.id];
}

function before(a, b) {
  const [ta, ia] = uttKey(a);
  const [tb, ib] = uttKey(b);
  return ta !== tb ? ta < tb : ia < ib;
}

function placeUtterance(call, u, li) {
  // Walk back from the end: new utterances almost always go last.
  let ref = dom.list.lastElementChild;
  while (ref) {
    const other = call.utterances.get(ref.getAttribute("data-utterance-id"));
    if (ref !== li && other && !before(u, other)) break;
    ref = ref.previousElementSibling;
  }
  const target = ref ? ref.nextElementSibling : dom.list.firstElementChild;
  if (target === li) return;
  dom.list.insertBefore(li, target);
}

function upsertUtterance(call, u, moved) {
  if (renderedCallId !== call.id) {
    renderTranscript(call);
    return;
  }
  const atBottom = isAtBottom();
  let li = uttNodes.get(u.id);
  if (!li) {
    li = buildUtterance(call, u);
    uttNodes.set(u.id, li);
    placeUtterance(call, u, li);
  } else {
    fillUtterance(call, u, li);
    if (moved) placeUtterance(call, u, li);
  }
  dom.empty.hidden = true;
  afterContentChange(atBottom);
}

function removeUtterance(uid) {
  const li = uttNodes.get(uid);
  if (li) li.remove();
  uttNodes.delete(uid);
}

function refreshUtterance(call, uid) {
  const u = call.utterances.get(uid);
  const li = uttNodes.get(uid);
  if (u && li && renderedCallId === call.id) {
    const atBottom = isAtBottom();
    fillUtterance(call, u, li);
    afterContentChange(atBottom);
  }
}

function renderTranscript(call) {
  uttNodes.clear();
  renderedCallId = call ? call.id : null;
  const items = call ? [...call.utterances.values()].sort((a, b) => (before(a, b) ? -1 : 1)) : [];
  const nodes = items.map((u) => {
    const li = buildUtterance(call, u);
    uttNodes.set(u.id, li);
    return li;
  });
  dom.list.replaceChildren(...nodes);
  dom.empty.hidden = nodes.length > 0;
  stickToBottom = true;
  dom.jump.hidden = true;
  scrollToBottom();
}

function isAtBottom() {
  const s = dom.scroll;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function scrollToBottom() {
  dom.scroll.scrollTop = dom.scroll.scrollHeight;
}

function afterContentChange(wasAtBottom) {
  if (stickToBottom || wasAtBottom) {
    scrollToBottom();
    dom.jump.hidden = true;
  } else {
    dom.jump.hidden = false;
  }
}

dom.scroll.addEventListener("scroll", () => {
  stickToBottom = isAtBottom();
  if (stickToBottom) dom.jump.hidden = true;
}, { passive: true });

dom.jump.addEventListener("click", () => {
  stickToBottom = true;
  dom.scroll.scrollTo({ top: dom.scroll.scrollHeight, behavior: "smooth" });
  dom.jump.hidden = true;
});

function flashUtterance(uid) {
  const li = uid ? uttNodes.get(uid) : null;
  if (!li) return;
  li.scrollIntoView({ block: "center", behavior: "smooth" });
  li.classList.remove("utt--flash");
  void li.offsetWidth; // restart the animation
  li.classList.add("utt--flash");
}

// suggestions -------------------------------------------------------------------

function kindBadge(L, kind) {
  const k = KINDS.has(kind) ? kind : "other";
  return el("span", { class: `kind kind--${k}` }, pick(L.kind, kind) || humanize(kind) || "—");
}

function quoteBlock(L, label, quote, testid, uid) {
  const q = el("span", { class: "quote__text", "data-testid": testid }, quote);
  const box = el(
    "p",
    { class: "quote", title: uid ? `${uid}` : null },
    el("span", { class: "quote__label" }, `${label}:`),
    " ",
    el("span", { class: "quote__mark", "aria-hidden": "true" }, L === UI.ja ? "「" : "«"),
    q,
    el("span", { class: "quote__mark", "aria-hidden": "true" }, L === UI.ja ? "」" : "»"),
  );
  if (uid) {
    box.classList.add("quote--link");
    box.addEventListener("click", () => flashUtterance(uid));
  }
  return box;
}

let renderedSuggestionKey = null;
let renderedSuggestionSeq = null;
let renderedHistoryKey; // undefined: never rendered

/** Has the call's audio time passed the suggestion's `expires_ms` (0 or missing: never)? */
function isExpired(call, s) {
  const exp = int(s.expires_ms, 0);
  return exp > 0 && call.audioMs > exp;
}

function feedbackPill(L, fb, testid) {
  const action = FEEDBACK_ACTIONS.includes(fb.action) ? fb.action : "other";
  return el("span", { class: `fbstate fbstate--${action}`, "data-testid": testid },
    pick(L.fbState, fb.action) || humanize(fb.action));
}

/** The row of marks under the current card; which buttons a card allows depends on its kind. */
function feedbackBar(call, L, current, fb) {
  const sid = str(current.suggestion_id);
  if (!sid) return null;
  const allowed = str(current.kind) === "retention" ? ["dismissed"] : FEEDBACK_ACTIONS;
  const pending = call.fbPending.get(sid) || null;
  const settled = fb !== null && FINAL_FEEDBACK.has(fb.action);
  if (call.ended) return null; // nothing to mark any more: the call is over (the pill stays)
  const buttons = allowed.map((action) => {
    // After "used" the customer's answer may still follow; any other mark settles the card.
    const done = settled || pending !== null || (fb && (fb.action === action || action === "used" || action === "dismissed"));
    const b = el("button", {
      type: "button",
      class: `fb fb--${action}${fb && fb.action === action ? " fb--on" : ""}${pending === action ? " fb--pending" : ""}`,
      "data-testid": `feedback-${action}`,
      "data-action": action,
      title: pick(L.fbHint, action) || null,
      "aria-pressed": fb && fb.action === action ? "true" : "false",
      disabled: done ? true : null,
    }, pending === action ? L.fbSending : pick(L.fbButton, action));
    b.addEventListener("click", () => sendFeedback(call, sid, action));
    return b;
  });
  const err = call.fbError && call.fbError.suggestionId === sid ? call.fbError : null;
  return el("div", { class: "fbbar" },
    el("div", { class: "fbbar__buttons", role: "group" }, ...buttons),
    err ? el("p", { class: "inline-error", "data-testid": "feedback-error", "data-code": err.code, role: "alert" },
      pick(L.errors, err.code) || err.text) : null);
}

function renderSuggestions(call) {
  const L = t(uiLang(call));
  const list = call ? call.suggestions : [];
  const current = list.length ? list[list.length - 1] : null;
  const sid = current ? str(current.suggestion_id) : "";
  const fb = current ? call.feedbackFor(sid) : null;
  const expired = current ? isExpired(call, current) : false;
  const pending = current ? call.fbPending.get(sid) || "" : "";
  const err = current && call.fbError && call.fbError.suggestionId === sid ? call.fbError.code : "";
  const key = current
    ? [call.id, current.__seq, call.ended ? 1 : 0, uiLang(call), fb ? fb.seq : 0, expired ? 1 : 0, pending, err].join("#")
    : null;
  if (key !== renderedSuggestionKey) {
    renderedSuggestionKey = key;
    if (!current) {
      dom.suggestBody.replaceChildren(el("p", { class: "placeholder", "data-testid": "no-suggestion" }, L.noSuggestion));
    } else {
      const kind = str(current.kind);
      const ev = obj(current.evidence);
      const quote = str(ev.quote) || str(ev.text);
      const classes = ["card", `card--${KINDS.has(kind) ? kind : "other"}`];
      if (call.ended) classes.push("card--stale");
      if (expired) classes.push("card--expired");
      if (fb) classes.push(`card--fb-${FEEDBACK_ACTIONS.includes(fb.action) ? fb.action : "other"}`);
      const card = el(
        "article",
        {
          class: classes.join(" "),
          "data-testid": "suggestion",
          "data-kind": kind,
          "data-offer-id": str(current.offer_id),
          "data-rule": str(current.rule_id),
          "data-suggestion-id": sid,
          "data-feedback": fb ? fb.action : null,
          "data-expired": expired ? "true" : null,
        },
        el("div", { class: "card__top" },
          kindBadge(L, kind),
          current.offer ? el("span", { class: "card__offer" }, str(current.offer)) : null,
          el("span", { class: "card__status" },
            expired ? el("span", { class: "fbstate fbstate--expired", "data-testid": "suggestion-expired", title: L.expiredHint }, L.expired) : null,
            fb ? feedbackPill(L, fb, "suggestion-feedback") : null,
            current.__t !== null ? el("span", { class: "card__time" }, fmtMs(current.__t)) : null)),
        el("p", { class: "card__line", "data-testid": "suggestion-line" }, str(current.line)),
        current.reason ? el("p", { class: "card__reason" }, str(current.reason)) : null,
        quote ? quoteBlock(L, L.because, quote, "suggestion-quote", str(ev.utterance_id)) : null,
        feedbackBar(call, L, current, fb),
      );
      if (current.rule_id) card.title = str(current.rule_id);
      dom.suggestBody.replaceChildren(card);
      if (current.__seq !== renderedSuggestionSeq) card.classList.add("card--enter");
      renderedSuggestionSeq = current.__seq;
    }
  }
  const older = list.slice(0, -1).reverse();
  const marks = older.map((s) => {
    const f = call.feedbackFor(str(s.suggestion_id));
    return f ? f.seq : 0;
  });
  const hkey = call ? [call.id, uiLang(call), older.length ? older[0].__seq : 0, older.length, ...marks].join("#") : null;
  if (hkey === renderedHistoryKey) return;
  renderedHistoryKey = hkey;
  dom.history.hidden = older.length === 0;
  dom.historyCount.textContent = older.length ? String(older.length) : "";
  dom.historyList.replaceChildren(
    ...older.map((s) => {
      const f = call.feedbackFor(str(s.suggestion_id));
      return el("li", {
        class: "hist", "data-testid": "suggestion-old", "data-kind": str(s.kind), "data-offer-id": str(s.offer_id),
        "data-suggestion-id": str(s.suggestion_id) || null, "data-feedback": f ? f.action : null,
      },
        el("div", { class: "hist__head" },
          kindBadge(L, str(s.kind)),
          el("span", { class: "hist__offer" }, str(s.offer) || humanize(s.offer_id) || ""),
          f ? feedbackPill(L, f, "suggestion-old-feedback") : null,
          s.__t !== null ? el("span", { class: "hist__time" }, fmtMs(s.__t)) : null),
        s.line ? el("p", { class: "hist__line" }, str(s.line)) : null);
    }),
  );
}

// decisions ("why?") --------------------------------------------------------------

let renderedDecisionKey; // undefined: never rendered

function buildDecision(call, L, d) {
  const outcome = OUTCOMES.has(d.outcome) ? d.outcome : "other";
  const subject = str(d.subject);
  const ev = obj(d.evidence);
  const quote = str(ev.quote);
  const rule = str(d.rule_id);
  const by = str(d.decided_by);
  return el("li", {
    class: `dec dec--${outcome}`, "data-testid": "decision", "data-outcome": str(d.outcome),
    "data-decided-by": by, "data-rule": rule, "data-subject": subject || null,
  },
    el("div", { class: "dec__head" },
      el("span", { class: `dec__outcome dec__outcome--${outcome}` }, pick(L.outcome, d.outcome) || humanize(d.outcome) || "?"),
      subject && subject !== "suggestion" ? el("span", { class: "dec__subject" }, pick(L.subject, subject) || humanize(subject)) : null,
      el("code", { class: "dec__rule", title: rule || null }, rule || "—"),
      d.__t !== null ? el("span", { class: "dec__time" }, fmtMs(d.__t)) : null),
    by && by !== rule ? el("p", { class: "dec__by" }, el("span", { class: "dec__k" }, `${L.decidedBy} `), el("code", null, by)) : null,
    d.reason ? el("p", { class: "dec__reason" }, str(d.reason)) : null,
    quote ? el("p", { class: "dec__quote" }, L === UI.ja ? `「${quote}」` : `“${quote}”`) : null);
}

function renderDecisions(call) {
  const L = t(uiLang(call));
  const list = call ? call.decisions : [];
  const last = list.length ? list[list.length - 1].__seq : 0;
  const key = call ? `${call.id}#${uiLang(call)}#${list.length}#${last}` : null;
  if (key === renderedDecisionKey) return;
  renderedDecisionKey = key;
  dom.why.hidden = list.length === 0;
  dom.whyCount.textContent = list.length ? String(list.length) : "";
  // Newest first: the last decisions explain the card on screen.
  dom.whyList.replaceChildren(...[...list].reverse().map((d) => buildDecision(call, L, d)));
}

// customer -----------------------------------------------------------------------

function usageMeter(used, cap) {
  const ratio = Math.max(0, Math.min(1, used / cap));
  const level = used >= cap ? "over" : ratio >= 0.8 ? "high" : "ok";
  const fill = el("span", { class: "meter__fill" });
  fill.style.width = `${(ratio * 100).toFixed(1)}%`; // CSSOM, allowed by the page's CSP
  return el("span", {
    class: `meter meter--${level}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": String(cap),
    "aria-valuenow": String(used), "data-testid": "customer-usage-meter",
  }, fill);
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const fmtGb = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/** The record's facts, in reading order; only what the payload actually carries. */
function customerFacts(L, c) {
  const price = num(c.monthly_price);
  const used = num(c.usage_gb);
  const cap = num(c.cap_gb);
  const tenure = int(c.tenure_months);
  const facts = [];
  if (c.plan || c.plan_id || price !== null) {
    facts.push(el("span", { class: "cust__fact", "data-testid": "customer-plan" },
      el("strong", null, str(c.plan) || humanize(c.plan_id)),
      price !== null ? el("span", { class: "cust__price" }, ` ${L.price(price)}${L.perMonth}`) : null));
  }
  if (used !== null && cap !== null && cap > 0) {
    facts.push(el("span", { class: "cust__fact cust__usage", "data-testid": "customer-usage", title: L.lastMonth },
      usageMeter(used, cap), `${fmtGb(used)}/${fmtGb(cap)} GB`));
  } else if (used !== null) {
    facts.push(el("span", { class: "cust__fact", "data-testid": "customer-usage" }, `${L.lastMonth} ${fmtGb(used)} GB`));
  }
  if (c.renewal_date) facts.push(el("span", { class: "cust__fact", "data-testid": "customer-renewal" }, `${L.renews} ${str(c.renewal_date)}`));
  if (tenure !== null) facts.push(el("span", { class: "cust__fact", "data-testid": "customer-tenure" }, L.tenure(tenure)));
  if (!facts.length && c.summary) facts.push(el("span", { class: "cust__fact" }, str(c.summary)));
  return facts;
}

function buildCustomer(L, c) {
  const id = str(c.customer_id);
  const attrs = { "data-testid": "customer", "data-customer-id": id };
  if (c.known === false) {
    // No record: the payload's zeros and blanks are placeholders, not facts.
    return el("div", { ...attrs, class: "cust cust--unknown", "data-known": "false" },
      el("div", { class: "cust__head" },
        el("span", { class: "cust__name", "data-testid": "customer-name" }, id),
        el("span", { class: "cust__missing" }, L.notInCrm)));
  }
  const risk = str(c.churn_risk);
  const tier = str(c.tier);
  const riskCls = ["low", "medium", "high"].includes(risk) ? risk : "other";
  const facts = customerFacts(L, c);
  return el("div", { ...attrs, class: "cust", "data-known": "true" },
    el("div", { class: "cust__head" },
      el("span", { class: "cust__name", "data-testid": "customer-name" }, str(c.name) || id),
      tier ? el("span", { class: "chip chip--tier", "data-testid": "customer-tier", title: L.tier }, `${L.tier} ${tier}`) : null,
      risk ? el("span", { class: `chip chip--risk chip--risk-${riskCls}`, "data-testid": "customer-churn", title: L.churn }, `${L.churn}: ${pick(L.risk, risk) || risk}`) : null,
      id ? el("code", { class: "cust__id" }, id) : null),
    facts.length ? el("div", { class: "cust__facts" }, ...facts) : null);
}

let linkForm = null; // kept across renders so typing is never lost
let renderedCustomerCall = null;

function buildLinkForm() {
  const input = el("input", {
    type: "text", class: "link__input", "data-testid": "customer-link-input", id: "customer-link-input",
    autocomplete: "off", spellcheck: "false", maxlength: "64",
  });
  const button = el("button", { type: "submit", class: "link__submit", "data-testid": "customer-link-submit" });
  const label = el("label", { class: "link__label", for: "customer-link-input" });
  const error = el("p", { class: "inline-error", "data-testid": "customer-error", role: "alert", hidden: true });
  const form = el("form", { class: "link", "data-testid": "customer-link", novalidate: true, autocomplete: "off" },
    el("div", { class: "link__row" }, label, input, button), error);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = input.value.trim();
    if (!id) {
      input.focus();
      return;
    }
    sendCustomerLink(followedCall(), id);
  });
  input.addEventListener("input", () => {
    const call = followedCall();
    if (call && call.linkError) {
      call.linkError = null;
      renderCustomer(call);
    }
  });
  return { form, input, button, label, error };
}

function renderCustomer(call) {
  const L = t(uiLang(call));
  dom.customerBox.hidden = !call;
  if (!call) return;
  const c = call.customer;
  const linked = c && c.known !== false;
  const nodes = [];
  if (c) nodes.push(buildCustomer(L, c));
  if (!linked) {
    if (call.ended) {
      if (!c) nodes.push(el("p", { class: "placeholder placeholder--small", "data-testid": "no-customer" }, L.noCustomer));
    } else {
      if (!linkForm) linkForm = buildLinkForm();
      const f = linkForm;
      f.label.textContent = L.customerIdLabel;
      f.input.placeholder = L.linkPlaceholder;
      f.button.textContent = call.linkPending ? L.linking : L.link;
      f.button.disabled = call.linkPending !== null;
      f.input.disabled = call.linkPending !== null;
      const err = call.linkError;
      f.error.hidden = !err;
      f.error.textContent = err ? pick(L.errors, err.code) || err.text : "";
      f.error.setAttribute("data-code", err ? err.code : "");
      f.input.setAttribute("aria-invalid", err ? "true" : "false");
      nodes.push(f.form);
    }
  }
  // Keep the form node itself (focus, typed text) when only its state changed.
  const same = nodes.length === dom.customerBody.children.length && nodes.every((n, i) => dom.customerBody.children[i] === n);
  if (!same) dom.customerBody.replaceChildren(...nodes);
  if (renderedCustomerCall !== call.id && linkForm) {
    linkForm.input.value = ""; // another call: another customer
  }
  renderedCustomerCall = call.id;
}

// warnings ---------------------------------------------------------------------

const warnNodes = new Map(); // warning __id -> node
let renderedWarnCall = null;

function buildWarning(call, w) {
  const L = t(uiLang(call));
  const sev = SEVERITIES.has(w.severity) ? w.severity : "medium";
  const ev = obj(w.evidence);
  const quote = str(ev.quote) || str(ev.text);
  return el(
    "li",
    { class: `warn warn--${sev}`, "data-testid": "warning", "data-rule": str(w.rule_id), "data-severity": str(w.severity, sev), "data-warning-id": str(w.warning_id), title: str(w.rule_id) || null },
    el("div", { class: "warn__head" },
      el("span", { class: "warn__icon", "aria-hidden": "true" }, "!"),
      el("strong", { class: "warn__title" }, str(w.title) || humanize(w.rule_id) || "Warning"),
      el("span", { class: "warn__sev" }, pick(L.severity, sev) || sev),
      w.__t !== null ? el("span", { class: "warn__time" }, fmtMs(w.__t)) : null),
    w.message ? el("p", { class: "warn__msg" }, str(w.message)) : null,
    w.instead ? el("p", { class: "warn__instead" }, el("span", { class: "warn__k" }, `${L.instead}:`), " ", str(w.instead)) : null,
    quote ? quoteBlock(L, L.agentSaid, quote, "warning-quote", str(ev.utterance_id)) : null,
    w.reference ? el("p", { class: "warn__ref" }, el("span", { class: "warn__k" }, `${L.reference}:`), " ", str(w.reference)) : null,
  );
}

const SEVERITY_RANK = { high: 0, medium: 1, low: 2 };

function warningOrder(a, b) {
  const ta = a.__t ?? -1;
  const tb = b.__t ?? -1;
  if (ta !== tb) return tb - ta;
  const sa = pick(SEVERITY_RANK, a.severity) ?? 1;
  const sb = pick(SEVERITY_RANK, b.severity) ?? 1;
  if (sa !== sb) return sa - sb;
  return b.__seq - a.__seq || b.__id - a.__id;
}

function renderWarnings(call) {
  if (!call) {
    warnNodes.clear();
    renderedWarnCall = null;
    dom.warnList.replaceChildren();
  } else {
    const rebuild = renderedWarnCall !== `${call.id}#${uiLang(call)}`;
    if (rebuild) {
      warnNodes.clear();
      dom.warnList.replaceChildren();
      renderedWarnCall = `${call.id}#${uiLang(call)}`;
    }
    // Newest first (by audio time); warnings raised at the same moment: most severe first.
    const order = [...call.warnings].sort(warningOrder);
    let fresh = 0;
    order.forEach((w, i) => {
      let node = warnNodes.get(w.__id);
      if (!node) {
        node = buildWarning(call, w);
        warnNodes.set(w.__id, node);
        if (w.__live && !rebuild) {
          node.classList.add("warn--new");
          fresh += 1;
        }
      }
      const at = dom.warnList.children[i] || null;
      if (at !== node) dom.warnList.insertBefore(node, at);
    });
    if (fresh) dom.warnList.parentElement.scrollTop = 0;
  }
  const n = call ? call.warnings.length : 0;
  dom.noWarning.hidden = n > 0;
  dom.warnCount.hidden = n === 0;
  dom.warnCount.textContent = String(n);
  const high = call ? call.warnings.some((w) => w.severity === "high") : false;
  document.body.classList.toggle("has-high-warning", high);
}

// toasts -----------------------------------------------------------------------

function toast(title, message, tone = "info") {
  const node = el("div", { class: `toast toast--${tone}`, role: "status" },
    el("strong", null, title), message ? el("span", null, message) : null);
  dom.toasts.append(node);
  while (dom.toasts.children.length > 3) dom.toasts.firstElementChild.remove();
  setTimeout(() => {
    node.classList.add("toast--out");
    setTimeout(() => node.remove(), 400);
  }, 6000);
}

// --------------------------------------------------------------------- wiring

dom.picker.addEventListener("change", () => {
  const v = dom.picker.value;
  if (!v) {
    state.pinned = false;
    // back to auto: the most recently started call
    let latest = null;
    for (const c of state.calls.values()) if (!latest || isNewer(c, latest)) latest = c;
    state.newerCall = null;
    if (latest) follow(latest.id, { byUser: true });
    renderAll();
  } else {
    state.pinned = true;
    follow(v, { byUser: true });
    renderAll();
  }
});

dom.newCall.addEventListener("click", () => {
  const id = state.newerCall;
  state.pinned = false;
  state.newerCall = null;
  if (id) follow(id, { byUser: true });
  renderAll();
});

// The server's clock is the truth for time; we tick only the reconnect countdown.
setInterval(() => {
  if (state.conn === "closed") renderStatus();
}, 500);

const conn = new Connection({
  url,
  onEnvelope,
  onState(s, info) {
    if (s === "open") forgetRequests();
    state.conn = s;
    state.connInfo = info || {};
    renderStatus();
  },
  getResume() {
    const call = followedCall();
    if (!call || call.resumable === false) return null;
    return { call_id: call.id, after_seq: call.hw };
  },
  onGarbage(text) {
    console.warn("agent-assist: ignored a frame that is not an envelope", text.slice(0, 200));
  },
});

window.agentAssist.connection = conn;
// The label the header shows for a phase, so tests can check every engine phase has one.
window.agentAssist.phaseLabel = (name, lang) => pick(t(lang).phaseName, name) || null;
renderAll();
conn.start();
