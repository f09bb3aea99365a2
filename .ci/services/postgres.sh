# A throwaway PostgreSQL server for the sink tests, sourced by .ci/run (bash, set -euo pipefail).
#
# Installs Debian's `postgresql` if initdb is missing, runs initdb in a fresh temporary folder
# and starts the server as a non-root user (PostgreSQL refuses root), listening on 127.0.0.1 at
# a free port with its socket in that folder; waits until pg_isready answers; creates the role
# and database `rillet`; exports
#
#     RILLET_TEST_POSTGRES_URI=postgresql://rillet:PASSWORD@127.0.0.1:PORT/rillet
#
# and registers stop_postgres (pg_ctl stop, then the folder is removed) in SERVICE_STOPS, which
# .ci/run's stop_services calls on exit. Sourced on its own, it stops the server on exit itself.

pg_service_find_bin() {  # a folder with the server programs, or nothing
    local found dir
    found=$(command -v initdb || true)
    for dir in ${found:+"$(dirname "$(readlink -f "$found")")"} /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/pg_isready" ] && [ -x "$dir/psql" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 0
}

pg_service_install() {
    # Debian's package would create and start a cluster of its own on port 5432: not wanted.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/rillet-ci.conf
    if declare -F apt_install >/dev/null; then
        apt_install postgresql
    else
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    fi
}

pg_service_as() {  # runs a server program as the server's user, from a folder it can read
    (cd "$PG_SERVICE_DIR" && "${PG_SERVICE_AS[@]}" "$@")
}

pg_service_log_tail() {  # says what went wrong, then shows the end of the server's log
    echo "postgres: $1; the end of $PG_SERVICE_DIR/server.log:" >&2
    tail -n 30 "$PG_SERVICE_DIR/server.log" >&2 || true
}

stop_postgres() {
    [ -n "$PG_SERVICE_DIR" ] || return 0
    if [ -f "$PG_SERVICE_DIR/data/postmaster.pid" ]; then
        pg_service_as "$PG_SERVICE_BIN/pg_ctl" -D "$PG_SERVICE_DIR/data" -m fast -w -t 30 stop >/dev/null || true
    fi
    rm -rf "$PG_SERVICE_DIR"
}

pg_service_start() {
    local py="${PYTHON:-python3}" port password i
    PG_SERVICE_BIN=$(pg_service_find_bin)
    if [ -z "$PG_SERVICE_BIN" ]; then
        echo "postgres: initdb not found; installing Debian's postgresql"
        pg_service_install
        PG_SERVICE_BIN=$(pg_service_find_bin)
        [ -n "$PG_SERVICE_BIN" ] || { echo "postgres: still no initdb after installing postgresql" >&2; return 1; }
    fi
    PG_SERVICE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rillet-postgres.XXXXXX")
    SERVICE_STOPS+=(stop_postgres)
    if [ "$(id -u)" -eq 0 ]; then
        id -u postgres >/dev/null 2>&1 \
            || useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postgres
        chown postgres: "$PG_SERVICE_DIR"
        PG_SERVICE_AS=(runuser -u postgres --)
    fi
    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$("$py" -c 'import secrets; print(secrets.token_hex(12))')

    # Local (socket) connections are trusted, for the setup below; TCP needs the password.
    if ! pg_service_as "$PG_SERVICE_BIN/initdb" -D "$PG_SERVICE_DIR/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PG_SERVICE_DIR/initdb.log" 2>&1; then
        echo "postgres: initdb failed:" >&2
        tail -n 20 "$PG_SERVICE_DIR/initdb.log" >&2
        return 1
    fi
    # fsync off: a test server's data need not survive a crash. pg_ctl -w notices a server that
    # exits at once (a port taken, a bad setting); pg_isready then confirms it answers on TCP.
    if ! pg_service_as "$PG_SERVICE_BIN/pg_ctl" -D "$PG_SERVICE_DIR/data" -l "$PG_SERVICE_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k '$PG_SERVICE_DIR' -c fsync=off -c full_page_writes=off" \
        start >/dev/null; then
        pg_service_log_tail "the server did not start"
        return 1
    fi
    for ((i = 0; i < 20; i++)); do
        "$PG_SERVICE_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.5
    done
    if ! "$PG_SERVICE_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        pg_service_log_tail "the server did not accept connections on 127.0.0.1:$port within 10 s"
        return 1
    fi
    "$PG_SERVICE_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SERVICE_DIR" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE rillet LOGIN PASSWORD '$password'" -c "CREATE DATABASE rillet OWNER rillet"
    export RILLET_TEST_POSTGRES_URI="postgresql://rillet:$password@127.0.0.1:$port/rillet"
    echo "postgres: $("$PG_SERVICE_BIN/postgres" --version) on 127.0.0.1:$port, data in $PG_SERVICE_DIR"
}

PG_SERVICE_BIN="" PG_SERVICE_DIR="" PG_SERVICE_AS=()
declare -F stop_services >/dev/null || trap stop_postgres EXIT
pg_service_start
