// Shared by the supervisor pages: the signed-in user, fetch helpers, formatting, DOM.

/** GET a JSON API; on 401 go to the sign-in page (coming back here afterwards). */
export async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401) {
    const next = encodeURIComponent(window.location.pathname + window.location.search);
    window.location.assign(`/login.html?next=${next}`);
    throw new Error("signed out");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
    err.status = res.status;
    err.code = body && body.error && body.error.code;
    throw err;
  }
  return body;
}

/** Create an element: el("div", {class: "x", dataset: {...}}, child, "text", ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value; // CSSOM: allowed by the pages' CSP
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clock(ms) {
  const s = Math.max(0, Math.floor((ms || 0) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function label(name) {
  return String(name || "").replace(/_/g, " ");
}

export function scoreClass(score) {
  if (score === null || score === undefined) return "score";
  if (score >= 75) return "score score--good";
  if (score >= 50) return "score score--mid";
  return "score score--bad";
}

/** Fill the top bar's user slot and wire the sign-out button. */
export async function signedIn() {
  const me = await api("/api/me");
  const who = document.querySelector("[data-testid=who]");
  if (who) {
    who.replaceChildren(el("span", { text: me.name, "data-testid": "who-name" }), el("span", { class: "who__role", text: me.role }));
  }
  for (const node of document.querySelectorAll("[data-role=supervisor]")) node.hidden = me.role !== "supervisor";
  const out = document.querySelector("[data-testid=sign-out]");
  if (out) {
    out.addEventListener("click", async () => {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
      window.location.assign("/login.html");
    });
  }
  return me;
}
