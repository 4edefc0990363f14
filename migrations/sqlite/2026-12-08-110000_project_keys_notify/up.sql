-- PostgreSQL tells other replicas of changes to project keys and to who may use them from
-- triggers. An embedded SQLite database serves one process, which invalidates its own cache as
-- it writes (and its watcher notices other processes' commits); this version exists so both
-- backends share one migration history.
SELECT 1;
