#!/bin/sh
# Stands in for the official image's healthcheck.sh, for the checks the chart's probes ask for:
#   --connect             the server answers on its socket
#   --innodb_initialized  and InnoDB is up
# Exit 0 when healthy. It logs in as root with MARIADB_ROOT_PASSWORD (from the Pod's
# environment; MYSQL_PWD keeps it off the command line).
set -eu

sql="SELECT 1"
for check in "$@"; do
    case $check in
        --connect) ;;
        --innodb_initialized) sql="SELECT 1 FROM information_schema.ENGINES WHERE engine = 'InnoDB' AND support IN ('YES', 'DEFAULT')" ;;
        *)
            echo "healthcheck.sh: this image knows --connect and --innodb_initialized, not $check" >&2
            exit 2
            ;;
    esac
done

answer=$(MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb --no-defaults --socket=/run/mysqld/mysqld.sock --user=root \
    --batch --skip-column-names --execute="$sql")
[ "$answer" = 1 ]
