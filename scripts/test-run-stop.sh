#!/usr/bin/env bash
# scripts/test-run-stop.sh — checks that `make run` (scripts/run.sh) stops everything it
# started when SIGTERM reaches its whole process group, as `timeout` and some supervisors
# send it (make passes the signal on to run.sh, which so gets it twice): make and run.sh
# must exit, and their nats-server, Postgres and SMTP server (aiosmtpd) must be gone.
#
# Starts `make run` in a session of its own with the existing target/debug/acasa
# (SKIP_BUILD=1), free ports and a temp state directory (never .state/), waits until it
# reports that everything runs, sends SIGTERM to its process group, and fails unless
# run.sh, nats-server, Postgres and aiosmtpd have all stopped within STOP_TIMEOUT seconds
# (default 40). Whatever is left behind is stopped before it exits. Called by `make test`; takes
# about 15 s.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ACASA_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/acasa"
[[ -x "$ACASA_BIN" ]] || die "$ACASA_BIN not found (cargo build --bin acasa first)"
STOP_TIMEOUT="${STOP_TIMEOUT:-40}"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/acasa-run-stop.XXXXXX")"
# As root, Postgres runs as the postgres user, which must reach the state directory.
chmod 755 "$DIR"
STATE="$DIR/state"
OUT="$DIR/run.out"
RUN_PID=""
NATS_PORT="$(free_port)"
NATS_HTTP_PORT="$(free_port)"
PG_PORT="$(free_port)"
SMTP_PORT="$(free_port)"

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    # Whatever is left of its process group (run.sh outlives make when it hangs).
    [[ -n "$RUN_PID" ]] && kill -KILL -- "-$RUN_PID" 2>/dev/null || true
    if [[ -d "$STATE" ]]; then
        ACASA_NATS_PORT="$NATS_PORT" ACASA_NATS_HTTP_PORT="$NATS_HTTP_PORT" ACASA_PG_PORT="$PG_PORT" \
            ACASA_SMTP_PORT="$SMTP_PORT" "$REPO_ROOT/scripts/stack.sh" stop "$STATE" >/dev/null 2>&1 || true
    fi
    if ((rc != 0)) && [[ -f "$OUT" ]]; then
        echo "---- make run output ----" >&2
        tail -n 40 "$OUT" >&2 || true
    fi
    rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every service on a free port of its own.
declare -a addrs=()
while IFS=$'\t' read -r svc _; do
    addrs+=("ACASA_$(tr '[:lower:]-' '[:upper:]_' <<<"$svc")_GRPC_ADDR=127.0.0.1:$(free_port)")
done < <("$ACASA_BIN" services)

info "run-stop: starting make run in its own process group (state in $DIR)"
env SKIP_BUILD=1 ACASA_RUN_STATE_DIR="$STATE" ACASA_SERVICES= \
    ACASA_NATS_PORT="$NATS_PORT" ACASA_NATS_HTTP_PORT="$NATS_HTTP_PORT" ACASA_PG_PORT="$PG_PORT" \
    ACASA_SMTP_PORT="$SMTP_PORT" "${addrs[@]}" setsid make -C "$REPO_ROOT" run >"$OUT" 2>&1 </dev/null &
RUN_PID=$!

deadline=$((SECONDS + 90))
until grep -q 'is running' "$OUT" 2>/dev/null; do
    pid_alive "$RUN_PID" || die "make run exited before everything ran"
    ((SECONDS < deadline)) || die "make run did not report running within 90 s"
    sleep 0.2
done
nats_pid="$(cat "$STATE/nats.pid")"
pg_pid="$(head -n 1 "$STATE/pg/postmaster.pid")"
smtp_pid="$(cat "$STATE/smtp.pid")"
pid_alive "$nats_pid" || die "no nats-server (pid file: $nats_pid)"
pid_alive "$pg_pid" || die "no postgres (postmaster.pid: $pg_pid)"
pid_alive "$smtp_pid" || die "no aiosmtpd (pid file: $smtp_pid)"

info "run-stop: SIGTERM to process group $RUN_PID"
started=$SECONDS
kill -TERM -- "-$RUN_PID"
deadline=$((SECONDS + STOP_TIMEOUT))
# in_group — true while a process of make's session (make, run.sh, its helpers) runs.
in_group() { [[ -n "$(ps -o pid= -s "$RUN_PID" 2>/dev/null)" ]]; }
while in_group || pid_alive "$nats_pid" || pid_alive "$pg_pid" || pid_alive "$smtp_pid"; do
    if ((SECONDS >= deadline)); then
        left=()
        in_group && left+=("$(ps -o pid=,args= -s "$RUN_PID" | tr -s ' \n' ' ')")
        pid_alive "$nats_pid" && left+=("nats-server (pid $nats_pid)")
        pid_alive "$pg_pid" && left+=("postgres (pid $pg_pid)")
        pid_alive "$smtp_pid" && left+=("aiosmtpd (pid $smtp_pid)")
        die "run-stop: still running ${STOP_TIMEOUT}s after SIGTERM to the process group: ${left[*]}"
    fi
    sleep 0.2
done
grep -q '^==> stopped' "$OUT" || die "run-stop: make run ended without reporting that it stopped"
info "run-stop: make, run.sh, nats-server, postgres and aiosmtpd stopped $((SECONDS - started))s after SIGTERM to the group"
