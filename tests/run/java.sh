#!/usr/bin/env bash
# The Java binding (bindings/java), tested as users get it: `mvn -B verify` builds the jar with
# target/release/libcloudauth.so inside (linux-x86-64/, JNA's resource path) and runs the JUnit 5
# suite through Surefire against real servers it starts on 127.0.0.1 (the stand-in, the hostile
# server, a private nginx); then the OkHttp interceptor's tests once more on OkHttp 5 (the jar
# as built against 4.x), the session tests on a JDK 22+ when there is one (FFM token path), examples/java/OcrDemo.java against the stand-in with the jar and JNA
# on the class path, and the loader's CLOUDAUTH_LIBRARY override and its failure message.
#
# Needs: a JDK 11+ (javac), Maven, nginx, python3, and target/release/libcloudauth.so (make
# build). Installs the first three with apt when missing; Maven fetches the Java dependencies
# from Maven Central into ~/.m2 on first use.
# Extra arguments go to Maven, e.g. tests/run/java.sh -Dtest=SessionTest
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
# shellcheck source=tests/run/lib.sh
source tests/run/lib.sh
require_library
unset CLOUDAUTH_LIBRARY

# A fresh machine: the apt packages Java needs (as scripts/ensure-deps.sh does for make test).
need=()
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
[[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if ((${#need[@]})); then
  echo "run_java: installing ${need[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
for tool in javac mvn; do
  command -v "$tool" >/dev/null || { echo "run_java: $tool not found after installing" >&2; exit 1; }
done

mvn=(mvn -B --no-transfer-progress -f bindings/java/pom.xml)
echo "run_java: mvn verify (JUnit 5 through Surefire; OkHttp 4)"
"${mvn[@]}" verify "$@"

echo "run_java: the OkHttp interceptor's tests on OkHttp 5"
"${mvn[@]}" -Pokhttp5 surefire:test -Dtest=OkHttpInterceptorTest

# On a JDK of 22 or newer the token calls go through FFM (java.lang.foreign): the session and
# concurrency tests once more on such a JDK when the machine has one (Temurin 25 here), and the
# streamed-body tests (JNA callbacks on that JDK).
jdk22=${JAVA22_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
if [[ -x $jdk22/bin/java ]]; then
  echo "run_java: SessionTest, ConcurrencyTest and StreamTest on $("$jdk22/bin/java" -version 2>&1 | head -1) (FFM token path)"
  "${mvn[@]}" surefire:test -Djvm="$jdk22/bin/java" -Dtest='SessionTest,ConcurrencyTest,StreamTest' \
    -DargLine="-Xmx256m -XX:+UseSerialGC --enable-native-access=ALL-UNNAMED"
else
  echo "run_java: no JDK 22+ at $jdk22 (set JAVA22_HOME): the FFM token path is not tested in this run"
fi

jar=bindings/java/target/cloudauth-$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1).jar
[[ -f $jar ]] || { echo "run_java: $jar was not built" >&2; exit 1; }
listing=$(jar tf "$jar")
grep -qx 'linux-x86-64/libcloudauth.so' <<<"$listing" ||
  { echo "run_java: $jar lacks linux-x86-64/libcloudauth.so" >&2; exit 1; }
jna_version=$(sed -n 's:.*<jna.version>\(.*\)</jna.version>.*:\1:p' bindings/java/pom.xml)
jna=${M2_REPO:-$HOME/.m2/repository}/net/java/dev/jna/jna/$jna_version/jna-$jna_version.jar
[[ -f $jna ]] || { echo "run_java: no JNA jar in ~/.m2 ($jna)" >&2; exit 1; }
cp=$jar:$jna

echo "run_java: examples/java/OcrDemo.java (the library from the jar)"
out=$(tests/standin/with_server.sh java -cp "$cp" examples/java/OcrDemo.java)
echo "$out"
grep -q '^recognized text: Hello from the cloudauth stand-in' <<<"$out" ||
  { echo "run_java: the example did not print the recognized text" >&2; exit 1; }

echo "run_java: CLOUDAUTH_LIBRARY names the library; a wrong one says where it looked"
CLOUDAUTH_LIBRARY=$root/$LIB tests/standin/with_server.sh java -cp "$cp" examples/java/OcrDemo.java >/dev/null
set +e
err=$(CLOUDAUTH_LIBRARY=/nonexistent/libcloudauth.so STANDIN_URL=http://127.0.0.1:9 java -cp "$cp" examples/java/OcrDemo.java 2>&1)
rc=$?
set -e
if ((rc == 0)) || ! grep -q 'CLOUDAUTH_LIBRARY=/nonexistent/libcloudauth.so' <<<"$err"; then
  echo "run_java: a wrong CLOUDAUTH_LIBRARY did not fail with its path (exit $rc): $err" >&2
  exit 1
fi
echo "run_java: all passed"
