#!/usr/bin/env bash
# scripts/e2e.sh — the end-to-end tests (tests/e2e/): a Python grpcio client, generated from
# proto/ at test time, and a nats-py partner client, against the real `acasa` binary on
# throwaway servers.
#
#   scripts/e2e.sh [-k PATTERN]...       (arguments go to each tests/e2e/test_*.py; a file
#                                          none of whose tests match is skipped)
#
# Steps: installs the pinned scripts/requirements-e2e.txt into .tools/venv when missing,
# builds target/debug/acasa, generates Python stubs from proto/ into target/e2e/gen (fresh
# each run), starts nats-server (JetStream) and Postgres 15 on free ports with data in a temp
# directory, runs `acasa migrate`, starts the watcher that keeps the partners' NATS users
# up to date, starts `acasa serve S` and `acasa project S` for every service S that
# `acasa services` lists (each on a free port, passed to the tests as E2E_<S>_ADDR; every
# process gets ACASA_REGISTRY_URL=http://$E2E_REGISTRY_ADDR, where the placements and grants
# workers open the registry's sealed person data, and the placements deadline worker sweeps
# every 200 ms), waits for the gRPC ports, then runs every tests/e2e/test_*.py and prints one
# closing line for all, "e2e: N passed, M failed". A new service's e2e file is picked up by
# its name.
# Everything it started is stopped on exit, success or failure (Ctrl-C too), and the temp
# directory is removed; the servers' logs are copied to target/e2e/logs first. Never
# touches .state/.
#
# Settings (environment):
#   SKIP_BUILD=1        use the existing target/debug/acasa without running cargo build
#   KEEP_E2E_DIR=1      keep the temp directory (data and logs) afterwards
#   E2E_TIMEOUT=SECS    upper bound for each test file's run (default 600)
#   ACASA_PLACEMENTS_SWEEP_MS=MS  how often the placements deadline worker sweeps (default
#                       200 here, 60000 in the binary)
set -euo pipefail
# shellcheck source=scripts/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
cd "$REPO_ROOT"

ACASA_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/acasa"
REQUIREMENTS_E2E="$REPO_ROOT/scripts/requirements-e2e.txt"
REQUIREMENTS_TOOLS="$REPO_ROOT/scripts/requirements-tools.txt"
PY="$VENV_DIR/bin/python"
OUT_DIR="$REPO_ROOT/target/e2e"
GEN_DIR="$OUT_DIR/gen"
LOGS_OUT="$OUT_DIR/logs"
E2E_DIR=""
CHILD_PIDS=()
CHILD_NAMES=()
STOPPING=""

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    [[ -n "$STOPPING" ]] && return
    STOPPING=1
    trap '' INT TERM
    local i
    for ((i = ${#CHILD_PIDS[@]} - 1; i >= 0; i--)); do
        pid_alive "${CHILD_PIDS[i]}" && kill -TERM "${CHILD_PIDS[i]}" 2>/dev/null || true
    done
    for ((i = ${#CHILD_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${CHILD_PIDS[i]}" "${CHILD_NAMES[i]}" 20
    done
    if [[ -n "$E2E_DIR" ]]; then
        stack_stop
        rm -rf "$LOGS_OUT"
        mkdir -p "$LOGS_OUT"
        cp -r "$E2E_DIR/logs/." "$LOGS_OUT/" 2>/dev/null || true
        if ((rc != 0)); then
            local log
            for log in "$LOGS_OUT"/*.log; do
                case "$(basename "$log")" in nats*.log | postgres.log | migrate.log) continue ;; esac
                if [[ -s "$log" ]]; then
                    echo "---- last lines of $(basename "$log") ----" >&2
                    tail -n 25 "$log" >&2 || true
                fi
            done
            warn "e2e failed; logs in ${LOGS_OUT#"$REPO_ROOT"/}"
        fi
        if [[ "${KEEP_E2E_DIR:-}" == 1 ]]; then
            info "kept $E2E_DIR"
        else
            rm -rf "$E2E_DIR"
            [[ "${STACK_PG_SOCKET_DIR:-}" == /tmp/acasa-pg-* ]] && rm -rf "$STACK_PG_SOCKET_DIR"
        fi
    fi
    exit "$rc"
}

# ensure_e2e_deps — pip-installs scripts/requirements-e2e.txt into .tools/venv unless the
# stamp says this exact file is installed and the modules import.
ensure_e2e_deps() {
    local stamp="$VENV_DIR/.requirements-e2e.sha256" want have=""
    want="$(cat "$REQUIREMENTS_E2E" "$REQUIREMENTS_TOOLS" | sha256sum | cut -d' ' -f1)"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ "$have" == "$want" ]] &&
        "$PY" -c 'import grpc, grpc_tools.protoc, grpc_status, google.rpc.error_details_pb2, nats' 2>/dev/null; then
        return 0
    fi
    info "installing pinned e2e packages into $VENV_DIR (scripts/requirements-e2e.txt)"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        --requirement "$REQUIREMENTS_E2E" --constraint "$REQUIREMENTS_TOOLS" ||
        die "pip install of scripts/requirements-e2e.txt failed"
    echo "$want" >"$stamp"
}

# generate_stubs — Python messages and gRPC stubs for every .proto under proto/.
generate_stubs() {
    rm -rf "$GEN_DIR"
    mkdir -p "$GEN_DIR"
    local protos=()
    mapfile -t protos < <(find proto -name '*.proto' | sort)
    ((${#protos[@]})) || die "no .proto files under proto/"
    info "generating Python stubs into ${GEN_DIR#"$REPO_ROOT"/} (${#protos[@]} files)"
    "$PY" -m grpc_tools.protoc -Iproto --python_out="$GEN_DIR" --grpc_python_out="$GEN_DIR" \
        "${protos[@]}" || die "grpc_tools.protoc failed"
}

# tests_selected FILE [ARGS...] — how many tests of FILE the -k patterns in ARGS select.
tests_selected() {
    local file="$1"
    shift
    PYTHONPATH="$GEN_DIR:$REPO_ROOT/tests/e2e" PYTHONDONTWRITEBYTECODE=1 "$PY" - "$file" "$@" <<'PY'
import importlib.util, sys, unittest
path, args = sys.argv[1], sys.argv[2:]
patterns = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-k"]
patterns += [a[2:] for a in args if a.startswith("-k") and len(a) > 2]
spec = importlib.util.spec_from_file_location("e2e_selection", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
loader = unittest.TestLoader()
if patterns:
    loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in patterns]
print(loader.loadTestsFromModule(module).countTestCases())
PY
}

# start_child NAME LOGFILE CMD... — runs CMD in its own session, output to LOGFILE.
start_child() {
    local name="$1" log="$2"
    shift 2
    setsid "$@" >>"$log" 2>&1 </dev/null &
    CHILD_PIDS+=("$!")
    CHILD_NAMES+=("$name")
}

main() {
    "$REPO_ROOT/scripts/tools.sh" venv postgres
    ensure_e2e_deps

    if [[ "${SKIP_BUILD:-}" != 1 ]]; then
        info "cargo build -p acasa --bin acasa"
        cargo build -p acasa --bin acasa
    fi
    [[ -x "$ACASA_BIN" ]] || die "$ACASA_BIN not found; did cargo build succeed?"
    local services=()
    mapfile -t services < <("$ACASA_BIN" services | cut -f1)
    ((${#services[@]})) || die "$ACASA_BIN services lists no service"

    generate_stubs

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    E2E_DIR="$(mktemp -d "${TMPDIR:-/tmp}/acasa-e2e.XXXXXX")"
    # As root, the postgres OS user must be able to enter it.
    chmod 755 "$E2E_DIR"
    stack_configure "$E2E_DIR" "$E2E_DIR/logs" "$(free_port)" "$(free_port)" "$(free_port)"
    stack_preflight
    stack_check_ports

    ensure_secret "$E2E_DIR/secrets/jwt.key"
    ensure_secret "$E2E_DIR/secrets/hash.key"
    ensure_secret "$E2E_DIR/secrets/master.key"

    nats_start
    pg_start
    pg_ensure_db acasa

    export ACASA_NATS_URL="$STACK_NATS_URL"
    export ACASA_DATABASE_URL
    ACASA_DATABASE_URL="$(stack_database_url acasa)"
    export ACASA_STATE_DIR="$E2E_DIR"
    export ACASA_JWT_SECRET_FILE="$E2E_DIR/secrets/jwt.key"
    export ACASA_HASH_KEY_FILE="$E2E_DIR/secrets/hash.key"
    export ACASA_MASTER_KEY_FILE="$E2E_DIR/secrets/master.key"
    export ACASA_LOG="${ACASA_LOG:-info}"
    export NO_COLOR=1
    # Tokens here are signed with this run's fresh HS256 key, the placements and grants
    # workers' too.
    unset ACASA_JWT_PUBLIC_KEY_FILE ACASA_JWT_ISSUER ACASA_JWT_AUDIENCE ACASA_SERVICE_TOKEN_FILE
    local logs="$E2E_DIR/logs"

    info "acasa migrate"
    "$ACASA_BIN" migrate >>"$logs/migrate.log" 2>&1 || {
        tail -n 30 "$logs/migrate.log" >&2 || true
        die "acasa migrate failed"
    }

    # Partners log in to NATS with their own users, regenerated every 2 s from the registered
    # partners (stopped by stack_stop).
    info "starting the partner NATS users watcher"
    nats_users_watch_start "$ACASA_BIN"

    local svc port var i serve_pids=() serve_ports=()
    # Every service's port first, so that each process can be told where the others are.
    for svc in "${services[@]}"; do
        port="$(free_port)"
        while [[ " ${serve_ports[*]} " == *" $port "* ]]; do port="$(free_port)"; done
        serve_ports+=("$port")
        var="E2E_$(tr '[:lower:]-' '[:upper:]_' <<<"$svc")_ADDR"
        export "$var=127.0.0.1:$port"
    done
    # The placements and grants workers open the registry's sealed person data through the
    # registry's PersonDataService (each signing its own `service` token with the HS256 key
    # above, subject "placements" or "grants").
    if [[ -n "${E2E_REGISTRY_ADDR:-}" ]]; then
        export ACASA_REGISTRY_URL="http://$E2E_REGISTRY_ADDR"
    fi
    # The placements deadline worker sweeps often, so that months fall due within the test.
    export ACASA_PLACEMENTS_SWEEP_MS="${ACASA_PLACEMENTS_SWEEP_MS:-200}"
    for i in "${!services[@]}"; do
        svc="${services[i]}"
        port="${serve_ports[i]}"
        info "starting acasa serve $svc on 127.0.0.1:$port and acasa project $svc"
        ACASA_GRPC_ADDR="127.0.0.1:$port" start_child "acasa serve $svc" "$logs/$svc.log" \
            "$ACASA_BIN" serve "$svc"
        serve_pids+=("${CHILD_PIDS[-1]}")
        start_child "acasa project $svc" "$logs/$svc-project.log" "$ACASA_BIN" project "$svc"
    done
    for i in "${!services[@]}"; do
        if ! wait_for_port 127.0.0.1 "${serve_ports[i]}" 60 "${serve_pids[i]}"; then
            die "acasa serve ${services[i]} did not open 127.0.0.1:${serve_ports[i]}"
        fi
    done
    for ((i = 0; i < ${#CHILD_PIDS[@]}; i++)); do
        pid_alive "${CHILD_PIDS[i]}" || die "${CHILD_NAMES[i]} exited"
    done
    # The registry's tests read the older name too.
    export E2E_GRPC_ADDR="${E2E_REGISTRY_ADDR:-}"

    local started=${#CHILD_PIDS[@]} name file out line rc passed=0 failed=0 ran=0
    local failed_files=() files=()
    mapfile -t files < <(find "$REPO_ROOT/tests/e2e" -maxdepth 1 -name 'test_*.py' | sort)
    for file in "${files[@]}"; do
        name="$(basename "$file" .py)"
        if (($#)) && [[ "$(tests_selected "$file" "$@")" == 0 ]]; then
            info "skipping tests/e2e/$name.py: no test matches $*"
            continue
        fi
        out="$logs/$name.out"
        info "running tests/e2e/$name.py"
        # In the background and waited for, so that a signal to this script stops it at once
        # (the EXIT trap stops the test first, then the services and servers). Its output
        # also goes to a file, for the closing line.
        E2E_NATS_URL="nats://127.0.0.1:$STACK_NATS_PORT" \
            E2E_ACASA_BIN="$ACASA_BIN" PYTHONPATH="$GEN_DIR" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
            timeout --kill-after=10 "${E2E_TIMEOUT:-600}" \
            "$PY" "$file" "$@" </dev/null > >(tee "$out") &
        CHILD_PIDS+=("$!")
        CHILD_NAMES+=("the e2e test $name")
        rc=0
        wait "$!" || rc=$?
        ran=$((ran + 1))
        # tee may still be writing the last line.
        line=""
        local deadline=$((SECONDS + 5))
        while [[ -z "$line" ]] && ((SECONDS < deadline)); do
            line="$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1 || true)"
            [[ -n "$line" ]] || sleep 0.1
        done
        if [[ "$line" =~ ^e2e:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
            passed=$((passed + BASH_REMATCH[1]))
            failed=$((failed + BASH_REMATCH[2]))
        else
            failed=$((failed + 1)) # it did not get as far as counting
        fi
        ((rc == 0)) || failed_files+=("$name.py (status $rc)")
    done
    ((ran > 0)) || die "no e2e test matches $*"
    echo "e2e: $passed passed, $failed failed"
    ((${#failed_files[@]} == 0)) || die "the e2e test failed: ${failed_files[*]}"
    # The services must have survived the tests.
    for ((i = 0; i < started; i++)); do
        pid_alive "${CHILD_PIDS[i]}" || die "${CHILD_NAMES[i]} exited during the test"
    done
}

main "$@"
