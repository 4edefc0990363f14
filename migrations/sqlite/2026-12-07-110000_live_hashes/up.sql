-- PostgreSQL's triggers now name the hash of a key made or deleted (see the PostgreSQL side).
-- An embedded SQLite database serves one process, which keeps its set of live hashes as it
-- writes; this version exists so both backends share one migration history.
SELECT 1;
