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
  const pages = [];
  for (let i = 0; i < Number(env("PARLEY_PAGES")); i++) {
    const n = await bob.page.locator(".msg").count();
    const t = Date.now();
    await bob.page.locator(".scroller").evaluate((el) => (el.scrollTop = 0));
    await bob.page.waitForFunction((n) => document.querySelectorAll(".msg").length > n, n, { timeout });
    pages.push(Date.now() - t);
  }
  const gaps = await bob.page.evaluate(() => {
    window.stopFrames = true;
    return window.frameGaps;
  });
  const shown = await bob.page.locator(".msg").count();
  const heap = await bob.page.evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : 0));
  const figures = {
    open_conversation_ms: open,
    page_back_p50_ms: percentile(pages, 0.5),
    page_back_max_ms: Math.max(...pages),
    frame_p50_ms: Math.round(percentile(gaps, 0.5)),
    frame_p99_ms: Math.round(percentile(gaps, 0.99)),
    frame_max_ms: Math.round(Math.max(...gaps)),
    messages_shown: shown,
    page_js_heap_bytes: heap,
  };
  log(`figures: ${JSON.stringify(figures)}`);
  console.log("RESULT " + JSON.stringify(figures));
} finally {
  await close(bob);
}
