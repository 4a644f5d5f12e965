// What the browser scripts share: the environment the Go tests pass, one
// browser per person on Debian's chromium, navigation and sign-in.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

export const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set: run the scripts through go test ./app/web`);
  return process.env[k];
};
export const timeout = 60_000;
const started = Date.now();
export const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);

// person is one user's browser: its own profile in a fresh directory.
export async function person(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `parley-ui-${name}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: env("PARLEY_CHROMIUM"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1200, height: 800 },
  });
  context.setDefaultTimeout(timeout);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const page = context.pages()[0] || (await context.newPage());
  const p = { name, page, context, dir, dialogs: [], errors: [] };
  page.on("dialog", (d) => {
    p.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => p.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // 404s are the UI asking for endpoints an older daemon lacks.
    if (/status of 404/.test(m.text())) return;
    if (m.type() === "error" || /Content Security Policy/i.test(m.text())) p.errors.push(`console: ${m.text()}`);
  });
  return p;
}

export async function close(p) {
  await p.context.close();
  fs.rmSync(p.dir, { recursive: true, force: true });
}

export async function go(p, hash) {
  await p.page.evaluate((h) => (location.hash = h), hash);
  await p.page.locator("main :is(h1, h2):visible").first().waitFor();
}

export async function signIn(p, url) {
  const t0 = Date.now();
  await p.page.goto(url);
  await p.page.locator("body[data-ready=true]").waitFor();
  const ms = Date.now() - t0;
  assert.ok(!p.page.url().includes("token"), `the page URL keeps the token: ${p.page.url()}`);
  log(`${p.name}: the UI was interactive ${ms} ms after opening the link`);
  return ms;
}
