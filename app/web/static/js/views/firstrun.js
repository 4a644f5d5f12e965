// First run: the daemon has no network yet (started without --rendezvous
// on a fresh data directory): choose it, the rendezvous server's address,
// with the daemon's suggestion filled in. Then, or when this device acts
// for no account yet (or its account was deleted, or it was revoked):
// register an account or enrol the device into one.
import { h, field, busy } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshAll, connectEvents } from "../store.js";

// The router shows networkSetup while the daemon has no network, then
// firstRun until the device acts for an account.
export const networkSetup = { title: "Welcome", mount: networkStep };
export const firstRun = { title: "Welcome", mount: accountStep };

function networkStep(root) {
  const s = store.status;
  const sug = s.setup.suggested || "";
  const addr = h("input", {
    name: "rendezvous",
    value: sug,
    required: true,
    spellcheck: "false",
    autocomplete: "off",
    autocapitalize: "none",
    class: "link",
    placeholder: "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…",
  });
  const hint = sug
    ? ["Suggested from ", netText(s.setup.suggested_from || "what the daemon knows"), ". To join another network, ask whoever runs it for its address."]
    : ["The server's multiaddr ending in /p2p/ and its peer ID, as parley-rendezvous prints it (or as parley-testnet up prints it for a local test network)."];
  const form = h(
    "form",
    {
      class: "card",
      id: "network-form",
      "aria-labelledby": "network-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await busy(form, () => api.post("/api/network", { rendezvous: addr.value.trim() }), "Joined the network.");
        if (ok) {
          await refreshAll();
          connectEvents();
        } else {
          addr.focus();
        }
      },
    },
    h("h2", { id: "network-title" }, "Choose the network"),
    h("p", { class: "muted" }, "Parley finds people through a rendezvous server. Its address is remembered: later starts go straight to it."),
    field("Rendezvous server address", addr, hint),
    h("button", { type: "submit" }, "Join network"),
    h("output", { class: "out", "aria-live": "polite" }),
  );
  root.append(
    h("h1", {}, "Welcome to Parley"),
    h("p", {}, "This device is ", h("code", { class: "peer" }, s.peer), ". First choose the network it joins; then create an account or add this device to yours."),
    form,
  );
}

function accountStep(root) {
  const s = store.status;
  const p = s.login_problem;
  const revoked = p && p.reason === "revoked";
  root.append(
    h("h1", {}, "Welcome to Parley"),
    h("p", {}, "This device is ", h("code", { class: "peer" }, s.peer), ". It is on the network of the rendezvous server ", s.rendezvous ? netText(s.rendezvous, { tag: "code" }) : "the daemon was started with", "."),
    p && p.reason !== "not_enrolled"
      ? h("div", { class: "notice state-bad", role: "alert" },
          h("p", {}, h("strong", {}, revoked ? "This device was revoked." : "Not signed in."), " ", netText(p.error)),
          p.hint ? h("p", {}, "What to do: ", netText(p.hint)) : null)
      : null,
    revoked ? null : h("div", { class: "columns" }, accountForm("register"), accountForm("enrol")),
  );
}

function accountForm(kind) {
  const register = kind === "register";
  const user = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const pass = h("input", { name: "password", type: "password", autocomplete: register ? "new-password" : "current-password", required: true });
  const again = register ? h("input", { name: "password2", type: "password", autocomplete: "new-password", required: true }) : null;
  const heading = register ? "Create an account" : "Add this device to your account";
  const hid = `${kind}-title`;
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": hid,
      onsubmit: async (e) => {
        e.preventDefault();
        if (again && again.value !== pass.value) {
          const out = form.querySelector("output");
          out.textContent = "The two passwords differ.";
          out.className = "out error";
          again.focus();
          return;
        }
        const ok = await busy(form, () => api.post(register ? "/api/register" : "/api/enrol", { username: user.value, password: pass.value }), "Signed in.");
        if (ok) {
          await refreshAll();
          connectEvents();
        }
      },
    },
    h("h2", { id: hid }, heading),
    h("p", { class: "muted" }, register ? "A new user with this device as its first." : "You have an account on another device: sign this one in with its password."),
    field("Username", user),
    field("Password", pass),
    again ? field("Password again", again) : null,
    h("button", { type: "submit" }, register ? "Create account" : "Add this device"),
    h("output", { class: "out", "aria-live": "polite" }),
  );
  return form;
}
