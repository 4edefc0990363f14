// Small helpers for building the console's DOM. Text always goes in as text (never as HTML),
// so nothing the API returns can become markup; and nothing here sets a style attribute.

/** `h("a", { href: "#/keys", class: "x" }, "text", child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let counter = 0;
/** A fresh id for pairing a label with its control. */
export const uid = (prefix = "f") => `${prefix}-${++counter}`;

/** A labelled form field; `control` is an input/select/textarea element. */
export function field(label, control, hint) {
  control.id ||= uid();
  const hintId = hint ? uid("hint") : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

/** A `<select>` of `options` ([value, text] pairs), with `selected` chosen. */
export function select(name, options, selected, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** Replaces the main region's content and moves focus to its heading (for screen readers and keyboards). */
export function show(main, ...children) {
  main.replaceChildren();
  append(main, children);
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

/** A message box for an error (the API's own message) or a notice. */
export function alertBox(message, kind = "error") {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

/** Puts `message` in `slot` (an element), replacing what was there; empty clears it. */
export function say(slot, message, kind = "error") {
  slot.replaceChildren(message ? alertBox(message, kind) : "");
}

/** A Unix time as a local date and time, or `never`/`—`. */
export function when(seconds, none = "—") {
  if (seconds === null || seconds === undefined) return none;
  const date = new Date(seconds * 1000);
  return h("time", { datetime: date.toISOString() }, date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
}

/** A key's state from its object: disabled, expired or active. */
export function keyStatus(key) {
  if (key.enabled === false) return "disabled";
  if (key.expires_at !== null && key.expires_at !== undefined && key.expires_at * 1000 <= Date.now()) return "expired";
  return "active";
}

export function badge(text) {
  return h("span", { class: `badge badge-${text.replace(/[^a-z_]/g, "")}` }, text);
}

/** A list of short strings (scopes, permissions) as chips, or `none`. */
export function chips(values, none = "none") {
  if (!values || values.length === 0) return h("span", { class: "muted" }, none);
  return h("ul", { class: "chips" }, values.map((value) => h("li", {}, h("code", {}, value))));
}

/**
 * A one-time secret: the value, a copy button and the warning that it is shown once.
 * `label` names what it is ("New key", "Accept token").
 */
export function reveal(label, value, note) {
  const code = h("code", { class: "secret-value", "data-testid": "secret-value" }, value);
  const status = h("span", { class: "copy-status", role: "status" });
  const copy = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(value);
          status.textContent = "Copied.";
        } catch {
          // No clipboard (permission refused, or an insecure origin): select it for Ctrl+C.
          const range = document.createRange();
          range.selectNodeContents(code);
          const selection = getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          status.textContent = "Copying is not allowed here: the value is selected, press Ctrl+C.";
        }
      },
    },
    "Copy",
  );
  const headingId = uid("reveal");
  return h(
    "section",
    { class: "reveal", "aria-labelledby": headingId },
    h("h2", { id: headingId }, label),
    h(
      "p",
      { class: "warning" },
      h("strong", {}, "You will not see this again. "),
      note || "Copy it now and keep it somewhere safe: the service stores only a hash of it.",
    ),
    h("div", { class: "secret" }, code, copy),
    status,
  );
}

/**
 * A modal dialog: `build(close)` returns its content. Focus moves into it, Escape closes it,
 * and focus returns to what opened it. Resolves with what `close(value)` was given.
 */
export function dialog(title, build) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const titleId = uid("dialog");
    const box = h("dialog", { "aria-labelledby": titleId });
    const close = (value) => {
      box.close();
      box.remove();
      if (opener && document.contains(opener)) opener.focus();
      resolve(value);
    };
    box.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(undefined);
    });
    box.append(h("h2", { id: titleId }, title), build(close));
    document.body.append(box);
    box.showModal();
    const first =
      box.querySelector("[autofocus]") ||
      box.querySelector("input, select, textarea, button:not(.secondary)") ||
      box.querySelector("button");
    first?.focus();
  });
}

/** Asks to confirm a destructive action; `what` names the object. Resolves to true or false. */
export function confirmDanger(title, what, action) {
  return dialog(title, (close) =>
    h(
      "div",
      {},
      h("p", {}, what),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: () => close(true) }, action),
        // Focus starts on Cancel: Enter right after opening must not destroy anything.
        h("button", { type: "button", class: "secondary", autofocus: true, onclick: () => close(false) }, "Cancel"),
      ),
    ),
  ).then((answer) => answer === true);
}

/** Asks for one line of text; resolves to it, or undefined when cancelled. */
export function prompt(title, label, value, action) {
  return dialog(title, (close) => {
    const input = h("input", { type: "text", value, required: true, autocomplete: "off" });
    return h(
      "form",
      {
        onsubmit: (event) => {
          event.preventDefault();
          close(input.value);
        },
      },
      field(label, input),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit" }, action),
        h("button", { type: "button", class: "secondary", onclick: () => close(undefined) }, "Cancel"),
      ),
    );
  });
}

/** Runs `action` from a button: disables it while pending, shows the API's message in `slot` on failure. */
export async function busy(button, slot, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (slot) say(slot, "");
  try {
    return await action();
  } catch (error) {
    if (slot) say(slot, error.message);
    else throw error;
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** A table with a caption (for screen readers), column headers and rows of cells. */
export function table(caption, headers, rows, empty = "Nothing here yet.") {
  if (rows.length === 0) return h("p", { class: "muted empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text || h("span", { class: "visually-hidden" }, "Actions"))))),
      h(
        "tbody",
        {},
        // Each cell names its column, which the phone layout shows in place of the header row.
        rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { "data-label": headers[i] || null }, cell)))),
      ),
    ),
  );
}

/** The parameters of the page's address (`#/keys?search=x`), as URLSearchParams. */
export function hashQuery() {
  const hash = location.hash;
  const at = hash.indexOf("?");
  return new URLSearchParams(at === -1 ? "" : hash.slice(at + 1));
}

/** `#/path?query` from a path and an object of parameters (empty ones left out). */
export function hashFor(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return `#/${path}${text ? `?${text}` : ""}`;
}

/** The end of a date input's day in local time, as Unix seconds (a key is good through that day). */
export function endOfDay(dateValue) {
  const [year, month, day] = dateValue.split("-").map(Number);
  return Math.floor(new Date(year, month - 1, day + 1, 0, 0, 0).getTime() / 1000);
}
