// Devices and account: the account's devices (revoke one), the password,
// deleting the account. Every destructive step asks first.
import { h, fill, field, busy, confirmAction } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshDevices, refreshAll } from "../store.js";
import { when } from "../format.js";

let el = null;

function render() {
  if (!el) return;
  const ds = store.devices || [];
  fill(el.devices, ds.length ? ds.map((d) => {
    const revoked = d.revoked && !d.revoked.startsWith("0001");
    const state = revoked ? `revoked ${when(d.revoked)}` : d.online ? "online" : "offline";
    return h("li", { class: "item device", "data-peer": d.peer },
      h("div", { class: "grow" },
        h("p", {}, h("code", { class: "peer" }, d.peer), d.this_device ? h("span", { class: "tag" }, "this device") : null),
        h("p", { class: "muted small" }, `${state} · enrolled ${when(d.enrolled)}`)),
      h("span", { class: "actions" }, !revoked && !d.this_device
        ? h("button", {
            type: "button",
            class: "danger small",
            "aria-label": `Revoke device ${d.peer}`,
            onclick: async (e) => {
              if (!(await confirmAction("Revoke this device?", `Device ${d.peer} is signed out and can never sign in again.`, "Revoke"))) return;
              e.target.disabled = true;
              try {
                await api.post("/api/devices/revoke", { peer: d.peer });
                await refreshDevices();
              } catch (err) {
                fill(el.out, netText(err.message)).className = "out error";
                e.target.disabled = false;
              }
            },
          }, "Revoke")
        : null));
  }) : h("li", { class: "muted" }, "Loading…"));
}

export const account = {
  title: "Devices & account",
  mount(root) {
    el = {};
    el.out = h("p", { class: "out", role: "status" });
    el.devices = h("ul", { class: "list", id: "devices" });

    const oldPass = h("input", { type: "password", autocomplete: "current-password", required: true });
    const newPass = h("input", { type: "password", autocomplete: "new-password", required: true });
    const again = h("input", { type: "password", autocomplete: "new-password", required: true });
    const pw = h("form", {
      class: "card",
      "aria-labelledby": "pw-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const out = pw.querySelector("output");
        if (newPass.value !== again.value) {
          out.textContent = "The two new passwords differ.";
          out.className = "out error";
          return;
        }
        if (!(await confirmAction("Change the password?", "Enrolling a new device will need the new password.", "Change password"))) return;
        if (await busy(pw, () => api.post("/api/password", { old_password: oldPass.value, new_password: newPass.value }), "Password changed.")) pw.reset();
      },
    }, h("h2", { id: "pw-title" }, "Change password"), field("Current password", oldPass), field("New password", newPass), field("New password again", again),
    h("button", { type: "submit" }, "Change password"), h("output", { class: "out", "aria-live": "polite" }));

    const delPass = h("input", { type: "password", autocomplete: "current-password", required: true });
    const sure = h("input", { type: "checkbox", required: true });
    const del = h("form", {
      class: "card danger-zone",
      "aria-labelledby": "del-title",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!(await confirmAction("Delete the account?", "The account, all its devices and contacts are deleted on the server. This cannot be undone.", "Delete account"))) return;
        if (await busy(del, () => api.post("/api/account/delete", { password: delPass.value }), "Account deleted.")) await refreshAll();
      },
    }, h("h2", { id: "del-title" }, "Delete account"),
    h("p", { class: "muted" }, "Deletes the account with its devices and contacts, for good."),
    field("Password", delPass),
    h("div", { class: "check" }, sure, h("label", { for: (sure.id = "del-sure") }, "I understand this cannot be undone")),
    h("button", { type: "submit", class: "danger" }, "Delete account"), h("output", { class: "out", "aria-live": "polite" }));

    const s = store.status;
    root.append(
      h("h1", {}, "Devices & account"),
      h("p", {}, "Signed in as ", netText(s.username, { tag: "strong" }), " on device ", h("code", { class: "peer" }, s.peer), "."),
      el.out,
      h("section", { "aria-labelledby": "dev-title" }, h("h2", { id: "dev-title" }, "Devices"), el.devices),
      h("div", { class: "columns" }, pw, del),
    );
    render();
    refreshDevices().catch((err) => fill(el.devices, h("li", { class: "error" }, netText(err.message))));
  },
  unmount() {
    el = null;
  },
  update(topic) {
    if (topic === "devices") render();
  },
};
