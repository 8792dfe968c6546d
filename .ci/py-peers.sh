# The Python peer the registry interop tests drive (tests/it/registry_interop.rs):
# oras-py (the `oras` package), pinned with what it pulls in by
# tests/oras-py/requirements.txt, in a venv at $EPOCH_STORE_TOOLS/oras-py
# (default ~/.cache/epoch-store/tools/oras-py). Sourced by .ci/run; a
# developer sources it too, before `cargo test --test it registry_interop`.
# pip runs only when the venv is missing or was made from another
# requirements file (a stamp in the venv holds its sha256).

py_peers_tools=${EPOCH_STORE_TOOLS:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/epoch-store/tools}

py_peers_install() {
  local req venv stamp want
  req=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/oras-py" && pwd)/requirements.txt || return 1
  venv=$py_peers_tools/oras-py
  stamp=$venv/.requirements.sha256
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "== installing oras-py: python3 -m venv + pip install -r tests/oras-py/requirements.txt"
  # Debian's python3 has no venv module without python3-venv.
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  # The stamp is written last: a run killed midway leaves none, and the
  # next run makes the venv again (a venv cannot be moved into place).
  rm -rf "$venv" && mkdir -p "$py_peers_tools" || return 1
  if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"; then
    echo "== error: installing oras-py failed (the oras-py interop test will fail)" >&2
    return 1
  fi
  echo "$want" > "$stamp"
}

if py_peers_install; then
  echo "== python peers: oras-py $("$py_peers_tools/oras-py/bin/python" -c 'import oras.version; print(oras.version.__version__)') in $py_peers_tools/oras-py"
else
  return 1 2>/dev/null || exit 1
fi
