#!/bin/sh
# The entrypoint of the bare provider's MariaDB image (Debian's MariaDB, written by xtask: see
# xtask/src/cluster/images/). It honours the part of the official image's contract that the
# chart uses (helm/todo-app/templates/mariadb.yaml; the contract is documented with the official
# image, hub.docker.com/_/mariadb, "Environment Variables"):
#   MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD, MARIADB_ROOT_PASSWORD, on the first start
#   only: an empty /var/lib/mysql gets the system tables, root's password, the database and its
#   user; a data folder that has them is started as it is (the passwords are not changed).
# It runs as the user the chart chooses (999, the image's mysql), with a read-only root and
# /run/mysqld and /tmp writable.
set -eu

datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock

for name in MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD MARIADB_ROOT_PASSWORD; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "docker-entrypoint.sh: $name is not set; the chart sets all four (MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD, MARIADB_ROOT_PASSWORD)" >&2
        exit 1
    fi
    # They go into SQL string literals below.
    case $value in
        *\'* | *\\* | *\`*)
            echo "docker-entrypoint.sh: $name holds a quote or a backslash, which this image does not escape" >&2
            exit 1
            ;;
    esac
done

if [ ! -d "$datadir/mysql" ]; then
    echo "docker-entrypoint.sh: a new database in $datadir"
    # What mariadb-install-db feeds the server (its cat_sql), without the test database; in
    # bootstrap mode a statement ends at the end of its line.
    {
        echo "CREATE DATABASE IF NOT EXISTS mysql;"
        echo "USE mysql;"
        echo "SET @auth_root_socket=NULL;"
        cd /usr/share/mysql
        cat mysql_system_tables.sql mysql_performance_tables.sql mysql_system_tables_data.sql \
            fill_help_tables.sql maria_add_gis_sp_bootstrap.sql mysql_sys_schema.sql
        # FLUSH PRIVILEGES loads the grant tables just written, so that the accounts can be made.
        cat <<SQL
FLUSH PRIVILEGES;
ALTER USER 'root'@'localhost' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD';
CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;
CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';
GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';
SQL
    } | mariadbd --no-defaults --bootstrap --datadir="$datadir" --log-warnings=0 --enforce-storage-engine="" \
        --max_allowed_packet=8M --net_buffer_length=16K
fi

exec mariadbd --no-defaults --datadir="$datadir" --socket="$socket" --port=3306 --bind-address=0.0.0.0 "$@"
