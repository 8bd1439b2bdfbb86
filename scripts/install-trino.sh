#!/usr/bin/env bash
# Installs the pinned Trino server (the local stand-in for Athena engine v3) from Maven Central:
# only bin/, lib/ and the Hive and Iceberg plugins are kept (about 470 of 896 MB: every plugin
# directory is loaded at start-up, so fewer plugins also start faster).
# Idempotent; prints the install directory. TRINO_HOME overrides where it goes.
set -euo pipefail
version=476
home="${TRINO_HOME:-$HOME/.cache/socrata-athena-pipeline/trino-server-$version}"
if [ -f "$home/.installed" ]; then echo "$home"; exit 0; fi
command -v mvn >/dev/null || { echo "install-trino: Maven (mvn) is needed to fetch io.trino:trino-server:$version from Maven Central" >&2; exit 1; }
mvn -q -B dependency:get -Dartifact="io.trino:trino-server:$version:tar.gz" -Dtransitive=false >&2
tarball="$HOME/.m2/repository/io/trino/trino-server/$version/trino-server-$version.tar.gz"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Whole, then pruned: the tarball hard-links jars shared between plugins to their first copy.
tar -xzf "$tarball" -C "$tmp"
src="$tmp/trino-server-$version"
mkdir -p "$(dirname "$home")"
rm -rf "$home"
mkdir -p "$home/plugin"
mv "$src/bin" "$src/lib" "$src/NOTICE" "$home/"
mv "$src/plugin/hive" "$src/plugin/iceberg" "$home/plugin/"
touch "$home/.installed"
echo "$home"
