// Network: what /api/status says about this device's place in the
// network (reachability, addresses, supernodes, DHT), the path to each
// contact, and a probe of the connection to one.
import { h, fill, field, busy } from "../dom.js";
import { netText } from "../text.js";
import * as api from "../api.js";
import { store, refreshStatus } from "../store.js";
import { pathHint, pathKind, pathLabel, when, lastSeen } from "../format.js";

let el = null;

function dl(rows) {
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function addrList(addrs, none) {
  return addrs && addrs.length ? h("ul", { class: "addrs" }, addrs.map((a) => h("li", {}, netText(a, { tag: "code" })))) : h("span", { class: "muted" }, none);
}

// supernodeList shows each supernode with its measured round trip.
function supernodeList(ids, rtts) {
  if (!ids || !ids.length) return h("span", { class: "muted" }, "none (not needed, or none reserved yet)");
  return h("ul", { class: "addrs" }, ids.map((id) => {
    const rtt = rtts[id];
    return h("li", { "data-supernode": id }, netText(id, { tag: "code" }),
      typeof rtt === "number" ? ` · round trip ${rtt.toFixed(1)} ms` : " · round trip not measured yet");
  }));
}

function reachability(s) {
  switch (s.reachability) {
    case "public":
      return "Public: others can connect to this device directly.";
    case "private":
      return "Behind a NAT or firewall: others reach this device through supernodes, or directly once a hole is punched.";
    default:
      return "Unknown yet: AutoNAT has not decided.";
  }
}

// natKinds name libp2p's NAT types and say what they mean for direct
// connections.
const natKinds = {
  endpoint_independent: ["endpoint-independent (cone-like)", "it keeps one public port per local port whoever the peer is, so hole punching can connect this device directly to contacts behind NATs too"],
  endpoint_dependent: ["endpoint-dependent (symmetric)", "it picks a new public port for every peer, so hole punching cannot get through it: contacts behind NATs are reached through a supernode (relayed)"],
};

// nat says what libp2p determined about the NAT, per transport: only
// that, and unknown until it has (it needs the addresses several peers
// observe, and looks once a minute).
function nat(s) {
  const n = s.nat || {};
  const tcp = n.tcp || "unknown";
  const udp = n.udp || "unknown";
  const attrs = { id: "nat-type", "data-nat-tcp": tcp, "data-nat-udp": udp };
  if (s.reachability === "public") return h("span", attrs, "None in the way: this device has a public address.");
  const one = (t) => (natKinds[t] ? natKinds[t][0] : "unknown");
  const what = tcp === udp ? `${one(tcp)} for TCP and UDP` : `TCP: ${one(tcp)}; UDP (QUIC): ${one(udp)}`;
  const hints = [...new Set([tcp, udp])].filter((t) => natKinds[t]).map((t) => `${natKinds[t][0]}: ${natKinds[t][1]}.`);
  return h("span", attrs,
    h("strong", {}, what[0].toUpperCase() + what.slice(1)), ".",
    hints.length ? hints.map((x) => h("p", { class: "muted small" }, x[0].toUpperCase() + x.slice(1)))
      : h("p", { class: "muted small" }, s.reachability === "private"
        ? "Not determined yet: libp2p tells the kind of NAT from the addresses several peers see this device at, and checks once a minute."
        : "Not determined: there is no NAT to type until AutoNAT finds this device behind one."));
}

function render() {
  if (!el) return;
  const s = store.status;
  const sn = s.supernode || {};
  fill(el.status, dl([
    ["This device", h("code", { class: "peer" }, s.peer)],
    ["Account", s.username ? netText(s.username) : h("span", { class: "muted" }, "none")],
    ["Login", s.logged_in ? "signed in to the rendezvous server" : s.login_problem ? netText(`${s.login_problem.reason}: ${s.login_problem.error}`) : "connecting"],
    ["Network", s.rendezvous ? netText(s.rendezvous, { tag: "code" }) : h("span", { class: "muted" }, "none chosen")],
    ["Reachability", h("span", { "data-reachability": s.reachability }, reachability(s))],
    ["NAT type", nat(s)],
    ["Public addresses", addrList(s.public_addrs, "none confirmed")],
    ["Addresses contacts are told", addrList(s.addrs, "none yet")],
    ["Supernodes in use", supernodeList(s.supernodes, s.supernode_rtt_ms || {})],
    ["Serving as a supernode", `${sn.serving ? "yes" : "no"}${sn.active ? ", active in the directory" : ""} (mode ${sn.mode || "?"})${sn.reason ? ": " + sn.reason : ""}${sn.serving ? ` · ${sn.reservations} reservations, ${sn.circuits} circuits` : ""}`],
    ["DHT", `${s.dht.mode} mode · routing table of ${s.dht.peers} peer${s.dht.peers === 1 ? "" : "s"}${s.dht.record_seq ? ` · address record #${s.dht.record_seq}, expires ${when(s.dht.record_expires)}` : " · no address record published yet"}`],
  ]));
  const cs = s.contacts || [];
  fill(el.paths, cs.length
    ? cs.map((c) => h("li", { class: "item", "data-user": c.username, "data-path": pathKind(c.path) },
        h("div", {},
          netText(c.username, { cls: "name" }), " ",
          c.online ? h("span", { class: `path path-${pathKind(c.path)}` }, netText(pathLabel(c.path, c.transport))) : h("span", { class: "muted" }, `offline, ${lastSeen(c.last_seen)}`),
          c.online ? h("p", { class: "muted small" }, pathHint(c.path, c.transport)) : null,
          c.online && c.peer ? h("p", { class: "muted small" }, "Device ", h("code", { class: "peer" }, c.peer)) : null)))
    : h("li", { class: "muted" }, "No contacts."));
  const keep = el.who.value;
  const online = cs.filter((c) => c.online).map((c) => c.username);
  fill(el.who, online.length ? online.map((n) => h("option", { value: n }, n)) : h("option", { value: "" }, "(no contact online)"));
  if (online.includes(keep)) el.who.value = keep;
}

export const network = {
  title: "Network",
  mount(root) {
    el = {};
    el.status = h("div", {});
    el.paths = h("ul", { class: "list", id: "paths" });
    el.who = h("select", { name: "contact", required: true });
    const size = h("select", { name: "size" },
      h("option", { value: String(1 << 20) }, "1 MiB"),
      h("option", { value: String(16 << 20), selected: true }, "16 MiB"),
      h("option", { value: String(64 << 20) }, "64 MiB"));
    const result = h("div", { id: "probe-result", "aria-live": "polite" });
    const form = h("form", {
      class: "card",
      "aria-labelledby": "probe-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const r = await busy(form, () => api.post("/api/probe", { username: el.who.value, size: Number(size.value) }), "");
        if (r) {
          fill(result, dl([
            ["Throughput", h("strong", { class: "mbps" }, `${r.mb_per_s.toFixed(1)} MB/s`)],
            ["Path", h("span", { class: "probe-path" }, netText(pathLabel(r.path, r.transport)))],
            ["What that means", pathHint(r.path, r.transport)],
            ["Sent", `${(r.bytes / 1e6).toFixed(1)} MB in ${(r.duration_ns / 1e6).toFixed(0)} ms`],
            ["Integrity", r.intact ? "every byte arrived intact" : h("strong", { class: "error" }, "the data arrived damaged")],
            ["Device", h("code", { class: "peer" }, r.device)],
          ]));
        }
      },
    }, h("h2", { id: "probe-title" }, "Test a connection"),
    h("p", { class: "muted" }, "Streams data to a contact's device and measures throughput and the path it took."),
    field("Contact", el.who), field("Amount", size), h("button", { type: "submit" }, "Run probe"), h("output", { class: "out", "aria-live": "polite" }), result);
    root.append(
      h("h1", {}, "Network"),
      h("section", { "aria-labelledby": "st-title" }, h("h2", { id: "st-title" }, "This device"), el.status,
        h("button", { type: "button", class: "secondary small", onclick: () => refreshStatus().catch(() => {}) }, "Refresh")),
      h("section", { "aria-labelledby": "paths-title" }, h("h2", { id: "paths-title" }, "Paths to contacts"), el.paths),
      form,
    );
    render();
    refreshStatus().catch(() => {});
  },
  unmount() {
    el = null;
  },
  update(topic) {
    if (topic === "status") render();
  },
};
