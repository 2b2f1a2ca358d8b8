-- AUTOINCREMENT: an id is never reused, even after its todo was deleted.
CREATE TABLE todos (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT    NOT NULL,
    text  TEXT    NOT NULL,
    done  BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX todos_by_owner ON todos (owner, id);
