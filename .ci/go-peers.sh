# The Go peers the interop tests drive (tests/it/oras.rs, go_zstd.rs,
# referrers.rs): oras, crane (and tests/oracle's oracle-go and
# tests/oracle-registry's oracle-registry, see go_peers_oracle),
# built with `go install` at pinned versions into a directory that outlives
# runs, then put first on PATH. Sourced by .ci/run; a developer can source
# it too, before `cargo test --test it oras`:
#
#   source .ci/go-peers.sh
#
# EPOCH_STORE_TOOLS (default ~/.cache/epoch-store/tools) is the cache; the
# binaries go to its bin/. `go install` runs only for a tool that is missing
# or was built for another version (a stamp file beside it names the module
# and version), so a version bump below reinstalls and a cached run costs
# nothing. Needs Go and a Go module proxy; fails (returns 1) otherwise.

go_peers_tools=${EPOCH_STORE_TOOLS:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/epoch-store/tools}
go_peers_bin=$go_peers_tools/bin

# go_peer NAME MODULE/PATH VERSION: installs NAME from MODULE/PATH@VERSION
# into $go_peers_bin unless the stamp says it is there at that version.
go_peer() {
  local name=$1 pkg=$2 version=$3
  local want="$pkg@$version" stamp="$go_peers_bin/.$name.version" tmp
  if [ -x "$go_peers_bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "== error: go is not installed: cannot install $name $version (the oras/crane interop tests will fail)" >&2
    return 1
  fi
  echo "== installing $name $version: go install $want"
  mkdir -p "$go_peers_bin" || return 1
  # Built into a temp dir and renamed into place, so a run killed midway or
  # a second run at the same time never leaves a half binary under the name.
  tmp=$(mktemp -d "$go_peers_bin/.install.XXXXXX") || return 1
  if ! GOBIN=$tmp CGO_ENABLED=0 go install "$want"; then
    rm -rf "$tmp"
    echo "== error: go install $want failed" >&2
    return 1
  fi
  mv -f "$tmp/$name" "$go_peers_bin/$name" && rm -rf "$tmp" || return 1
  echo "$want" > "$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
}

# The repo's own Go oracle (tests/oracle: Go libraries the proxy serves,
# pinned by its go.mod and go.sum), rebuilt every run: the build cache makes
# an unchanged one cost about a second.
# tests/oracle-registry (go-containerregistry's registry with the referrers
# API) is a module of its own: its dependencies cannot share tests/oracle's
# pins (see its main.go).
go_peers_oracle() {
  go_peers_build oracle oracle-go "the Go zstd interop tests" &&
    go_peers_build oracle-registry oracle-registry "the referrers interop tests"
}

# go_peers_build DIR NAME WHAT: builds tests/DIR as $go_peers_bin/NAME.
go_peers_build() {
  local dir=$1 name=$2 what=$3 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/$dir" && pwd) || return 1
  mkdir -p "$go_peers_bin" || return 1
  if ! (cd "$src" && CGO_ENABLED=0 go build -o "$go_peers_bin/.$name.tmp" .); then
    echo "== error: go build of tests/$dir failed ($what will fail)" >&2
    return 1
  fi
  mv -f "$go_peers_bin/.$name.tmp" "$go_peers_bin/$name"
}

go_peers_install() {
  go_peer oras oras.land/oras/cmd/oras v1.3.6 &&
    go_peer crane github.com/google/go-containerregistry/cmd/crane v0.22.1 &&
    go_peers_oracle
}

if go_peers_install; then
  case ":$PATH:" in
    *":$go_peers_bin:"*) ;;
    *) export PATH="$go_peers_bin:$PATH" ;;
  esac
  echo "== go peers: oras $("$go_peers_bin/oras" version | awk '/^Version:/ {print $2}'), crane $("$go_peers_bin/crane" version), oracle-go and oracle-registry in $go_peers_bin"
else
  # `return` when sourced; `exit` when run as a script.
  return 1 2>/dev/null || exit 1
fi
