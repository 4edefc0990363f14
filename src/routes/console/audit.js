// The audit log: newest first, filtered by event type, actor, resource, owner, project and a
// time range; every entry links to the key, member, invite or project it names.

import { get, seg } from "./api.js";
import { field, h, hashFor, hashQuery, select, show, table, when } from "./ui.js";

export const EVENT_TYPES = [
  "api_key.created", "api_key.updated", "api_key.deleted",
  "invite.sent", "invite.accepted", "invite.deleted",
  "user.added", "user.updated", "user.deleted",
  "project.created", "project.updated", "project.archived",
  "rate_limit.updated",
  "service_account.created", "service_account.updated", "service_account.deleted",
];

const PAGE_SIZE = 50;

/** `datetime-local` value to Unix seconds (local time), or undefined. */
const seconds = (value) => (value ? Math.floor(new Date(value).getTime() / 1000) : undefined);

/** Where the object an entry is about lives in the console. */
function resourceLink(entry) {
  const detail = entry[entry.type] ?? {};
  const id = detail.id;
  if (!id) return h("span", { class: "muted" }, "—");
  const [kind] = entry.type.split(".");
  let href = hashFor("audit", { resource: id });
  if (kind === "api_key") href = `#/keys/${seg(id)}`;
  else if (kind === "user" || kind === "invite") href = "#/users";
  else if (kind === "project") href = `#/projects/${seg(id)}`;
  else if (entry.project?.id) href = `#/projects/${seg(entry.project.id)}`;
  const name = detail.data?.name ?? detail.data?.email ?? detail.email;
  return h("span", {}, h("a", { href }, h("code", {}, id)), name ? h("span", { class: "muted block" }, name) : null);
}

function actorLink(actor) {
  if (actor?.type === "api_key" && actor.api_key) {
    const user = actor.api_key.user;
    return h(
      "span",
      {},
      h("a", { href: `#/keys/${seg(actor.api_key.id)}` }, h("code", {}, actor.api_key.id)),
      user ? h("span", { class: "muted block" }, user.email ?? user.id) : null,
    );
  }
  const user = actor?.session?.user;
  if (user) return h("span", {}, "session of ", h("a", { href: hashFor("keys", { owner_id: user.id }) }, user.email ?? user.id));
  return h("span", { class: "muted" }, actor?.type ?? "—");
}

export async function auditPage(view) {
  const query = hashQuery();
  const filters = Object.fromEntries(
    ["type", "actor", "resource", "owner", "project", "from", "to"].map((name) => [name, query.get(name) || ""]),
  );
  const answer = await get("organization/audit_logs", {
    "event_types[]": filters.type,
    "actor_ids[]": filters.actor,
    "resource_ids[]": filters.resource,
    owner_id: filters.owner,
    "project_ids[]": filters.project,
    "effective_at[gte]": seconds(filters.from),
    "effective_at[lte]": seconds(filters.to),
    after: query.get("after") || undefined,
    before: query.get("before") || undefined,
    limit: PAGE_SIZE,
  });

  const type = select("type", [["", "Any"], ...EVENT_TYPES.map((type) => [type, type])], filters.type);
  const input = (name) => h("input", { type: "text", name, value: filters[name], autocomplete: "off", spellcheck: "false" });
  const actor = input("actor");
  const resource = input("resource");
  const owner = input("owner");
  const project = input("project");
  const from = h("input", { type: "datetime-local", name: "from", value: filters.from });
  const to = h("input", { type: "datetime-local", name: "to", value: filters.to });
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter the audit log",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = hashFor("audit", {
          type: type.value, actor: actor.value.trim(), resource: resource.value.trim(),
          owner: owner.value.trim(), project: project.value.trim(), from: from.value, to: to.value,
        });
      },
    },
    field("Event type", type),
    field("Actor key", actor, "A key id (key_…)."),
    field("Resource", resource, "The id of a key, member, invite or project."),
    field("Owner", owner, "A user id: what they or their keys did."),
    field("Project", project, "A project id."),
    field("From", from),
    field("To", to),
    h("div", { class: "filter-actions" }, h("button", { type: "submit" }, "Apply"), h("a", { href: "#/audit", class: "button secondary" }, "Clear")),
  );

  const rows = answer.data.map((entry) => [
    when(entry.effective_at),
    h("code", { class: "event-type" }, entry.type),
    actorLink(entry.actor),
    resourceLink(entry),
    h(
      "details",
      {},
      h("summary", {}, "Details"),
      h("pre", {}, JSON.stringify(entry[entry.type] ?? {}, null, 2)),
    ),
  ]);
  const data = answer.data;
  const older = answer.has_more && data.length ? hashFor("audit", { ...filters, after: data[data.length - 1].id }) : null;
  const newer = (query.get("after") || (query.get("before") && answer.has_more)) && data.length
    ? hashFor("audit", { ...filters, before: data[0].id })
    : null;
  show(
    view,
    h("h1", {}, "Audit log"),
    form,
    table("Audit log entries, newest first", ["When", "Event", "Actor", "About", ""], rows, "No entry matches."),
    h(
      "nav",
      { class: "paging", "aria-label": "Pages of the audit log" },
      newer ? h("a", { href: newer, rel: "prev" }, "← Newer") : null,
      older ? h("a", { href: older, rel: "next" }, "Older →") : null,
    ),
  );
}
