// The UI's copy of what the daemon said, kept current by the event stream
// (/api/events). Views subscribe with on(f); f(topic) is called after a
// topic changed: "status", "contacts", "conversations", "messages",
// "transfers", "offers", "published", "devices".
import * as api from "./api.js";

export const store = {
  status: null,
  book: null,
  // conversations: [{contact, unread, last}] newest first; built from the
  // contacts while the daemon has no /api/conversations.
  conversations: [],
  // messages: contact → {list (oldest first), complete (no older ones)}.
  messages: new Map(),
  transfers: [],
  offers: [],
  published: [],
  devices: null,
  // What the daemon supports, found out by asking (undefined: not yet).
  features: { conversations: undefined, read: undefined },
  // Unread counts kept here when the daemon does not keep them.
  localUnread: new Map(),
  openConversation: "", // the contact whose conversation is on screen
};

const listeners = new Set();
export function on(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}
function emit(topic) {
  for (const f of listeners) f(topic);
}

const messageListeners = new Set();
// onMessage(f): f(message) for each message that arrives live.
export function onMessage(f) {
  messageListeners.add(f);
}

export async function refreshStatus() {
  store.status = await api.get("/api/status");
  emit("status");
  return store.status;
}

export async function refreshContacts() {
  if (!store.status || !store.status.username) return;
  try {
    store.book = await api.get("/api/contacts");
  } catch {
    // Offline from the server: the status still lists contacts.
    const s = store.status;
    store.book = { contacts: s.contacts, incoming: s.incoming, outgoing: s.outgoing, blocked: [] };
  }
  emit("contacts");
  await refreshConversations();
}

export async function refreshConversations() {
  if (store.features.conversations !== false) {
    try {
      store.conversations = await api.get("/api/conversations");
      store.features.conversations = true;
      emit("conversations");
      return;
    } catch (e) {
      if (e.status !== 404) throw e;
      store.features.conversations = false;
    }
  }
  // Without the endpoint: one entry per contact, with what this page saw.
  const contacts = (store.book && store.book.contacts) || (store.status && store.status.contacts) || [];
  store.conversations = contacts.map((c) => {
    const m = store.messages.get(c.username);
    return { contact: c.username, unread: store.localUnread.get(c.username) || 0, last: m && m.list.length ? m.list[m.list.length - 1] : null };
  });
  store.conversations.sort((a, b) => (b.last ? Date.parse(b.last.sent) : 0) - (a.last ? Date.parse(a.last.sent) : 0));
  emit("conversations");
}

// A list fetched from the API may be older than an event that arrived
// while the fetch was under way (a transfer done, a message delivered).
// While a fetch runs, the events that update such items are kept and
// applied again, in order, on top of what the fetch answered.
let fetching = 0;
let replay = [];
async function snapshot(f) {
  fetching++;
  try {
    return await f();
  } finally {
    fetching--;
    if (fetching === 0 && replay.length) {
      const evs = replay;
      replay = [];
      evs.forEach(apply);
    }
  }
}

export async function refreshTransfers() {
  await snapshot(async () => {
    [store.transfers, store.offers, store.published] = await Promise.all([
      api.get("/api/transfers"),
      api.get("/api/offers"),
      api.get("/api/published"),
    ]);
  });
  emit("transfers");
  emit("offers");
  emit("published");
}

export async function refreshDevices() {
  store.devices = await api.get("/api/devices");
  emit("devices");
}

const pageSize = 50;

// loadHistory loads the latest messages with contact.
export async function loadHistory(contact) {
  await snapshot(async () => {
    const list = await api.get("/api/history" + api.q({ contact, limit: pageSize }));
    store.messages.set(contact, { list, complete: list.length < pageSize });
  });
  emit("messages");
}

// loadOlder pages back: with ?before= where the daemon pages, else by
// asking for a longer tail.
export async function loadOlder(contact) {
  const conv = store.messages.get(contact);
  if (!conv || conv.complete || conv.list.length === 0) return;
  await snapshot(() => fetchOlder(conv, contact));
  emit("messages");
}

async function fetchOlder(conv, contact) {
  if (store.features.conversations) {
    const older = await api.get("/api/history" + api.q({ contact, limit: pageSize, before: conv.list[0].id }));
    const have = new Set(conv.list.map((m) => m.id));
    conv.list = older.filter((m) => !have.has(m.id)).concat(conv.list);
    conv.complete = older.length < pageSize;
  } else {
    const limit = Math.min(conv.list.length + pageSize, 1000);
    const list = await api.get("/api/history" + api.q({ contact, limit }));
    conv.complete = list.length < limit || limit === 1000;
    conv.list = list;
  }
}

// markRead tells the daemon that contact's conversation was seen (one
// call at a time per contact).
const reading = new Set();
export async function markRead(contact) {
  if (reading.has(contact)) return;
  reading.add(contact);
  store.localUnread.delete(contact);
  const c = store.conversations.find((x) => x.contact === contact);
  if (c) c.unread = 0;
  try {
    emit("conversations");
    if (store.features.read === false) return;
    await api.post("/api/read", { contact });
    store.features.read = true;
  } catch (e) {
    if (e.status === 404) store.features.read = false;
  } finally {
    reading.delete(contact);
  }
}

// peerOf is the contact a message was exchanged with.
export function peerOf(m) {
  return m.incoming ? m.from : m.to;
}

function upsertMessage(m) {
  const contact = peerOf(m);
  const conv = store.messages.get(contact);
  if (conv) {
    const i = conv.list.findIndex((x) => x.id === m.id);
    if (i >= 0) conv.list[i] = m;
    else conv.list.push(m);
  }
  const entry = store.conversations.find((x) => x.contact === contact);
  if (entry && (!entry.last || entry.last.id === m.id || Date.parse(m.sent) >= Date.parse(entry.last.sent))) entry.last = m;
  emit("messages");
}

function upsert(list, item) {
  const i = list.findIndex((x) => x.id === item.id);
  if (i >= 0) list[i] = item;
  else list.push(item);
}

// Refreshes triggered by events are coalesced.
const pending = new Map();
function soon(key, f, ms = 150) {
  if (pending.has(key)) return;
  pending.set(key, setTimeout(() => {
    pending.delete(key);
    f().catch(() => {});
  }, ms));
}

// replayed are the kinds of events that update items of fetched lists.
const replayed = new Set(["message", "message_state", "transfer", "offer"]);

function handle(ev) {
  if (fetching > 0 && replayed.has(ev.kind)) replay.push(ev);
  if (ev.kind === "message") {
    const m = ev.message;
    if (m.incoming && store.features.conversations !== true && store.openConversation !== m.from) {
      store.localUnread.set(m.from, (store.localUnread.get(m.from) || 0) + 1);
    }
    soon("conversations", refreshConversations, 300);
    for (const f of messageListeners) f(m);
  }
  apply(ev);
}

// apply brings the store up to date with one event.
function apply(ev) {
  switch (ev.kind) {
    case "gap":
      refreshAll().catch(() => {});
      break;
    case "login":
    case "logout":
    case "login_stopped":
    case "supernodes":
      soon("status", async () => {
        await refreshStatus();
        await refreshContacts();
      });
      break;
    case "presence":
    case "contact":
    case "path":
      soon("contacts", async () => {
        await refreshStatus();
        await refreshContacts();
      });
      break;
    case "message":
    case "message_state":
      upsertMessage(ev.message);
      break;
    case "unread": {
      const u = ev.unread;
      const entry = store.conversations.find((x) => x.contact === u.contact);
      if (entry) entry.unread = u.count;
      else soon("conversations", refreshConversations, 100);
      emit("conversations");
      break;
    }
    case "transfer":
      upsert(store.transfers, ev.transfer);
      emit("transfers");
      break;
    case "offer":
      upsert(store.offers, ev.offer);
      emit("offers");
      if (ev.offer.state === "accepted") soon("transfers", refreshTransfers, 300);
      break;
  }
}

const kinds = ["gap", "login", "logout", "login_stopped", "presence", "contact", "message", "message_state", "path", "supernodes", "transfer", "offer", "unread"];

let source = null;
// connectEvents opens the event stream after the status snapshot's
// event_seq, so nothing between the snapshot and the stream is missed;
// EventSource reconnects by itself with Last-Event-ID.
export function connectEvents() {
  disconnectEvents();
  source = new EventSource("/api/events" + api.q({ since: store.status ? store.status.event_seq : "" }));
  for (const k of kinds) {
    source.addEventListener(k, (e) => {
      try {
        handle(JSON.parse(e.data));
      } catch (err) {
        console.error("event", k, err);
      }
    });
  }
  source.addEventListener("open", () => emit("stream"));
  source.addEventListener("error", () => emit("stream"));
}

// disconnectEvents closes the event stream (signed out: it would only be
// refused).
export function disconnectEvents() {
  if (source) source.close();
  source = null;
}

export function streamState() {
  if (!source) return "closed";
  return ["connecting", "open", "closed"][source.readyState];
}

export async function refreshAll() {
  await refreshStatus();
  if (!store.status.username) return;
  await Promise.all([refreshContacts(), refreshTransfers()]);
  for (const contact of store.messages.keys()) await loadHistory(contact);
}
