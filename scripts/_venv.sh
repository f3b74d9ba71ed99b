# Shared by scripts/demo and scripts/test (sourced, not run): find Python 3.11+, create or reuse
# .venv, and pip-install a requirements file only when its hash differs from the stamp left by the
# last successful install.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_is_py311() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

find_python() {
    local cand
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 && _is_py311 "$cand"; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [ -x "$PY" ] && _is_py311 "$PY" && "$PY" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    local py
    py="$(find_python)" || die "Python 3.11 or newer is needed: install python3.11 (tried python3.11 and python3)"
    if [ -e "$VENV" ]; then
        log "replacing the broken or outdated virtual environment at $VENV"
        rm -rf "$VENV"
    fi
    log "creating a virtual environment at .venv with $("$py" --version 2>&1)"
    "$py" -m venv "$VENV" || die "could not create $VENV (on Debian/Ubuntu: apt-get install python3.11-venv)"
}

# _req_hash FILE: hash of FILE, requirements.txt (which the dev file includes) and the Python version.
_req_hash() {
    (cat "$ROOT/$1" "$ROOT/requirements.txt"; "$PY" --version) | sha256sum | cut -d' ' -f1
}

# ensure_requirements FILE: pip install -r FILE unless .venv/.stamp-FILE holds its current hash.
ensure_requirements() {
    local file="$1" hash
    hash="$(_req_hash "$file")"
    if [ -f "$VENV/.stamp-$file" ] && [ "$(cat "$VENV/.stamp-$file")" = "$hash" ]; then
        log "$file already installed in .venv"
        return 0
    fi
    log "installing $file into .venv (first run: a few minutes)"
    "$PY" -m pip install -r "$ROOT/$file" || die "pip install -r $file failed (see above)"
    echo "$hash" >"$VENV/.stamp-$file"
    # the dev file includes the runtime one, so the runtime one is current too
    _req_hash requirements.txt >"$VENV/.stamp-requirements.txt"
}
