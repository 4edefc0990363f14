-- PostgreSQL notifies other replicas of auth changes from triggers. An embedded SQLite
-- database serves one process, which invalidates its own cache as it writes; this version
-- exists so both backends share one migration history.
SELECT 1;
