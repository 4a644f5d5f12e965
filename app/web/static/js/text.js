// Text from the network (message bodies, usernames, file names, errors)
// is only ever put into the page as text nodes, inside an element with
// dir="auto" that the stylesheet isolates (unicode-bidi: isolate), so it
// cannot reorder what is around it. Characters that could still fake or
// reorder something are shown escaped, as ⟨U+202E⟩, following the rules
// of the CLI (cmd/parley/text.go): C0 and C1 controls and DEL, the
// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069), the implicit marks (U+200E, U+200F, U+061C), the line and
// paragraph separators (U+2028, U+2029) and lone surrogates (text that was
// not valid UTF-16). A multi-line text (a message body) keeps its line
// breaks (\n); everywhere else they are escaped too.

function escapes(cp, multiline) {
  if (cp === 0x0a) return !multiline;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return true;
  if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return true;
  if (cp === 0x200e || cp === 0x200f || cp === 0x061c || cp === 0x2028 || cp === 0x2029) return true;
  return cp >= 0xd800 && cp <= 0xdfff; // a lone surrogate
}

function mark(cp) {
  return "⟨U+" + cp.toString(16).toUpperCase().padStart(4, "0") + "⟩";
}

// segments splits s into plain runs and escaped characters.
export function segments(s, multiline = false) {
  const out = [];
  let plain = "";
  for (const ch of String(s)) {
    const cp = ch.codePointAt(0);
    if (escapes(cp, multiline)) {
      if (plain) out.push({ text: plain });
      plain = "";
      out.push({ text: mark(cp), ctl: true });
    } else {
      plain += ch;
    }
  }
  if (plain) out.push({ text: plain });
  return out;
}

// plain is s escaped as one string, for places that take only a string
// (notifications, the document title).
export function plain(s) {
  return segments(s).map((x) => x.text).join("");
}

// netText is an isolated element holding s as text, its escapes marked.
export function netText(s, { multiline = false, tag = "span", cls = "" } = {}) {
  const el = document.createElement(tag);
  el.dir = "auto";
  el.className = ("net " + cls).trim();
  for (const seg of segments(s ?? "", multiline)) {
    if (seg.ctl) {
      const c = document.createElement("span");
      c.className = "ctl";
      c.textContent = seg.text;
      el.append(c);
    } else {
      el.append(document.createTextNode(seg.text));
    }
  }
  return el;
}
