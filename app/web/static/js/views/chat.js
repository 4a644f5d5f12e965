// Chat: the conversation list (unread count, last message) and the open
// conversation: its history, paged back when scrolled to the top (a
// bounded window of it on the page: see windowSize), each
// message with its state and path, live from the event stream; a draft
// per conversation kept in localStorage.
import { h, fill, reconcile } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, loadHistory, loadOlder, markRead, refreshConversations } from "../store.js";
import { when, pathLabel, pathHint, stateLabel } from "../format.js";
import { presence } from "./contacts.js";
import { askButton } from "../notify.js";
import { filePicker, sendFiles } from "../upload.js";

let el = null; // the view's fixed elements while mounted
const draftKey = (c) => "parley.draft." + c;

function contactStatus(name) {
  return ((store.book && store.book.contacts) || (store.status && store.status.contacts) || []).find((c) => c.username === name);
}

function renderList() {
  const convs = store.conversations;
  fill(el.list, convs.length
    ? convs.map((c) => {
        const cs = contactStatus(c.contact);
        const current = c.contact === store.openConversation;
        return h("li", {},
          h("a", { href: "#/chat/" + encodeURIComponent(c.contact), class: "conv" + (current ? " current" : ""), "aria-current": current ? "page" : null, "data-contact": c.contact },
            h("span", { class: `dot ${cs && cs.online ? "on" : "off"}`, "aria-hidden": "true" }),
            h("span", { class: "conv-main" },
              netText(c.contact, { cls: "name" }),
              c.last ? netText((c.last.incoming ? "" : "You: ") + c.last.body, { cls: "last muted" }) : h("span", { class: "last muted" }, "No messages yet")),
            c.unread ? h("span", { class: "badge", "aria-label": `${c.unread} unread` }, String(c.unread)) : null));
      })
    : h("li", { class: "muted" }, "No conversations: add a contact first."));
}

function messageItem(m) {
  const state = stateLabel(m);
  return h("li", { class: `msg ${m.incoming ? "in" : "out"}`, "data-id": m.id, "data-state": m.incoming ? "received" : m.state },
    netText(m.body, { multiline: true, tag: "p", cls: "body" }),
    h("p", { class: "meta" },
      h("time", { datetime: m.sent }, when(m.sent)),
      m.incoming ? null : [" · ", h("span", { class: `state state-${m.state}` }, state)],
      m.path ? [" · ", h("span", { class: "path", title: pathHint(m.path, m.transport) }, netText(pathLabel(m.path, m.transport)))] : null,
      m.state === "failed" && m.error ? [" · ", netText(m.error, { cls: "error" })] : null));
}

// The conversation shows a window of at most windowSize messages of
// those loaded: scrolling to the top moves it a page back (loading older
// messages from the daemon when the window is at the oldest loaded), and
// scrolling to the bottom moves it forward again. However long the
// conversation, the page holds a bounded number of message elements, so
// style, layout and painting cost the same on the ten-thousandth message as
// on the first. el.win is the window ({first, last} message ids), or null
// while it follows the newest messages.
const windowSize = 150;
const pageStep = 50;

function indexOf(list, id) {
  for (let i = list.length - 1; i >= 0; i--) if (list[i].id === id) return i;
  return -1;
}

// windowOf is the window's [start, end) in list.
function windowOf(list) {
  if (el.win) {
    const s = indexOf(list, el.win.first);
    const e = indexOf(list, el.win.last) + 1;
    if (s >= 0 && e > s) return [s, e];
    el.win = null;
  }
  return [Math.max(0, list.length - windowSize), list.length];
}

// firstVisible is the first message element in view, with where it is,
// to keep it there across a change of the window.
function firstVisible() {
  const top = el.scroller.getBoundingClientRect().top;
  for (const li of el.messages.children) {
    const r = li.getBoundingClientRect();
    if (r.bottom > top) return { li, top: r.top };
  }
  return null;
}

function renderMessages() {
  const contact = store.openConversation;
  if (!contact || !el.messages) return;
  const conv = store.messages.get(contact);
  const box = el.scroller;
  if (!conv) {
    fill(el.messages, h("li", { class: "muted" }, "Loading…"));
    return;
  }
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const anchor = el.stick || nearBottom ? null : firstVisible();
  const [start, end] = windowOf(conv.list);
  // Items are made once per message and kept while the message object is
  // the same, and only the items that changed place are moved (reconcile).
  const items = new Map();
  const nodes = conv.list.slice(start, end).map((m) => {
    const had = el.items.get(m.id);
    const li = had && had.m === m ? had.li : messageItem(m);
    items.set(m.id, { m, li });
    return li;
  });
  el.items = items;
  if (nodes.length === 0) fill(el.messages, h("li", { class: "muted" }, "No messages yet: say hello."));
  else reconcile(el.messages, nodes);
  el.older.hidden = start === 0 && conv.complete;
  el.newer.hidden = end === conv.list.length;
  if (el.stick || (nearBottom && !el.win)) box.scrollTop = box.scrollHeight;
  else if (anchor && anchor.li.isConnected) box.scrollTop += anchor.li.getBoundingClientRect().top - anchor.top;
  el.stick = false;
}

// pageBack moves the window a page back, loading older messages first
// when it shows the oldest loaded.
async function pageBack() {
  if (el.paging) return;
  el.paging = true;
  try {
    const contact = store.openConversation;
    let conv = store.messages.get(contact);
    if (!conv) return;
    let [start, end] = windowOf(conv.list);
    if (start === 0 && !conv.complete) {
      if (!el.win && conv.list.length) el.win = { first: conv.list[start].id, last: conv.list[end - 1].id };
      await loadOlder(contact);
      if (!el || store.openConversation !== contact) return;
      conv = store.messages.get(contact);
      [start, end] = windowOf(conv.list);
    }
    if (start === 0) return;
    const s = Math.max(0, start - pageStep);
    const e = Math.min(end, s + windowSize);
    el.win = { first: conv.list[s].id, last: conv.list[e - 1].id };
    renderMessages();
  } finally {
    if (el) el.paging = false;
  }
}

// pageForward moves the window a page towards the newest messages, and
// follows them again once it reaches them.
function pageForward() {
  const conv = store.messages.get(store.openConversation);
  if (!conv || !el.win) return;
  const [, end] = windowOf(conv.list);
  const e = Math.min(conv.list.length, end + pageStep);
  const s = Math.max(0, e - windowSize);
  el.win = e === conv.list.length ? null : { first: conv.list[s].id, last: conv.list[e - 1].id };
  renderMessages();
}

function onScroll() {
  if (!el || !el.scroller) return; // a scroll event after the view went
  const box = el.scroller;
  if (box.scrollTop < 40 && !el.older.hidden) pageBack();
  else if (box.scrollHeight - box.scrollTop - box.clientHeight < 40 && el.win) pageForward();
}

function renderHeader() {
  const contact = store.openConversation;
  if (!contact || !el.head) return;
  const cs = contactStatus(contact);
  fill(el.head, h("h2", { id: "conv-title" }, netText(contact)), cs ? presence(cs) : h("p", { class: "muted" }, "Not a contact now"));
}

// visibleAndFocused: the user can see the open conversation.
const seen = () => document.visibilityState === "visible" && document.hasFocus();

function maybeMarkRead() {
  const c = store.openConversation;
  if (!c || !seen()) return;
  const entry = store.conversations.find((x) => x.contact === c);
  if (entry && entry.unread > 0) markRead(c);
}

function openConversation(contact) {
  store.openConversation = contact;
  fill(el.pane);
  renderList();
  el.root.classList.toggle("has-open", Boolean(contact));
  if (!contact) {
    el.head = el.messages = null;
    el.pane.append(h("p", { class: "muted empty" }, "Choose a conversation."));
    return;
  }
  el.items = new Map();
  el.win = null;
  el.head = h("div", { class: "conv-head" });
  el.messages = h("ol", { class: "messages" });
  el.older = h("button", { type: "button", class: "secondary small", hidden: true, onclick: pageBack }, "Show older messages");
  el.newer = h("button", { type: "button", class: "secondary small", hidden: true, onclick: () => { el.win = null; el.stick = true; renderMessages(); } }, "Jump to the newest messages");
  el.scroller = h("div", { class: "scroller", role: "log", tabindex: "0", "aria-label": `Messages with ${contact}`, onscroll: onScroll }, el.older, el.messages, el.newer);
  const text = h("textarea", { id: "compose", rows: "2", maxlength: "16000", placeholder: "Write a message" });
  text.value = localStorage.getItem(draftKey(contact)) || "";
  text.addEventListener("input", () => {
    if (text.value) localStorage.setItem(draftKey(contact), text.value);
    else localStorage.removeItem(draftKey(contact));
  });
  const out = h("output", { class: "out", "aria-live": "polite" });
  const form = h("form", {
    class: "compose",
    onsubmit: async (e) => {
      e.preventDefault();
      const body = text.value;
      if (!body.trim()) return;
      // The box is cleared at once, so that what is typed while the
      // message goes out is kept; a failure puts the message back.
      text.value = "";
      localStorage.removeItem(draftKey(contact));
      try {
        const m = await api.post("/api/send", { to: contact, body });
        out.textContent = "";
        const conv = store.messages.get(contact);
        if (conv && !conv.list.some((x) => x.id === m.id)) conv.list.push(m);
        el.stick = true;
        el.win = null;
        renderMessages();
        refreshConversations().catch(() => {});
      } catch (err) {
        fill(out, netText(err.message)).className = "out error";
        if (!text.value) {
          text.value = body;
          localStorage.setItem(draftKey(contact), body);
        }
      }
      text.focus();
    },
  },
  h("label", { for: "compose", class: "visually-hidden" }, `Message to ${contact}`),
  text, h("button", { type: "submit" }, "Send"), out);
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const fileOut = h("output", { class: "out", "aria-live": "polite" });
  const picker = filePicker(`Send a file to ${contact}`, (list) =>
    sendFiles(list, fileOut, (path) => api.post("/api/share", { to: contact, path }), (os) => `Offered ${os.map((o) => o.name).join(", ")}: see Files for its progress.`));
  el.pane.append(h("a", { href: "#/chat", class: "back" }, "← All conversations"), el.head, el.scroller, form, h("div", { class: "send-file" }, picker, fileOut));
  renderHeader();
  el.stick = true;
  renderMessages();
  loadHistory(contact).then(maybeMarkRead).catch((err) => fill(el.messages, h("li", { class: "error" }, netText(err.message))));
}

function onFocus() {
  maybeMarkRead();
}

export const chat = {
  title: "Chat",
  mount(root, arg) {
    el = { root: h("div", { class: "chat" }) };
    el.list = h("ul", { class: "conv-list", "aria-label": "Conversations" });
    el.pane = h("section", { class: "conversation", "aria-label": "Conversation" });
    const ask = askButton();
    el.root.append(h("nav", { class: "conversations", "aria-label": "Conversations" }, h("h1", {}, "Chat"), ask, el.list), el.pane);
    root.append(el.root);
    window.addEventListener("focus", onFocus);
    document.addEventListener("visibilitychange", onFocus);
    refreshConversations().catch(() => {});
    openConversation(arg);
  },
  navigate(arg) {
    openConversation(arg);
  },
  unmount() {
    window.removeEventListener("focus", onFocus);
    document.removeEventListener("visibilitychange", onFocus);
    store.openConversation = "";
    el = null;
  },
  update(topic) {
    if (topic === "conversations" || topic === "contacts") renderList();
    // The unread count may come after the message it counts.
    if (topic === "conversations") maybeMarkRead();
    if (topic === "contacts" || topic === "status") renderHeader();
    if (topic === "messages") {
      renderMessages();
      renderList();
      maybeMarkRead();
    }
  },
};
