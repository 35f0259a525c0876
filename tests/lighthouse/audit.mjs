// Runs Lighthouse (accessibility, best practices, SEO; performance when
// asked) over dashboard pages in one headless Chromium and prints one JSON
// line per page and form factor: the category scores and every audit that
// did not pass. tests/lighthouse.rs starts switchboard, signs in and reads
// these lines; the scores' floor is asserted there, not here.
//
// Signed in, the pages in ACTIONS are audited a second time after their
// main action (a Lighthouse snapshot of the page as the action left it).
//
// usage: node audit.mjs BASE_URL COOKIE CHROMIUM PATH...
import { createRequire } from "node:module";

const modules = process.env.SWITCHBOARD_LIGHTHOUSE_MODULES;
const require = createRequire(`${modules}/`);
const lighthouseModule = await import(require.resolve("lighthouse"));
const lighthouse = lighthouseModule.default;
const puppeteer = (await import(require.resolve("puppeteer-core"))).default;
const chromeLauncher = await import(require.resolve("chrome-launcher"));
const desktop = (await import(require.resolve("lighthouse/core/config/desktop-config.js"))).default;

const [base, cookie, chromium, ...paths] = process.argv.slice(2);

// Each page's main action, audited after it as a Lighthouse snapshot: the
// steps run in the page, then the audit reads the page as they left it.
const ACTIONS = {
  "/send": [{ click: "#compare-button" }, { visible: "#compare-result table" }],
  "/traffic": [{ select: ["#traffic-range", "86400"] }, { visible: ".uplot" }],
  "/services": [{ click: "[data-log]" }, { visible: "#service-log [data-line]" }],
  "/tokens": [
    { type: ["#token-name", "lighthouse-{form}"] },
    { click: "#token-create" },
    { visible: "#token-new-value" },
  ],
  "/inspect/": [{ type: ["#inspect-search", "a"] }, { visible: "#inspect-matches" }],
};
const actionsFor = (path) => Object.entries(ACTIONS).find(([p]) => p.endsWith("/") ? path.startsWith(p) : path === p)?.[1];

async function act(page, steps, form) {
  for (const step of steps) {
    if (step.click) await (await page.waitForSelector(step.click, { visible: true })).click();
    if (step.type) await (await page.waitForSelector(step.type[0], { visible: true })).type(step.type[1].replace("{form}", form));
    if (step.select) {
      await page.waitForSelector(step.select[0], { visible: true });
      await page.select(step.select[0], step.select[1]);
    }
    if (step.visible) await page.waitForSelector(step.visible, { visible: true, timeout: 60000 });
  }
}

function line(path, form, lhr, afterAction = false) {
  const scores = Object.fromEntries(
    Object.entries(lhr.categories).map(([id, c]) => [id, c.score]),
  );
  const failing = Object.values(lhr.audits)
    .filter((a) => a.score !== null && a.score < 1
      && ["binary", "numeric", "metricSavings"].includes(a.scoreDisplayMode))
    .map((a) => `${a.id}: ${a.title}`);
  return JSON.stringify({
    path, form, after_action: afterAction, url: lhr.finalDisplayedUrl, scores, failing,
    error: lhr.runtimeError ? lhr.runtimeError.message : null,
  });
}
const categories = ["accessibility", "best-practices", "seo"];
if (process.env.SWITCHBOARD_LIGHTHOUSE_PERFORMANCE === "1") categories.push("performance");

const chrome = await chromeLauncher.launch({
  chromePath: chromium,
  chromeFlags: ["--headless=new", "--no-sandbox", "--disable-gpu"],
});
try {
  for (const path of paths) {
    for (const form of ["desktop", "mobile"]) {
      const flags = {
        port: chrome.port,
        output: "json",
        logLevel: "error",
        onlyCategories: categories,
        // Only the scores are read: no screenshots, no throttling model.
        disableFullPageScreenshot: true,
        skipAboutBlank: true,
        throttlingMethod: "provided",
        // The pages poll and stream, so the network seldom goes quiet for
        // long: short quiet windows, and at most 10 s for the load (the
        // pages draw from their first fetches, well within it).
        pauseAfterLoadMs: 250,
        networkQuietThresholdMs: 250,
        cpuQuietThresholdMs: 250,
        maxWaitForLoad: 10000,
        extraHeaders: cookie ? { Cookie: cookie } : undefined,
      };
      const config = form === "desktop" ? desktop : undefined;
      const result = await lighthouse(`${base}${path}`, flags, config);
      console.log(line(path, form, result.lhr));
      const steps = actionsFor(path);
      if (steps && cookie) {
        const browser = await puppeteer.connect({ browserURL: `http://127.0.0.1:${chrome.port}` });
        const page = await browser.newPage();
        try {
          const phone = form === "mobile";
          await page.setViewport(phone
            ? { width: 390, height: 844, deviceScaleFactor: 3, isMobile: true, hasTouch: true }
            : { width: 1350, height: 940, deviceScaleFactor: 1 });
          await page.setExtraHTTPHeaders({ Cookie: cookie });
          await page.goto(`${base}${path}`, { waitUntil: "load" });
          await act(page, steps, form);
          const snap = await lighthouseModule.snapshot(page, {
            config,
            flags: { ...flags, formFactor: form, screenEmulation: { disabled: true } },
          });
          console.log(line(path, form, snap.lhr, true));
        } finally {
          await page.close();
          browser.disconnect();
        }
      }
    }
  }
} finally {
  await chrome.kill();
}
