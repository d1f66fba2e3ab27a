#!/usr/bin/env bash
# shellcheck disable=SC2034  # STACK_* variables are read by the scripts that source this
# scripts/stack.sh — starts and stops the local backing servers: nats-server (JetStream,
# sync_interval: always), PostgreSQL 15 and, for `make run`, an SMTP server (aiosmtpd) that
# keeps what it receives in <state>/mail/Maildir, as plain processes under one state directory.
#
# Sourced by scripts/run.sh (persistent, under .state/) and scripts/bench.sh (throwaway,
# under a temp dir). Usage from a script:
#
#   source scripts/stack.sh
#   stack_configure "$STATE_DIR" "$LOG_DIR" "$NATS_PORT" "$NATS_HTTP_PORT" "$PG_PORT"
#   stack_preflight; stack_check_ports; nats_start; pg_start; pg_ensure_db acasa
#   smtp_start                              # run.sh only: 127.0.0.1:$STACK_SMTP_PORT
#   export ACASA_NATS_URL="$STACK_NATS_URL"   # carries the service user's credentials
#   ...; nats_users_watch_start "$ACASA_BIN" # partners' NATS users follow the registrations
#   ...; stack_stop          # also safe to call from an EXIT trap, more than once
#
# NATS requires a login, and has accounts: the service user `acasa` (password generated once
# into <state>/secrets/nats-service.password; STACK_NATS_URL is nats://acasa:<password>@…)
# may do everything in the account ACASA, which holds JetStream and every stream; every
# registered partner gets an account of its own, with a user that may consume only its own
# feed through imports from ACASA. nats.conf includes nats-users.conf (the `accounts` block),
# which `acasa nats-users` rewrites from the partners in Postgres (nats_users_refresh:
# rewrite, then reload nats-server on a change; nats_users_watch_start: the same every 2 s
# in the background, until stack_stop).
#
# As root, Postgres runs as the `postgres` OS user (runuser) and its directories are
# chowned to it; as an ordinary user it runs as that user.
#
# Run directly, it helps with a stack left behind by a killed `make run`, and shows the mail:
#   scripts/stack.sh status [STATE_DIR]     # default STATE_DIR: .state
#   scripts/stack.sh stop [STATE_DIR]
#   scripts/stack.sh mail [STATE_DIR]       # what the SMTP server received: date, to, subject
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_SUPERUSER="acasa"

# stack_configure STATE_DIR LOG_DIR NATS_PORT NATS_HTTP_PORT PG_PORT [SMTP_PORT]
stack_configure() {
    STACK_STATE_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
    STACK_LOG_DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
    STACK_NATS_PORT="$3"
    STACK_NATS_HTTP_PORT="$4"
    STACK_PG_PORT="$5"
    STACK_NATS_CONF="$STACK_STATE_DIR/nats.conf"
    STACK_NATS_STORE="$STACK_STATE_DIR/nats"
    STACK_NATS_PIDFILE="$STACK_STATE_DIR/nats.pid"
    STACK_NATS_LOG="$STACK_LOG_DIR/nats.log"
    STACK_PG_DATA="$STACK_STATE_DIR/pg"
    STACK_PG_SOCKET_DIR="$STACK_STATE_DIR/pg-socket"
    STACK_PG_LOG="$STACK_LOG_DIR/postgres.log"
    STACK_NATS_PID=""
    STACK_NATS_USERS_CONF="$STACK_STATE_DIR/nats-users.conf"
    STACK_NATS_SERVICE_PASSWORD_FILE="$STACK_STATE_DIR/secrets/nats-service.password"
    STACK_NATS_USERS_LOG="$STACK_LOG_DIR/nats-users.log"
    STACK_NATS_USERS_WATCH_PID=""
    STACK_SMTP_PORT="${6:-${ACASA_SMTP_PORT:-2525}}"
    STACK_SMTP_MAILDIR="$STACK_STATE_DIR/mail/Maildir"
    STACK_SMTP_PIDFILE="$STACK_STATE_DIR/smtp.pid"
    STACK_SMTP_LOG="$STACK_LOG_DIR/smtp.log"
    STACK_SMTP_PID=""
    # nats_start adds the service user's credentials (nats://acasa:<password>@…).
    STACK_NATS_URL="nats://127.0.0.1:$STACK_NATS_PORT"
    # Unix sockets have a ~107-byte path limit; a deep checkout falls back to /tmp.
    if ((${#STACK_PG_SOCKET_DIR} > 80)); then
        STACK_PG_SOCKET_DIR="/tmp/acasa-pg-$(id -u)-$STACK_PG_PORT"
    fi
}

# stack_database_url DBNAME
stack_database_url() {
    echo "postgres://$PG_SUPERUSER@127.0.0.1:$STACK_PG_PORT/$1"
}

stack_check_ports() {
    require_free_port "$STACK_NATS_PORT" "nats-server (client)" "ACASA_NATS_PORT=<port>"
    require_free_port "$STACK_NATS_HTTP_PORT" "nats-server (monitoring)" "ACASA_NATS_HTTP_PORT=<port>"
    require_free_port "$STACK_PG_PORT" "postgres" "ACASA_PG_PORT=<port>"
}

# ---------------------------------------------------------------------------- NATS

nats_write_conf() {
    mkdir -p "$STACK_NATS_STORE"
    nats_prepare_users
    cat >"$STACK_NATS_CONF" <<EOF
# Written by scripts/stack.sh on every start; edits are overwritten.
# Single node, file storage, every write fsynced before it is acknowledged.
server_name: acasa-local
listen: 127.0.0.1:$STACK_NATS_PORT
http: 127.0.0.1:$STACK_NATS_HTTP_PORT
pid_file: "$STACK_NATS_PIDFILE"
jetstream {
  store_dir: "$STACK_NATS_STORE"
  sync_interval: always
}
# The accounts: ACASA (JetStream, the service user) and one account per registered partner,
# written by 'acasa nats-users' (scripts/stack.sh: nats_users_refresh, nats_users_watch_start).
include "nats-users.conf"
EOF
}

# nats_prepare_users — the service user's password (generated once), STACK_NATS_URL with
# it, and a users file with at least the account ACASA and the service user, so that
# nats-server can start before `acasa nats-users` (which needs Postgres) adds the partners'
# accounts. A users file of an earlier run is kept while it is an `accounts` block holding
# the current service password (an `authorization` block of before is replaced).
nats_prepare_users() {
    ensure_secret "$STACK_NATS_SERVICE_PASSWORD_FILE"
    local password
    password="$(tr -d '[:space:]' <"$STACK_NATS_SERVICE_PASSWORD_FILE")"
    [[ "$password" =~ ^[A-Za-z0-9]+$ ]] ||
        die "$STACK_NATS_SERVICE_PASSWORD_FILE must hold letters and digits only (remove it to generate another)"
    STACK_NATS_URL="nats://acasa:$password@127.0.0.1:$STACK_NATS_PORT"
    if [[ -f "$STACK_NATS_USERS_CONF" ]] && grep -qx 'accounts {' "$STACK_NATS_USERS_CONF" &&
        grep -qF "password: \"$password\"" "$STACK_NATS_USERS_CONF"; then
        return 0
    fi
    local tmp="$STACK_NATS_USERS_CONF.tmp.$$"
    (
        umask 077
        cat >"$tmp" <<EOF
# Written by scripts/stack.sh: the services' account only, until 'acasa nats-users' adds
# an account per registered partner.
accounts {
  "ACASA": {
    jetstream: enabled
    users: [
      { user: "acasa", password: "$password" }
    ]
  }
}
EOF
    )
    mv "$tmp" "$STACK_NATS_USERS_CONF"
}

# nats_reload — makes the running nats-server re-read its configuration (SIGHUP) after
# checking it, and waits until it has (its monitoring endpoint reports a new load time).
# Twice: nats-server (2.15.1) routes the imports of an account that a reload adds only from
# the next reload on, so a new partner's requests would find no responders until then.
nats_reload() {
    local pid="${STACK_NATS_PID:-}"
    [[ -n "$pid" ]] || pid="$(stack_nats_pid_from_file)"
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
        warn "nats-server is not running; nothing to reload"
        return 1
    fi
    local check
    if ! check="$("$NATS_SERVER_BIN" -c "$STACK_NATS_CONF" -t 2>&1)"; then
        warn "not reloading nats-server: invalid configuration: $check"
        return 1
    fi
    nats_signal_reload "$pid" && nats_signal_reload "$pid"
}

# nats_signal_reload PID — one SIGHUP, then waits until nats-server reports a new load time.
nats_signal_reload() {
    local pid="$1" before after deadline=$((SECONDS + 10))
    before="$(nats_config_load_time)"
    kill -HUP "$pid" 2>/dev/null || return 1
    while :; do
        after="$(nats_config_load_time)"
        [[ -n "$after" && "$after" != "$before" ]] && return 0
        if ((SECONDS >= deadline)); then
            warn "nats-server did not report reloading its configuration (log: $STACK_NATS_LOG)"
            return 1
        fi
        sleep 0.1
    done
}

# nats_config_load_time — when nats-server last (re)loaded its configuration (from /varz).
nats_config_load_time() {
    python3 - "http://127.0.0.1:$STACK_NATS_HTTP_PORT/varz" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    print(json.load(r).get("config_load_time", ""))
PY
}

# nats_users_refresh ACASA_BIN — rewrites nats-users.conf from the registered partners
# (`acasa nats-users`, which replaces the file only when its content changes) and, when it
# changed, reloads nats-server. Uses ACASA_DATABASE_URL and ACASA_HASH_KEY_FILE when set,
# else this stack's database and hash key.
nats_users_refresh() {
    local bin="$1" out
    out="$(ACASA_DATABASE_URL="${ACASA_DATABASE_URL:-$(stack_database_url acasa)}" \
        ACASA_HASH_KEY_FILE="${ACASA_HASH_KEY_FILE:-$STACK_STATE_DIR/secrets/hash.key}" \
        ACASA_STATE_DIR="${ACASA_STATE_DIR:-$STACK_STATE_DIR}" \
        "$bin" nats-users --out "$STACK_NATS_USERS_CONF" \
        --service-password-file "$STACK_NATS_SERVICE_PASSWORD_FILE")" || return 1
    [[ "$out" == changed* ]] || return 0
    nats_reload || return 1
    info "nats users: $out; nats-server reloaded"
}

# nats_users_watch_start ACASA_BIN — refreshes the NATS users now (so partners registered
# before get theirs at once), then every 2 s in the background (log: nats-users.log), so
# that a newly registered partner can log in within seconds. Stopped by stack_stop, or by
# itself once the calling script is gone.
nats_users_watch_start() {
    local bin="$1" parent="$$"
    nats_users_watch_stop
    nats_users_refresh "$bin" || warn "could not refresh the NATS users (see above)"
    (
        while pid_alive "$parent"; do
            sleep 2
            nats_users_refresh "$bin" || warn "could not refresh the NATS users"
        done
    ) </dev/null >>"$STACK_NATS_USERS_LOG" 2>&1 &
    STACK_NATS_USERS_WATCH_PID=$!
}

# nats_users_watch_stop — stops the watcher, if one runs. Idempotent.
nats_users_watch_stop() {
    local pid="${STACK_NATS_USERS_WATCH_PID:-}"
    STACK_NATS_USERS_WATCH_PID=""
    if [[ -n "$pid" ]]; then
        stop_pid "$pid" "the NATS users watcher" 5
    fi
}

nats_start() {
    [[ -x "$NATS_SERVER_BIN" ]] || die "nats-server not found at $NATS_SERVER_BIN (run scripts/tools.sh venv)"
    # Streams live in the account ACASA now; a store of before has them in the global
    # account ($G), where nothing would find them while the read models remember them.
    if [[ -n "$(ls -A "$STACK_NATS_STORE/jetstream/\$G" 2>/dev/null)" ]]; then
        die "$STACK_NATS_STORE holds JetStream data of the global account, from before the partner accounts (streams now live in account ACASA); delete this state: make clean-state (or remove $STACK_STATE_DIR)"
    fi
    nats_write_conf
    "$NATS_SERVER_BIN" -c "$STACK_NATS_CONF" -t >/dev/null 2>&1 ||
        die "invalid nats config $STACK_NATS_CONF: $("$NATS_SERVER_BIN" -c "$STACK_NATS_CONF" -t 2>&1)"
    info "starting nats-server on 127.0.0.1:$STACK_NATS_PORT (log: $STACK_NATS_LOG)"
    # setsid: its own session, so a Ctrl-C at the terminal reaches only the script,
    # which then stops everything in order.
    echo "---- $(date -u +%FT%TZ) nats-server ----" >>"$STACK_NATS_LOG"
    setsid "$NATS_SERVER_BIN" -c "$STACK_NATS_CONF" >>"$STACK_NATS_LOG" 2>&1 </dev/null &
    STACK_NATS_PID=$!
    if ! wait_for_port 127.0.0.1 "$STACK_NATS_PORT" 30 "$STACK_NATS_PID"; then
        tail -n 20 "$STACK_NATS_LOG" >&2 || true
        die "nats-server did not start (log: $STACK_NATS_LOG)"
    fi
    # Ready means JetStream is up too, not just the client port.
    local deadline=$((SECONDS + 30))
    until http_ok "http://127.0.0.1:$STACK_NATS_HTTP_PORT/healthz?js-enabled-only=true"; do
        ((SECONDS < deadline)) || die "nats-server JetStream not healthy (log: $STACK_NATS_LOG)"
        pid_alive "$STACK_NATS_PID" || die "nats-server exited (log: $STACK_NATS_LOG)"
        sleep 0.2
    done
}

nats_stop() {
    local pid="${STACK_NATS_PID:-}"
    # Otherwise the pid file, if it names a live nats-server (pid files outlive processes).
    [[ -n "$pid" ]] || pid="$(stack_nats_pid_from_file)"
    if [[ -n "$pid" ]] && pid_alive "$pid"; then
        info "stopping nats-server (pid $pid)"
        stop_pid "$pid" nats-server 30
    fi
    STACK_NATS_PID=""
}

# ---------------------------------------------------------------------------- SMTP

# smtp_start — aiosmtpd (from the venv) on 127.0.0.1:$STACK_SMTP_PORT with its Mailbox
# handler: every message it accepts becomes one file in $STACK_SMTP_MAILDIR/new; nothing
# is relayed anywhere. Kept between runs, like the data.
smtp_start() {
    "$SMTP_PYTHON" -c 'import aiosmtpd' 2>/dev/null ||
        die "aiosmtpd not found for $SMTP_PYTHON (run scripts/tools.sh venv)"
    mkdir -p "$(dirname "$STACK_SMTP_MAILDIR")"
    info "starting aiosmtpd on 127.0.0.1:$STACK_SMTP_PORT (mailbox $STACK_SMTP_MAILDIR, log: $STACK_SMTP_LOG)"
    echo "---- $(date -u +%FT%TZ) aiosmtpd ----" >>"$STACK_SMTP_LOG"
    setsid "$SMTP_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$STACK_SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$STACK_SMTP_MAILDIR" >>"$STACK_SMTP_LOG" 2>&1 </dev/null &
    STACK_SMTP_PID=$!
    echo "$STACK_SMTP_PID" >"$STACK_SMTP_PIDFILE"
    if ! wait_for_port 127.0.0.1 "$STACK_SMTP_PORT" 30 "$STACK_SMTP_PID"; then
        tail -n 20 "$STACK_SMTP_LOG" >&2 || true
        die "aiosmtpd did not start (log: $STACK_SMTP_LOG)"
    fi
}

smtp_stop() {
    local pid="${STACK_SMTP_PID:-}"
    [[ -n "$pid" ]] || pid="$(stack_smtp_pid_from_file)"
    if [[ -n "$pid" ]] && pid_alive "$pid"; then
        info "stopping aiosmtpd (pid $pid)"
        stop_pid "$pid" aiosmtpd 10
    fi
    STACK_SMTP_PID=""
    [[ -n "${STACK_SMTP_PIDFILE:-}" ]] && rm -f "$STACK_SMTP_PIDFILE"
    return 0
}

# stack_smtp_pid_from_file — the pid in the SMTP pid file, if that process is aiosmtpd.
stack_smtp_pid_from_file() {
    local pid=""
    [[ -f "${STACK_SMTP_PIDFILE:-}" ]] && pid="$(cat "$STACK_SMTP_PIDFILE" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q aiosmtpd; then
        echo "$pid"
    fi
}

# smtp_list — one line per message in the Maildir, oldest first: date, recipients, subject
# (decoded), file under new/ or cur/.
smtp_list() {
    [[ -d "$STACK_SMTP_MAILDIR" ]] || die "no mailbox at $STACK_SMTP_MAILDIR (make run starts one)"
    "$SMTP_PYTHON" - "$STACK_SMTP_MAILDIR" <<'PY'
import email.header, email.utils, mailbox, os, sys
def decoded(value):
    return str(email.header.make_header(email.header.decode_header(value or "")))
rows = []
for sub in ("new", "cur"):
    folder = os.path.join(sys.argv[1], sub)
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            m = email.message_from_binary_file(f)
        try:
            when = email.utils.parsedate_to_datetime(m["Date"]).isoformat()
        except (TypeError, ValueError):
            when = "-"
        rows.append((when, m["X-RcptTo"] or m["To"] or "-", decoded(m["Subject"]), f"{sub}/{name}"))
rows.sort()
for row in rows:
    print("  ".join(row))
print(f"{len(rows)} message(s) in {sys.argv[1]}", file=sys.stderr)
PY
}

# ---------------------------------------------------------------------------- Postgres

# pg_as_owner CMD... — runs a Postgres server binary as the data directory's owner.
pg_as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# stack_preflight — checks that need no server yet, so a problem stops us before
# anything starts: binaries present and, as root, the `postgres` user can reach the
# state directory (Postgres refuses to run as root).
stack_preflight() {
    [[ -x "$NATS_SERVER_BIN" ]] || die "nats-server not found at $NATS_SERVER_BIN (run scripts/tools.sh venv)"
    pg_check_bins
    if is_root; then
        id postgres >/dev/null 2>&1 ||
            die "running as root, but there is no 'postgres' OS user to run Postgres as (apt-get install -y postgresql-15 creates it)"
        if ! runuser -u postgres -- test -x "$STACK_STATE_DIR"; then
            die "the postgres OS user cannot reach $STACK_STATE_DIR (a parent directory is not searchable by others, e.g. /root is 0700). Move the checkout somewhere world-searchable, or run as an ordinary user."
        fi
    fi
}

# Root only: the `postgres` user owns the data directory, socket directory and log.
pg_prepare_root() {
    stack_preflight
    mkdir -p "$STACK_PG_DATA" "$STACK_PG_SOCKET_DIR"
    touch "$STACK_PG_LOG"
    chown postgres: "$STACK_PG_SOCKET_DIR" "$STACK_PG_LOG"
    if [[ "$(stat -c %U "$STACK_PG_DATA")" != postgres ]]; then
        chown -R postgres: "$STACK_PG_DATA"
    fi
    runuser -u postgres -- test -w "$STACK_PG_LOG" ||
        die "the postgres OS user cannot write $STACK_PG_LOG"
}

pg_check_bins() {
    local bin
    for bin in initdb postgres pg_ctl pg_isready psql; do
        [[ -x "$PG_BIN_DIR/$bin" ]] || die "$PG_BIN_DIR/$bin not found (run scripts/tools.sh postgres, or set ACASA_PG_BIN_DIR)"
    done
}

# pg_init — initdb once; the superuser is `acasa`, trust on 127.0.0.1 and the private socket.
pg_init() {
    if [[ -f "$STACK_PG_DATA/PG_VERSION" ]]; then
        return 0
    fi
    info "initialising Postgres data directory $STACK_PG_DATA"
    mkdir -p "$STACK_PG_DATA"
    if [[ -n "$(ls -A "$STACK_PG_DATA")" ]]; then
        die "$STACK_PG_DATA is not empty but holds no Postgres cluster; remove it (make clean-state) and retry"
    fi
    is_root && chown postgres: "$STACK_PG_DATA"
    chmod 700 "$STACK_PG_DATA"
    pg_as_owner "$PG_BIN_DIR/initdb" --pgdata="$STACK_PG_DATA" --username="$PG_SUPERUSER" \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 >>"$STACK_PG_LOG" 2>&1 ||
        die "initdb failed (log: $STACK_PG_LOG)"
    # Only the private unix socket and 127.0.0.1; no ::1, no other hosts.
    pg_as_owner tee "$STACK_PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by scripts/stack.sh. Local development only: trust on the private unix
# socket (its directory is mode 0700) and on 127.0.0.1; nothing else can connect.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
    pg_as_owner tee -a "$STACK_PG_DATA/postgresql.conf" >/dev/null <<'EOF'

# Added by scripts/stack.sh: port, addresses and socket are rewritten on every start.
include_if_exists = 'acasa-local.conf'
EOF
}

pg_write_local_conf() {
    local sock="${STACK_PG_SOCKET_DIR//\'/\'\'}"
    pg_as_owner tee "$STACK_PG_DATA/acasa-local.conf" >/dev/null <<EOF
# Written by scripts/stack.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $STACK_PG_PORT
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
max_connections = 200
EOF
}

pg_start() {
    pg_check_bins
    mkdir -p "$STACK_PG_SOCKET_DIR"
    chmod 700 "$STACK_PG_SOCKET_DIR"
    is_root && pg_prepare_root
    pg_init
    if pg_running; then
        die "a Postgres server is already running on $STACK_PG_DATA; stop it with: scripts/stack.sh stop $STACK_STATE_DIR"
    fi
    pg_write_local_conf
    info "starting postgres on 127.0.0.1:$STACK_PG_PORT (log: $STACK_PG_LOG)"
    if ! pg_as_owner "$PG_BIN_DIR/pg_ctl" --pgdata="$STACK_PG_DATA" --log="$STACK_PG_LOG" \
        --wait --timeout=60 --silent start; then
        tail -n 20 "$STACK_PG_LOG" >&2 || true
        die "postgres did not start (log: $STACK_PG_LOG)"
    fi
    local deadline=$((SECONDS + 30))
    # -d postgres: the default database (named after the user) may not exist yet, and
    # probing it would log a FATAL line.
    until "$PG_BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$STACK_PG_PORT" -U "$PG_SUPERUSER" -d postgres; do
        ((SECONDS < deadline)) || die "postgres is not accepting connections (log: $STACK_PG_LOG)"
        sleep 0.2
    done
}

# pg_ensure_db NAME — creates the database unless it exists.
pg_ensure_db() {
    local db="$1" exists
    exists="$("$PG_BIN_DIR/psql" -X -q -t -A -h 127.0.0.1 -p "$STACK_PG_PORT" -U "$PG_SUPERUSER" \
        -d postgres -v ON_ERROR_STOP=1 \
        -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ||
        die "cannot query Postgres on port $STACK_PG_PORT"
    if [[ "$exists" != 1 ]]; then
        info "creating database $db"
        "$PG_BIN_DIR/psql" -X -q -h 127.0.0.1 -p "$STACK_PG_PORT" -U "$PG_SUPERUSER" -d postgres \
            -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null ||
            die "cannot create database $db"
    fi
}

pg_stop() {
    [[ -n "${STACK_PG_DATA:-}" ]] || return 0
    if pg_running; then
        info "stopping postgres"
        pg_as_owner "$PG_BIN_DIR/pg_ctl" --pgdata="$STACK_PG_DATA" --mode=fast --wait \
            --timeout=60 --silent stop ||
            warn "pg_ctl stop failed; see $STACK_PG_LOG"
    fi
}

# stack_running_pids FILE — prints "pid name" lines of FILE (written by run.sh) whose
# process is still an acasa process.
stack_running_pids() {
    local file="$1" pid name
    [[ -f "$file" ]] || return 0
    while read -r pid name; do
        [[ -n "$pid" ]] || continue
        if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q acasa; then
            echo "$pid $name"
        fi
    done <"$file"
}

# stack_nats_pid_from_file — the pid in the pid file, if that process is a nats-server.
stack_nats_pid_from_file() {
    local pid=""
    [[ -f "${STACK_NATS_PIDFILE:-}" ]] && pid="$(cat "$STACK_NATS_PIDFILE" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && pid_alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server ]]; then
        echo "$pid"
    fi
}

pg_running() {
    [[ -f "$STACK_PG_DATA/postmaster.pid" ]] &&
        pg_as_owner "$PG_BIN_DIR/pg_ctl" --pgdata="$STACK_PG_DATA" status >/dev/null 2>&1
}

# stack_leftovers [PIDS_FILE] — true when servers from an earlier run still run here.
stack_leftovers() {
    pg_running && return 0
    [[ -n "$(stack_nats_pid_from_file)" ]] && return 0
    [[ -n "$(stack_smtp_pid_from_file)" ]] && return 0
    [[ -n "${1:-}" && -n "$(stack_running_pids "$1")" ]]
}

# stack_stop — the NATS users watcher, postgres, nats, then the SMTP server. Idempotent.
stack_stop() {
    nats_users_watch_stop
    pg_stop
    nats_stop
    smtp_stop
}

# ---------------------------------------------------------------------------- CLI

_stack_main() {
    local cmd="${1:-}" dir="${2:-$REPO_ROOT/.state}"
    [[ -d "$dir" ]] || die "no state directory $dir"
    stack_configure "$dir" "$dir/logs" "${ACASA_NATS_PORT:-4222}" \
        "${ACASA_NATS_HTTP_PORT:-8222}" "${ACASA_PG_PORT:-54320}" "${ACASA_SMTP_PORT:-2525}"
    local pids_file="$STACK_STATE_DIR/run.pids" pid name
    case "$cmd" in
        status)
            while read -r pid name; do
                echo "acasa $name: running (pid $pid)"
            done < <(stack_running_pids "$pids_file")
            if pg_running; then
                echo "postgres: running ($STACK_PG_DATA)"
            else
                echo "postgres: stopped"
            fi
            pid="$(stack_nats_pid_from_file)"
            if [[ -n "$pid" ]]; then
                echo "nats-server: running (pid $pid)"
            else
                echo "nats-server: stopped"
            fi
            pid="$(stack_smtp_pid_from_file)"
            if [[ -n "$pid" ]]; then
                echo "aiosmtpd: running (pid $pid; mailbox $STACK_SMTP_MAILDIR)"
            else
                echo "aiosmtpd: stopped"
            fi
            ;;
        stop)
            while read -r pid name; do
                [[ -n "$pid" ]] || continue
                info "stopping acasa $name (pid $pid)"
                stop_pid "$pid" "acasa $name" 20
            done < <(stack_running_pids "$pids_file")
            rm -f "$pids_file"
            stack_stop
            ;;
        mail) smtp_list ;;
        *) die "usage: scripts/stack.sh status|stop|mail [STATE_DIR]" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    _stack_main "$@"
fi
