// First run: this device acts for no account yet (or its account was
// deleted, or it was revoked). Register an account or enrol the device into
// one, on the network the daemon was started with.
import { h, field, busy } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshAll, connectEvents } from "../store.js";

export const firstRun = {
  title: "Welcome",
  mount(root) {
    const s = store.status;
    const p = s.login_problem;
    const revoked = p && p.reason === "revoked";
    root.append(
      h("h1", {}, "Welcome to Parley"),
      h("p", {}, "This device is ", h("code", { class: "peer" }, s.peer), ". It joins the network the daemon was started with (its rendezvous server)."),
      p && p.reason !== "not_enrolled"
        ? h("div", { class: "notice state-bad", role: "alert" },
            h("p", {}, h("strong", {}, revoked ? "This device was revoked." : "Not signed in."), " ", netText(p.error)),
            p.hint ? h("p", {}, "What to do: ", netText(p.hint)) : null)
        : null,
      revoked ? null : h("div", { class: "columns" }, accountForm("register"), accountForm("enrol")),
    );
  },
};

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
