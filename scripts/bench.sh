#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: runs `acasa bench` against throwaway servers.
#
#   scripts/bench.sh [BENCH ARGS...]        e.g. scripts/bench.sh --json
#
# Builds the release binary, starts a fresh nats-server (JetStream, sync_interval: always)
# and Postgres 15 on free ports with data in a temp directory, runs `acasa migrate`, then
# `acasa serve registry` and `acasa project registry`, `acasa serve referrals` and
# `acasa project referrals`, `acasa serve placements` and `acasa project placements`,
# `acasa serve grants` and `acasa project grants`, `acasa serve content` and `acasa project content`
# as their own processes, and `target/release/acasa bench ARGS` against all of it
# (`scripts/bench.sh --referrals-only`: only the raw JetStream ceiling and the referrals service
# with its partner feed; `--placements-only`: the raw ceiling and the placements service;
# `--grants-only`: the raw ceiling and the grants service; `--content-only`: the raw ceiling and
# the content service). The content service runs with its public per-client rate raised
# (ACASA_CONTENT_PUBLIC_RATE and _BURST 1000000): the bench's readers all come from 127.0.0.1.
# The placements and grants workers (which project the registry's log, opening every
# registration through the registry) start only when the bench reaches their part, so they do
# not load the measurements before it. Everything, temp data included, is removed on exit.
# Never touches .state/. Set KEEP_BENCH_DIR=1 to keep the temp directory (logs) afterwards.
set -euo pipefail
# shellcheck source=scripts/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
cd "$REPO_ROOT"

ACASA_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/acasa"
BENCH_DIR=""
REGISTRY_PID=""
REGISTRY_WORKER_PID=""
REFERRALS_PID=""
REFERRALS_WORKER_PID=""
PLACEMENTS_PID=""
PLACEMENTS_WORKER_PID=""
GRANTS_PID=""
GRANTS_WORKER_PID=""
CONTENT_PID=""
CONTENT_WORKER_PID=""
SMTP_PID=""

cleanup() {
    local rc=$?
    trap '' INT TERM
    [[ -n "$REGISTRY_PID" ]] && stop_pid "$REGISTRY_PID" "registry service"
    [[ -n "$REGISTRY_WORKER_PID" ]] && stop_pid "$REGISTRY_WORKER_PID" "registry projection worker"
    [[ -n "$REFERRALS_PID" ]] && stop_pid "$REFERRALS_PID" "referrals service"
    [[ -n "$REFERRALS_WORKER_PID" ]] && stop_pid "$REFERRALS_WORKER_PID" "referrals worker"
    [[ -n "$PLACEMENTS_PID" ]] && stop_pid "$PLACEMENTS_PID" "placements service"
    [[ -n "$PLACEMENTS_WORKER_PID" ]] && stop_pid "$PLACEMENTS_WORKER_PID" "placements worker"
    [[ -n "$GRANTS_PID" ]] && stop_pid "$GRANTS_PID" "grants service"
    [[ -n "$GRANTS_WORKER_PID" ]] && stop_pid "$GRANTS_WORKER_PID" "grants worker"
    [[ -n "$CONTENT_PID" ]] && stop_pid "$CONTENT_PID" "content service"
    [[ -n "$CONTENT_WORKER_PID" ]] && stop_pid "$CONTENT_WORKER_PID" "content worker"
    [[ -n "$SMTP_PID" ]] && stop_pid "$SMTP_PID" "aiosmtpd"
    if [[ -n "$BENCH_DIR" ]]; then
        stack_stop
        if [[ "${KEEP_BENCH_DIR:-}" == 1 ]]; then
            info "kept $BENCH_DIR"
        else
            rm -rf "$BENCH_DIR"
            [[ "${STACK_PG_SOCKET_DIR:-}" == /tmp/acasa-pg-* ]] && rm -rf "$STACK_PG_SOCKET_DIR"
        fi
    fi
    exit "$rc"
}

main() {
    "$REPO_ROOT/scripts/tools.sh" venv postgres

    if [[ "${SKIP_BUILD:-}" != 1 ]]; then
        info "cargo build --release --bin acasa"
        cargo build --release --bin acasa
    fi
    [[ -x "$ACASA_BIN" ]] || die "$ACASA_BIN not found; did cargo build --release succeed?"

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/acasa-bench.XXXXXX")"
    # As root, the postgres OS user must be able to enter it.
    chmod 755 "$BENCH_DIR"
    stack_configure "$BENCH_DIR" "$BENCH_DIR/logs" "$(free_port)" "$(free_port)" "$(free_port)"
    stack_preflight
    stack_check_ports

    ensure_secret "$BENCH_DIR/secrets/jwt.key"
    ensure_secret "$BENCH_DIR/secrets/hash.key"
    ensure_secret "$BENCH_DIR/secrets/master.key"

    nats_start
    pg_start
    pg_ensure_db acasa

    export ACASA_NATS_URL="$STACK_NATS_URL"
    export ACASA_DATABASE_URL
    ACASA_DATABASE_URL="$(stack_database_url acasa)"
    export ACASA_STATE_DIR="$BENCH_DIR"
    export ACASA_JWT_SECRET_FILE="$BENCH_DIR/secrets/jwt.key"
    export ACASA_HASH_KEY_FILE="$BENCH_DIR/secrets/hash.key"
    export ACASA_MASTER_KEY_FILE="$BENCH_DIR/secrets/master.key"
    export ACASA_LOG="${ACASA_LOG:-warn}"
    unset ACASA_GRPC_ADDR

    info "acasa migrate"
    "$ACASA_BIN" migrate >>"$BENCH_DIR/logs/migrate.log" 2>&1 || {
        tail -n 30 "$BENCH_DIR/logs/migrate.log" >&2 || true
        die "acasa migrate failed"
    }

    # The registry runs as its own processes, measured over gRPC (and for RSS).
    local registry_port
    registry_port="$(free_port)"
    info "acasa serve registry (127.0.0.1:$registry_port) and acasa project registry"
    ACASA_GRPC_ADDR="127.0.0.1:$registry_port" "$ACASA_BIN" serve registry >>"$BENCH_DIR/logs/registry.log" 2>&1 &
    REGISTRY_PID=$!
    "$ACASA_BIN" project registry >>"$BENCH_DIR/logs/registry-project.log" 2>&1 &
    REGISTRY_WORKER_PID=$!
    wait_for_port 127.0.0.1 "$registry_port" 60 "$REGISTRY_PID" || {
        tail -n 30 "$BENCH_DIR/logs/registry.log" >&2 || true
        die "the registry service did not start"
    }

    # The referrals service and its worker (read model, consent projection,
    # partner-feed publisher, SLA deadlines), likewise.
    local referrals_port
    referrals_port="$(free_port)"
    info "acasa serve referrals (127.0.0.1:$referrals_port) and acasa project referrals"
    ACASA_GRPC_ADDR="127.0.0.1:$referrals_port" "$ACASA_BIN" serve referrals >>"$BENCH_DIR/logs/referrals.log" 2>&1 &
    REFERRALS_PID=$!
    "$ACASA_BIN" project referrals >>"$BENCH_DIR/logs/referrals-project.log" 2>&1 &
    REFERRALS_WORKER_PID=$!
    wait_for_port 127.0.0.1 "$referrals_port" 60 "$REFERRALS_PID" || {
        tail -n 30 "$BENCH_DIR/logs/referrals.log" >&2 || true
        die "the referrals service did not start"
    }

    # The placements service, and its worker (read model, its projection of the registry's
    # people — sealed fields opened by the registry's PersonDataService with a service token it
    # signs itself with ACASA_JWT_SECRET_FILE — and the deadline worker, sweeping every 500 ms
    # instead of every minute). The worker waits for the gate file the bench creates when it
    # reaches the placements part; `exec` keeps its pid.
    local placements_port placements_gate
    placements_port="$(free_port)"
    placements_gate="$BENCH_DIR/placements-worker.go"
    info "acasa serve placements (127.0.0.1:$placements_port) and acasa project placements (from the placements part)"
    ACASA_GRPC_ADDR="127.0.0.1:$placements_port" "$ACASA_BIN" serve placements >>"$BENCH_DIR/logs/placements.log" 2>&1 &
    PLACEMENTS_PID=$!
    (
        while [[ ! -e "$placements_gate" ]]; do sleep 0.2; done
        ACASA_REGISTRY_URL="http://127.0.0.1:$registry_port" ACASA_PLACEMENTS_SWEEP_MS=500 \
            exec "$ACASA_BIN" project placements
    ) >>"$BENCH_DIR/logs/placements-project.log" 2>&1 &
    PLACEMENTS_WORKER_PID=$!
    wait_for_port 127.0.0.1 "$placements_port" 60 "$PLACEMENTS_PID" || {
        tail -n 30 "$BENCH_DIR/logs/placements.log" >&2 || true
        die "the placements service did not start"
    }

    # The grants service, and its worker (read models, its projection of the registry's people —
    # opened through the registry's PersonDataService like the placements worker's — and of the
    # referral system's outcomes), the worker gated likewise until the grants part.
    local grants_port grants_gate
    grants_port="$(free_port)"
    grants_gate="$BENCH_DIR/grants-worker.go"
    info "acasa serve grants (127.0.0.1:$grants_port) and acasa project grants (from the grants part)"
    ACASA_GRPC_ADDR="127.0.0.1:$grants_port" "$ACASA_BIN" serve grants >>"$BENCH_DIR/logs/grants.log" 2>&1 &
    GRANTS_PID=$!
    (
        while [[ ! -e "$grants_gate" ]]; do sleep 0.2; done
        ACASA_REGISTRY_URL="http://127.0.0.1:$registry_port" exec "$ACASA_BIN" project grants
    ) >>"$BENCH_DIR/logs/grants-project.log" 2>&1 &
    GRANTS_WORKER_PID=$!
    wait_for_port 127.0.0.1 "$grants_port" 60 "$GRANTS_PID" || {
        tail -n 30 "$BENCH_DIR/logs/grants.log" >&2 || true
        die "the grants service did not start"
    }

    # The content service (public reads without login, rate-limited per client address: raised
    # here, the bench's readers all being one address) and its worker (read models, the deadline
    # worker, its view of the registry — languages opened by the registry's PersonDataService —
    # and the campaign sender, to an aiosmtpd keeping what it receives in $BENCH_DIR/mail). The
    # worker waits for the gate file the bench creates when it reaches the content part.
    local content_port content_gate smtp_port
    content_port="$(free_port)"
    content_gate="$BENCH_DIR/content-worker.go"
    smtp_port="$(free_port)"
    mkdir -p "$BENCH_DIR/mail"
    info "aiosmtpd on 127.0.0.1:$smtp_port (mailbox $BENCH_DIR/mail/Maildir)"
    "$SMTP_PYTHON" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox \
        "$BENCH_DIR/mail/Maildir" >>"$BENCH_DIR/logs/smtp.log" 2>&1 &
    SMTP_PID=$!
    wait_for_port 127.0.0.1 "$smtp_port" 30 "$SMTP_PID" || die "aiosmtpd did not start"
    info "acasa serve content (127.0.0.1:$content_port) and acasa project content (from the content part)"
    ACASA_GRPC_ADDR="127.0.0.1:$content_port" ACASA_CONTENT_PUBLIC_RATE=1000000 ACASA_CONTENT_PUBLIC_BURST=1000000 \
        "$ACASA_BIN" serve content >>"$BENCH_DIR/logs/content.log" 2>&1 &
    CONTENT_PID=$!
    (
        while [[ ! -e "$content_gate" ]]; do sleep 0.2; done
        ACASA_REGISTRY_URL="http://127.0.0.1:$registry_port" ACASA_SMTP_PORT="$smtp_port" \
            ACASA_CONTENT_SEND_MS=100 exec "$ACASA_BIN" project content
    ) >>"$BENCH_DIR/logs/content-project.log" 2>&1 &
    CONTENT_WORKER_PID=$!
    wait_for_port 127.0.0.1 "$content_port" 60 "$CONTENT_PID" || {
        tail -n 30 "$BENCH_DIR/logs/content.log" >&2 || true
        die "the content service did not start"
    }

    info "acasa bench $*"
    # Not exec: the EXIT trap must still tear the servers down.
    "$ACASA_BIN" bench --registry-addr "127.0.0.1:$registry_port" \
        --registry-service-pid "$REGISTRY_PID" --registry-worker-pid "$REGISTRY_WORKER_PID" \
        --referrals-addr "127.0.0.1:$referrals_port" \
        --referrals-service-pid "$REFERRALS_PID" --referrals-worker-pid "$REFERRALS_WORKER_PID" \
        --placements-addr "127.0.0.1:$placements_port" \
        --placements-service-pid "$PLACEMENTS_PID" --placements-worker-pid "$PLACEMENTS_WORKER_PID" \
        --placements-worker-gate "$placements_gate" \
        --grants-addr "127.0.0.1:$grants_port" \
        --grants-service-pid "$GRANTS_PID" --grants-worker-pid "$GRANTS_WORKER_PID" \
        --grants-worker-gate "$grants_gate" \
        --content-addr "127.0.0.1:$content_port" \
        --content-service-pid "$CONTENT_PID" --content-worker-pid "$CONTENT_WORKER_PID" \
        --content-worker-gate "$content_gate" --content-maildir "$BENCH_DIR/mail/Maildir" "$@"
}

main "$@"
