// Files picked or dropped in the page: a browser never reveals a file's
// path, so the page uploads the bytes (POST /api/upload), and the daemon
// shares or publishes the copy it saved.
import { h, uid, fill } from "./dom.js";
import { netText } from "./text.js";
import * as api from "./api.js";

// upload saves file in the daemon and resolves to its path there.
export async function upload(file) {
  const r = await api.postBytes("/api/upload" + api.q({ name: file.name }), file);
  return r.path;
}

// filePicker is a file input (several files at once) inside a zone that
// also takes files dropped on it; onFiles gets the chosen Files.
export function filePicker(label, onFiles) {
  const input = h("input", { type: "file", multiple: true, id: uid("pick"), class: "file-input" });
  const zone = h("div", { class: "dropzone" },
    h("label", { for: input.id }, label), input,
    h("small", { class: "muted" }, "or drop files here"));
  const take = (list) => {
    const files = [...list];
    if (files.length) onFiles(files);
  };
  input.addEventListener("change", () => {
    take(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (e) => {
    if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer) take(e.dataTransfer.files);
  });
  return zone;
}

// sendFiles uploads each file and hands its daemon-side path to then
// (Share or Publish), telling out how it goes; it resolves to then's
// results, or undefined after showing the error.
export async function sendFiles(files, out, then, doneText) {
  try {
    const results = [];
    for (const f of files) {
      fill(out, "Uploading ", netText(f.name), "…").className = "out muted";
      results.push(await then(await upload(f)));
    }
    fill(out, doneText(results)).className = "out ok";
    return results;
  } catch (err) {
    fill(out, netText(err.message)).className = "out error";
    return undefined;
  }
}
