// The console's entry module: signing in and out, who is signed in, and which screen the
// page's address (`#/keys`, `#/keys/<id>`, `#/users`, `#/projects/<id>`, `#/audit`) shows.
// The address never holds the key; it only says which screen, so a reload or the back button
// lands where you were.

import { ApiError, call, forgetKey, storeKey, storedKey } from "./api.js";
import { alertBox, chips, h, say, show } from "./ui.js";
import { keyList, keyPage, newKey } from "./keys.js";
import { usersPage } from "./users.js";
import { projectList, projectPage } from "./projects.js";
import { auditPage } from "./audit.js";

const $ = (id) => document.getElementById(id);
const view = $("view");

/** Who the key is, from introspecting it with itself; `identity: null` when it may not introspect. */
async function whoIs(key) {
  try {
    const answer = await call("POST", "introspect", { body: { token: key }, key });
    return { identity: answer };
  } catch (error) {
    // A key without `keys.introspect` still signs in; the console just cannot say whose it is.
    if (error instanceof ApiError && error.status === 403) return { identity: null };
    throw error;
  }
}

function showWhoami(identity) {
  const box = $("whoami");
  const signOut = h("button", { type: "button", class: "secondary", onclick: signOutNow }, "Sign out");
  if (!identity?.key) {
    box.replaceChildren(
      h("p", {}, "Signed in with a key that may not introspect itself, so its owner is not shown."),
      signOut,
    );
  } else {
    const { key } = identity;
    box.replaceChildren(
      h(
        "details",
        {},
        h(
          "summary",
          {},
          "Signed in as ",
          h("strong", {}, key.owner?.name ?? identity.sub),
          ` (${key.owner?.role ?? "?"})`,
        ),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Key"),
          h("dd", {}, h("a", { href: `#/keys/${encodeURIComponent(key.id)}` }, key.name)),
          h("dt", {}, "Scopes in effect"),
          h("dd", {}, chips((identity.scope ?? "").split(" ").filter(Boolean))),
        ),
      ),
      signOut,
    );
  }
  box.hidden = false;
  $("nav").hidden = false;
}

function signOutNow() {
  forgetKey();
  $("whoami").replaceChildren();
  $("whoami").hidden = true;
  $("nav").hidden = true;
  view.replaceChildren();
  history.replaceState(null, "", location.pathname + location.search);
  showSignin();
}

function showSignin(message) {
  $("signin").hidden = false;
  view.replaceChildren();
  say($("signin-error"), message || "");
  $("signin-key").value = "";
  $("signin-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("signin-key");
  const button = event.target.querySelector("button[type=submit]");
  const key = input.value.trim();
  if (!key) return;
  button.disabled = true;
  say($("signin-error"), "");
  try {
    const { identity } = await whoIs(key);
    storeKey(key);
    input.value = "";
    $("signin").hidden = true;
    showWhoami(identity);
    if (!location.hash || location.hash === "#") location.hash = "#/keys";
    else route();
  } catch (error) {
    say($("signin-error"), error.status === 401 ? `This key is not accepted: ${error.message}` : error.message);
    input.focus();
  } finally {
    button.disabled = false;
  }
}

/**
 * Shows the screen the address names. Screens are drawn one after another, in the order the
 * address changed: a slow answer for a screen left behind cannot paint over a newer one.
 */
let drawing = Promise.resolve();
function route() {
  drawing = drawing.then(draw, draw);
  return drawing;
}

async function draw() {
  if (!storedKey()) return;
  const [path] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || "keys";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (section === "keys" && parts[1] === "new") await newKey(view);
    else if (section === "keys" && parts[1]) await keyPage(view, parts[1]);
    else if (section === "keys") await keyList(view);
    else if (section === "users") await usersPage(view);
    else if (section === "projects" && parts[1]) await projectPage(view, parts[1]);
    else if (section === "projects") await projectList(view);
    else if (section === "audit") await auditPage(view);
    else show(view, h("h1", {}, "Not found"), h("p", {}, "There is no such screen. "), h("a", { href: "#/keys" }, "Go to the keys"));
  } catch (error) {
    // The key stopped working (disabled, deleted, expired, or its owner was): sign in again.
    if (error instanceof ApiError && error.status === 401) {
      signOutNow();
      say($("signin-error"), `Your key is no longer accepted: ${error.message}`);
      return;
    }
    show(view, h("h1", {}, "Something went wrong"), alertBox(error.message));
  }
}

async function start() {
  $("signin-form").addEventListener("submit", signIn);
  window.addEventListener("hashchange", route);
  const key = storedKey();
  if (!key) {
    showSignin();
    return;
  }
  try {
    const { identity } = await whoIs(key);
    showWhoami(identity);
    $("signin").hidden = true;
    if (!location.hash || location.hash === "#") location.hash = "#/keys";
    else await route();
  } catch (error) {
    forgetKey();
    showSignin(error.message);
  }
}

start();
