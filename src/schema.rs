// @generated automatically by Diesel CLI.

diesel::table! {
    admin_api_keys (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        redacted_value -> Text,
        owner_id -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        scopes -> Text,
        enabled -> Bool,
        rotated_to -> Nullable<Text>,
        permissions -> Text,
    }
}

diesel::table! {
    audit_logs (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        effective_at -> BigInt,
        actor_id -> Text,
        actor -> Text,
        resource_id -> Text,
        details -> Text,
        actor_user_id -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_records (caller_key_id, idempotency_key_hash) {
        caller_key_id -> Text,
        idempotency_key_hash -> Text,
        request_fingerprint -> Text,
        status -> Integer,
        key_id -> Text,
        response -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    invites (id) {
        id -> Text,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
        user_id -> Nullable<Text>,
        invited_by -> Nullable<Text>,
        invited_by_key -> Nullable<Text>,
        email_skeleton -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        email -> Nullable<Text>,
        role -> Text,
        created_at -> BigInt,
        enabled -> Bool,
        permissions -> Text,
        email_skeleton -> Nullable<Text>,
    }
}

diesel::joinable!(admin_api_keys -> users (owner_id));

diesel::allow_tables_to_appear_in_same_query!(
    admin_api_keys,
    audit_logs,
    idempotency_records,
    invites,
    users,
);
