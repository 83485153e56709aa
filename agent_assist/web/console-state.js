// What the console holds: one Call per call seen, and the page state. Memory is bounded
// over a long shift: the raw event and error logs keep only their latest entries, and only
// the most recent ended calls are kept (the followed one always stays).

import { browserLang, int } from "./console-strings.js";

// ---------------------------------------------------------------------- state

export class Call {
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

export const state = {
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

// A shift is long: these bound what the page holds however many calls it sees.
export const LIMITS = { events: 2000, errors: 200, endedCalls: 20 };

/** Append to a log, dropping its oldest entries beyond ``max`` (in place: tests hold it). */
export function remember(log, entry, max) {
  log.push(entry);
  if (log.length > max) log.splice(0, log.length - max);
}

/** Forget ended calls beyond the most recent ``LIMITS.endedCalls``; never the followed one. */
export function pruneEndedCalls() {
  const ended = [...state.calls.values()]
    .filter((c) => c.ended && c.id !== state.followed && c.id !== state.newerCall)
    .sort((a, b) => (isNewer(a, b) ? 1 : -1));
  for (const c of ended.slice(0, Math.max(0, ended.length - LIMITS.endedCalls))) {
    state.calls.delete(c.id);
  }
}

window.agentAssist = { events: state.events, errors: state.errors, state, limits: LIMITS };

export function getCall(id, create = true) {
  let c = state.calls.get(id);
  if (!c && create) {
    state.order += 1;
    c = new Call(id, state.order);
    state.calls.set(id, c);
  }
  return c || null;
}

export function isNewer(a, b) {
  // Is call a more recent than call b?
  if (!b) return true;
  const ka = a.startedKey();
  const kb = b.startedKey();
  if (ka !== null && kb !== null && ka !== kb) return ka > kb;
  return a.order > b.order;
}
