//! Fills a database with synthetic admin keys for the benchmark (`bench/run.sh`).
//!
//! `cargo run --release --example seed -- --database-url URL --keys N` makes the table hold at
//! least N synthetic keys, inserting only the missing ones in multi-row statements (1,000 rows
//! each, 50 per transaction). Synthetic keys have random hashes, so nobody holds their
//! plaintext; their ids are `key_seed` + a 16-digit position and their `created_at` grows with
//! it, so position `p` in creation order is `key_seed{p:016}`. On an empty database it also
//! bootstraps an owner with a real key and prints that key (and only that) on stdout.

use std::time::Instant;

use admin_api_keys::clock::{Clock, SystemClock};
use admin_api_keys::db::{self, DbConnection, PoolOptions, QueryCounter};
use admin_api_keys::domain::secret;
use admin_api_keys::domain::{KeyName, Scopes};
use admin_api_keys::models::admin_api_key::NewAdminApiKey;
use admin_api_keys::schema::{admin_api_keys as keys, users};
use admin_api_keys::services::bootstrap::create_owner_with_key;
use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

const ROWS_PER_STATEMENT: usize = 1_000;
const STATEMENTS_PER_TRANSACTION: usize = 50;
/// Seeded keys are this much older than now, one second apart.
const AGE_SECONDS: i64 = 20_000_000;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// How many synthetic keys the table should hold.
    #[arg(long)]
    keys: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let pool = db::connect_and_migrate(
        &args.database_url,
        &PoolOptions::default(),
        QueryCounter::default(),
    )?;
    let mut conn = pool.get()?;
    let now = SystemClock.now();

    let owner_id = match users::table
        .select(users::id)
        .first::<String>(&mut conn)
        .optional()?
    {
        Some(owner_id) => owner_id,
        None => {
            let made = create_owner_with_key(
                &mut conn,
                &KeyName::parse("owner", "Benchmark")?,
                None,
                &KeyName::parse("name", "bench")?,
                now,
            )?;
            println!("{}", made.secret.expose());
            made.owner_id
        }
    };
    let existing = keys::table
        .filter(keys::id.like("key_seed%"))
        .count()
        .get_result::<i64>(&mut conn)? as usize;
    let started = Instant::now();
    let scopes = Scopes::all();
    let mut position = existing;
    while position < args.keys {
        let end = (position + ROWS_PER_STATEMENT * STATEMENTS_PER_TRANSACTION).min(args.keys);
        db::write_transaction(&mut conn, |conn| {
            for chunk_start in (position..end).step_by(ROWS_PER_STATEMENT) {
                let chunk_end = (chunk_start + ROWS_PER_STATEMENT).min(end);
                insert_chunk(conn, chunk_start..chunk_end, &owner_id, scopes, now)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        position = end;
    }
    // Leave the table as a steady state would: vacuumed, with fresh statistics and written
    // out. Otherwise PostgreSQL's autovacuum and checkpointer work through the new rows
    // during the measurements.
    match &mut *conn {
        // One statement per call: VACUUM cannot run in the implicit transaction of a batch.
        DbConnection::Pg(pg) => {
            pg.batch_execute("VACUUM ANALYZE admin_api_keys")?;
            pg.batch_execute("CHECKPOINT")?;
        }
        DbConnection::Sqlite(sqlite) => sqlite.batch_execute("ANALYZE")?,
    }
    let added = args.keys.saturating_sub(existing);
    eprintln!(
        "seed: {added} keys added ({} in all) in {:.1}s",
        existing.max(args.keys),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn insert_chunk(
    conn: &mut DbConnection,
    positions: std::ops::Range<usize>,
    owner_id: &str,
    scopes: Scopes,
    now: i64,
) -> QueryResult<usize> {
    let ids: Vec<String> = positions
        .clone()
        .map(|p| format!("key_seed{p:016}"))
        .collect();
    let hashes: Vec<String> = positions
        .clone()
        .map(|_| secret::hex(&rand::random()))
        .collect();
    let mcp = admin_api_keys::domain::McpPolicy::default();
    let rows: Vec<NewAdminApiKey<'_>> = positions
        .zip(ids.iter().zip(&hashes))
        .map(|(p, (id, hash))| NewAdminApiKey {
            id,
            name: "seeded",
            key_hash: hash,
            redacted_value: "sk-admin...eed",
            owner_id,
            created_at: now - AGE_SECONDS + p as i64,
            expires_at: None,
            scopes,
            permissions: Default::default(),
            mcp: &mcp,
        })
        .collect();
    let insert = diesel::insert_into(keys::table).values(&rows);
    match conn {
        DbConnection::Pg(pg) => insert.execute(pg),
        DbConnection::Sqlite(sqlite) => insert.execute(sqlite),
    }
}
