#!/usr/bin/env bash
# The Java part of bench/run.sh: packages bindings/java (mvn -DskipTests package, the library
# inside), then runs bench/java/BenchJava.java with the jar and its dependencies (JNA, OkHttp)
# on the class path. Prints R lines. Needs BENCH_BASE and BENCH_TOKEN (bench/lib.sh's nginx),
# a JDK 11+ and Maven. Extra arguments go before the source file (e.g. a taskset prefix goes
# in front of this script instead).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/bench/work/java
mkdir -p "$work"
mvn=(mvn -B -q --no-transfer-progress -f "$root/bindings/java/pom.xml")
"${mvn[@]}" -DskipTests package >&2
"${mvn[@]}" dependency:build-classpath -Dmdep.includeScope=compile -Dmdep.outputFile="$work/classpath" >&2
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
cp=$root/bindings/java/target/cloudauth-$version.jar:$(<"$work/classpath")
java -Xmx512m -cp "$cp" "$root/bench/java/BenchJava.java"
# The cached token once more on a JDK with the FFM API final (22+), where the binding uses it.
jdk22=${BENCH_JAVA22_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
if [[ -x $jdk22/bin/java ]]; then
  BENCH_JAVA_PARTS=token "$jdk22/bin/java" -Xmx512m --enable-native-access=ALL-UNNAMED -cp "$cp" "$root/bench/java/BenchJava.java"
fi
