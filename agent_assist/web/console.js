// agent-assist console: follows live calls and shows transcript, suggestions, warnings.
//
// Rules this file keeps:
// - Server text never goes through innerHTML; every node is built with textContent.
// - Every event is applied idempotently, keyed by (call_id, seq): duplicates (after a
//   resume, or from a history fetch overlapping live events) are dropped, and the view
//   is derived from seq order, so events that arrive out of order still end right.
// - Unknown types and missing fields are tolerated; nothing here may throw on bad data.
//
// The page is split by concern into plain ES modules (no external resources; the CSP is
// script-src 'self'): console-strings.js (words, helpers), console-state.js (calls,
// bounded logs), console-intake.js (events in, requests out), console-render.js (views).

import { Connection } from "./protocol.js";
import { follow, forgetRequests, onEnvelope, url, useConnection } from "./console-intake.js";
import { dom, followedCall, renderAll, renderStatus } from "./console-render.js";
import { isNewer, state } from "./console-state.js";
import { pick, t } from "./console-strings.js";

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

useConnection(conn);
window.agentAssist.connection = conn;
// The label the header shows for a phase, so tests can check every engine phase has one.
window.agentAssist.phaseLabel = (name, lang) => pick(t(lang).phaseName, name) || null;
renderAll();
conn.start();
