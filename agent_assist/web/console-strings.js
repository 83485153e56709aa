// The console's words in both languages, and the small pure helpers that read server data
// defensively (a missing or mistyped field never throws).

import { $ } from "./console-render.js";
import { Call } from "./console-state.js";

// ---------------------------------------------------------------- text & i18n

export const UI = {
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

export const KINDS = new Set(["upsell", "cross_sell", "downsell", "retention"]);
export const SEVERITIES = new Set(["high", "medium", "low"]);
export const FEEDBACK_ACTIONS = ["used", "accepted", "declined", "dismissed"];
export const FINAL_FEEDBACK = new Set(["accepted", "declined", "dismissed"]); // after these the card is settled
export const OUTCOMES = new Set(["shown", "suppressed"]);
export const PENDING_TIMEOUT_MS = 10000; // no answer to a request by then: let the agent try again

export function browserLang() {
  const l = (navigator.language || "en").toLowerCase();
  return l.startsWith("ja") ? "ja" : "en";
}

export function uiLang(call) {
  const l = call ? call.uiLanguage() : browserLang();
  return l === "ja" ? "ja" : "en";
}

export function t(lang) {
  return UI[lang] || UI.en;
}

/** map[key] for own keys only (server strings must never reach Object.prototype). */
export function pick(map, key) {
  return typeof key === "string" && Object.hasOwn(map, key) ? map[key] : undefined;
}

export const str = (v, dflt = "") => (typeof v === "string" ? v : v === null || v === undefined ? dflt : String(v));
export const int = (v, dflt = null) => (Number.isFinite(v) ? Math.trunc(v) : dflt);
export const obj = (v) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v : {});

export function fmtMs(ms) {
  const total = Math.max(0, Math.floor((int(ms, 0) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function humanize(name) {
  return str(name).replace(/[._]+/g, " ").trim();
}
