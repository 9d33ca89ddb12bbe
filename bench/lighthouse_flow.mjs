// Lighthouse 12 user flow over the pages a tipster sees: home, warning signs, the report
// form and the receipt (sent by submitting the form), in each language. Run by
// bench/page_weight.py from the npm prefix that holds lighthouse@12.2.3:
//   node lighthouse_flow.mjs BASE_URL OUT.json en es
// Mobile form factor, simulated slow 4G and 4x CPU slowdown: Lighthouse's defaults.
import fs from "node:fs";
import puppeteer from "puppeteer-core";
import { startFlow } from "lighthouse";

const [base, outFile, ...languages] = process.argv.slice(2);
const CATEGORIES = ["performance", "accessibility", "best-practices", "seo"];
const WARM_UP = "warm-up";
const browser = await puppeteer.launch({
  executablePath: process.env.CHROME_PATH,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const rows = [];
try {
  for (const lang of languages) {
    const prefix = lang === languages[0] ? "" : `/${lang}`;
    const page = await browser.newPage();
    const flow = await startFlow(page, {
      name: `tipster ${lang}`,
      config: { extends: "lighthouse:default", settings: { onlyCategories: CATEGORIES } },
    });
    // The first step of a flow pays for one-time start-up work (any page scores 0.05-0.1
    // lower there than when measured later): a warm-up step, left out of the results.
    // Lighthouse empties the cache before every step, so it does not help the next one.
    await flow.navigate(`${base}${prefix}/`, { name: WARM_UP });
    await flow.navigate(`${base}${prefix}/`, { name: `home (${lang})` });
    await flow.navigate(`${base}${prefix}/warning-signs/`, { name: `warning signs (${lang})` });
    await flow.navigate(`${base}${prefix}/report`, { name: `report form (${lang})` });
    await page.type("#f-description", "A classmate said he will bring a gun on Friday.");
    for (const radio of ["#f-area-1", "#f-setting-1", "#f-concern-1", "#f-danger_now-2"]) {
      await page.click(radio);
    }
    await flow.navigate(
      async () => {
        await Promise.all([
          page.waitForNavigation(),
          page.click("main form button[type=submit]"),
        ]);
      },
      { name: `receipt (${lang})` },
    );
    const result = await flow.createFlowResult();
    for (const step of result.steps) {
      if (step.name === WARM_UP) continue;
      const lhr = step.lhr;
      const scores = {};
      for (const id of CATEGORIES) scores[id] = lhr.categories[id]?.score ?? null;
      const failed = [];
      for (const id of CATEGORIES) {
        for (const ref of lhr.categories[id]?.auditRefs ?? []) {
          const audit = lhr.audits[ref.id];
          if (ref.weight > 0 && audit.score !== null && audit.score < 1) {
            failed.push(`${id}: ${ref.id} (${audit.displayValue ?? audit.score})`);
          }
        }
      }
      rows.push({ name: step.name, url: lhr.finalDisplayedUrl, scores, failed });
    }
    await page.close();
  }
} finally {
  await browser.close();
}
fs.writeFileSync(outFile, JSON.stringify(rows, null, 2));
