// Formatting of sizes, rates, times and connection paths.

export function bytes(n) {
  if (!Number.isFinite(n)) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function rate(bps) {
  return bps > 0 ? `${bytes(bps)}/s` : "—";
}

export function eta(remaining, bps) {
  if (!(bps > 0) || remaining <= 0) return "—";
  const s = Math.ceil(remaining / bps);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const isZero = (t) => !t || t.startsWith("0001-01-01");

export function when(iso) {
  if (isZero(iso)) return "";
  const d = new Date(iso);
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function lastSeen(iso) {
  return isZero(iso) ? "never seen online" : `last seen ${when(iso)}`;
}

// pathKind is "direct", "holepunched", "relayed", "mailbox" or "none".
export function pathKind(path) {
  if (!path || path === "not connected") return "none";
  if (path.startsWith("relayed")) return "relayed";
  return path;
}

// transportName is a transport field ("tcp", "quic") in words.
function transportName(transport) {
  switch (transport) {
    case "tcp":
      return "TCP";
    case "quic":
      return "QUIC";
    default:
      return transport;
  }
}

// pathLabel and pathHint explain a connection path in words; transport
// (the API's transport field beside path: "tcp", "quic"; may be left
// out) names what the connection runs on.
export function pathLabel(path, transport) {
  const over = transport ? ` over ${transportName(transport)}` : "";
  switch (pathKind(path)) {
    case "direct":
      return "direct" + over;
    case "holepunched":
      return "hole-punched" + over;
    case "relayed":
      return shortPeers(path) + over; // "relayed via 12D3Koo…S3LK over TCP"
    case "mailbox":
      return "via the server mailbox";
    default:
      return "not connected";
  }
}

export function pathHint(path, transport) {
  const hint = pathKindHint(path);
  if (transport !== "tcp" && transport !== "quic") return hint;
  const on = transport === "quic" ? "QUIC (UDP)" : "TCP";
  return `${hint} It runs on ${on}${pathKind(path) === "relayed" ? " to the supernode" : ""}.`;
}

function pathKindHint(path) {
  switch (pathKind(path)) {
    case "direct":
      return "Direct: the two devices reach each other with nothing in between.";
    case "holepunched":
      return "Hole-punched: both are behind NATs, and a direct connection was opened through them.";
    case "relayed":
      return "Relayed: traffic passes through a supernode (still end-to-end encrypted) because no direct connection could be made yet.";
    case "mailbox":
      return "Mailbox: the message waited, sealed, on the rendezvous server while the device was offline.";
    default:
      return "Not connected now: a connection opens when something is sent.";
  }
}

// stateLabel is an outgoing message's state in words; on_server (the
// server holds it sealed for the recipient) counts as sent.
export function stateLabel(m) {
  if (m.incoming) return "received";
  switch (m.state) {
    case "on_server":
    case "sent":
      return "sent";
    case "failed":
      return "not delivered";
    default:
      return m.state;
  }
}

// shortPeers shortens the peer IDs in text (12D3KooW… is 52 characters)
// to their first and last few; the full text goes in a title.
export function shortPeers(text) {
  return text.replace(/\b(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{30,}\b/g, (id) => `${id.slice(0, 8)}…${id.slice(-6)}`);
}
