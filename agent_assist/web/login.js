// Sign-in page: name and password go in an Authorization header (never in a URL);
// the server answers with an HttpOnly session cookie and where to go next.

const form = document.querySelector("[data-testid=login-form]");
const errorBox = document.querySelector("[data-testid=login-error]");
const params = new URLSearchParams(window.location.search);

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

if (params.get("error") === "link") {
  showError("That sign-in link has expired or was already used. Ask for a new one.");
}

// Only a path of this server: browsers read "\\" as "/", so "/\\evil.example" would
// leave; resolve against our origin and keep the result only if it is still ours.
function safeNext(next) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) {
    return null;
  }
  try {
    const url = new URL(next, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = form.elements.name.value.trim();
  const password = form.elements.password.value;
  if (!name || !password) {
    showError("Enter your user name and password.");
    return;
  }
  const bytes = new TextEncoder().encode(`${name}:${password}`);
  const basic = btoa(String.fromCharCode(...bytes));
  try {
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { Authorization: `Basic ${basic}` },
      credentials: "same-origin",
    });
    if (!res.ok) {
      showError("Wrong user name or password.");
      return;
    }
    const me = await res.json();
    window.location.assign(safeNext(params.get("next")) || me.next || "/");
  } catch {
    showError("The server cannot be reached. Try again in a moment.");
  }
});
