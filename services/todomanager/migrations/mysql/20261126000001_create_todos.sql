CREATE TABLE todos (
    id    BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner VARCHAR(255) NOT NULL,
    text  TEXT         NOT NULL,
    done  BOOLEAN      NOT NULL DEFAULT FALSE,
    INDEX todos_by_owner (owner, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
