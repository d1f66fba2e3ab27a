#!/usr/bin/env bash
# scripts/check-deploy.sh — static checks for what cannot run on a machine without Docker
# or Kubernetes, plus the project's shell scripts. Called by `make test` and `make lint`.
#
#   yamllint             docker-compose.yml, deploy/, .yamllint.yaml (config: .yamllint.yaml)
#   kubernetes-validate  deploy/k8s/*.yaml against the bundled Kubernetes schemas, --strict
#   nats-server -t       deploy/nats/*.conf parse as real nats-server configs
#   jwt.key mounts       only manifests of gRPC servers (`args: ["serve", …]`) mount the
#                        JWT key; workers and the migration job never verify tokens
#   hadolint             Dockerfile
#   shell scripts        scripts/*.sh and .ci/run, by shellcheck
#   docker-compose       `config -q` on docker-compose.yml, only when docker-compose is on
#                        PATH (Debian's docker-compose 1.29 needs no engine for it)
#
# All tools come from the pinned venv (.tools/venv, scripts/tools.sh venv); nothing is
# installed system-wide and no network is needed once the venv exists.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

"$REPO_ROOT/scripts/tools.sh" venv

BIN="$VENV_DIR/bin"
failed=()

# check NAME CMD... — runs one check, remembers failures, keeps going.
check() {
    local name="$1"
    shift
    if "$@"; then
        printf '  ok    %s\n' "$name"
    else
        printf '  FAIL  %s\n' "$name"
        failed+=("$name")
    fi
}

k8s_files=(deploy/k8s/*.yaml)
[[ -e "${k8s_files[0]}" ]] || die "no manifests in deploy/k8s/"

check_nats_confs() {
    local conf out ok=0
    for conf in deploy/nats/*.conf; do
        # cluster.conf takes its server name from the pod's environment.
        if ! out="$(POD_NAME=nats-0 "$BIN/nats-server" -c "$conf" -t 2>&1)"; then
            echo "$out" >&2
            ok=1
        fi
    done
    return "$ok"
}

# Only the gRPC servers verify bearer tokens: a manifest that mounts jwt.key must run
# `acasa serve`.
check_jwt_mounts() {
    local f ok=0
    for f in "${k8s_files[@]}"; do
        if grep -q 'key: jwt.key' "$f" && ! grep -q 'args: \["serve",' "$f"; then
            echo "        $f mounts jwt.key but serves no gRPC API" >&2
            ok=1
        fi
    done
    return "$ok"
}

check_compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose -f docker-compose.yml config -q
    else
        echo "        (docker-compose not on PATH: skipped; apt-get install docker-compose to run it)"
    fi
}

echo "static checks (deploy files and scripts):"
check "yamllint" "$BIN/yamllint" --strict -c .yamllint.yaml docker-compose.yml deploy .yamllint.yaml
check "kubernetes-validate" "$BIN/kubernetes-validate" --strict --quiet "${k8s_files[@]}"
check "nats-server -t deploy/nats/*.conf" check_nats_confs
check "jwt.key only in gRPC servers" check_jwt_mounts
check "hadolint Dockerfile" "$BIN/hadolint" Dockerfile
check "shellcheck scripts" "$BIN/shellcheck" -x -P scripts scripts/*.sh .ci/run
check "docker-compose config" check_compose

if ((${#failed[@]})); then
    die "static checks failed: ${failed[*]}"
fi
echo "static checks passed"
