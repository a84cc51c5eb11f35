# Pinned Debian packages for the provisioning scripts; source it, then call fetch_deb.

# fetch_deb CACHE NAME VERSION FILE SHA256: CACHE/FILE, downloaded once with apt-get and checked
# against SHA256 (exits on a mismatch).
fetch_deb() {
  local cache=$1 name=$2 version=$3 file=$4 sha=$5
  if ! echo "$sha  $cache/$file" | sha256sum --check --status 2>/dev/null; then
    echo "downloading $name=$version" >&2
    mkdir -p "$cache"
    (cd "$cache" && { apt-get download -qq "$name=$version" 2>/dev/null ||
      { apt-get update -qq && apt-get download -qq "$name=$version"; }; })
  fi
  echo "$sha  $cache/$file" | sha256sum --check --status ||
    { echo "$file: sha256 mismatch" >&2; exit 1; }
}
