#!/usr/bin/env bash
# The client binaries (msh, mezctl, mezd) link rpc's client library only:
# none of them may link the catalog's, storage's or config's libraries
# (SQLite, libpq, libcurl, yaml-cpp) nor mezrecd's modules (mez_rpc,
# mez_catalog, mez_store, mez_cluster), which only mezrecd needs. Checked
# twice: ldd on the built binaries (what they load), and their link lines
# in the build files (the linker drops unused shared libraries with
# --as-needed, so ldd alone misses a dependency not used yet). mezrecd,
# which does link them, is checked too and must be caught both ways, so
# that a check that sees nothing fails.
#   tests/client_links_test.sh BUILD_DIR MEZRECD CLIENT_BINARY...
set -euo pipefail
build=$1
server=$2
shift 2
loaded='libsqlite3|libpq\.|libcurl|libyaml-cpp'
linked="$loaded|libmez_rpc\\.a|libmez_catalog\\.a|libmez_store\\.a|libmez_cluster\\.a"

# The forbidden libraries `binary` loads, one per line.
loaded_by() {
  ldd "$1" | awk '{print $1}' | grep -E "$loaded" || true
}

# The forbidden libraries on the link line of `binary`, one per line.
linked_by() {
  local rel=${1#"$build"/} line=""
  if [[ -f "$build/build.ninja" ]]; then
    line=$(awk -v t="build $rel:" 'index($0, t) == 1 {found = 1; next}
      found && /^  LINK_LIBRARIES = / {print; exit}
      found && /^build / {exit}' "$build/build.ninja")
  else
    local name
    name=$(basename "$1")
    line=$(cat "$build"/cmd/CMakeFiles/"$name".dir/link.txt 2>/dev/null || true)
  fi
  if [[ -z "$line" ]]; then
    echo "client_links_test: no link line for $1 in $build" >&2
    echo "missing-link-line"
    return
  fi
  tr ' ' '\n' <<<"$line" | grep -E "$linked" | xargs -r -n1 basename || true
}

status=0
if [[ -z "$(loaded_by "$server")" ]]; then
  echo "client_links_test: ldd shows none of ($loaded) in $server, which" \
    "links them: the check cannot see them" >&2
  status=1
fi
server_linked=$(linked_by "$server")
if [[ -z "$server_linked" || "$server_linked" == missing-link-line ]]; then
  echo "client_links_test: the link line of $server shows none of" \
    "($linked): the check cannot see them" >&2
  status=1
fi
for bin in "$@"; do
  libs="$(loaded_by "$bin") $(linked_by "$bin")"
  if [[ -n "${libs// /}" ]]; then
    echo "client_links_test: $bin links" $libs "(mezrecd's libraries);" \
      "link mez_rpc_client, not mez_rpc" >&2
    status=1
  else
    echo "client_links_test: $(basename "$bin") links none of them"
  fi
done
exit $status
