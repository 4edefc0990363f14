// Members and invites: who is in the organisation with which role, inviting someone (the
// accept token is shown once), changing a role, disabling, enabling and removing a member,
// and withdrawing an invite nobody accepted.

import { del, get, post, seg } from "./api.js";
import { badge, busy, confirmDanger, field, h, hashFor, reveal, say, select, show, table, when } from "./ui.js";

const ROLES = [["reader", "reader"], ["owner", "owner"]];

async function all(path) {
  const items = [];
  let after;
  for (let round = 0; round < 10; round++) {
    const page = await get(path, { limit: 100, after });
    items.push(...page.data);
    if (!page.has_more) break;
    after = page.last_id;
  }
  return items;
}

export async function usersPage(view) {
  const [users, invites] = await Promise.all([all("organization/users"), all("organization/invites")]);
  const slot = h("div", { class: "messages" });
  const reload = async (message) => {
    await usersPage(view);
    if (message) say(view.querySelector(".messages"), message, "ok");
  };

  const userRows = users.map((user) => {
    const role = select("role", ROLES, user.role, { "aria-label": `Role of ${user.name}` });
    const save = h("button", { type: "button", class: "secondary" }, "Save role");
    save.addEventListener("click", async () => {
      if (role.value === user.role) return;
      const done = await busy(save, slot, () => post(`organization/users/${seg(user.id)}`, { role: role.value }));
      if (done) await reload(`${user.name} is now ${done.role}.`);
    });
    const toggle = h("button", { type: "button", class: "secondary" }, user.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", async () => {
      const done = await busy(toggle, slot, () => post(`organization/users/${seg(user.id)}`, { enabled: !user.enabled }));
      if (done) await reload(done.enabled ? `${user.name} is enabled again.` : `${user.name} is disabled: every key of theirs is refused.`);
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      const sure = await confirmDanger(
        "Remove this member?",
        `${user.name}${user.email ? ` <${user.email}>` : ""} leaves the organisation and every key they own is deleted.`,
        `Delete ${user.name}`,
      );
      if (!sure) return;
      const done = await busy(remove, slot, () => del(`organization/users/${seg(user.id)}`));
      if (done) await reload(`Removed ${user.name}.`);
    });
    return [
      h("span", {}, user.name, user.email ? h("span", { class: "muted block" }, user.email) : null),
      h("span", { class: "inline-edit" }, role, save),
      badge(user.enabled ? "active" : "disabled"),
      when(user.added_at),
      h("span", { class: "row-actions" },
        h("a", { href: hashFor("keys", { owner_id: user.id }) }, "Keys"),
        h("a", { href: hashFor("audit", { owner: user.id }) }, "Activity"),
        toggle, remove),
    ];
  });

  const inviteRows = invites.map((invite) => {
    const withdraw = h("button", { type: "button", class: "danger" }, "Withdraw");
    withdraw.addEventListener("click", async () => {
      const sure = await confirmDanger("Withdraw this invite?", `The invite for ${invite.email} stops working.`, `Withdraw the invite for ${invite.email}`);
      if (!sure) return;
      const done = await busy(withdraw, slot, () => del(`organization/invites/${seg(invite.id)}`));
      if (done) await reload(`Withdrew the invite for ${invite.email}.`);
    });
    return [
      invite.email,
      invite.role,
      badge(invite.status),
      when(invite.expires_at),
      invite.status === "pending" ? withdraw : h("span", { class: "muted" }, "—"),
    ];
  });

  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const role = select("role", ROLES, "reader");
  const submit = h("button", { type: "submit" }, "Invite");
  const revealSlot = h("div", {});
  const inviteForm = h(
    "form",
    {
      class: "inline-form",
      "aria-label": "Invite someone",
      onsubmit: async (event) => {
        event.preventDefault();
        const made = await busy(submit, slot, () => post("organization/invites", { email: email.value.trim(), role: role.value }));
        if (!made) return;
        revealSlot.replaceChildren(
          reveal(
            `Accept token for ${made.email}`,
            made.accept_token,
            "Pass it on privately: the invitee accepts with it (POST /v1/organization/invites/accept) and gets a first key.",
          ),
        );
        email.value = "";
        revealSlot.querySelector("button")?.focus();
      },
    },
    field("Email", email),
    field("Role", role),
    h("div", { class: "filter-actions" }, submit),
  );

  show(
    view,
    h("h1", {}, "Users"),
    slot,
    table("Members", ["Name", "Role", "State", "Added", ""], userRows, "No member yet."),
    h("h2", {}, "Invites"),
    inviteForm,
    revealSlot,
    table("Invites", ["Email", "Role", "State", "Expires", ""], inviteRows, "No invite."),
  );
}
