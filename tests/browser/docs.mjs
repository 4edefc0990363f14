// Loads the API reference (/docs) in Debian's headless Chromium and checks that
//   - every operation of the served /openapi.json is rendered (method, path and operation id),
//   - no request left the machine (every request is recorded; any URL whose host is not
//     localhost fails the run, and is aborted before it is sent),
//   - nothing failed: no console error, no page error, no failed request, no 4xx/5xx,
//   - with DOCS_ADMIN_KEY set, "Authorize" with that key and "Try it out" on the key list
//     answer 200 through the page.
//
//   [DOCS_ADMIN_KEY=sk-admin-...] node tests/browser/docs.mjs http://127.0.0.1:PORT
//
// tests/api/docs.rs runs it against a TestApp. Exit 0 when all holds; 1 with the reasons
// otherwise; 2 on wrong usage. Never downloads a browser: it drives /usr/bin/chromium
// (CHROMIUM overrides the path) through playwright-core.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2];
if (!base || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(base)) {
  console.error("usage: node docs.mjs http://127.0.0.1:PORT (a local server)");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const problems = [];
const requests = [];

/** Whether loading `url` stays on this machine (data: and blob: never touch the network). */
function isLocal(url) {
  const parsed = new URL(url);
  if (parsed.protocol === "data:" || parsed.protocol === "blob:") return true;
  return (parsed.protocol === "http:" || parsed.protocol === "https:") && LOCAL_HOSTS.has(parsed.hostname);
}

/** The operations the document declares, as "METHOD path operationId". */
function declaredOperations(spec) {
  const operations = new Set();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      if (item[method]) {
        operations.add(`${method.toUpperCase()} ${path} ${item[method].operationId ?? ""}`.trim());
      }
    }
  }
  return operations;
}

const userDataDir = mkdtempSync(join(tmpdir(), "aak-docs-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
  // Recorded at the context, so requests of every page and worker count; anything not local
  // is aborted (it never leaves) and fails the run.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    return isLocal(url) ? route.continue() : route.abort("blockedbyclient");
  });
  context.on("request", (request) => {
    requests.push(request.url());
    if (!isLocal(request.url())) problems.push(`request to another host: ${request.url()}`);
  });
  context.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  context.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  const specResponse = await page.request.get(`${base}/openapi.json`);
  if (!specResponse.ok()) throw new Error(`/openapi.json answered ${specResponse.status()}`);
  const expected = declaredOperations(await specResponse.json());
  if (expected.size === 0) throw new Error("/openapi.json declares no operation");

  const started = performance.now();
  const response = await page.goto(`${base}/docs`, { waitUntil: "load", timeout: 30_000 });
  if (response?.status() !== 200) problems.push(`/docs answered ${response?.status()}`);
  // Swagger UI renders one .opblock per operation and tag; wait until as many as the document
  // declares (at least) are there.
  await page.waitForFunction(
    (count) => document.querySelectorAll("#swagger-ui .opblock").length >= count,
    expected.size,
    { timeout: 120_000 },
  );
  const renderedAfterMs = performance.now() - started;
  let openedAfterMs;
  const rendered = new Set(
    await page.$$eval("#swagger-ui .opblock", (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector(".opblock-summary-method")?.textContent.trim() ?? "";
        const pathElement = block.querySelector(".opblock-summary-path");
        const path = pathElement?.getAttribute("data-path") ?? pathElement?.textContent.trim() ?? "";
        const id = block.querySelector(".opblock-summary-operation-id")?.textContent.trim() ?? "";
        return `${method.toUpperCase()} ${path} ${id}`.trim();
      }),
    ),
  );
  // Open every operation (its parameters, responses and highlighted examples) and the
  // schemas, as a reader would: what they render must load nothing either, and must not
  // trip the page's Content-Security-Policy (a violation is a console error).
  const openedStarted = performance.now();
  await page.$$eval("#swagger-ui .opblock .opblock-summary-control", (controls) =>
    controls.forEach((control) => control.click()),
  );
  await page.waitForFunction(
    (count) => document.querySelectorAll("#swagger-ui .opblock.is-open .opblock-body").length >= count,
    rendered.size,
    { timeout: 120_000 },
  );
  const models = await page.$("#swagger-ui .models-control");
  if (models && (await page.$("#swagger-ui .models.is-open")) === null) await models.click();
  openedAfterMs = performance.now() - openedStarted;
  // Try it out, as a reader would: authorize with the key in DOCS_ADMIN_KEY (the environment,
  // not the command line, so no process listing shows it) and list the keys through the page.
  let triedStatus = null;
  if (process.env.DOCS_ADMIN_KEY) {
    await page.click("#swagger-ui .auth-wrapper .authorize");
    const dialog = page.locator("#swagger-ui .dialog-ux");
    const bearer = dialog.locator(".auth-container").filter({ hasText: "AdminApiKeyAuth" });
    await bearer.locator("input").fill(process.env.DOCS_ADMIN_KEY);
    await bearer.locator("button.authorize").click();
    await dialog.locator("button.btn-done").first().click();
    const list = page.locator("#operations-Admin_API_keys-admin-api-keys-list");
    await list.locator("button.try-out__btn").click();
    const answered = page.waitForResponse(
      (response) => new URL(response.url()).pathname === "/v1/organization/admin_api_keys",
      { timeout: 10_000 },
    );
    await list.locator("button.execute").click();
    triedStatus = String((await answered).status());
    // ... and the page shows it.
    const shown = list.locator(".live-responses-table tbody .response-col_status").first();
    await shown.waitFor({ timeout: 10_000 });
    if ((await shown.textContent()).trim() !== triedStatus) problems.push("the answer is not shown");
    if (triedStatus !== "200") problems.push(`Try it out on the key list answered ${triedStatus}`);
  }
  // Let late requests (icons, lazily loaded parts) show up before judging.
  await page.waitForLoadState("networkidle", { timeout: 10_000 }).catch(() => {});

  const missing = [...expected].filter((operation) => !rendered.has(operation));
  const extra = [...rendered].filter((operation) => !expected.has(operation));
  for (const operation of missing) problems.push(`not rendered: ${operation}`);
  for (const operation of extra) problems.push(`rendered but not in the document: ${operation}`);

  const timing = await page.evaluate(() => {
    const [navigation] = performance.getEntriesByType("navigation");
    return navigation ? Math.round(navigation.loadEventEnd - navigation.startTime) : null;
  });
  console.log(
    `docs: ${rendered.size}/${expected.size} operations rendered; ${requests.length} requests, ` +
      `all local: ${requests.every(isLocal)}; load event after ${timing} ms, ` +
      `every operation rendered after ${Math.round(renderedAfterMs)} ms, ` +
      `all opened in ${Math.round(openedAfterMs)} ms; Try it out: ${triedStatus ?? "not run"}`,
  );
} catch (error) {
  problems.push(`error: ${error.message}`);
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

if (problems.length > 0) {
  console.error(`docs: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  console.error(`requests made:\n  ${requests.join("\n  ")}`);
  process.exit(1);
}
