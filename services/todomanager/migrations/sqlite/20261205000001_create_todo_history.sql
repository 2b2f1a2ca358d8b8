-- Every change to a todo, written in batches by todomanager's history writer (history.rs), with
-- the trace id of the request that made it: from a row to the trace that explains it.
CREATE TABLE todo_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    todo_id    INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    trace_id   TEXT    NOT NULL
);

CREATE INDEX todo_history_by_todo ON todo_history (owner, todo_id, id);
