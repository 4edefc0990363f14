//! Look-alike emails are one address: members and pending invites are compared by their
//! confusable skeleton (Unicode TS #39), a local part mixing scripts is refused, and
//! addresses are stored in NFKC.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, read};

backend_tests!(
    look_alikes_of_a_pending_invite_are_refused_as_duplicates,
    look_alikes_of_a_member_are_refused_as_duplicates,
    a_local_part_mixing_scripts_is_refused_naming_email,
    fullwidth_addresses_are_stored_in_their_plain_form,
    members_and_invites_stored_before_skeletons_still_block_their_look_alikes,
);

const INVITES: &str = "/v1/organization/invites";
const ACCEPT: &str = "/v1/organization/invites/accept";

/// `ops@example.com` as it looks in other characters: fullwidth, and all-Cyrillic о р ѕ.
const LOOK_ALIKES: [&str; 3] = [
    "ｏｐｓ@example.com",
    "\u{43E}\u{440}\u{455}@example.com",
    "ops@ex\u{430}mple.com",
];

async fn try_invite(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json(INVITES, &json!({ "email": email, "role": "reader" }))
        .await
}

async fn invite(app: &TestApp, email: &str) -> Value {
    let (status, body) = read(try_invite(app, email).await).await;
    assert_eq!(status, StatusCode::OK, "invite of {email:?} failed: {body}");
    body
}

async fn assert_duplicate(app: &TestApp, email: &str, code: &str) {
    let error = assert_error(try_invite(app, email).await, StatusCode::CONFLICT, email).await;
    assert_eq!(error["code"], code, "{email}");
}

async fn look_alikes_of_a_pending_invite_are_refused_as_duplicates(app: TestApp) {
    invite(&app, "ops@example.com").await;

    for email in LOOK_ALIKES {
        assert_duplicate(&app, email, "invite_pending").await;
    }
    let (_, page) = read(app.get(INVITES).await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
}

async fn look_alikes_of_a_member_are_refused_as_duplicates(app: TestApp) {
    // The Cyrillic look-alike becomes the member this time.
    let made = invite(&app, LOOK_ALIKES[1]).await;
    let accepted = app
        .client
        .post(app.url(ACCEPT))
        .json(&json!({ "token": made["accept_token"], "name": "Ops" }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    for email in ["ops@example.com", LOOK_ALIKES[0], LOOK_ALIKES[2]] {
        assert_duplicate(&app, email, "email_taken").await;
    }
}

async fn a_local_part_mixing_scripts_is_refused_naming_email(app: TestApp) {
    for email in [
        // A Cyrillic о among Latin letters.
        "\u{43E}ps@example.com",
        // A Greek ο.
        "\u{3BF}ps@example.com",
    ] {
        let error = assert_error(
            try_invite(&app, email).await,
            StatusCode::BAD_REQUEST,
            email,
        )
        .await;
        assert_eq!(error["param"], "email", "{email}");
        assert!(
            !error["message"].as_str().unwrap().contains(email),
            "the address is not echoed: {error}"
        );
    }
    // One script, even with digits and punctuation, is fine.
    invite(&app, "\u{438}\u{432}\u{430}\u{43D}-2@example.com").await;
}

async fn fullwidth_addresses_are_stored_in_their_plain_form(app: TestApp) {
    let made = invite(&app, "ＯＰＳ２＠Ｅｘａｍｐｌｅ.com").await;

    assert_eq!(made["email"], "ops2@example.com", "{made}");
    let (_, shown) = read(
        app.get(&format!("{INVITES}/{}", made["id"].as_str().unwrap()))
            .await,
    )
    .await;
    assert_eq!(shown["email"], "ops2@example.com", "{shown}");
}

async fn members_and_invites_stored_before_skeletons_still_block_their_look_alikes(app: TestApp) {
    // Arrange: a member and an invite, then both tables as the migration leaves rows made
    // before it.
    let made = invite(&app, "ops@example.com").await;
    let accepted = app
        .client
        .post(app.url(ACCEPT))
        .json(&json!({ "token": made["accept_token"], "name": "Ops" }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    invite(&app, "ops2@example.com").await;
    app.with_db(|conn| {
        use admin_api_keys::schema::{invites, users};
        use diesel::{ExpressionMethods, RunQueryDsl};
        diesel::update(users::table)
            .set(users::email_skeleton.eq(None::<String>))
            .execute(conn)
            .expect("the members' skeletons are cleared");
        diesel::update(invites::table)
            .set(invites::email_skeleton.eq(None::<String>))
            .execute(conn)
            .expect("the invites' skeletons are cleared");
    })
    .await;

    // Act and assert: all-Cyrillic look-alikes of both.
    assert_duplicate(&app, LOOK_ALIKES[1], "email_taken").await;
    assert_duplicate(&app, "\u{43E}\u{440}\u{455}2@example.com", "invite_pending").await;
}
