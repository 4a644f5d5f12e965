// The UI's shell: the login banner, the navigation and the router
// (#/chat, #/chat/<contact>, #/contacts, #/files, #/network, #/account).
import { h, fill } from "./dom.js";
import { netText } from "./text.js";
import * as api from "./api.js";
import { store, on, refreshAll, connectEvents, refreshStatus } from "./store.js";
import { firstRun } from "./views/firstrun.js";
import { chat } from "./views/chat.js";
import { contacts } from "./views/contacts.js";
import { files } from "./views/files.js";
import { network } from "./views/network.js";
import { account } from "./views/account.js";
import { startNotifications } from "./notify.js";

const views = { chat, contacts, files, network, account };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const banner = document.getElementById("banner");
let current = null; // {name, arg, view}

function route() {
  const [, name = "chat", ...rest] = (location.hash || "#/chat").split("/");
  return { name: views[name] ? name : "chat", arg: rest.length ? decodeURIComponent(rest.join("/")) : "" };
}

// enrolled reports whether the device acts for an account (or is trying
// to log in to one).
function enrolled() {
  return Boolean(store.status && store.status.username);
}

function show() {
  const want = enrolled() ? route() : { name: "firstrun", arg: "" };
  nav.hidden = !enrolled();
  const view = want.name === "firstrun" ? firstRun : views[want.name];
  if (current && current.name === want.name) {
    if (current.arg !== want.arg && view.navigate) {
      current.arg = want.arg;
      view.navigate(want.arg);
    }
    return;
  }
  if (current && current.view.unmount) current.view.unmount();
  current = { ...want, view };
  main.replaceChildren();
  view.mount(main, want.arg);
  document.title = `Parley: ${view.title}`;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.route === want.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function renderBanner() {
  const s = store.status;
  if (!s) return;
  const p = s.login_problem;
  let cls = "state-warn";
  let parts;
  if (s.logged_in) {
    cls = "state-ok";
    parts = ["Signed in as ", netText(s.username)];
  } else if (p && p.stopped) {
    cls = "state-bad";
    parts = [p.reason === "revoked" ? "This device was revoked." : p.reason === "account_deleted" ? "The account was deleted." : "Not signed in."];
  } else if (p && s.username) {
    parts = [
      "Server down: working from the last session.",
      p.retry_at ? ` Retrying at ${new Date(p.retry_at).toLocaleTimeString()}.` : "",
      h("small", { class: "muted detail" }, netText(p.error)),
    ];
  } else if (s.username) {
    parts = ["Connecting as ", netText(s.username), "…"];
  } else {
    parts = ["Not signed in"];
  }
  banner.className = cls;
  banner.dataset.state = s.logged_in ? "logged_in" : p ? p.reason : s.username ? "connecting" : "not_enrolled";
  fill(banner, h("span", { class: "dot", "aria-hidden": "true" }), ...parts);

  const unread = store.conversations.reduce((n, c) => n + (c.unread || 0), 0);
  badge("nav-unread", unread, "unread");
  badge("nav-requests", (s.incoming || []).length, "requests");
}

function badge(id, n, what) {
  const b = document.getElementById(id);
  b.hidden = n === 0;
  b.textContent = String(n);
  b.setAttribute("aria-label", `${n} ${what}`);
}

function signedOut() {
  main.replaceChildren(
    h("h1", {}, "Signed out of this daemon"),
    h("p", {}, "This page has no valid session with the daemon (it may have restarted). Run ", h("code", {}, "parley ui"), " in a terminal to open it again."),
  );
  nav.hidden = true;
  current = null;
}

async function start() {
  api.setUnauthorizedHandler(signedOut);
  on((topic) => {
    if (topic === "status" || topic === "conversations") renderBanner();
    if (topic === "status") show();
    if (current && current.view.update) current.view.update(topic);
  });
  window.addEventListener("hashchange", show);
  try {
    await refreshAll();
  } catch (e) {
    if (e.status !== 401) fill(main, h("h1", {}, "Parley"), h("p", { class: "error" }, netText(e.message)));
    return;
  }
  connectEvents();
  startNotifications();
  // The status has fields no event reports (DHT size, addresses): poll it.
  setInterval(() => refreshStatus().catch(() => {}), 10000);
  document.body.dataset.ready = "true";
}

start();
