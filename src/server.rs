//! The HTTP server's connection limits.
//!
//! Each worker holds at most `max_connections_per_worker` connections; more wait in the listen
//! backlog. The default ([`default_max_connections_per_worker`]) is what the open-file limit
//! leaves after the process's own descriptors, so the process never runs out of them however
//! many clients connect.

/// actix-server's own default cap on connections per worker.
const ACTIX_MAX_CONNECTIONS_PER_WORKER: u64 = 25_600;
/// Descriptors the process keeps whatever its size: standard streams, the listener, the main
/// runtime, the invalidation listener, migrations, and files libpq opens while connecting.
const RESERVED_FDS: u64 = 64;
/// Descriptors per pooled database connection (SQLite: the database and its WAL; PostgreSQL:
/// one socket), with headroom.
const FDS_PER_DB_CONNECTION: u64 = 2;
/// Descriptors per worker runtime (epoll and eventfd; measured: four per worker).
const FDS_PER_WORKER: u64 = 4;

/// The default cap on connections per worker: the soft `RLIMIT_NOFILE` less the descriptors
/// the process keeps for itself (a fixed reserve, two per database connection, four per
/// worker), shared among the workers; at least 1 and at most actix's own default, 25,600.
pub fn default_max_connections_per_worker(workers: usize, pool_size: u32) -> usize {
    connections_per_worker(open_file_limit(), workers, pool_size)
}

fn connections_per_worker(open_files: u64, workers: usize, pool_size: u32) -> usize {
    let workers = workers.max(1) as u64;
    // The pool, the SQLite writer and the PostgreSQL listener connection.
    let database = FDS_PER_DB_CONNECTION * (u64::from(pool_size) + 2);
    let reserved = RESERVED_FDS + database + FDS_PER_WORKER * workers;
    let per_worker = open_files.saturating_sub(reserved) / workers;
    usize::try_from(per_worker.clamp(1, ACTIX_MAX_CONNECTIONS_PER_WORKER)).unwrap_or(1)
}

/// The soft limit on open files (1024, the usual default, if it cannot be read).
fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_shares_what_the_file_limit_leaves_among_the_workers() {
        // 1024 - (64 + 2 * 12 + 4 * 2) = 928, over two workers.
        assert_eq!(connections_per_worker(1024, 2, 10), 464);
        assert_eq!(connections_per_worker(1024, 1, 10), 932);
    }

    #[test]
    fn the_connection_cap_stays_between_one_and_actix_default() {
        assert_eq!(
            connections_per_worker(50, 4, 10),
            1,
            "limit below the reserve"
        );
        assert_eq!(connections_per_worker(u64::MAX, 1, 10), 25_600, "no limit");
    }
}
