-- Every change to a todo, written in batches by todomanager's history writer (history.rs), with
-- the trace id of the request that made it: from a row to the trace that explains it.
CREATE TABLE todo_history (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    todo_id    BIGINT       NOT NULL,
    owner      VARCHAR(255) NOT NULL,
    action     VARCHAR(16)  NOT NULL,
    at_unix_ms BIGINT       NOT NULL,
    trace_id   CHAR(32)     NOT NULL,
    INDEX todo_history_by_todo (owner, todo_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
