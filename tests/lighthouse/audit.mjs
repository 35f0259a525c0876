// Runs Lighthouse (accessibility, best practices, SEO; performance when
// asked) over dashboard pages in one headless Chromium and prints one JSON
// line per page and form factor: the category scores and every audit that
// did not pass. tests/lighthouse.rs starts switchboard, signs in and reads
// these lines; the scores' floor is asserted there, not here.
//
// usage: node audit.mjs BASE_URL COOKIE CHROMIUM PATH...
import { createRequire } from "node:module";

const modules = process.env.SWITCHBOARD_LIGHTHOUSE_MODULES;
const require = createRequire(`${modules}/`);
const lighthouse = (await import(require.resolve("lighthouse"))).default;
const chromeLauncher = await import(require.resolve("chrome-launcher"));
const desktop = (await import(require.resolve("lighthouse/core/config/desktop-config.js"))).default;

const [base, cookie, chromium, ...paths] = process.argv.slice(2);
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
      const lhr = result.lhr;
      const scores = Object.fromEntries(
        Object.entries(lhr.categories).map(([id, c]) => [id, c.score]),
      );
      const failing = Object.values(lhr.audits)
        .filter((a) => a.score !== null && a.score < 1
          && ["binary", "numeric", "metricSavings"].includes(a.scoreDisplayMode))
        .map((a) => `${a.id}: ${a.title}`);
      console.log(JSON.stringify({
        path, form, url: lhr.finalDisplayedUrl, scores, failing,
        error: lhr.runtimeError ? lhr.runtimeError.message : null,
      }));
    }
  }
} finally {
  await chrome.kill();
}
