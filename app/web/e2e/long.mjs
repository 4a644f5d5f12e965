// The long-conversation figures of the web UI, run by app/web/long_test.go
// (TestBrowserLongConversation): bob's browser (PARLEY_BOB_URL) opens his
// conversation with alice, which holds thousands of messages, and scrolls
// back through PARLEY_PAGES pages of it, while a requestAnimationFrame loop
// records how long each frame took. Prints "RESULT <json>" with the figures.
import { env, timeout, log, person, close, go, signIn } from "./browser.mjs";

function percentile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const bob = await person("bob");
try {
  await signIn(bob, env("PARLEY_BOB_URL"));
  const t0 = Date.now();
  await go(bob, "#/chat/alice");
  await bob.page.locator(".msg").first().waitFor();
  const open = Date.now() - t0;
  await bob.page.evaluate(() => {
    window.frameGaps = [];
    let last = performance.now();
    const tick = (t) => {
      window.frameGaps.push(t - last);
      last = t;
      if (!window.stopFrames) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  // With PARLEY_UI_TRACE=1, a trace of the paging says where the main
  // thread's time goes (the longest kinds of work, summed).
  const tracing = process.env.PARLEY_UI_TRACE === "1";
  let cdp = null;
  const traceEvents = [];
  if (tracing) {
    cdp = await bob.context.newCDPSession(bob.page);
    cdp.on("Tracing.dataCollected", (e) => traceEvents.push(...e.value));
    await cdp.send("Tracing.start", { categories: "devtools.timeline,disabled-by-default-devtools.timeline", transferMode: "ReportEvents" });
  }
  const pages = [];
  const pageCount = Number(env("PARLEY_PAGES"));
  for (let i = 0; i < pageCount; i++) {
    // A page back shows older messages at the top (the page keeps a
    // bounded window of the conversation, so the count of messages shown
    // need not grow).
    const first = await bob.page.locator(".msg").first().getAttribute("data-id");
    const t = Date.now();
    await bob.page.locator(".scroller").evaluate((el) => (el.scrollTop = 0));
    await bob.page.waitForFunction((id) => {
      const m = document.querySelector(".msg");
      return m && m.dataset.id !== id;
    }, first, { timeout });
    pages.push(Date.now() - t);
  }
  const gaps = await bob.page.evaluate(() => {
    window.stopFrames = true;
    return window.frameGaps;
  });
  if (tracing) {
    const done = new Promise((ok) => cdp.once("Tracing.tracingComplete", ok));
    await cdp.send("Tracing.end");
    await done;
    const sum = new Map();
    for (const e of traceEvents) {
      if (e.ph !== "X" || !e.dur) continue;
      const k = e.name;
      const v = sum.get(k) || { ms: 0, n: 0, max: 0 };
      v.ms += e.dur / 1000;
      v.n++;
      v.max = Math.max(v.max, e.dur / 1000);
      sum.set(k, v);
    }
    const top = [...sum.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15);
    for (const [k, v] of top) log(`trace: ${k}: ${v.ms.toFixed(0)} ms in ${v.n}, longest ${v.max.toFixed(1)} ms`);
    // What the long tasks (over 50 ms) were made of.
    const xs = traceEvents.filter((e) => e.ph === "X" && e.dur);
    for (const t of xs.filter((e) => e.name === "RunTask" && e.dur > 50000)) {
      const parts = xs.filter((e) => e.tid === t.tid && e !== t && e.ts >= t.ts && e.ts + e.dur <= t.ts + t.dur && e.dur > 3000);
      log(`trace: long task ${(t.dur / 1000).toFixed(0)} ms: ${parts.map((e) => `${e.name} ${(e.dur / 1000).toFixed(0)}${e.args && e.args.data && e.args.data.functionName ? "(" + e.args.data.functionName + ")" : ""}${e.args && e.args.data && e.args.data.url ? "[" + String(e.args.data.url).split("/").pop() + ":" + e.args.data.lineNumber + "]" : ""}`).join(", ")}`);
    }
  }
  const shown = await bob.page.locator(".msg").count();
  // How far back it went: the oldest message on the page.
  const oldest = await bob.page.locator(".msg .body").first().textContent();
  const heap = await bob.page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
  const figures = {
    open_conversation_ms: open,
    page_back_p50_ms: percentile(pages, 0.5),
    page_back_max_ms: Math.max(...pages),
    frame_p50_ms: Math.round(percentile(gaps, 0.5)),
    frame_p99_ms: Math.round(percentile(gaps, 0.99)),
    frame_max_ms: Math.round(Math.max(...gaps)),
    messages_shown: shown,
    oldest_shown: oldest,
    page_js_heap_bytes: heap,
  };
  log(`figures: ${JSON.stringify(figures)}`);
  console.log("RESULT " + JSON.stringify(figures));
} finally {
  await close(bob);
}
