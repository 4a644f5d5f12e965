// Files: send a file or folder to a contact, answer offers, publish and
// copy the link, fetch by link, and follow transfers (progress, rate, ETA,
// peers; pause, resume, cancel; a finished one's path to copy and its
// folder to open).
import { h, fill, field, busy, confirmAction, reconcile } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshTransfers } from "../store.js";
import { bytes, rate, eta, when } from "../format.js";
import { filePicker, sendFiles } from "../upload.js";

let el = null;

function contactOptions(select) {
  const names = ((store.book && store.book.contacts) || []).map((c) => c.username);
  const keep = select.value;
  fill(select, names.length ? names.map((n) => h("option", { value: n }, n)) : h("option", { value: "" }, "(no contacts)"));
  if (names.includes(keep)) select.value = keep;
}

async function act(button, f) {
  button.disabled = true;
  try {
    await f();
    await refreshTransfers();
  } catch (err) {
    fill(el.out, netText(err.message)).className = "out error";
  } finally {
    button.disabled = false;
  }
}

function btn(label, name, f, cls = "secondary") {
  const b = h("button", { type: "button", class: `${cls} small`, "aria-label": `${label} ${name}` }, label);
  b.addEventListener("click", () => act(b, f));
  return b;
}

// copyButton copies text to the clipboard, or selects it in the field
// next to it where the clipboard is not available; note says which.
function copyButton(text, input, label, note, caption) {
  const b = h("button", { type: "button", class: "secondary small", "aria-label": label }, caption);
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      note.textContent = "Copied.";
    } catch {
      input.select();
      note.textContent = "Press Ctrl+C to copy.";
    }
    setTimeout(() => (note.textContent = ""), 3000);
  });
  return b;
}

// copyField is a read-only text to copy (a link, a path) with its Copy
// button; before and after go around them in the row.
function copyField(text, { cls, label, copyLabel, caption, before = null, after = null }) {
  const input = h("input", { class: cls, value: text, readonly: true, "aria-label": label });
  input.addEventListener("focus", () => input.select());
  const note = h("span", { class: "muted small", role: "status" });
  return h("div", { class: "linkrow" }, before, input, copyButton(text, input, copyLabel, note, caption), after, note);
}

function linkField(link, name) {
  return copyField(link, { cls: "link", label: `Link to ${name}`, copyLabel: `Copy link to ${name}`, caption: "Copy link" });
}

// opened keeps what "Open folder" answered, per transfer, across
// re-renders: {cls, text}.
const opened = new Map();

// savedTo is where a finished download is: its path to copy, and a button
// that asks the daemon to show its folder in the desktop's file manager
// (the daemon knows the folder; the page sends the transfer's ID only).
function savedTo(t) {
  const name = t.name || t.cid;
  const open = h("button", { type: "button", class: "secondary small", "aria-label": `Open folder of ${name}` }, "Open folder");
  const said = opened.get(t.id);
  const out = h("p", { class: `open-out small ${said ? said.cls : ""}`, role: "status" }, said ? netText(said.text) : "");
  open.addEventListener("click", async () => {
    open.disabled = true;
    try {
      const r = await api.post("/api/transfers/open", { id: t.id });
      opened.set(t.id, { cls: "ok", text: `Opened ${r.path} in the file manager.` });
    } catch (err) {
      const text = err.code === "no_file_manager"
        ? `${err.message[0].toUpperCase()}${err.message.slice(1)}. Copy the path above instead.`
        : err.message;
      opened.set(t.id, { cls: "error", text });
    } finally {
      open.disabled = false;
    }
    const now = opened.get(t.id);
    out.className = `open-out small ${now.cls}`;
    fill(out, netText(now.text));
  });
  return [
    copyField(t.path, {
      cls: "link path", label: `Where ${name} was saved`, copyLabel: `Copy path of ${name}`, caption: "Copy path",
      before: h("span", { class: "small" }, "Saved to"), after: open,
    }),
    out,
  ];
}

// progressOf is a transfer's progress in percent.
function progressOf(t) {
  return t.bytes_total > 0 ? Math.min(100, Math.floor((t.bytes_done / t.bytes_total) * 100)) : t.state === "done" ? 100 : 0;
}

const isActive = (t) => t.state === "running" || t.state === "finding_providers";

function statsText(t) {
  const pct = progressOf(t);
  return `${pct}% · ${bytes(t.bytes_done)} of ${bytes(t.bytes_total)}` +
    (isActive(t) ? ` · ${rate(t.rate)} · ETA ${eta(t.bytes_total - t.bytes_done, t.rate)} · ${t.peers} peer${t.peers === 1 ? "" : "s"}` : "");
}

// transferItem makes a transfer's item: {li, progress, stats,
// error}. Progress comes many times a second; it updates the item in place
// (updateTransfer), so that its buttons stay the same elements under the
// pointer. A new item is made when what the buttons depend on changes.
function transferItem(t) {
  const name = t.name || t.cid;
  const progress = h("progress", { max: "100", value: String(progressOf(t)), "aria-label": `Progress of ${name}` });
  const stats = h("p", { class: "muted small" }, statsText(t));
  const error = h("p", { class: "error small", hidden: !t.error }, netText(t.error || ""));
  const li = h("li", { class: "item transfer", "data-id": t.id, "data-cid": t.cid, "data-state": t.state },
    h("div", { class: "grow" },
      h("p", {}, netText(name, { cls: "name" }), " ", h("span", { class: `tag state-${t.state}` }, t.state.replace("_", " "))),
      progress,
      stats,
      t.state === "done" && t.path ? savedTo(t) : null,
      error,
      h("p", { class: "muted small" }, "Content ID ", h("code", { class: "cid" }, t.cid))),
    h("span", { class: "actions" },
      isActive(t) ? btn("Pause", t.name, () => api.post("/api/transfers/pause", { id: t.id })) : null,
      t.state === "paused" || t.state === "failed" ? btn("Resume", t.name, () => api.post("/api/transfers/resume", { id: t.id })) : null,
      t.state !== "done" && t.state !== "cancelled"
        ? btn("Cancel", t.name, async () => {
            if (await confirmAction("Cancel this download?", "What was downloaded so far is deleted.", "Cancel download")) await api.post("/api/transfers/cancel", { id: t.id });
          }, "danger")
        : null));
  return { li, progress, stats, error, t };
}

const transferKey = (t) => JSON.stringify([t.state, t.name, t.path, t.cid]);

function updateTransfer(item, t) {
  if (item.t === t) return;
  item.t = t;
  item.progress.value = progressOf(t);
  item.stats.textContent = statsText(t);
  item.error.hidden = !t.error;
  fill(item.error, netText(t.error || ""));
}

// keyed reuses the items of a list whose key did not change.
function keyed(cache, list, id, key, make) {
  const next = new Map();
  const nodes = list.map((x) => {
    const had = cache.get(id(x));
    const item = had && had.key === key(x) ? had : { ...make(x), key: key(x) };
    next.set(id(x), item);
    return item;
  });
  return [next, nodes];
}

function offerItem(o) {
  const incoming = o.direction === "in";
  const who = incoming ? ["from ", netText(o.from)] : ["to ", netText(o.to)];
  const sent = !incoming && o.bytes_sent ? ` · ${bytes(Math.min(o.bytes_sent, o.size))} sent` : "";
  return h("li", { class: "item offer", "data-id": o.id, "data-cid": o.cid, "data-state": o.state, "data-direction": o.direction },
    h("div", { class: "grow" },
      h("p", {}, netText(o.name, { cls: "name" }), " ", ...who, " ", h("span", { class: `tag state-${o.state}` }, o.state)),
      h("p", { class: "muted small" }, `${bytes(o.size)} · ${o.files} file${o.files === 1 ? "" : "s"} · ${when(o.created)}${!incoming && !o.delivered ? " · not delivered yet" : ""}${sent}`),
      o.error ? h("p", { class: "error small" }, netText(o.error)) : null),
    h("span", { class: "actions" },
      incoming && o.state === "pending" ? btn("Accept", o.name, () => api.post("/api/offers/accept", { id: o.id }), "") : null,
      incoming && o.state === "pending" ? btn("Decline", o.name, () => api.post("/api/offers/decline", { id: o.id })) : null,
      !incoming && o.state === "pending" ? btn("Withdraw", o.name, () => api.post("/api/offers/cancel", { id: o.id })) : null));
}

function publishedItem(p) {
  return h("li", { class: "item published", "data-cid": p.cid },
    h("div", { class: "grow" },
      h("p", {}, netText(p.name, { cls: "name" }), h("span", { class: "muted" }, ` · ${bytes(p.size)}`)),
      linkField(p.link, p.name)),
    h("span", { class: "actions" }, btn("Stop sharing", p.name, () => api.post("/api/unpublish", { cid: p.cid }))));
}

// keepFocus runs a re-render and puts the keyboard focus back on the same
// button (by its label) if the render replaced it.
function keepFocus(renderPart) {
  if (!el) return;
  const focused = document.activeElement;
  const label = focused && el.lists.contains(focused) ? focused.getAttribute("aria-label") : null;
  renderPart();
  if (label && !el.lists.contains(document.activeElement)) {
    const again = [...el.lists.querySelectorAll("[aria-label]")].find((x) => x.getAttribute("aria-label") === label);
    if (again) again.focus();
  }
}

function renderOffers() {
  const offers = [...store.offers].reverse();
  let items;
  [el.offerItems, items] = keyed(el.offerItems, offers, (o) => o.id, (o) => JSON.stringify(o), (o) => ({ li: offerItem(o) }));
  if (offers.length) reconcile(el.offers, items.map((x) => x.li));
  else fill(el.offers, h("li", { class: "muted" }, "No offers."));
}

function renderTransfers() {
  const ts = [...store.transfers].reverse();
  let items;
  [el.transferItems, items] = keyed(el.transferItems, ts, (t) => t.id, transferKey, transferItem);
  items.forEach((x, i) => updateTransfer(x, ts[i]));
  if (ts.length) reconcile(el.transfers, items.map((x) => x.li));
  else fill(el.transfers, h("li", { class: "muted" }, "No transfers."));
}

function renderPublished() {
  const ps = store.published;
  let items;
  [el.publishedItems, items] = keyed(el.publishedItems, ps, (p) => p.cid, (p) => JSON.stringify(p), (p) => ({ li: publishedItem(p) }));
  if (ps.length) reconcile(el.published, items.map((x) => x.li));
  else fill(el.published, h("li", { class: "muted" }, "Nothing published."));
}

// renderParts is what each store topic redraws: a transfer's progress
// comes several times a second and touches the transfers only.
const renderParts = {
  offers: renderOffers,
  transfers: renderTransfers,
  published: renderPublished,
  contacts: () => contactOptions(el.to),
};

function render() {
  keepFocus(() => Object.values(renderParts).forEach((f) => f()));
}

function pathInput(name) {
  return h("input", { name, required: true, spellcheck: "false", autocomplete: "off", placeholder: "/home/you/Documents/report.pdf" });
}

export const files = {
  title: "Files",
  mount(root) {
    el = { offerItems: new Map(), transferItems: new Map(), publishedItems: new Map() };
    el.out = h("p", { class: "out", role: "status" });
    el.to = h("select", { name: "to", required: true });
    const sharePath = pathInput("path");
    sharePath.required = false;
    const shareOut = h("output", { class: "out", "aria-live": "polite" });
    const sharePicker = filePicker("Choose files to send", async (list) => {
      const r = await sendFiles(list, shareOut, (path) => api.post("/api/share", { to: el.to.value, path }), (os) => `Offered ${os.map((o) => o.name).join(", ")} to ${el.to.value}.`);
      if (r) await refreshTransfers();
    });
    const share = h("form", {
      class: "card",
      "aria-labelledby": "share-title",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!sharePath.value.trim()) {
          fill(shareOut, "Choose a file, or type a path.").className = "out error";
          return;
        }
        const r = await busy(share, () => api.post("/api/share", { to: el.to.value, path: sharePath.value.trim() }), (o) => `Offered ${o.name} to ${o.to}.`);
        if (r) await refreshTransfers();
      },
    }, h("h2", { id: "share-title" }, "Send to a contact"),
    field("Contact", el.to), sharePicker,
    field("Or a file or folder by path", sharePath, "The full path: the daemon reads it in place, without a copy."),
    h("button", { type: "submit" }, "Send"), shareOut);

    const pubPath = pathInput("path");
    pubPath.required = false;
    const pubResult = h("div", { class: "pubresult" });
    const pubOut = h("output", { class: "out", "aria-live": "polite" });
    const pubPicker = filePicker("Choose files to publish", async (list) => {
      const ps = await sendFiles(list, pubOut, (path) => api.post("/api/publish", { path }), () => "Published: anyone in the network with the link can fetch it.");
      if (ps) {
        fill(pubResult, ps.map((p) => linkField(p.link, p.name)));
        await refreshTransfers();
      }
    });
    const publish = h("form", {
      class: "card",
      "aria-labelledby": "pub-title",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!pubPath.value.trim()) {
          fill(pubOut, "Choose a file, or type a path.").className = "out error";
          return;
        }
        const p = await busy(publish, () => api.post("/api/publish", { path: pubPath.value.trim() }), "Published: anyone in the network with the link can fetch it.");
        if (p) {
          fill(pubResult, linkField(p.link, p.name));
          await refreshTransfers();
        }
      },
    }, h("h2", { id: "pub-title" }, "Publish"), pubPicker, field("Or a file or folder by path", pubPath),
    h("button", { type: "submit" }, "Publish"), pubOut, pubResult);

    const link = h("input", { name: "link", required: true, spellcheck: "false", autocomplete: "off", placeholder: "parley://bafk…" });
    const fetchForm = h("form", {
      class: "card",
      "aria-labelledby": "fetch-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const t = await busy(fetchForm, () => api.post("/api/get", { link: link.value.trim() }), (t) => `Downloading ${t.name}.`);
        if (t) {
          link.value = "";
          await refreshTransfers();
        }
      },
    }, h("h2", { id: "fetch-title" }, "Fetch by link"), field("Link", link), h("button", { type: "submit" }, "Fetch"), h("output", { class: "out", "aria-live": "polite" }));

    el.offers = h("ul", { class: "list", id: "offers" });
    el.transfers = h("ul", { class: "list", id: "transfers" });
    el.published = h("ul", { class: "list", id: "published" });
    el.lists = h("div", {},
      h("section", { "aria-labelledby": "offers-title" }, h("h2", { id: "offers-title" }, "Offers"), el.offers),
      h("section", { "aria-labelledby": "tr-title" }, h("h2", { id: "tr-title" }, "Downloads"), el.transfers),
      h("section", { "aria-labelledby": "pl-title" }, h("h2", { id: "pl-title" }, "Published"), el.published));
    root.append(h("h1", {}, "Files"), el.out, h("div", { class: "columns three" }, share, publish, fetchForm), el.lists);
    render();
    refreshTransfers().catch(() => {});
  },
  unmount() {
    el = null;
  },
  update(topic) {
    if (renderParts[topic]) keepFocus(renderParts[topic]);
  },
};
