#!/usr/bin/env bash
# scripts/run.sh — `make run`: the whole platform on this machine, in the foreground.
#
# Installs missing tools, builds target/debug/acasa, then starts nats-server,
# Postgres 15 and an SMTP server (aiosmtpd: it keeps every message in .state/mail/Maildir
# and relays none) under .state/ (kept between runs), applies migrations, starts the watcher that
# gives every registered partner its NATS user (scripts/stack.sh nats_users_watch_start), and
# starts `acasa serve <svc>` and `acasa project <svc>` for every service in $ACASA_SERVICES
# (every process told where the registry started here is, ACASA_REGISTRY_URL: the placements
# and grants workers open sealed person data through it).
# Ctrl-C (or SIGTERM) stops everything it started: services, then Postgres, NATS and SMTP.
#
# Settings (environment):
#   ACASA_SERVICES          services to run (default: every service `acasa services` lists)
#   ACASA_NATS_PORT         nats client port          (default 4222)
#   ACASA_NATS_HTTP_PORT    nats monitoring port      (default 8222)
#   ACASA_PG_PORT           postgres port             (default 54320)
#   ACASA_SMTP_PORT         SMTP port                 (default 2525; the services get
#                           ACASA_SMTP_HOST=127.0.0.1 and this port, plain SMTP, no login)
#   ACASA_<SVC>_GRPC_ADDR   a service's gRPC address  (default 127.0.0.1:<its port>)
#   ACASA_LOG, ACASA_LOG_FORMAT, OTEL_*               passed through to the binary
#   SKIP_BUILD=1            use the existing binary without running cargo build
#   ACASA_RUN_STATE_DIR     where data, secrets and logs go (default .state; scripts/test-run-stop.sh
#                           points it at a temp directory)
set -euo pipefail
# shellcheck source=scripts/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
cd "$REPO_ROOT"

SERVICES=()
STATE_DIR="${ACASA_RUN_STATE_DIR:-$REPO_ROOT/.state}"
LOG_DIR="$STATE_DIR/logs"
PIDS_FILE="$STATE_DIR/run.pids"
ACASA_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/acasa"

# default_grpc_port SERVICE — from the binary's table of services (`acasa services`).
default_grpc_port() {
    local port
    port="$("$ACASA_BIN" services | awk -F'\t' -v s="$1" '$1 == s { print $2 }')"
    [[ -n "$port" ]] || die "unknown service '$1' (known: $("$ACASA_BIN" services | cut -f1 | tr '\n' ' '))"
    echo "$port"
}

# grpc_addr SERVICE — ACASA_<SVC>_GRPC_ADDR or 127.0.0.1:<default port>.
grpc_addr() {
    local var port
    var="ACASA_$(tr '[:lower:]-' '[:upper:]_' <<<"$1")_GRPC_ADDR"
    port="$(default_grpc_port "$1")"
    echo "${!var:-127.0.0.1:$port}"
}

# client_addr SERVICE — where a client on this machine reaches it: its gRPC address with a
# wildcard host (0.0.0.0, [::], none) replaced by 127.0.0.1.
client_addr() {
    local addr host
    addr="$(grpc_addr "$1")"
    host="${addr%:*}"
    [[ "$host" == 0.0.0.0 || "$host" == "[::]" || -z "$host" ]] && host=127.0.0.1
    echo "$host:${addr##*:}"
}

CHILD_PIDS=()
CHILD_NAMES=()
CHILD_LOGS=()
STOPPING=""

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    [[ -n "$STOPPING" ]] && return
    STOPPING=1
    # A second Ctrl-C must not leave half the processes behind.
    trap '' INT TERM
    echo >&2
    info "stopping (services, then postgres, nats and smtp)…"
    local i
    for ((i = ${#CHILD_PIDS[@]} - 1; i >= 0; i--)); do
        if pid_alive "${CHILD_PIDS[i]}"; then
            info "stopping ${CHILD_NAMES[i]} (pid ${CHILD_PIDS[i]})"
            kill -TERM "${CHILD_PIDS[i]}" 2>/dev/null || true
        fi
    done
    for ((i = ${#CHILD_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${CHILD_PIDS[i]}" "${CHILD_NAMES[i]}" 20
    done
    stack_stop
    rm -f "$PIDS_FILE"
    info "stopped; data kept in $STATE_DIR (make clean-state removes it)"
    exit "$rc"
}

# start_child NAME LOGFILE CMD... — runs CMD in its own session, output to LOGFILE.
start_child() {
    local name="$1" log="$2"
    shift 2
    echo "---- $(date -u +%FT%TZ) $name ----" >>"$log"
    setsid "$@" >>"$log" 2>&1 </dev/null &
    CHILD_PIDS+=("$!")
    CHILD_NAMES+=("$name")
    CHILD_LOGS+=("$log")
    # For `scripts/stack.sh stop`, should this script die without cleaning up.
    echo "$! $name" >>"$PIDS_FILE"
}

main() {
    # Each server gets its own address below; an inherited one would clash.
    unset ACASA_GRPC_ADDR
    "$REPO_ROOT/scripts/tools.sh" venv postgres

    if [[ "${SKIP_BUILD:-}" != 1 ]]; then
        info "cargo build --bin acasa"
        cargo build --bin acasa
    fi
    [[ -x "$ACASA_BIN" ]] || die "$ACASA_BIN not found; did cargo build succeed?"
    if [[ -n "${ACASA_SERVICES:-}" ]]; then
        read -r -a SERVICES <<<"$ACASA_SERVICES"
    else
        mapfile -t SERVICES < <("$ACASA_BIN" services | cut -f1)
    fi
    ((${#SERVICES[@]})) || die "no services to run (ACASA_SERVICES, or \`acasa services\`)"
    local svc
    for svc in "${SERVICES[@]}"; do default_grpc_port "$svc" >/dev/null; done

    stack_configure "$STATE_DIR" "$LOG_DIR" "${ACASA_NATS_PORT:-4222}" \
        "${ACASA_NATS_HTTP_PORT:-8222}" "${ACASA_PG_PORT:-54320}" "${ACASA_SMTP_PORT:-2525}"

    # Every check runs before anything starts, so a problem leaves nothing behind.
    if stack_leftovers "$PIDS_FILE"; then
        scripts/stack.sh status "$STATE_DIR" >&2 || true
        die "servers of an earlier 'make run' are still running; stop them with: scripts/stack.sh stop"
    fi
    rm -f "$PIDS_FILE"
    stack_preflight
    stack_check_ports
    require_free_port "$STACK_SMTP_PORT" "aiosmtpd (SMTP)" "ACASA_SMTP_PORT=<port>"
    local addr port
    for svc in "${SERVICES[@]}"; do
        addr="$(grpc_addr "$svc")"
        require_free_port "${addr##*:}" "acasa serve $svc" \
            "ACASA_$(tr '[:lower:]-' '[:upper:]_' <<<"$svc")_GRPC_ADDR=127.0.0.1:<port>"
    done

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ensure_secret "$STATE_DIR/secrets/jwt.key"
    ensure_secret "$STATE_DIR/secrets/hash.key"
    # Wraps the registry's per-person data keys: losing it loses all personal data.
    ensure_secret "$STATE_DIR/secrets/master.key"

    nats_start
    pg_start
    pg_ensure_db acasa
    smtp_start

    export ACASA_NATS_URL="$STACK_NATS_URL"
    # Mail goes to the local SMTP server, in plain SMTP: settings meant for a real relay stay out.
    export ACASA_SMTP_HOST=127.0.0.1
    export ACASA_SMTP_PORT="$STACK_SMTP_PORT"
    unset ACASA_SMTP_TLS ACASA_SMTP_CA_FILE ACASA_SMTP_USERNAME ACASA_SMTP_PASSWORD_FILE
    export ACASA_DATABASE_URL
    ACASA_DATABASE_URL="$(stack_database_url acasa)"
    export ACASA_STATE_DIR="$STATE_DIR"
    export ACASA_JWT_SECRET_FILE="$STATE_DIR/secrets/jwt.key"
    export ACASA_HASH_KEY_FILE="$STATE_DIR/secrets/hash.key"
    export ACASA_MASTER_KEY_FILE="$STATE_DIR/secrets/master.key"
    export ACASA_LOG="${ACASA_LOG:-info}"
    # The placements and grants workers open the registry's sealed person data through the
    # registry's PersonDataService: the registry started here (each its `service` token it
    # signs itself with the jwt.key above).
    if has_service registry; then
        export ACASA_REGISTRY_URL
        ACASA_REGISTRY_URL="http://$(client_addr registry)"
    fi
    # Their output goes to log files: no ANSI colour codes there (tracing honours NO_COLOR).
    export NO_COLOR="${NO_COLOR:-1}"

    info "acasa migrate"
    echo "---- $(date -u +%FT%TZ) migrate ----" >>"$LOG_DIR/migrate.log"
    "$ACASA_BIN" migrate >>"$LOG_DIR/migrate.log" 2>&1 || {
        tail -n 30 "$LOG_DIR/migrate.log" >&2 || true
        die "acasa migrate failed (log: $LOG_DIR/migrate.log)"
    }

    # Every registered partner gets a NATS account allowed its own feed only, within
    # seconds of its registration (.state/nats-users.conf, rewritten and reloaded).
    info "starting the partner NATS users watcher (log: $STACK_NATS_USERS_LOG)"
    echo "---- $(date -u +%FT%TZ) nats users watcher ----" >>"$STACK_NATS_USERS_LOG"
    nats_users_watch_start "$ACASA_BIN"

    for svc in "${SERVICES[@]}"; do
        addr="$(grpc_addr "$svc")"
        info "starting acasa serve $svc on $addr (log: $LOG_DIR/$svc.log)"
        ACASA_GRPC_ADDR="$addr" start_child "serve $svc" "$LOG_DIR/$svc.log" \
            "$ACASA_BIN" serve "$svc"
        info "starting acasa project $svc (log: $LOG_DIR/$svc-project.log)"
        start_child "project $svc" "$LOG_DIR/$svc-project.log" "$ACASA_BIN" project "$svc"
    done

    local i
    for ((i = 0; i < ${#CHILD_PIDS[@]}; i++)); do
        [[ "${CHILD_NAMES[i]}" == serve\ * ]] || continue
        svc="${CHILD_NAMES[i]#serve }"
        addr="$(grpc_addr "$svc")"
        local client
        client="$(client_addr "$svc")"
        if ! wait_for_port "${client%:*}" "${client##*:}" 60 "${CHILD_PIDS[i]}"; then
            tail -n 30 "$LOG_DIR/$svc.log" >&2 || true
            die "acasa serve $svc did not open $addr (log: $LOG_DIR/$svc.log)"
        fi
    done

    print_summary

    # Wait in the foreground until Ctrl-C, or until one of the processes exits.
    local rc=0
    wait -n "${CHILD_PIDS[@]}" || rc=$?
    for ((i = 0; i < ${#CHILD_PIDS[@]}; i++)); do
        if ! pid_alive "${CHILD_PIDS[i]}"; then
            warn "${CHILD_NAMES[i]} exited (status $rc; log: ${CHILD_LOGS[i]}); stopping the rest"
        fi
    done
    exit 1
}

print_summary() {
    local svc
    cat <<EOF

Acasă is running.  Ctrl-C (or kill $$) stops everything; data stays in .state/.

  NATS        nats://127.0.0.1:$STACK_NATS_PORT   (user acasa, password in .state/secrets/nats-service.password;
              monitoring http://127.0.0.1:$STACK_NATS_HTTP_PORT)
  Postgres    $ACASA_DATABASE_URL
  SMTP        127.0.0.1:$STACK_SMTP_PORT   (aiosmtpd: keeps every message, relays none; the services
              get ACASA_SMTP_HOST/PORT)
EOF
    for svc in "${SERVICES[@]}"; do
        printf '  %-11s %s   (gRPC, reflection on)\n' "$svc" "$(grpc_addr "$svc")"
    done
    local maildir="${STACK_SMTP_MAILDIR#"$REPO_ROOT"/}" mail_cmd="scripts/stack.sh mail"
    [[ "$STATE_DIR" == "$REPO_ROOT/.state" ]] || mail_cmd+=" $STATE_DIR"
    echo
    echo "Mail sent to the SMTP server lands in $maildir, one file per message:"
    printf '  %-40s # %s\n' "ls -t $maildir/new | head" "newest first; read one with less" \
        "$mail_cmd" "every message: date, recipient, decoded subject"
    echo
    echo "Logs (follow with: tail -f .state/logs/*.log):"
    echo "  .state/logs/nats.log  .state/logs/nats-users.log  .state/logs/postgres.log  .state/logs/smtp.log"
    echo "  .state/logs/migrate.log"
    for svc in "${SERVICES[@]}"; do
        echo "  .state/logs/$svc.log  .state/logs/$svc-project.log"
    done
    cat <<EOF

A dev token (roles: admin caseworker viewer finance partner host editor; a partner's token
names its partner, --partner <partner id>, a host institution's its host, --host <host id>):
  TOKEN=\$(target/debug/acasa token --role caseworker)

Partner feeds over NATS (stream ACASA_PARTNER_FEED): each registered partner gets a NATS account
and user within ~2 s, able to consume its own feed only. Its credentials, inbox prefix and consumer:
  target/debug/acasa partner-credentials <partner id>
(JSON: user, password, inbox_prefix, stream, subject, consumer; see README.md, "Partner feeds
over NATS").

Example calls (grpcurl is not installed by this project; any gRPC client works):
EOF
    local addr
    if has_service demo; then
        addr="$(client_addr demo)"
        cat <<EOF
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"r1","name":"visitors"}' \\
    $addr acasa.demo.v1.CounterService/CreateCounter
  # it answers the counter's id and a stream position; read the counter back with them:
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"counter_id":"<counter id>","min_position":<position>}' \\
    $addr acasa.demo.v1.CounterService/GetCounter
EOF
    fi
    if has_service registry; then
        addr="$(client_addr registry)"
        cat <<EOF
  # register a person (caseworker or admin token), then read them back the same way:
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"p1","country_of_residence":"IT","categories":["CATEGORY_MIGRANT_ABROAD"],
         "details":{"given_name":"Ana","family_name":"Rusu","idnp":"2002001234563",
                    "birth_date":{"year":1990,"month":5,"day":17}}}' \\
    $addr acasa.registry.v1.RegistryService/RegisterPerson
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"person_id":"<person id>","min_position":<position>}' \\
    $addr acasa.registry.v1.RegistryService/GetPerson
EOF
    fi
    if has_service placements; then
        addr="$(client_addr placements)"
        cat <<EOF
  # placements: a host institution and its graduate offer (caseworker), then the offer's
  # candidates: graduates with programme consent in the registry, best fit first, with why
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"h1","idno":"1003600123459","details":{"kind":"HOST_KIND_PUBLIC_EMPLOYER",
         "name":"Apele Moldovei","district":"Cahul","contact":{"name":"HR","email":"hr@apele.md"},
         "hosts":["Hydrotechnics"]}}' \\
    $addr acasa.placements.v1.PlacementService/RegisterHost
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"o1","host_id":"<host id>","terms":{"kind":"PLACEMENT_KIND_GRADUATE_PLACEMENT",
         "subject":"Hydrotechnics","places":2,"term_months":6,
         "allowance":{"amount_minor":600000,"currency":"MDL"},
         "travel_cap":{"amount_minor":200000,"currency":"MDL"},
         "start_from":{"year":2027,"month":1,"day":1},"start_until":{"year":2027,"month":3,"day":1},
         "languages":["ro","en"]}}' \\
    $addr acasa.placements.v1.PlacementService/PublishOffer
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" -d '{"offer_id":"<offer id>"}' \\
    $addr acasa.placements.v1.PlacementService/ListCandidates
  # the host confirms each month's presence with its own token (--role host --host <host id>),
  # finance pays it (--role finance); README.md shows a placement end to end
EOF
    fi
    if has_service grants; then
        addr="$(client_addr grants)"
        cat <<EOF
  # grants: the committee opens a call (an admin token: --role admin), then a registry person
  # with programme consent applies (caseworker; min_registry_position: the consent's position)
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"c1","terms":{"title":"Start-up grants 2027",
         "budget":{"amount_minor":1000000,"currency":"EUR"},
         "cap":{"amount_minor":200000,"currency":"EUR"},
         "opens_on":{"year":2027,"month":3,"day":1},"closes_on":{"year":2027,"month":4,"day":30},
         "training_places":25,"eligibility":{"age":{"min_age":18,"max_age":45},"rural_only":true,
           "categories":["CATEGORY_WOMAN_ENTREPRENEUR","CATEGORY_YOUTH_ENTREPRENEUR"]},
         "evaluation":{"criteria":[{"key":"viability","title":"Viability","weight":60},
           {"key":"innovation","title":"Innovation","weight":40}],"scale_max":10,"min_evaluators":2}}}' \\
    $addr acasa.grants.v1.GrantService/OpenCall
  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" \\
    -d '{"request_id":"a1","call_id":"<call id>","person_id":"<person id>",
         "min_registry_position":<position>}' \\
    $addr acasa.grants.v1.GrantService/Apply
EOF
    fi
    echo
}

# has_service SERVICE — true when SERVICE is one of $ACASA_SERVICES.
has_service() {
    local svc
    for svc in "${SERVICES[@]}"; do
        [[ "$svc" == "$1" ]] && return 0
    done
    return 1
}

main "$@"
