// Event intake: every envelope applied idempotently to its call, keyed by (call_id, seq),
// and the requests the console sends (feedback marks, customer links).

import { defaultUrl, fetchHistory } from "./protocol.js";
import { $, refreshUtterance, removeUtterance, renderAll, renderCustomer, renderDecisions, renderEnded, renderHeader, renderPicker, renderSuggestions, renderWarnings, toast, upsertUtterance } from "./console-render.js";
import { LIMITS, getCall, isNewer, pruneEndedCalls, remember, state } from "./console-state.js";
import { PENDING_TIMEOUT_MS, int, obj, str, t, uiLang } from "./console-strings.js";

// --------------------------------------------------------------- event intake

export let localId = 0; // unique id per stored warning, for keyed rendering

// Always the page's own origin: a console must never be pointed elsewhere by a link.
export const url = defaultUrl();

export function onEnvelope(env, meta) {
  remember(state.events, env, LIMITS.events);
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

export const CATCH_UP_DELAY_MS = 1200;
export let catchUpTimer = null;

export function onReady(data, meta) {
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

export function onError(env, data, meta) {
  const entry = {
    code: str(data.code, "error"),
    message: str(data.message),
    fault: str(data.fault),
    fatal: data.fatal === true,
    call_id: env.call_id || null,
    at: Date.now(),
  };
  remember(state.errors, entry, LIMITS.errors);
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

let connection = null; // the page's one Connection, set by console.js at start

/** Requests go out on ``conn`` (console.js makes it once the intake is wired). */
export function useConnection(conn) {
  connection = conn;
}

export const requests = new Map(); // client seq -> {type, callId, suggestionId?, customerId?, timer}

/** Send a request about a live call; remember it so an error naming its seq finds it. */
export function sendRequest(type, call, data, info, onTimeout) {
  const seq = connection.send(type, call.id, data);
  if (!seq) return false;
  const timer = setTimeout(() => {
    if (requests.delete(seq)) onTimeout();
  }, PENDING_TIMEOUT_MS);
  requests.set(seq, { type, callId: call.id, ...info, timer });
  return seq;
}

export function settleRequest(seq) {
  const req = requests.get(seq);
  if (req) clearTimeout(req.timer);
  requests.delete(seq);
}

/** A new socket numbers its messages afresh: old requests can no longer be answered. */
export function forgetRequests() {
  for (const seq of [...requests.keys()]) settleRequest(seq);
  for (const call of state.calls.values()) {
    call.fbPending.clear();
    call.linkPending = null;
  }
}

export function sendFeedback(call, suggestionId, action) {
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

export function sendCustomerLink(call, customerId) {
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

export function applyCallEvent(call, env, data, meta) {
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
      pruneEndedCalls();
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
export function syncHistory(call) {
  if (call.syncing) return;
  call.syncing = true;
  fetchHistory({ url, callId: call.id, afterSeq: call.hw, onEnvelope }).then(() => {
    call.syncing = false;
  });
}

export function follow(callId, { byUser = false } = {}) {
  if (state.followed === callId) return;
  state.followed = callId;
  if (state.newerCall === callId) state.newerCall = null;
  const call = getCall(callId);
  // The user picked a call we hold only part of: fetch the rest now.
  if (byUser && call.knownLastSeq > call.hw) syncHistory(call);
  renderAll();
}
