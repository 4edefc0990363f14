// Drives the admin console (/console) in Debian's headless Chromium as a person would, and checks
// the service's answers from outside the browser:
//   - sign in with the keyboard (the key pasted, Enter), and the header says who is signed in;
//   - a create the API refuses shows the error envelope's message in the form;
//   - create a key with scopes, permissions and an expiry date; read its value from the
//     one-time reveal (and the copy button puts it on the clipboard); the key is listed and
//     found by search; the value works against the API (200);
//   - disable it in the console: the API answers 401; enable it; rotate with no overlap: the
//     old value answers 401 and the successor 200; delete the successor (the confirmation names
//     it and starts on Cancel; Escape cancels and gives focus back): its value answers 401;
//   - invite a member, read the accept token from the reveal, accept with it from here, see the
//     new member listed and their key through the owner filter; promote them, disable them (their
//     key answers 401), enable them (200) and remove them (401);
//   - create a project, add a member, a service account (its key revealed) and a member's key;
//     after a check names a model, set that model's rate limit (the API then has it);
//   - the audit view shows each of those steps, and its filters find them;
//   - the key list fits a phone's width; axe-core finds no serious or critical violation on the
//     sign-in, key list, create/reveal, users, project and audit screens;
//   - nothing failed: no console error (a Content-Security-Policy violation is one), no page
//     error, no failed request, no 4xx/5xx in the browser, no request to another host.
//
//   CONSOLE_ADMIN_KEY=sk-admin-... [SCREENSHOTS=dir] node tests/browser/console.mjs http://127.0.0.1:PORT
//
// tests/api/console.rs runs it against a TestApp on each backend. With SCREENSHOTS set it saves
// the key list and the create-with-reveal screen there as PNG. Prints `console: ...` with the
// first-load time; exit 0 when all holds, 1 with the reasons otherwise, 2 on wrong usage.
//
// axe-core runs through `page.evaluate` of its source, which the DevTools protocol evaluates
// outside the page's Content-Security-Policy; the policy itself stays on for the whole run (no
// `bypassCSP`), so a violation by the console is still caught.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2];
const adminKey = process.env.CONSOLE_ADMIN_KEY;
if (!base || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(base) || !adminKey) {
  console.error("usage: CONSOLE_ADMIN_KEY=sk-admin-... node console.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const screenshots = process.env.SCREENSHOTS || null;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const problems = [];
// Error answers the test provokes on purpose ({ status, path }), each allowed once, with the
// console line the browser writes for it.
const expectedErrors = [];
const expectedConsoleErrors = [];
const requests = [];
const steps = [];

function isLocal(url) {
  const parsed = new URL(url);
  if (parsed.protocol === "data:" || parsed.protocol === "blob:") return true;
  return (parsed.protocol === "http:" || parsed.protocol === "https:") && LOCAL_HOSTS.has(parsed.hostname);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** The status the API answers `key` on the key list, from outside the browser. */
async function statusWith(key) {
  const response = await fetch(`${base}/v1/organization/admin_api_keys?limit=1`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  return response.status;
}

/** Waits until the table shows `count` rows (a screen renders after its address changes). */
async function rowsAre(page, count, what) {
  await page
    .waitForFunction((n) => document.querySelectorAll("tbody tr").length === n, count, { timeout: 10_000 })
    .catch(async () => check(false, `${what}: ${await page.locator("tbody tr").count()} rows`));
}

/** A call of the API with the admin key, from outside the browser; its JSON. */
async function api(method, path, body) {
  const response = await fetch(`${base}/v1/${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  check(response.ok, `${method} ${path} answered ${response.status}`);
  return response.json();
}

/** axe-core on the page as it is now; serious and critical violations become problems. */
async function axe(page, screen) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) })),
    ),
  );
  const bad = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) problems.push(`axe on ${screen}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
  steps.push(`axe ${screen}: ${bad.length} serious/critical of ${results.length}${results.length ? ` (${results.map((v) => `${v.impact} ${v.id}`).join(", ")})` : ""}`);
}

/** A screenshot for the README, at a laptop's size, of the top of the page. */
async function shoot(page, file) {
  await page.setViewportSize({ width: 1100, height: 620 });
  await page.screenshot({ path: join(screenshots, file) });
  await page.setViewportSize({ width: 1280, height: 900 });
}

const userDataDir = mkdtempSync(join(tmpdir(), "aak-console-chromium-"));
let context;
let firstLoadMs = null;
let loadBreakdown = "";
let warmLoadMs = null;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 900 },
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
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    return isLocal(url) ? route.continue() : route.abort("blockedbyclient");
  });
  context.on("request", (request) => {
    requests.push(`${request.method()} ${request.url()}`);
    if (!isLocal(request.url())) problems.push(`request to another host: ${request.url()}`);
  });
  context.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  context.on("response", (response) => {
    if (response.status() < 400) return;
    const at = expectedErrors.findIndex(
      (e) => e.status === response.status() && new URL(response.url()).pathname.endsWith(e.path),
    );
    if (at !== -1) {
      expectedErrors.splice(at, 1);
      expectedConsoleErrors.push(`status of ${response.status()}`);
      return;
    }
    problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    // The browser's own line for an answer the test provoked on purpose.
    const at = expectedConsoleErrors.findIndex((e) => message.text().startsWith(`Failed to load resource: the server responded with a ${e}`));
    if (at !== -1) {
      expectedConsoleErrors.splice(at, 1);
      return;
    }
    problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`unexpected browser dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });

  // Sign in, with the keyboard.
  const loaded = await page.goto(`${base}/console`, { waitUntil: "commit" });
  check(loaded?.status() === 200, `/console answered ${loaded?.status()}`);
  for (const [name, value] of [
    ["content-security-policy", "default-src 'none'"],
    ["x-frame-options", "DENY"],
  ]) {
    check((loaded.headers()[name] ?? "").startsWith(value), `/console's ${name}: ${loaded.headers()[name]}`);
  }
  const keyInput = page.getByLabel("Admin key");
  await keyInput.waitFor({ state: "visible" });
  firstLoadMs = Math.round(await page.evaluate(() => performance.now()));
  await page.waitForLoadState("load");
  loadBreakdown = await page.evaluate(() => {
    const [nav] = performance.getEntriesByType("navigation");
    const files = performance.getEntriesByType("resource").filter((r) => r.name.includes("/console/"));
    return `document at ${Math.round(nav.responseEnd)} ms, ${files.length} files by ` +
      `${Math.round(Math.max(...files.map((r) => r.responseEnd)))} ms, ${files.reduce((n, r) => n + r.encodedBodySize, 0)} bytes`;
  });
  await axe(page, "sign-in");
  check(await keyInput.evaluate((el) => el === document.activeElement), "the key field has focus on load");
  await page.keyboard.type(adminKey);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Admin keys" }).waitFor();
  const whoami = await page.locator("#whoami").textContent();
  check(/Signed in as\s+\S.*\(owner\)/.test(whoami) && whoami.includes("users.write"), `who am I: ${whoami}`);
  check(
    (await page.evaluate(() => Object.keys(localStorage).length)) === 0,
    "nothing is kept in localStorage",
  );
  check(!page.url().includes(adminKey), "the key is not in the address");
  steps.push("signed in");

  // Create a key with scopes, permissions and an expiry date.
  const name = `ci deploy ${Date.now().toString(36)}`;
  await page.getByRole("link", { name: "Create key" }).click();
  await page.getByRole("heading", { level: 1, name: "Create an admin key" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("admin_api_keys.read", { exact: false }).check();
  await page.getByLabel("audit_logs.read", { exact: false }).check();
  // A permission the API refuses: the form shows the API's own message, and keeps what was typed.
  await page.getByLabel("Permissions").fill("billing read!");
  const refused = await fetch(`${base}/v1/organization/admin_api_keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "x", permissions: ["billing", "read!"] }),
  }).then((r) => r.json());
  expectedErrors.push({ status: 400, path: "/v1/organization/admin_api_keys" });
  await page.getByRole("button", { name: "Create key" }).click();
  const alert = page.locator("main [role=alert]");
  await alert.waitFor();
  check(
    (await alert.textContent()) === refused.error.message,
    `the form shows the API's message: ${await alert.textContent()} / ${refused.error.message}`,
  );
  check((await page.getByLabel("Name", { exact: true }).inputValue()) === name, "the form keeps its input");
  steps.push(`a refused create shows the API's message ("${refused.error.message.slice(0, 60)}…")`);
  await page.getByLabel("Permissions").fill("billing:read\nmodels:*");
  await page.getByLabel("Expires at the end of").fill("2027-06-30");
  await axe(page, "create");
  await page.getByRole("button", { name: "Create key" }).click();
  const reveal = page.locator(".reveal");
  await reveal.waitFor();
  check((await reveal.textContent()).includes("You will not see this again"), "the reveal warns it is shown once");
  const value = (await reveal.getByTestId("secret-value").textContent()).trim();
  check(value.startsWith("sk-admin-"), `the revealed value: ${value.slice(0, 12)}…`);
  await reveal.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied.").waitFor();
  check((await page.evaluate(() => navigator.clipboard.readText())) === value, "Copy puts the value on the clipboard");
  const shown = await page.locator("main").textContent();
  for (const expected of ["admin_api_keys.read", "audit_logs.read", "billing:read", "models:*"]) {
    check(shown.includes(expected), `the new key's ${expected} is shown`);
  }
  await axe(page, "create/reveal");
  if (screenshots) await shoot(page, "console-create-reveal.png");
  check((await statusWith(value)) === 200, "the new key works against the API");
  steps.push("created, revealed, copied; the value answers 200");

  // Two more keys made through the API, so the list has company (one of them disabled).
  for (const body of [
    { name: "grafana dashboards", scopes: ["audit_logs.read", "users.read"] },
    { name: "nightly backup (retired)", scopes: ["admin_api_keys.read"] },
  ]) {
    const made = await api("POST", "organization/admin_api_keys", body);
    if (body.name.includes("retired")) await api("POST", `organization/admin_api_keys/${made.id}`, { enabled: false });
  }

  // Listed, and found by search.
  await page.getByRole("link", { name: "Back to the list" }).click();
  await page.getByRole("heading", { level: 1, name: "Admin keys" }).waitFor();
  await page.getByRole("link", { name, exact: true }).waitFor();
  await page.getByLabel("Search").fill(name.split(" ").pop());
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL((url) => url.hash.includes("search="));
  await rowsAre(page, 1, "search finds only the key");
  await page.getByRole("link", { name, exact: true }).waitFor();
  await page.getByLabel("State").selectOption("disabled");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.getByText("No key matches.").waitFor();
  await page.getByRole("link", { name: "Clear" }).click();
  await page.getByRole("link", { name, exact: true }).waitFor();
  await axe(page, "key list");
  if (screenshots) await shoot(page, "console-keys.png");
  // A phone's width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the key list is ${overflow}px wider than a phone`);
  await page.setViewportSize({ width: 1280, height: 900 });
  steps.push("listed, found by search and filters; fits a phone");

  // Disable: the API refuses the key; enable again.
  await page.getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
  const keyId = (await page.locator("main .facts dd code").first().textContent()).trim();
  await page.getByRole("button", { name: "Disable" }).click();
  await page.getByText("The key is disabled").waitFor();
  check((await statusWith(value)) === 401, "a disabled key answers 401");
  await page.getByRole("button", { name: "Enable" }).click();
  await page.getByText("The key works again.").waitFor();
  check((await statusWith(value)) === 200, "an enabled key answers 200 again");
  steps.push("disabled (401), enabled (200)");

  // Rotate with no overlap: the successor works, the old value does not.
  await page.getByRole("button", { name: "Rotate" }).click();
  const rotateDialog = page.getByRole("dialog", { name: `Rotate “${name}”` });
  await rotateDialog.waitFor();
  await rotateDialog.getByLabel("Old key").selectOption("0");
  await rotateDialog.getByRole("button", { name: "Rotate" }).click();
  const successor = (await rotateDialog.getByTestId("secret-value").textContent()).trim();
  check(successor.startsWith("sk-admin-") && successor !== value, "the successor is revealed");
  check((await statusWith(successor)) === 200, "the successor answers 200");
  check((await statusWith(value)) === 401, "the rotated key answers 401");
  await rotateDialog.getByRole("button", { name: "Open the new key" }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
  await page.waitForURL((url) => !url.hash.includes(keyId));
  await page.waitForFunction(
    (old) => document.querySelector("main .facts dd code")?.textContent !== old,
    keyId,
  );
  const successorId = (await page.locator("main .facts dd code").first().textContent()).trim();
  steps.push("rotated: the successor answers 200, the old key 401");

  // Delete: the confirmation names the key; Escape cancels and gives focus back.
  const deleteButton = page.getByRole("button", { name: "Delete" });
  await deleteButton.click();
  const confirm = page.getByRole("dialog", { name: "Delete this key?" });
  await confirm.waitFor();
  check((await confirm.textContent()).includes(name), "the confirmation names the key");
  check(
    await confirm.getByRole("button", { name: "Cancel" }).evaluate((el) => el === document.activeElement),
    "focus starts on Cancel in the dialog",
  );
  await page.keyboard.press("Escape");
  await confirm.waitFor({ state: "detached" });
  check(await deleteButton.evaluate((el) => el === document.activeElement), "focus returns to Delete");
  await deleteButton.click();
  await confirm.getByRole("button", { name: `Delete “${name}”` }).click();
  await page.getByText(`Deleted “${name}”.`).waitFor();
  check((await statusWith(successor)) === 401, "a deleted key answers 401");
  steps.push("deleted (401)");

  // Invite a member, accept with the revealed token, see them listed.
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByRole("heading", { level: 1, name: "Users" }).waitFor();
  await axe(page, "users");
  const email = `grace.${Date.now().toString(36)}@example.com`;
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Invite" }).click();
  const tokenReveal = page.locator(".reveal");
  await tokenReveal.waitFor();
  const token = (await tokenReveal.getByTestId("secret-value").textContent()).trim();
  check(token.length > 20, "the accept token is revealed");
  const accepted = await fetch(`${base}/v1/organization/invites/accept`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, name: "Grace Hopper" }),
  });
  check(accepted.status === 200, `accepting the invite answered ${accepted.status}`);
  const member = await accepted.json();
  await page.getByRole("link", { name: "Keys" }).first().click();
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByRole("table", { name: "Members" }).locator("tr", { hasText: email }).waitFor();
  check(
    (await page.getByRole("table", { name: "Invites" }).locator("tr", { hasText: email }).textContent()).includes("accepted"),
    "the invite shows as accepted",
  );
  check(
    (await page.getByRole("table", { name: "Members" }).locator("tr", { hasText: email }).textContent()).includes("Grace Hopper"),
    "the new member is listed",
  );
  // Their keys, through the owner filter: only the first key the acceptance made.
  await page
    .getByRole("table", { name: "Members" })
    .locator("tr", { hasText: email })
    .getByRole("link", { name: "Keys" })
    .click();
  await page.getByRole("heading", { level: 1, name: "Admin keys" }).waitFor();
  check(
    (await page.getByLabel("Owner").inputValue()) === member.user.id,
    "the owner filter is set to the new member",
  );
  await rowsAre(page, 1, "the owner filter finds only their key");
  const theirs = await page.locator("tbody tr").allTextContents();
  check(theirs.length === 1 && theirs[0].includes(member.api_key.name), `their keys: ${theirs}`);
  steps.push("invited, accepted with the token, listed; their keys by owner");

  // Promote, disable (their key is refused), enable, remove.
  check((await statusWith(member.api_key.value)) === 200, "the new member's key works");
  await page.getByRole("link", { name: "Users" }).click();
  const row = () => page.getByRole("table", { name: "Members" }).locator("tr", { hasText: email });
  await row().waitFor();
  await row().getByLabel("Role of Grace Hopper").selectOption("owner");
  await row().getByRole("button", { name: "Save role" }).click();
  await page.getByText("Grace Hopper is now owner.").waitFor();
  await row().getByRole("button", { name: "Disable" }).click();
  await page.getByText("Grace Hopper is disabled").waitFor();
  check((await statusWith(member.api_key.value)) === 401, "a disabled member's key answers 401");
  await row().getByRole("button", { name: "Enable" }).click();
  await page.getByText("Grace Hopper is enabled again.").waitFor();
  check((await statusWith(member.api_key.value)) === 200, "enabled again, their key answers 200");
  await row().getByRole("button", { name: "Delete" }).click();
  const removal = page.getByRole("dialog", { name: "Remove this member?" });
  check((await removal.textContent()).includes(email), "the confirmation names the member");
  await removal.getByRole("button", { name: "Delete Grace Hopper" }).click();
  await page.getByText("Removed Grace Hopper.").waitFor();
  check((await statusWith(member.api_key.value)) === 401, "a removed member's key answers 401");
  steps.push("member promoted, disabled (401), enabled (200), removed (401)");

  // A project, a service account and its key, a member's project key.
  await page.getByRole("link", { name: "Projects" }).click();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  await page.getByLabel("Name").fill("Billing");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.getByRole("heading", { level: 1, name: "Billing" }).waitFor();
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByText("joined the project").waitFor();
  await page.getByLabel("Name", { exact: true }).fill("billing-bot");
  await page.getByRole("button", { name: "Create service account" }).click();
  const botKey = (await page.locator(".reveal").getByTestId("secret-value").textContent()).trim();
  check(botKey.startsWith("sk-"), "the service account's key is revealed");
  await page.getByLabel("Key name").fill("laptop");
  await page.getByRole("button", { name: "Create project key" }).click();
  await page.getByText("Created “laptop”.").waitFor();
  const projectKeys = await page.getByRole("table", { name: "Project keys" }).textContent();
  check(projectKeys.includes("laptop") && projectKeys.includes("billing-bot"), "both keys are listed in the project");
  // A model first named by a check gets a limit in the project; set it from the console.
  const projectId = decodeURIComponent(new URL(page.url()).hash.split("/")[2]);
  const check1 = await fetch(`${base}/v1/forward-auth?model=gpt-4o`, { headers: { Authorization: `Bearer ${botKey}` } });
  check(check1.status === 200, `forward auth with the service account's key answered ${check1.status}`);
  await page.reload(); // the key stays in the tab across a reload
  const limits = page.getByRole("table", { name: "Rate limits per model" });
  await limits.waitFor();
  await limits.getByLabel("Requests per minute for gpt-4o").fill("7");
  await limits.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved the limits of gpt-4o.").waitFor();
  const saved = await api("GET", `organization/projects/${projectId}/rate_limits`);
  check(
    saved.data.find((limit) => limit.model === "gpt-4o")?.max_requests_per_1_minute === 7,
    "the new limit is in the API",
  );
  await axe(page, "project");
  steps.push("project with a member, a service account and keys; a model's rate limit set");

  // The audit view shows every step.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
  const types = await page.locator("tbody .event-type").allTextContents();
  for (const type of [
    "api_key.created", "api_key.updated", "api_key.deleted", "invite.sent", "invite.accepted",
    "project.created", "service_account.created", "user.updated", "user.deleted", "rate_limit.updated",
  ]) {
    check(types.includes(type), `the audit log shows ${type}: ${types.join(", ")}`);
  }
  await axe(page, "audit");
  // Filtered to the first key: its creation, disable, enable and rotation.
  await page.getByLabel("Resource").fill(keyId);
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL((url) => url.hash.includes(`resource=${keyId}`));
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll("tbody tr")];
    return rows.length > 0 && rows.every((row) => row.textContent.includes(id));
  }, keyId);
  const keyTypes = await page.locator("tbody .event-type").allTextContents();
  check(keyTypes.filter((t) => t === "api_key.updated").length >= 3, `disable, enable and rotate are recorded: ${keyTypes}`);
  check(keyTypes.includes("api_key.created"), `the creation is recorded: ${keyTypes}`);
  // ... and an entry links to the key it names.
  await page.locator("tbody tr").first().getByRole("link", { name: keyId }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
  // The successor's deletion, by event type.
  await page.goto(`${base}/console#/audit?type=api_key.deleted`);
  await page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
  check((await page.locator("tbody tr", { hasText: successorId }).count()) === 1, "the deletion names the successor");
  check(
    (await page.locator("tbody tr", { hasText: member.user.id }).count()) === 0,
    "the type filter leaves other entries out",
  );
  steps.push("every step is in the audit log");

  // Sign out forgets the key.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Admin key").waitFor();
  check((await page.evaluate(() => sessionStorage.length)) === 0, "sign-out empties sessionStorage");
  steps.push("signed out");
  // Loaded again, as a returning person would: the files are revalidated (304), not downloaded.
  await page.reload({ waitUntil: "commit" });
  await page.getByLabel("Admin key").waitFor({ state: "visible" });
  warmLoadMs = Math.round(await page.evaluate(() => performance.now()));
  await page.waitForLoadState("networkidle", { timeout: 5_000 }).catch(() => {});
} catch (error) {
  problems.push(`error: ${error.message.split("\n").slice(0, 6).join("\n  ")}`);
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`console: ${steps.join("; ")}`);
console.log(
  `console: first load (navigation start to the sign-in form visible): ${firstLoadMs} ms ` +
    `(${loadBreakdown}); loaded again: ${warmLoadMs} ms; ` +
    `${requests.length} requests, all local: ${requests.every((r) => isLocal(r.split(" ")[1]))}`,
);
if (problems.length > 0) {
  console.error(`console: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  console.error(`requests made:\n  ${requests.join("\n  ")}`);
  process.exit(1);
}
