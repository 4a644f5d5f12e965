import { netText } from "./text.js";

// h builds an element: h("button", {class: "x", onclick: f}, "text", child).
// Strings become text nodes (never HTML); null, undefined and false are
// skipped; arrays are flattened. Props starting with "on" add listeners;
// the rest are attributes (true sets an empty one, false/null none), except
// value/checked/disabled/hidden which are set as properties.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "value" || k === "checked" || k === "disabled" || k === "hidden") {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

// fill replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// reconcile makes nodes the children of parent, in order, touching only
// what differs: children not in nodes are removed, and each run of nodes
// that is not in place yet is gathered in a fragment (off the document)
// and inserted in one step. Prepending a page or appending a message
// costs that page or message, not the whole list.
export function reconcile(parent, nodes) {
  const keep = new Set(nodes);
  for (const c of [...parent.children]) if (!keep.has(c)) c.remove();
  let cur = parent.firstElementChild;
  let frag = null;
  for (const n of nodes) {
    if (n === cur) {
      if (frag) parent.insertBefore(frag, cur);
      frag = null;
      cur = cur.nextElementSibling;
      continue;
    }
    if (!frag) frag = document.createDocumentFragment();
    frag.append(n); // moves n here if it was further down
  }
  if (frag) parent.insertBefore(frag, cur);
}

let ids = 0;
// uid is a fresh element id (for label/for pairs).
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

// field is a label and an input (or select/textarea) joined by id.
export function field(label, input, hint) {
  input.id = input.id || uid("f");
  const parts = [h("label", { for: input.id }, label), input];
  if (hint) {
    const hid = uid("hint");
    input.setAttribute("aria-describedby", hid);
    parts.push(h("small", { id: hid, class: "muted" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

// confirmAction asks in the page's confirmation dialog; resolves true on
// Confirm.
export function confirmAction(title, text, okLabel = "Confirm") {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  fill(document.getElementById("confirm-text"), text);
  document.getElementById("confirm-ok").textContent = okLabel;
  dlg.returnValue = "";
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
  });
}

// busy disables a form's controls while p runs, and shows p's error (or
// done text) in the form's output element.
export async function busy(form, p, doneText = "") {
  const out = form.querySelector("output, .out");
  const controls = [...form.querySelectorAll("button, input, select, textarea")];
  controls.forEach((c) => (c.disabled = true));
  if (out) fill(out, "Working…").className = "out muted";
  try {
    const r = await p();
    if (out) fill(out, typeof doneText === "function" ? doneText(r) : doneText).className = "out ok";
    return r;
  } catch (e) {
    if (out) fill(out, netText(e.message || String(e))).className = "out error";
    return undefined;
  } finally {
    controls.forEach((c) => (c.disabled = false));
  }
}
