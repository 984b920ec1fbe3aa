#!/usr/bin/env bash
# The .NET binding (bindings/dotnet), tested as users get it: CloudAuth.dll is compiled on its
# own with mcs, then the test program and examples/dotnet/OcrDemo.cs are compiled against that
# dll (not its sources), all into target/dotnet/. Both run under mono with the library from
# target/release, each against its own local stand-in (tests/standin/with_server.sh).
#
# Needs: target/release/libcloudauth.so (make build), mono-mcs, mono-runtime,
# libmono-system-net-http4.0-cil, python3 (for the stand-in).
# Extra arguments go to the test program: a case-insensitive filter on test names, e.g.
#   tests/run/dotnet.sh Handler
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/target/dotnet
lib=$root/target/release/libcloudauth.so

for tool in mcs mono; do
  command -v "$tool" >/dev/null || { echo "run_dotnet: $tool not found (apt-get install mono-mcs mono-runtime)" >&2; exit 1; }
done
[[ -f $lib ]] || { echo "run_dotnet: $lib not found; build it first (make build)" >&2; exit 1; }

mkdir -p "$out"
mcs_flags=(-nologo -warnaserror+ -debug -r:System.Net.Http.dll)

echo "run_dotnet: mcs bindings/dotnet/src -> target/dotnet/CloudAuth.dll"
mcs "${mcs_flags[@]}" -target:library -out:"$out/CloudAuth.dll" -doc:"$out/CloudAuth.xml" -nowarn:1591 \
  bindings/dotnet/src/*.cs
echo "run_dotnet: mcs bindings/dotnet/tests -> target/dotnet/CloudAuth.Tests.exe"
mcs "${mcs_flags[@]}" -r:"$out/CloudAuth.dll" -out:"$out/CloudAuth.Tests.exe" bindings/dotnet/tests/*.cs
echo "run_dotnet: mcs examples/dotnet/OcrDemo.cs -> target/dotnet/OcrDemo.exe"
mcs "${mcs_flags[@]}" -r:"$out/CloudAuth.dll" -out:"$out/OcrDemo.exe" examples/dotnet/OcrDemo.cs

# DllImport("cloudauth") finds libcloudauth.so through LD_LIBRARY_PATH, ahead of any installed copy.
export LD_LIBRARY_PATH=$root/target/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

echo "run_dotnet: examples/dotnet/OcrDemo.cs"
tests/standin/with_server.sh mono --debug "$out/OcrDemo.exe"

echo "run_dotnet: bindings/dotnet/tests"
tests/standin/with_server.sh mono --debug "$out/CloudAuth.Tests.exe" "$@"
