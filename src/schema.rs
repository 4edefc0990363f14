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
        mcp -> Text,
        revision -> BigInt,
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
        project_id -> Nullable<Text>,
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
    invite_projects (invite_id, project_id) {
        invite_id -> Text,
        project_id -> Text,
        role -> Text,
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
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        phone_number -> Nullable<Text>,
    }
}

diesel::table! {
    project_api_keys (id) {
        id -> Text,
        project_id -> Text,
        name -> Text,
        key_hash -> Text,
        redacted_value -> Text,
        owner_user_id -> Nullable<Text>,
        service_account_id -> Nullable<Text>,
        scopes -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        enabled -> Bool,
        mcp -> Text,
    }
}

diesel::table! {
    project_rate_limits (project_id, model) {
        project_id -> Text,
        model -> Text,
        max_requests_per_1_minute -> Nullable<BigInt>,
        max_tokens_per_1_minute -> Nullable<BigInt>,
        max_images_per_1_minute -> Nullable<BigInt>,
        max_audio_megabytes_per_1_minute -> Nullable<BigInt>,
        max_requests_per_1_day -> Nullable<BigInt>,
        batch_1_day_max_input_tokens -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    project_users (project_id, user_id) {
        project_id -> Text,
        user_id -> Text,
        role -> Text,
        added_at -> BigInt,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
        archived_at -> Nullable<BigInt>,
        external_key_id -> Nullable<Text>,
        residency -> Nullable<Text>,
    }
}

diesel::table! {
    rate_limit_models (model) {
        model -> Text,
        first_seen_at -> BigInt,
    }
}

diesel::table! {
    service_accounts (id) {
        id -> Text,
        project_id -> Text,
        name -> Text,
        role -> Text,
        created_at -> BigInt,
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
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        phone_number -> Nullable<Text>,
    }
}

diesel::joinable!(admin_api_keys -> users (owner_id));
diesel::joinable!(invite_projects -> invites (invite_id));
diesel::joinable!(invite_projects -> projects (project_id));
diesel::joinable!(project_api_keys -> projects (project_id));
diesel::joinable!(project_api_keys -> service_accounts (service_account_id));
diesel::joinable!(project_api_keys -> users (owner_user_id));
diesel::joinable!(project_rate_limits -> projects (project_id));
diesel::joinable!(project_users -> projects (project_id));
diesel::joinable!(project_users -> users (user_id));
diesel::joinable!(service_accounts -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    admin_api_keys,
    audit_logs,
    idempotency_records,
    invite_projects,
    invites,
    project_api_keys,
    project_rate_limits,
    project_users,
    projects,
    rate_limit_models,
    service_accounts,
    users,
);
