// Desktop notifications for messages that arrive while their conversation
// is not on screen. The permission is asked once, from a button (browsers
// ask only after a user action).
import { h } from "./dom.js";
import { plain } from "./text.js";
import { store, onMessage } from "./store.js";

const askedKey = "parley.notifications-asked";

export function startNotifications() {
  if (!("Notification" in window)) return;
  onMessage((m) => {
    if (!m.incoming || Notification.permission !== "granted") return;
    if (!document.hidden && store.openConversation === m.from) return;
    const n = new Notification(`Parley: ${plain(m.from)}`, { body: plain(m.body).slice(0, 200), tag: "parley-" + m.from });
    n.onclick = () => {
      window.focus();
      location.hash = "#/chat/" + encodeURIComponent(m.from);
    };
  });
}

// askButton is a button that asks for the permission, or null when it was
// asked already or cannot be.
export function askButton() {
  if (!("Notification" in window) || Notification.permission !== "default" || localStorage.getItem(askedKey)) return null;
  const b = h("button", {
    type: "button",
    class: "secondary small",
    onclick: async () => {
      localStorage.setItem(askedKey, "1");
      b.remove();
      await Notification.requestPermission();
    },
  }, "Turn on desktop notifications");
  return b;
}
