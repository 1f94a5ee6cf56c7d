#!/usr/bin/env bash
# Installs the checker's Python packages into target/manifests-venv (or the user site when
# venv is unavailable) and checks the deployment manifests. Extra arguments go to the
# checker (-v prints every passing check).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/manifests"
venv="$root/target/manifests-venv"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >/dev/null 2>&1; then
    py="$venv/bin/python"
    stamp="$venv/.requirements"
    if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
        "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
        cp "$here/requirements.txt" "$stamp"
    fi
else
    echo "python3 -m venv is unavailable; installing with pip --user" >&2
    rm -rf "$venv"
    py="$python"
    "$py" -m pip install --quiet --disable-pip-version-check --user -r "$here/requirements.txt"
fi

exec "$py" "$here/check_manifests.py" "$@"
