//! Marks the PostgreSQL half of the test suite as runnable when `TEST_DATABASE_URL` is set:
//! without it those tests are compiled with `#[ignore]`, so `cargo test` reports them as
//! ignored rather than as passed.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
