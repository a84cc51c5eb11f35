# Pinned downloads for the provisioning scripts; source it, then call verify or fetch_deb.

# verify FILE SHA256: whether FILE exists and has that sha256.
verify() { echo "$2  $1" | sha256sum --check --status 2>/dev/null; }

# fetch_deb CACHE NAME VERSION FILE SHA256: CACHE/FILE, downloaded once with apt-get and checked
# against SHA256 (exits on a mismatch).
fetch_deb() {
  local cache=$1 name=$2 version=$3 file=$4 sha=$5
  if ! verify "$cache/$file" "$sha"; then
    echo "downloading $name=$version" >&2
    mkdir -p "$cache"
    (cd "$cache" && { apt-get download -qq "$name=$version" 2>/dev/null ||
      { apt-get update -qq && apt-get download -qq "$name=$version"; }; })
  fi
  verify "$cache/$file" "$sha" || { echo "$file: sha256 mismatch" >&2; exit 1; }
}
