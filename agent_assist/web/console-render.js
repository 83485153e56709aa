// Rendering: the followed call's transcript, suggestion, warnings, decisions and customer,
// built with textContent only (server text never goes through innerHTML).

import { sendCustomerLink, sendFeedback, url } from "./console-intake.js";
import { getCall, isNewer, state } from "./console-state.js";
import { FEEDBACK_ACTIONS, FINAL_FEEDBACK, KINDS, OUTCOMES, SEVERITIES, UI, fmtMs, humanize, int, obj, pick, str, t, uiLang } from "./console-strings.js";

/** el("div", {class: "x", "data-testid": "y"}, child, "text", ...) — text via text nodes only. */
export function el(tag, attrs, ...children) {
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
export function resolveSpan(text, evidence) {
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
export function renderMarked(node, text, ranges) {
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


// --------------------------------------------------------------------- render

export const $ = (sel) => document.querySelector(sel);
export const dom = {
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

export const uttNodes = new Map(); // utterance_id -> <li> of the followed call
export let renderedCallId = null;
export let stickToBottom = true;

export function followedCall() {
  return state.followed ? getCall(state.followed, false) : null;
}

export function renderAll() {
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

export function renderStatus() {
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

export function renderPicker() {
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

export function renderHeader() {
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

export function renderEnded(call) {
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

export function speakerLabel(call, speaker) {
  const L = t(uiLang(call));
  if (speaker === "agent") return L.agent;
  if (speaker === "customer") return L.customer;
  return humanize(speaker) || "?";
}

export function utteranceRanges(call, u) {
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

export function buildUtterance(call, u) {
  const li = el("li", { class: "utt", "data-testid": "utterance" });
  const meta = el("div", { class: "utt__meta" }, el("span", { class: "utt__who" }), el("span", { class: "utt__time" }));
  const text = el("p", { class: "utt__text", "data-testid": "utterance-text" });
  const tags = el("div", { class: "utt__tags" });
  const bubble = el("div", { class: "utt__bubble" }, text, tags);
  li.append(meta, bubble);
  fillUtterance(call, u, li);
  return li;
}

export function fillUtterance(call, u, li) {
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

export function uttKey(u) {
  return [u.t_ms, u.id];
}

export function before(a, b) {
  const [ta, ia] = uttKey(a);
  const [tb, ib] = uttKey(b);
  return ta !== tb ? ta < tb : ia < ib;
}

export function placeUtterance(call, u, li) {
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

export function upsertUtterance(call, u, moved) {
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

export function removeUtterance(uid) {
  const li = uttNodes.get(uid);
  if (li) li.remove();
  uttNodes.delete(uid);
}

export function refreshUtterance(call, uid) {
  const u = call.utterances.get(uid);
  const li = uttNodes.get(uid);
  if (u && li && renderedCallId === call.id) {
    const atBottom = isAtBottom();
    fillUtterance(call, u, li);
    afterContentChange(atBottom);
  }
}

export function renderTranscript(call) {
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

export function isAtBottom() {
  const s = dom.scroll;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

export function scrollToBottom() {
  dom.scroll.scrollTop = dom.scroll.scrollHeight;
}

export function afterContentChange(wasAtBottom) {
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

export function flashUtterance(uid) {
  const li = uid ? uttNodes.get(uid) : null;
  if (!li) return;
  li.scrollIntoView({ block: "center", behavior: "smooth" });
  li.classList.remove("utt--flash");
  void li.offsetWidth; // restart the animation
  li.classList.add("utt--flash");
}

// suggestions -------------------------------------------------------------------

export function kindBadge(L, kind) {
  const k = KINDS.has(kind) ? kind : "other";
  return el("span", { class: `kind kind--${k}` }, pick(L.kind, kind) || humanize(kind) || "—");
}

export function quoteBlock(L, label, quote, testid, uid) {
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

export let renderedSuggestionKey = null;
export let renderedSuggestionSeq = null;
export let renderedHistoryKey; // undefined: never rendered

/** Has the call's audio time passed the suggestion's `expires_ms` (0 or missing: never)? */
export function isExpired(call, s) {
  const exp = int(s.expires_ms, 0);
  return exp > 0 && call.audioMs > exp;
}

export function feedbackPill(L, fb, testid) {
  const action = FEEDBACK_ACTIONS.includes(fb.action) ? fb.action : "other";
  return el("span", { class: `fbstate fbstate--${action}`, "data-testid": testid },
    pick(L.fbState, fb.action) || humanize(fb.action));
}

/** The row of marks under the current card; which buttons a card allows depends on its kind. */
export function feedbackBar(call, L, current, fb) {
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

export function renderSuggestions(call) {
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

export let renderedDecisionKey; // undefined: never rendered

export function buildDecision(call, L, d) {
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

export function renderDecisions(call) {
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

export function usageMeter(used, cap) {
  const ratio = Math.max(0, Math.min(1, used / cap));
  const level = used >= cap ? "over" : ratio >= 0.8 ? "high" : "ok";
  const fill = el("span", { class: "meter__fill" });
  fill.style.width = `${(ratio * 100).toFixed(1)}%`; // CSSOM, allowed by the page's CSP
  return el("span", {
    class: `meter meter--${level}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": String(cap),
    "aria-valuenow": String(used), "data-testid": "customer-usage-meter",
  }, fill);
}

export const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
export const fmtGb = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/** The record's facts, in reading order; only what the payload actually carries. */
export function customerFacts(L, c) {
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

export function buildCustomer(L, c) {
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

export let linkForm = null; // kept across renders so typing is never lost
export let renderedCustomerCall = null;

export function buildLinkForm() {
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

export function renderCustomer(call) {
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

export const warnNodes = new Map(); // warning __id -> node
export let renderedWarnCall = null;

export function buildWarning(call, w) {
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

export const SEVERITY_RANK = { high: 0, medium: 1, low: 2 };

export function warningOrder(a, b) {
  const ta = a.__t ?? -1;
  const tb = b.__t ?? -1;
  if (ta !== tb) return tb - ta;
  const sa = pick(SEVERITY_RANK, a.severity) ?? 1;
  const sb = pick(SEVERITY_RANK, b.severity) ?? 1;
  if (sa !== sb) return sa - sb;
  return b.__seq - a.__seq || b.__id - a.__id;
}

export function renderWarnings(call) {
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

export function toast(title, message, tone = "info") {
  const node = el("div", { class: `toast toast--${tone}`, role: "status" },
    el("strong", null, title), message ? el("span", null, message) : null);
  dom.toasts.append(node);
  while (dom.toasts.children.length > 3) dom.toasts.firstElementChild.remove();
  setTimeout(() => {
    node.classList.add("toast--out");
    setTimeout(() => node.remove(), 400);
  }, 6000);
}
