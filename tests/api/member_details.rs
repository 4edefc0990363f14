//! Member details (seed 000): users and invites carry an optional first and last name and an
//! E.164 phone number; an invite's become the member's on acceptance, `name` is derived from
//! them when none is given, and changing a user stays a partial update.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    an_invites_details_become_the_members_on_acceptance_with_a_derived_name,
    details_sent_with_the_acceptance_take_the_place_of_the_invites,
    accepting_without_a_name_or_parts_to_derive_one_is_a_400_and_keeps_the_token_usable,
    phone_numbers_must_be_e164_and_assigned_wherever_they_are_sent,
    first_and_last_names_are_bounded_like_names,
    a_change_is_partial_and_null_clears_a_detail,
    a_derived_name_follows_its_parts_but_a_name_set_otherwise_stays,
    detail_changes_are_audited_with_the_phone_number_masked,
);

const INVITES: &str = "/v1/organization/invites";
const ACCEPT: &str = "/v1/organization/invites/accept";
const USERS: &str = "/v1/organization/users";

/// Makes an invite with `body` (email and role added); returns the create response.
async fn invite(app: &TestApp, email: &str, mut body: Value) -> Value {
    body["email"] = json!(email);
    body["role"] = json!("reader");
    let (status, made) = read(app.post_json(INVITES, &body).await).await;
    assert_eq!(status, StatusCode::OK, "invite failed: {made}");
    made
}

/// Accepts the invite `made` with `body` (the token added), without any key.
async fn accept(app: &TestApp, made: &Value, mut body: Value) -> reqwest::Response {
    body["token"] = made["accept_token"].clone();
    app.client
        .post(app.url(ACCEPT))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

/// Accepts (asserting 200); returns the new member as the acceptance shows them.
async fn accepted(app: &TestApp, made: &Value, body: Value) -> Value {
    let (status, answer) = read(accept(app, made, body).await).await;
    assert_eq!(status, StatusCode::OK, "accept failed: {answer}");
    answer["user"].clone()
}

/// A member made by an invite carrying `details` and accepted with nothing more.
async fn member_with(app: &TestApp, email: &str, details: Value) -> Value {
    let made = invite(app, email, details).await;
    accepted(app, &made, json!({})).await
}

async fn modify(app: &TestApp, id: &Value, body: Value) -> reqwest::Response {
    let path = format!("{USERS}/{}", id.as_str().unwrap());
    app.post_json(&path, &body).await
}

/// Changes the user (asserting 200); returns them as changed.
async fn modified(app: &TestApp, id: &Value, body: Value) -> Value {
    let (status, user) = read(modify(app, id, body).await).await;
    assert_eq!(status, StatusCode::OK, "modify failed: {user}");
    user
}

async fn retrieved(app: &TestApp, id: &Value) -> Value {
    let path = format!("{USERS}/{}", id.as_str().unwrap());
    let (status, user) = read(app.get(&path).await).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    user
}

fn details(user: &Value) -> Value {
    json!([
        user["name"],
        user["first_name"],
        user["last_name"],
        user["phone_number"]
    ])
}

async fn an_invites_details_become_the_members_on_acceptance_with_a_derived_name(app: TestApp) {
    let carried =
        json!({ "first_name": " Grace ", "last_name": "Hopper", "phone_number": "+436761234568" });
    let made = invite(&app, "grace@example.com", carried).await;
    assert_eq!(made["first_name"], "Grace", "trimmed: {made}");
    assert_eq!(made["last_name"], "Hopper");
    assert_eq!(made["phone_number"], "+436761234568");
    let path = format!("{INVITES}/{}", made["id"].as_str().unwrap());
    let (_, shown) = read(app.get(&path).await).await;
    assert_eq!(
        shown["phone_number"], "+436761234568",
        "retrieve shows them: {shown}"
    );

    let user = accepted(&app, &made, json!({})).await;

    let expected = json!(["Grace Hopper", "Grace", "Hopper", "+436761234568"]);
    assert_eq!(
        details(&user),
        expected,
        "the acceptance shows them: {user}"
    );
    assert_eq!(details(&retrieved(&app, &user["id"]).await), expected);
    let (_, page) = read(
        app.get(&format!("{USERS}?emails[]=grace@example.com"))
            .await,
    )
    .await;
    assert_eq!(details(&page["data"][0]), expected, "and the list");

    // A name derived from one part alone is that part.
    let only_last = member_with(&app, "hopper@example.com", json!({ "last_name": "Hopper" })).await;
    assert_eq!(details(&only_last), json!(["Hopper", null, "Hopper", null]));
    let invited_plainly = invite(&app, "plain@example.com", json!({})).await;
    for field in ["first_name", "last_name", "phone_number"] {
        assert_eq!(
            invited_plainly[field],
            Value::Null,
            "{field} is null when not given"
        );
    }
}

async fn details_sent_with_the_acceptance_take_the_place_of_the_invites(app: TestApp) {
    let made = invite(
        &app,
        "ada@example.com",
        json!({ "first_name": "Ada", "last_name": "Byron", "phone_number": "+436761234568" }),
    )
    .await;

    let user = accepted(
        &app,
        &made,
        json!({ "last_name": "Lovelace", "phone_number": "+16502530000" }),
    )
    .await;

    assert_eq!(
        details(&user),
        json!(["Ada Lovelace", "Ada", "Lovelace", "+16502530000"]),
        "what the invitee sends wins; what they leave out comes from the invite"
    );
    let made = invite(&app, "alan@example.com", json!({ "first_name": "Alan" })).await;
    let user = accepted(&app, &made, json!({ "name": "A. M. Turing" })).await;
    assert_eq!(
        details(&user),
        json!(["A. M. Turing", "Alan", null, null]),
        "a name sent is kept as sent"
    );
}

async fn accepting_without_a_name_or_parts_to_derive_one_is_a_400_and_keeps_the_token_usable(
    app: TestApp,
) {
    let made = invite(
        &app,
        "nameless@example.com",
        json!({ "phone_number": "+436761234568" }),
    )
    .await;

    let error = assert_error(
        accept(&app, &made, json!({})).await,
        StatusCode::BAD_REQUEST,
        "no name and nothing to derive one from",
    )
    .await;

    assert_eq!(error["param"], "name");
    let user = accepted(&app, &made, json!({ "first_name": "Kim" })).await;
    assert_eq!(details(&user), json!(["Kim", "Kim", null, "+436761234568"]));
}

async fn phone_numbers_must_be_e164_and_assigned_wherever_they_are_sent(app: TestApp) {
    let member = member_with(&app, "member@example.com", json!({ "first_name": "Mo" })).await;
    let pending = invite(&app, "pending@example.com", json!({ "first_name": "Pat" })).await;
    let refused = [
        ("436761234567", "no leading +"),
        ("+43 676 1234567", "spaces"),
        ("+43-676-1234567", "hyphens"),
        ("+0436761234567", "a country code starting with 0"),
        ("+1234567890123456", "more than 15 digits"),
        ("+10000000000", "a number no plan assigns"),
        ("+999123456789", "no such country code"),
        ("", "empty"),
    ];
    for (number, why) in refused {
        let body = json!({ "email": "new@example.com", "role": "reader", "phone_number": number });
        let error = assert_error(
            app.post_json(INVITES, &body).await,
            StatusCode::BAD_REQUEST,
            &format!("invite: {why}"),
        )
        .await;
        assert_eq!(error["param"], "phone_number", "invite: {why}");
        assert!(
            number.len() < 3 || !error["message"].as_str().unwrap().contains(number),
            "the message does not repeat it: {error}"
        );

        let response = modify(&app, &member["id"], json!({ "phone_number": number })).await;
        let error =
            assert_error(response, StatusCode::BAD_REQUEST, &format!("modify: {why}")).await;
        assert_eq!(error["param"], "phone_number", "modify: {why}");

        let response = accept(&app, &pending, json!({ "phone_number": number })).await;
        let error =
            assert_error(response, StatusCode::BAD_REQUEST, &format!("accept: {why}")).await;
        assert_eq!(error["param"], "phone_number", "accept: {why}");
    }
    let error = assert_error(
        modify(
            &app,
            &member["id"],
            json!({ "phone_number": 436761234567_i64 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "a number, not a string",
    )
    .await;
    assert_eq!(error["param"], "phone_number");
    assert_eq!(
        retrieved(&app, &member["id"]).await["phone_number"],
        Value::Null,
        "unchanged"
    );

    for number in ["+436761234567", "+16502530000", "+442079460958"] {
        let user = modified(&app, &member["id"], json!({ "phone_number": number })).await;
        assert_eq!(user["phone_number"], number, "stored as sent");
    }
}

async fn first_and_last_names_are_bounded_like_names(app: TestApp) {
    let member = member_with(&app, "member@example.com", json!({ "first_name": "Mo" })).await;
    let cases = [
        (json!({ "first_name": "" }), "first_name", "empty"),
        (json!({ "last_name": "   " }), "last_name", "only spaces"),
        (
            json!({ "first_name": "é".repeat(101) }),
            "first_name",
            "101 characters",
        ),
        (
            json!({ "last_name": "Ho\u{200B}pper" }),
            "last_name",
            "a zero-width space",
        ),
        (json!({ "first_name": 7 }), "first_name", "not a string"),
    ];
    for (body, param, why) in cases {
        let error = assert_error(
            modify(&app, &member["id"], body.clone()).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
        assert_eq!(error["param"], param, "modify: {why}");
        let mut invited = body;
        invited["email"] = json!("x@example.com");
        invited["role"] = json!("reader");
        let error = assert_error(
            app.post_json(INVITES, &invited).await,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
        assert_eq!(error["param"], param, "invite: {why}");
    }
    let user = modified(
        &app,
        &member["id"],
        json!({ "first_name": "é".repeat(100) }),
    )
    .await;
    assert_eq!(user["first_name"].as_str().unwrap().chars().count(), 100);
}

async fn a_change_is_partial_and_null_clears_a_detail(app: TestApp) {
    let member = member_with(
        &app,
        "grace@example.com",
        json!({ "first_name": "Grace", "last_name": "Hopper", "phone_number": "+436761234568" }),
    )
    .await;

    let changed = modified(
        &app,
        &member["id"],
        json!({ "phone_number": "+16502530000" }),
    )
    .await;
    assert_eq!(
        details(&changed),
        json!(["Grace Hopper", "Grace", "Hopper", "+16502530000"]),
        "only the field sent changes (seed 000's updateUser would have replaced all)"
    );
    let changed = modified(&app, &member["id"], json!({ "enabled": false })).await;
    assert_eq!(
        details(&changed),
        json!(["Grace Hopper", "Grace", "Hopper", "+16502530000"])
    );

    let cleared = modified(&app, &member["id"], json!({ "phone_number": null })).await;
    assert_eq!(cleared["phone_number"], Value::Null);
    assert_eq!(cleared["first_name"], "Grace", "the others stay");
    let cleared = modified(
        &app,
        &member["id"],
        json!({ "first_name": null, "last_name": null }),
    )
    .await;
    assert_eq!(
        details(&cleared),
        json!(["Grace Hopper", null, null, null]),
        "a member keeps a name when its parts are cleared"
    );
    assert_eq!(
        details(&retrieved(&app, &member["id"]).await),
        details(&cleared)
    );
    let error = assert_error(
        modify(&app, &member["id"], json!({ "name": null })).await,
        StatusCode::BAD_REQUEST,
        "`name` itself cannot be cleared",
    )
    .await;
    assert_eq!(error["param"], "name");
}

async fn a_derived_name_follows_its_parts_but_a_name_set_otherwise_stays(app: TestApp) {
    let derived = member_with(
        &app,
        "grace@example.com",
        json!({ "first_name": "Grace", "last_name": "Hopper" }),
    )
    .await;
    let changed = modified(&app, &derived["id"], json!({ "last_name": "Murray" })).await;
    assert_eq!(
        details(&changed)[0],
        "Grace Murray",
        "the derived name follows"
    );
    let changed = modified(&app, &derived["id"], json!({ "first_name": null })).await;
    assert_eq!(
        details(&changed)[0],
        "Murray",
        "down to the part that is left"
    );
    let changed = modified(
        &app,
        &derived["id"],
        json!({ "first_name": "Grace", "name": "Amazing Grace" }),
    )
    .await;
    assert_eq!(
        details(&changed),
        json!(["Amazing Grace", "Grace", "Murray", null]),
        "a name sent wins"
    );
    let changed = modified(&app, &derived["id"], json!({ "last_name": "Hopper" })).await;
    assert_eq!(
        changed["name"], "Amazing Grace",
        "a name set by hand no longer follows"
    );

    let named = invite(&app, "ada@example.com", json!({ "first_name": "Ada" })).await;
    let named = accepted(&app, &named, json!({ "name": "Countess of Lovelace" })).await;
    let changed = modified(&app, &named["id"], json!({ "last_name": "Lovelace" })).await;
    assert_eq!(
        changed["name"], "Countess of Lovelace",
        "a name given at acceptance stays"
    );
}

async fn detail_changes_are_audited_with_the_phone_number_masked(app: TestApp) {
    let member = member_with(
        &app,
        "grace@example.com",
        json!({ "first_name": "Grace", "last_name": "Hopper" }),
    )
    .await;
    modified(
        &app,
        &member["id"],
        json!({ "last_name": "Murray", "phone_number": "+436761234567" }),
    )
    .await;
    app.clock.advance(1);
    modified(
        &app,
        &member["id"],
        json!({ "phone_number": null, "first_name": null }),
    )
    .await;

    let query = format!(
        "/v1/organization/audit_logs?event_types[]=user.updated&resource_ids[]={}",
        member["id"].as_str().unwrap()
    );
    let (status, page) = read(app.get(&query).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let changes: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| &entry["user.updated"]["changes_requested"])
        .collect();
    assert_eq!(
        changes,
        [
            &json!({ "name": "Murray", "first_name": null, "phone_number": null }),
            &json!({ "name": "Grace Murray", "last_name": "Murray", "phone_number": "+43…67" }),
        ],
        "newest first; the full number is never kept"
    );
    assert!(!page.to_string().contains("6761234567"), "{page}");
}
