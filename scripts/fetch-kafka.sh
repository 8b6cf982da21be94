#!/usr/bin/env bash
# Fetch Apache Kafka's jars from Maven Central into the Moldau cache, for Kafka's own CLI tools,
# compatibility tests and benchmarks (see src/moldau/testing/kafka_dist.py), and write
# bin/kafka-*.sh launchers beside them (Kafka's release archive, with its bin/, is not fetched).
# Idempotent: only the launchers are rewritten when the jars are there.
#
#   scripts/fetch-kafka.sh    | sed -e    # -> ${MOLDAU_KAFKA_HOME:-~/.cache/moldau/kafka-<version>}/{libs,bin}
#   MOLDAU_KAFKA_HOME=/opt/kafka scripts/fetch-kafka.sh
#
# Needs Java 17+, Maven and python3. Prints the libs directory on stdout, where bin/ is on stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$root/tools/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
[ -n "$version" ] || { echo "fetch-kafka: no <kafka.version> in $pom" >&2; exit 1; }
home="${MOLDAU_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/moldau/kafka-$version}"
libs="$home/libs"
# The marker names the pom's content too: adding a dependency to it fetches again.
marker="$libs/.complete-$version-$(sha256sum "$pom" | cut -c1-12)"

launchers() {
    bin="$(python3 "$root/src/moldau/testing/kafka_tools.py" write-launchers "$home")"
    echo "fetch-kafka: Kafka's tools are in $bin, e.g. $bin/kafka-topics.sh --bootstrap-server localhost:9092 --list" >&2
}

if [ -f "$marker" ]; then
    launchers
    echo "$libs"
    exit 0
fi

command -v mvn >/dev/null || { echo "fetch-kafka: mvn not found (install Maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch-kafka: java not found (install Java 17+)" >&2; exit 1; }

# Copy into a fresh directory and rename it into place, so a cut-short run never looks complete.
mkdir -p "$home"
staging="$(mktemp -d "$home/.libs.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "fetch-kafka: resolving Apache Kafka $version from Maven Central" >&2
# Maven (3.8, Debian) writes ANSI colour codes even in batch mode: strip them for CI logs.
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -Dkafka.libs="$staging" 2>&1 \
    | sed -e $'s/\x1b\\[[0-9;]*m//g' >&2
ls "$staging"/kafka_2.13-"$version".jar "$staging"/kafka-tools-"$version".jar >/dev/null
touch "$staging/$(basename "$marker")"
rm -rf "$libs"
mv "$staging" "$libs"
trap - EXIT
launchers
echo "$libs"
