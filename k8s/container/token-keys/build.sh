#!/usr/bin/env bash
# Build the token-keys plugin jar (see src/org/pdseg/serving/SecretTokenKeys.java).
#   k8s/container/token-keys/build.sh MODEL_SERVER_JAR OUTPUT_JAR
# MODEL_SERVER_JAR: TorchServe's frontend, ts/frontend/model-server.jar of the pinned torchserve.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server_jar=$1
output=$2
command -v javac >/dev/null || { echo "javac (a JDK 17) is needed to build $output" >&2; exit 1; }
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
javac --release 17 -Xlint:all,-processing -Werror -cp "$server_jar" -d "$classes" \
    "$here/src/org/pdseg/serving/SecretTokenKeys.java"
cp -r "$here/META-INF" "$classes/"
mkdir -p "$(dirname "$output")"
jar --create --file "$output.partial" -C "$classes" .
mv "$output.partial" "$output"
