// The UI's shell: the login banner, the navigation and the router
// (#/chat, #/chat/<contact>, #/contacts, #/files, #/network, #/account).
import { h, fill } from "./dom.js";
import { netText } from "./text.js";
import * as api from "./api.js";
import { store, on, refreshAll, connectEvents, disconnectEvents, refreshStatus } from "./store.js";
import { firstRun, networkSetup } from "./views/firstrun.js";
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

// firstRunViews are the screens before the device acts for an account.
const firstRunViews = { setup: networkSetup, firstrun: firstRun };

function show() {
  const setup = Boolean(store.status && store.status.setup);
  const want = setup ? { name: "setup", arg: "" } : enrolled() ? route() : { name: "firstrun", arg: "" };
  nav.hidden = !enrolled();
  const view = firstRunViews[want.name] || views[want.name];
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
  if (s.setup) {
    parts = ["No network chosen yet"];
  } else if (s.logged_in) {
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
  banner.dataset.state = s.setup ? "no_network" : s.logged_in ? "logged_in" : p ? p.reason : s.username ? "connecting" : "not_enrolled";
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

let poll = 0;

// signedOut leaves the page without a session: after Log out, or when the
// daemon refused the cookie (it restarted, or another tab logged out).
function signedOut(loggedOut) {
  disconnectEvents();
  clearInterval(poll);
  if (current && current.view.unmount) current.view.unmount();
  current = null;
  main.replaceChildren(
    h("h1", {}, loggedOut ? "Logged out" : "Signed out of this daemon"),
    loggedOut
      ? h("p", {}, "This browser's session with the daemon has ended; the daemon keeps running. Run ", h("code", {}, "parley ui"), " in a terminal to open the UI again.")
      : h("p", {}, "This page has no valid session with the daemon (it may have restarted, or the UI was logged out). Run ", h("code", {}, "parley ui"), " in a terminal to open it again."),
  );
  nav.hidden = true;
  logout.hidden = true;
  banner.className = "state-warn";
  banner.dataset.state = "signed_out";
  fill(banner, h("span", { class: "dot", "aria-hidden": "true" }), loggedOut ? "Logged out of the UI" : "No session");
  document.title = "Parley: signed out";
  main.focus();
}

// The skip link moves the focus to the content without touching the
// address (its #main would be taken for a route).
document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});

const logout = document.getElementById("logout");
logout.addEventListener("click", async () => {
  logout.disabled = true;
  try {
    await api.post("/api/logout");
    signedOut(true);
  } catch (e) {
    if (e.status !== 401) fill(banner, netText(`Could not log out: ${e.message}`));
  } finally {
    logout.disabled = false;
  }
});

async function start() {
  api.setUnauthorizedHandler(() => signedOut(false));
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
  // Without a network there are no events yet: the first-run screen
  // connects once it is chosen.
  if (!store.status.setup) connectEvents();
  startNotifications();
  logout.hidden = false;
  // The status has fields no event reports (DHT size, addresses): poll it.
  poll = setInterval(() => refreshStatus().catch(() => {}), 10000);
  document.body.dataset.ready = "true";
}

start();
