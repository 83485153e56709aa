// agent-assist wire protocol v1, console side (see docs/protocol.md).
//
// Connection: the console's one long-lived websocket. Sends `hello` on open (with
// `resume` for the followed call), hands every envelope to the page, and reconnects
// with exponential backoff (0.5 s doubling up to 5 s) when the socket closes.
//
// fetchHistory: a short-lived second socket that asks the server for a call's stored
// events (hello with subscribe = that call and resume after the seq we already hold),
// hands them over, and closes once it has caught up. The page uses it when it starts
// following a call it joined in the middle (page opened or reloaded mid-call), or for
// other calls that moved on while the main socket was down.

export const PROTOCOL_VERSION = 1;

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;

/** ws(s)://host/ws for the page's own origin. */
export function defaultUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

/** Parse one text frame into an envelope object, or null when it is not one. */
export function parseEnvelope(raw) {
  if (typeof raw !== "string") return null;
  let msg;
  try {
    msg = JSON.parse(raw);
  } catch {
    return null;
  }
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return null;
  if (typeof msg.type !== "string") return null;
  if (msg.data === null || typeof msg.data !== "object" || Array.isArray(msg.data)) msg.data = {};
  if (msg.call_id !== undefined && msg.call_id !== null && typeof msg.call_id !== "string") {
    msg.call_id = String(msg.call_id);
  }
  return msg;
}

function helloEnvelope(seq, subscribe, resume) {
  const data = { role: "console", subscribe };
  if (resume && typeof resume.call_id === "string") {
    data.resume = { call_id: resume.call_id, after_seq: Math.max(0, resume.after_seq | 0) };
  }
  return { v: PROTOCOL_VERSION, type: "hello", call_id: null, seq, t_ms: 0, data };
}

export class Connection {
  /**
   * @param {object} opts
   * @param {string} opts.url
   * @param {(env: object, meta: object) => void} opts.onEnvelope  every parsed envelope, in
   *   order; meta = {source: "main", resumed: the resume sent in this socket's hello,
   *   beforeReady: true for what came before `ready` (a refused hello)}
   * @param {(state: string, info: object) => void} opts.onState  connecting | open | closed
   * @param {() => ({call_id: string, after_seq: number} | null)} opts.getResume
   * @param {(text: string) => void} [opts.onGarbage]  a frame that is not an envelope
   */
  constructor(opts) {
    this.url = opts.url;
    this.onEnvelope = opts.onEnvelope;
    this.onState = opts.onState;
    this.getResume = opts.getResume;
    this.onGarbage = opts.onGarbage || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.outSeq = 0;
    this.stopped = false;
    this.state = "closed";
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  /** Skip the rest of the backoff wait (e.g. the browser came back online). */
  reconnectNow() {
    if (this.stopped || this.state !== "closed") return;
    clearTimeout(this.timer);
    this._connect();
  }

  /**
   * Send one client message on the open socket. Returns its `seq` (the server echoes it
   * as `ref_seq` in an error about it), or false when the socket is not open.
   */
  send(type, callId, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.outSeq += 1;
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, call_id: callId, seq: this.outSeq, t_ms: 0, data }));
    return this.outSeq;
  }

  _setState(state, info = {}) {
    this.state = state;
    try {
      this.onState(state, info);
    } catch (err) {
      console.error("agent-assist: state handler failed", err);
    }
  }

  _connect() {
    this._setState("connecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error("agent-assist: cannot open websocket", err);
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.outSeq = 0;
    let resumed = null;
    let gotReady = false;

    ws.onopen = () => {
      if (this.ws !== ws) return;
      let resume = null;
      try {
        resume = this.getResume();
      } catch (err) {
        console.error("agent-assist: resume lookup failed", err);
      }
      resumed = resume;
      this.outSeq = 1;
      ws.send(JSON.stringify(helloEnvelope(1, "*", resume)));
      this._setState("open", { resume });
    };

    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const env = parseEnvelope(ev.data);
      if (!env) {
        if (typeof ev.data === "string") this.onGarbage(ev.data);
        return; // binary frames (audio) are not for the console
      }
      const beforeReady = !gotReady;
      if (env.type === "ready") {
        gotReady = true;
        this.attempt = 0; // healthy handshake: reset backoff
      }
      try {
        this.onEnvelope(env, { source: "main", resumed, beforeReady });
      } catch (err) {
        console.error("agent-assist: failed to handle", env, err);
      }
    };

    ws.onerror = () => {
      // onclose follows; nothing to do here.
    };

    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) {
        this._setState("closed", { code: ev.code, retryInMs: null });
        return;
      }
      this._scheduleReconnect(ev.code);
    };
  }

  _scheduleReconnect(code) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    // +-10 % jitter so a room full of consoles does not reconnect in lockstep.
    const delay = Math.round(Math.min(BACKOFF_MAX_MS, base * (0.9 + Math.random() * 0.2)));
    this.attempt += 1;
    this._setState("closed", { code, retryInMs: delay, retryAt: Date.now() + delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }
}

/**
 * Fetch the stored events of one call after `afterSeq` on a separate socket.
 * Resolves when caught up (reached the call's last_seq from `ready`, got `call.ended`,
 * went idle, or failed). Never rejects.
 */
export function fetchHistory({ url, callId, afterSeq, onEnvelope, idleMs = 2500, maxMs = 30000 }) {
  return new Promise((resolve) => {
    let ws;
    let target = null;
    let done = false;
    let idleTimer = null;
    let count = 0;
    const finish = (why) => {
      if (done) return;
      done = true;
      clearTimeout(idleTimer);
      clearTimeout(maxTimer);
      try {
        if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "caught up");
      } catch {
        /* ignore */
      }
      resolve({ callId, why, count });
    };
    const bumpIdle = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => finish("idle"), idleMs);
    };
    const maxTimer = setTimeout(() => finish("timeout"), maxMs);
    try {
      ws = new WebSocket(url);
    } catch {
      finish("error");
      return;
    }
    ws.onopen = () => {
      ws.send(JSON.stringify(helloEnvelope(1, callId, { call_id: callId, after_seq: afterSeq })));
      bumpIdle();
    };
    ws.onmessage = (ev) => {
      const env = parseEnvelope(ev.data);
      if (!env) return;
      bumpIdle();
      if (env.type === "ready") {
        const calls = Array.isArray(env.data.active_calls) ? env.data.active_calls : [];
        const me = calls.find((c) => c && c.call_id === callId);
        if (me && Number.isInteger(me.last_seq)) {
          target = me.last_seq;
          if (target <= afterSeq) finish("up-to-date");
        }
        return;
      }
      if (env.type === "error") {
        const code = env.data.code;
        if (code === "call.unknown" || env.data.fatal) finish("error");
        return;
      }
      if (env.call_id !== callId) return;
      count += 1;
      try {
        onEnvelope(env, { source: "history" });
      } catch (err) {
        console.error("agent-assist: failed to handle history", env, err);
      }
      if (env.type === "call.ended") finish("ended");
      else if (target !== null && Number.isInteger(env.seq) && env.seq >= target) finish("caught-up");
    };
    ws.onclose = () => finish("closed");
  });
}
