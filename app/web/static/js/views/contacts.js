// Contacts: presence, last seen and connection path of each contact;
// requests in and out; adding, removing and blocking.
import { h, fill, field, busy, confirmAction } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshContacts, refreshStatus } from "../store.js";
import { lastSeen, pathLabel, pathHint, pathKind } from "../format.js";

let lists;

async function op(path, username) {
  await api.post("/api/contacts/" + path, { username });
  await refreshStatus();
  await refreshContacts();
}

function actionButton(label, path, username, cls = "secondary", confirmText = "") {
  return h("button", {
    type: "button",
    class: `${cls} small`,
    "aria-label": `${label} ${username}`,
    onclick: async (e) => {
      if (confirmText && !(await confirmAction(`${label} ${username}?`, confirmText, label))) return;
      e.target.disabled = true;
      try {
        await op(path, username);
      } catch (err) {
        alertError(err);
      } finally {
        e.target.disabled = false;
      }
    },
  }, label);
}

function alertError(err) {
  const out = document.getElementById("contacts-out");
  if (out) fill(out, netText(err.message)).className = "out error";
}

// presence is a contact's online state, last seen and path with its hint.
export function presence(c) {
  const kind = c.online ? pathKind(c.path) : "offline";
  return h("div", { class: "presence" },
    h("span", { class: `dot ${c.online ? "on" : "off"}`, "aria-hidden": "true" }),
    h("span", {}, c.online ? "online" : lastSeen(c.last_seen)),
    c.online ? [" · ", h("span", { class: `path path-${kind}`, title: pathHint(c.path, c.transport) }, netText(pathLabel(c.path, c.transport)))] : null,
    c.online ? h("small", { class: "muted hint" }, pathHint(c.path, c.transport)) : null,
  );
}

function render() {
  const b = store.book || { contacts: [], incoming: [], outgoing: [], blocked: [] };
  fill(lists.incoming, b.incoming.length ? b.incoming.map((u) => h("li", { class: "item" },
    netText(u, { cls: "name" }),
    h("span", { class: "actions" },
      actionButton("Accept", "accept", u, ""),
      actionButton("Decline", "decline", u),
      actionButton("Block", "block", u, "danger", "They will not be able to ask you again until you unblock them."),
    ))) : h("li", { class: "muted" }, "No requests."));
  fill(lists.outgoing, b.outgoing.length ? b.outgoing.map((u) => h("li", { class: "item" },
    netText(u, { cls: "name" }), h("span", { class: "muted" }, " waiting for an answer"),
    h("span", { class: "actions" }, actionButton("Withdraw", "remove", u)))) : h("li", { class: "muted" }, "None."));
  fill(lists.contacts, b.contacts.length ? b.contacts.map((c) => h("li", { class: "item contact", "data-user": c.username },
    h("div", {},
      h("a", { href: "#/chat/" + encodeURIComponent(c.username), class: "name", "aria-label": `Chat with ${c.username}` }, netText(c.username)),
      presence(c)),
    h("span", { class: "actions" },
      actionButton("Remove", "remove", c.username, "secondary", "You will no longer see each other's presence or exchange messages."),
      actionButton("Block", "block", c.username, "danger", "They are removed, and their requests are ignored."),
    ))) : h("li", { class: "muted" }, "No contacts yet: add one by username above."));
  fill(lists.blocked, (b.blocked || []).length ? b.blocked.map((u) => h("li", { class: "item" }, netText(u, { cls: "name" }),
    h("span", { class: "actions" }, actionButton("Unblock", "unblock", u)))) : h("li", { class: "muted" }, "Nobody."));
}

export const contacts = {
  title: "Contacts",
  mount(root) {
    const user = h("input", { name: "username", required: true, autocapitalize: "none", spellcheck: "false", autocomplete: "off" });
    const form = h("form", {
      class: "inline",
      "aria-labelledby": "add-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const name = user.value.trim();
        const r = await busy(form, () => api.post("/api/contacts/request", { username: name }),
          (res) => (res.accepted ? `${name} is a contact now.` : `Asked ${name}; they become a contact when they accept.`));
        if (r) {
          user.value = "";
          await refreshStatus();
          await refreshContacts();
        }
      },
    }, field("Username", user), h("button", { type: "submit" }, "Send request"), h("output", { class: "out", "aria-live": "polite" }));
    lists = {
      incoming: h("ul", { class: "list", id: "incoming" }),
      outgoing: h("ul", { class: "list", id: "outgoing" }),
      contacts: h("ul", { class: "list", id: "contact-list" }),
      blocked: h("ul", { class: "list", id: "blocked" }),
    };
    root.append(
      h("h1", {}, "Contacts"),
      h("p", { class: "out", id: "contacts-out", role: "status" }),
      h("section", { "aria-labelledby": "add-title" }, h("h2", { id: "add-title" }, "Add a contact"), form),
      h("section", { "aria-labelledby": "in-title" }, h("h2", { id: "in-title" }, "Requests to you"), lists.incoming),
      h("section", { "aria-labelledby": "c-title" }, h("h2", { id: "c-title" }, "Your contacts"), lists.contacts),
      h("section", { "aria-labelledby": "out-title" }, h("h2", { id: "out-title" }, "Your requests"), lists.outgoing),
      h("section", { "aria-labelledby": "b-title" }, h("h2", { id: "b-title" }, "Blocked"), lists.blocked),
    );
    render();
    refreshContacts().catch(() => {});
  },
  update(topic) {
    if (topic === "contacts" || topic === "status") render();
  },
};
