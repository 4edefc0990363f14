// Admin keys: the list (search, state, owner, numbered pages), one key's page with what it
// may do and the changes a person makes to it, and creating a key with its one-time reveal.

import { del, get, post, seg } from "./api.js";
import {
  alertBox, badge, busy, chips, confirmDanger, dialog, endOfDay, field, h, hashFor, hashQuery,
  keyStatus, prompt, reveal, say, select, show, table, when,
} from "./ui.js";

const PAGE_SIZE = 20;

/** The scopes a key may hold, with what each allows. */
export const SCOPES = [
  ["admin_api_keys.read", "list and read admin keys"],
  ["admin_api_keys.write", "create, change, rotate and delete admin keys"],
  ["audit_logs.read", "read the audit log"],
  ["keys.introspect", "ask whether a key is good (introspection)"],
  ["projects.read", "read projects, their members, keys and limits"],
  ["projects.write", "change projects, their members, keys and limits"],
  ["users.read", "list members and invites"],
  ["users.write", "invite, change and remove members"],
];

/** The members, for owner pickers; `null` when the key may not list them. */
export async function members() {
  try {
    const users = [];
    let after;
    for (let round = 0; round < 10; round++) {
      const page = await get("organization/users", { limit: 100, after });
      users.push(...page.data);
      if (!page.has_more) break;
      after = page.last_id;
    }
    return users;
  } catch {
    return null;
  }
}

export async function keyList(view) {
  const query = hashQuery();
  const filters = {
    search: query.get("search") || "",
    status: query.get("status") || "",
    owner_id: query.get("owner_id") || "",
  };
  const pageNumber = Math.max(1, Number(query.get("page")) || 1);
  const [answer, users] = await Promise.all([
    get("organization/admin_api_keys", { ...filters, page: pageNumber, limit: PAGE_SIZE, order: "desc" }),
    members(),
  ]);

  const search = h("input", { type: "search", name: "search", value: filters.search, autocomplete: "off" });
  const status = select("status", [["", "Any"], ["active", "Active"], ["expired", "Expired"], ["disabled", "Disabled"]], filters.status);
  const owner = users
    ? select("owner_id", [["", "Anyone"], ...users.map((user) => [user.id, `${user.name}${user.email ? ` <${user.email}>` : ""}`])], filters.owner_id)
    : h("input", { type: "text", name: "owner_id", value: filters.owner_id, placeholder: "user_…" });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter keys",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = hashFor("keys", { search: search.value.trim(), status: status.value, owner_id: owner.value.trim() });
      },
    },
    field("Search", search, "Part of a name, a key id, or the start of a redacted value."),
    field("State", status),
    field("Owner", owner),
    h("div", { class: "filter-actions" }, h("button", { type: "submit" }, "Apply"), h("a", { href: "#/keys", class: "button secondary" }, "Clear")),
  );

  const rows = answer.data.map((key) => [
    h("a", { href: `#/keys/${seg(key.id)}` }, key.name),
    badge(keyStatus(key)),
    h("a", { href: hashFor("keys", { owner_id: key.owner?.id }) }, key.owner?.name ?? "—"),
    h("code", {}, key.redacted_value),
    when(key.created_at),
    when(key.last_used_at, "never"),
    when(key.expires_at, "never"),
  ]);
  const total = answer.total ?? answer.data.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const to = (page) => hashFor("keys", { ...filters, page });
  const paging = h(
    "nav",
    { class: "paging", "aria-label": "Pages of keys" },
    pageNumber > 1 ? h("a", { href: to(pageNumber - 1), rel: "prev" }, "← Previous") : null,
    h("span", {}, `Page ${pageNumber} of ${pages} · ${total} ${total === 1 ? "key" : "keys"}`),
    answer.has_more ? h("a", { href: to(pageNumber + 1), rel: "next" }, "Next →") : null,
  );
  show(
    view,
    h("div", { class: "title-row" }, h("h1", {}, "Admin keys"), h("a", { href: "#/keys/new", class: "button" }, "Create key")),
    deletedNotice(),
    form,
    table("Admin keys", ["Name", "State", "Owner", "Key", "Created", "Last used", "Expires"], rows, "No key matches."),
    paging,
  );
}

/** A read-only account of a key's MCP policy. */
function mcpFacts(mcp) {
  if (!mcp) return h("p", { class: "muted" }, "No MCP policy.");
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "MCP access"), h("dd", {}, mcp.active ? "on" : "paused"),
    h("dt", {}, "Preset"), h("dd", {}, mcp.preset ?? "none"),
    h("dt", {}, "Tools"), h("dd", {}, mcp.allowlist_mode === "all" ? "every tool" : chips(mcp.tool_allowlist)),
    h("dt", {}, "Read-only tools only"), h("dd", {}, mcp.read_only ? "yes" : "no"),
    h("dt", {}, "MCP servers"), h("dd", {}, mcp.instance_ids.length ? chips(mcp.instance_ids) : "any"),
    h("dt", {}, "Projects"), h("dd", {}, mcp.project_ids.length ? chips(mcp.project_ids) : "any"),
    h("dt", {}, "MCP permissions"), h("dd", {}, chips(mcp.permissions)),
  );
}

export async function keyPage(view, id) {
  const key = await get(`organization/admin_api_keys/${seg(id)}`);
  const slot = h("div", { class: "messages" });
  const reload = () => keyPage(view, id);
  const state = keyStatus(key);

  const rename = h("button", { type: "button", class: "secondary" }, "Rename");
  rename.addEventListener("click", async () => {
    const name = await prompt(`Rename “${key.name}”`, "New name", key.name, "Rename");
    if (name === undefined || name === key.name) return;
    const done = await busy(rename, slot, () => post(`organization/admin_api_keys/${seg(id)}`, { name }));
    if (done) await reload();
  });
  const toggle = h("button", { type: "button", class: "secondary" }, key.enabled ? "Disable" : "Enable");
  toggle.addEventListener("click", async () => {
    const done = await busy(toggle, slot, () => post(`organization/admin_api_keys/${seg(id)}`, { enabled: !key.enabled }));
    if (done) {
      await reload();
      say(view.querySelector(".messages"), done.enabled ? "The key works again." : "The key is disabled: it is refused until you enable it.", "ok");
    }
  });
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate");
  rotate.addEventListener("click", () => rotateDialog(view, key));
  const mcpActive = key.mcp?.active !== false;
  const mcp = h("button", { type: "button", class: "secondary" }, mcpActive ? "Pause MCP access" : "Resume MCP access");
  mcp.addEventListener("click", async () => {
    const done = await busy(mcp, slot, () => post(`organization/admin_api_keys/${seg(id)}/mcp/toggle`, { active: !mcpActive }));
    if (done) {
      await reload();
      say(view.querySelector(".messages"), mcpActive ? "MCP access is paused; the key works for everything else." : "MCP access is back on.", "ok");
    }
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete");
  remove.addEventListener("click", async () => {
    const sure = await confirmDanger(
      "Delete this key?",
      `The key “${key.name}” (${key.redacted_value}) stops working at once, and this cannot be undone.`,
      `Delete “${key.name}”`,
    );
    if (!sure) return;
    const done = await busy(remove, slot, () => del(`organization/admin_api_keys/${seg(id)}`));
    if (done) {
      location.hash = hashFor("keys", { deleted: key.name });
    }
  });

  show(
    view,
    h("p", { class: "crumbs" }, h("a", { href: "#/keys" }, "Admin keys"), " / "),
    h("div", { class: "title-row" }, h("h1", {}, key.name), badge(state)),
    slot,
    h("div", { class: "actions" }, rename, toggle, rotate, mcp, remove),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, key.id)),
      h("dt", {}, "Key"), h("dd", {}, h("code", {}, key.redacted_value)),
      h("dt", {}, "Owner"), h("dd", {}, h("a", { href: hashFor("keys", { owner_id: key.owner?.id }) }, key.owner?.name ?? "—"), ` (${key.owner?.role ?? "?"})`),
      h("dt", {}, "Created"), h("dd", {}, when(key.created_at)),
      h("dt", {}, "Last used"), h("dd", {}, when(key.last_used_at, "never")),
      h("dt", {}, "Expires"), h("dd", {}, when(key.expires_at, "never")),
    ),
    h("h2", {}, "Scopes"),
    chips(key.scopes),
    h("h2", {}, "Permissions"),
    chips(key.permissions),
    h("h2", {}, "MCP policy"),
    mcpFacts(key.mcp),
    h("p", {}, h("a", { href: hashFor("audit", { resource: key.id }) }, "What happened to this key (audit log)")),
  );
}

/** Rotate with an overlap; shows the successor's value once. */
function rotateDialog(view, key) {
  return dialog(`Rotate “${key.name}”`, (close) => {
    const overlap = select("overlap", [
      ["0", "stops now"],
      ["3600", "keeps working for 1 hour"],
      ["86400", "keeps working for 1 day"],
      ["604800", "keeps working for 7 days"],
    ], "3600");
    const slot = h("div", { class: "messages" });
    const body = h("div", {});
    const submit = h("button", { type: "submit" }, "Rotate");
    const form = h(
      "form",
      {
        onsubmit: async (event) => {
          event.preventDefault();
          const made = await busy(submit, slot, () =>
            post(`organization/admin_api_keys/${seg(key.id)}/rotate`, { previous_key_expires_in_seconds: Number(overlap.value) }),
          );
          if (!made) return;
          const done = h("button", { type: "button", onclick: () => { close(); location.hash = `#/keys/${seg(made.id)}`; } }, "Open the new key");
          body.replaceChildren(
            reveal("The new key", made.value, "Put it where the old one was; the old key ends as you chose."),
            h("div", { class: "actions" }, done),
          );
          done.focus();
        },
      },
      h("p", {}, "A new key with the same scopes, permissions and owner replaces this one. The old key…"),
      field("Old key", overlap),
      slot,
      h("div", { class: "actions" }, submit, h("button", { type: "button", class: "secondary", onclick: () => close() }, "Cancel")),
    );
    body.append(form);
    return body;
  }).then(() => {
    // Closed without opening the new key: the old one's expiry changed, show it.
    if (location.hash.startsWith(`#/keys/${seg(key.id)}`)) keyPage(view, key.id).catch(() => {});
  });
}

export async function newKey(view) {
  const users = await members();
  const slot = h("div", { class: "messages" });
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 256, autocomplete: "off" });
  const scopeBoxes = SCOPES.map(([scope, text]) => {
    const box = h("input", { type: "checkbox", name: "scopes", value: scope });
    box.id = `scope-${scope.replace(/\W/g, "-")}`;
    return h("li", {}, box, h("label", { for: box.id }, h("code", {}, scope), ` — ${text}`));
  });
  const permissions = h("textarea", { name: "permissions", rows: 3, spellcheck: "false" });
  const expires = h("input", { type: "date", name: "expires" });
  const owner = users
    ? select("owner_id", [["", "Me (the signed-in key's owner)"], ...users.filter((u) => u.enabled).map((u) => [u.id, `${u.name} (${u.role})`])], "")
    : null;
  const submit = h("button", { type: "submit" }, "Create key");
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { name: name.value.trim() };
        const scopes = [...form.querySelectorAll("input[name=scopes]:checked")].map((box) => box.value);
        if (scopes.length) body.scopes = scopes;
        const perms = permissions.value.split(/[\s,]+/).filter(Boolean);
        if (perms.length) body.permissions = perms;
        if (expires.value) body.expires_at = endOfDay(expires.value);
        if (owner?.value) body.owner_id = owner.value;
        const made = await busy(submit, slot, () => post("organization/admin_api_keys", body));
        if (!made) return;
        const open = h("a", { href: `#/keys/${seg(made.id)}`, class: "button" }, "Open the key");
        form.replaceWith(
          h(
            "div",
            { class: "stack" },
            reveal(`“${made.name}” is ready`, made.value),
            h("dl", { class: "facts" },
              h("dt", {}, "Scopes"), h("dd", {}, chips(made.scopes)),
              h("dt", {}, "Permissions"), h("dd", {}, chips(made.permissions)),
              h("dt", {}, "Expires"), h("dd", {}, when(made.expires_at, "never"))),
            h("div", { class: "actions" }, open, h("a", { href: "#/keys", class: "button secondary" }, "Back to the list")),
          ),
        );
        view.querySelector(".reveal button")?.focus();
      },
    },
    field("Name", name, "For people: what the key is for, and who holds it."),
    h(
      "fieldset",
      {},
      h("legend", {}, "Scopes"),
      h("p", { class: "hint" }, "Leave all unticked to give the key the scopes of the key you signed in with."),
      h("ul", { class: "checks" }, scopeBoxes),
    ),
    field("Permissions", permissions, "Optional, one per line or comma-separated, e.g. billing:read or models:*."),
    field("Expires at the end of", expires, "Optional; left empty, the service's default lifetime applies."),
    owner ? field("Owner", owner) : null,
    slot,
    h("div", { class: "actions" }, submit, h("a", { href: "#/keys", class: "button secondary" }, "Cancel")),
  );
  show(view, h("p", { class: "crumbs" }, h("a", { href: "#/keys" }, "Admin keys"), " / "), h("h1", {}, "Create an admin key"), form);
}

/** A notice carried in the address after a delete (`#/keys?deleted=name`). */
export function deletedNotice() {
  const name = hashQuery().get("deleted");
  return name ? alertBox(`Deleted “${name}”.`, "ok") : null;
}
