// Projects: the list (archived ones on request), creating and archiving one, and a project's
// page with its members, service accounts and their keys, every project key, and its model
// rate limits.

import { del, get, post, seg } from "./api.js";
import { badge, busy, chips, confirmDanger, field, h, hashFor, hashQuery, prompt, reveal, say, select, show, table, when } from "./ui.js";
import { members } from "./keys.js";

async function all(path, query = {}) {
  const items = [];
  let after;
  for (let round = 0; round < 10; round++) {
    const page = await get(path, { ...query, limit: 100, after });
    items.push(...page.data);
    if (!page.has_more) break;
    after = page.last_id;
  }
  return items;
}

export async function projectList(view) {
  const archived = hashQuery().get("archived") === "1";
  const projects = await all("organization/projects", { include_archived: archived ? "true" : undefined });
  const slot = h("div", { class: "messages" });
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const submit = h("button", { type: "submit" }, "Create project");
  const form = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Create a project",
      onsubmit: async (event) => {
        event.preventDefault();
        const made = await busy(submit, slot, () => post("organization/projects", { name: name.value.trim() }));
        if (made) location.hash = `#/projects/${seg(made.id)}`;
      },
    },
    field("Name", name),
    h("div", { class: "filter-actions" }, submit),
  );
  const rows = projects.map((project) => [
    h("a", { href: `#/projects/${seg(project.id)}` }, project.name),
    badge(project.status),
    when(project.created_at),
    h("code", {}, project.id),
  ]);
  show(
    view,
    h("h1", {}, "Projects"),
    slot,
    form,
    h("p", {}, archived ? h("a", { href: "#/projects" }, "Hide archived projects") : h("a", { href: hashFor("projects", { archived: 1 }) }, "Show archived projects too")),
    table("Projects", ["Name", "State", "Created", "Id"], rows, "No project yet."),
  );
}

export async function projectPage(view, id) {
  const base = `organization/projects/${seg(id)}`;
  const [project, projectUsers, accounts, keys, limits, orgUsers] = await Promise.all([
    get(base),
    all(`${base}/users`),
    all(`${base}/service_accounts`),
    all(`${base}/api_keys`),
    all(`${base}/rate_limits`),
    members(),
  ]);
  const slot = h("div", { class: "messages" });
  const reload = async (message) => {
    await projectPage(view, id);
    if (message) say(view.querySelector(".messages"), message, "ok");
  };
  const live = project.status === "active";

  const archive = h("button", { type: "button", class: "danger", disabled: !live }, "Archive");
  archive.addEventListener("click", async () => {
    const sure = await confirmDanger("Archive this project?", `“${project.name}” and every key in it stop working; archiving cannot be undone.`, `Archive “${project.name}”`);
    if (!sure) return;
    const done = await busy(archive, slot, () => post(`${base}/archive`));
    if (done) await reload(`Archived “${project.name}”.`);
  });
  const rename = h("button", { type: "button", class: "secondary", disabled: !live }, "Rename");
  rename.addEventListener("click", async () => {
    const name = await prompt(`Rename “${project.name}”`, "New name", project.name, "Rename");
    if (name === undefined || name === project.name) return;
    const done = await busy(rename, slot, () => post(base, { name }));
    if (done) await reload();
  });

  // Members.
  const memberRows = projectUsers.map((user) => {
    const role = select("role", [["member", "member"], ["owner", "owner"]], user.role, { "aria-label": `Project role of ${user.name}` });
    const save = h("button", { type: "button", class: "secondary" }, "Save role");
    save.addEventListener("click", async () => {
      const done = await busy(save, slot, () => post(`${base}/users/${seg(user.id)}`, { role: role.value }));
      if (done) await reload(`${user.name} is now a project ${done.role}.`);
    });
    const remove = h("button", { type: "button", class: "danger" }, "Remove");
    remove.addEventListener("click", async () => {
      const sure = await confirmDanger("Remove from the project?", `${user.name} leaves “${project.name}”; their keys in it stop working.`, `Remove ${user.name}`);
      if (!sure) return;
      const done = await busy(remove, slot, () => del(`${base}/users/${seg(user.id)}`));
      if (done) await reload(`Removed ${user.name} from the project.`);
    });
    return [h("span", {}, user.name, user.email ? h("span", { class: "muted block" }, user.email) : null), h("span", { class: "inline-edit" }, role, save), when(user.added_at), remove];
  });
  const inProject = new Set(projectUsers.map((user) => user.id));
  const candidates = (orgUsers ?? []).filter((user) => user.enabled && !inProject.has(user.id));
  const who = candidates.length
    ? select("user_id", candidates.map((user) => [user.id, `${user.name}${user.email ? ` <${user.email}>` : ""}`]), candidates[0].id)
    : h("input", { type: "text", name: "user_id", required: true, placeholder: "user_…" });
  const newRole = select("role", [["member", "member"], ["owner", "owner"]], "member");
  const add = h("button", { type: "submit" }, "Add member");
  const addForm = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Add a member to the project",
      onsubmit: async (event) => {
        event.preventDefault();
        const done = await busy(add, slot, () => post(`${base}/users`, { user_id: who.value.trim(), role: newRole.value }));
        if (done) await reload(`${done.name} joined the project.`);
      },
    },
    field("Member", who),
    field("Project role", newRole),
    h("div", { class: "filter-actions" }, add),
  );

  // Service accounts, each with its keys and a way to make another.
  const revealSlot = h("div", {});
  const accountRows = accounts.map((account) => {
    const own = keys.filter((key) => key.owner?.service_account?.id === account.id);
    const newKeyButton = h("button", { type: "button", class: "secondary", disabled: !live }, "New key");
    newKeyButton.addEventListener("click", async () => {
      const name = await prompt(`A new key for ${account.name}`, "Key name", `${account.name} key`, "Create key");
      if (name === undefined) return;
      const made = await busy(newKeyButton, slot, () => post(`${base}/service_accounts/${seg(account.id)}/api_keys`, { name }));
      if (made) {
        await reload();
        view.querySelector(".reveal-slot").replaceChildren(reveal(`Key for ${account.name}`, made.value));
        view.querySelector(".reveal-slot button")?.focus();
      }
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      const sure = await confirmDanger("Delete this service account?", `${account.name} and its keys stop working at once.`, `Delete ${account.name}`);
      if (!sure) return;
      const done = await busy(remove, slot, () => del(`${base}/service_accounts/${seg(account.id)}`));
      if (done) await reload(`Deleted ${account.name}.`);
    });
    return [account.name, account.role, own.length ? chips(own.map((key) => `${key.name} ${key.redacted_value}`)) : h("span", { class: "muted" }, "no key"), h("span", { class: "row-actions" }, newKeyButton, remove)];
  });
  const accountName = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const createAccount = h("button", { type: "submit", disabled: !live }, "Create service account");
  const accountForm = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Create a service account",
      onsubmit: async (event) => {
        event.preventDefault();
        const made = await busy(createAccount, slot, () => post(`${base}/service_accounts`, { name: accountName.value.trim() }));
        if (!made) return;
        await reload(`Created ${made.name}.`);
        if (made.api_key?.value) {
          view.querySelector(".reveal-slot").replaceChildren(reveal(`Key for ${made.name}`, made.api_key.value));
          view.querySelector(".reveal-slot button")?.focus();
        }
      },
    },
    field("Name", accountName),
    h("div", { class: "filter-actions" }, createAccount),
  );
  revealSlot.className = "reveal-slot";

  // Every key of the project.
  const keyRows = keys.map((key) => {
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      const sure = await confirmDanger("Delete this project key?", `The key “${key.name}” (${key.redacted_value}) stops working at once.`, `Delete “${key.name}”`);
      if (!sure) return;
      const done = await busy(remove, slot, () => del(`${base}/api_keys/${seg(key.id)}`));
      if (done) await reload(`Deleted “${key.name}”.`);
    });
    const owner = key.owner?.type === "service_account" ? `${key.owner.service_account?.name} (service account)` : key.owner?.user?.name ?? "—";
    return [key.name, h("code", {}, key.redacted_value), owner, badge(key.owner_project_access), when(key.last_used_at, "never"), when(key.expires_at, "never"), remove];
  });

  // A key for a member of the project (its secret revealed once).
  const holder = select("user_id", projectUsers.map((user) => [user.id, user.name]), projectUsers[0]?.id ?? "");
  const keyName = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const createKey = h("button", { type: "submit", disabled: !live || projectUsers.length === 0 }, "Create project key");
  const keyForm = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Create a project key for a member",
      onsubmit: async (event) => {
        event.preventDefault();
        const made = await busy(createKey, slot, () => post(`${base}/api_keys`, { user_id: holder.value, name: keyName.value.trim() }));
        if (!made) return;
        await reload(`Created “${made.name}”.`);
        view.querySelector(".reveal-slot").replaceChildren(reveal(`Project key “${made.name}”`, made.value));
        view.querySelector(".reveal-slot button")?.focus();
      },
    },
    field("Member", holder),
    field("Key name", keyName),
    h("div", { class: "filter-actions" }, createKey),
  );

  // Rate limits: one row per model, the two main numbers editable.
  const limitRows = limits.map((limit) => {
    const requests = h("input", { type: "number", min: 0, value: limit.max_requests_per_1_minute, "aria-label": `Requests per minute for ${limit.model}` });
    const tokens = h("input", { type: "number", min: 0, value: limit.max_tokens_per_1_minute, "aria-label": `Tokens per minute for ${limit.model}` });
    const save = h("button", { type: "button", class: "secondary", disabled: !live }, "Save");
    save.addEventListener("click", async () => {
      const done = await busy(save, slot, () =>
        post(`${base}/rate_limits/${seg(limit.id)}`, { max_requests_per_1_minute: Number(requests.value), max_tokens_per_1_minute: Number(tokens.value) }),
      );
      if (done) await reload(`Saved the limits of ${limit.model}.`);
    });
    return [h("code", {}, limit.model), requests, tokens, save];
  });

  show(
    view,
    h("p", { class: "crumbs" }, h("a", { href: "#/projects" }, "Projects"), " / "),
    h("div", { class: "title-row" }, h("h1", {}, project.name), badge(project.status)),
    slot,
    revealSlot,
    h("div", { class: "actions" }, rename, archive, h("a", { href: hashFor("audit", { project: project.id }) }, "Activity in this project")),
    h("h2", {}, "Members"),
    table("Project members", ["Name", "Project role", "Added", ""], memberRows, "No member."),
    live ? addForm : null,
    h("h2", {}, "Service accounts"),
    table("Service accounts", ["Name", "Role", "Keys", ""], accountRows, "No service account."),
    live ? accountForm : null,
    h("h2", {}, "Project keys"),
    table("Project keys", ["Name", "Key", "Owner", "Owner's access", "Last used", "Expires", ""], keyRows, "No key in this project."),
    live && projectUsers.length ? keyForm : null,
    h("h2", {}, "Rate limits"),
    table("Rate limits per model", ["Model", "Requests per minute", "Tokens per minute", ""], limitRows, "No model limits."),
  );
}
