#!/usr/bin/env bash
# The NuGet package layout of bindings/dotnet/CloudAuth.csproj, checked with what runs here
# (Mono's tools; there is no .NET SDK, so `dotnet pack` itself cannot run):
#
#   1. the csproj is read (python3: its properties, and the items with Pack="true" and their
#      PackagePath): the native library must go to runtimes/linux-x64/native/ under the name
#      DllImport("cloudauth") probes for (libcloudauth.so), and packing without it must fail;
#   2. a .nuspec made from exactly those items, plus the build output dotnet pack adds
#      (lib/netstandard2.0/CloudAuth.dll and .xml, from target/dotnet/ as run_dotnet.sh
#      builds them), is packed by Mono's `nuget pack`; the .nupkg must hold that layout;
#   3. the package works as a whole: its own CloudAuth.dll, with its own native library found
#      in its runtimes/linux-x64/native/ folder, runs examples/dotnet/OcrDemo.cs against the
#      stand-in.
#
# Not checkable here: that `dotnet pack` makes the same package from the csproj, and that
# `dotnet restore` picks runtimes/linux-x64/native/ for a linux-x64 app (NuGet's RID asset
# selection) - both need the .NET SDK.
#
# Needs: target/release/libcloudauth.so, target/dotnet/CloudAuth.dll (tests/run/dotnet.sh),
# nuget (apt: nuget), mcs, mono, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
csproj=bindings/dotnet/CloudAuth.csproj
dll=target/dotnet/CloudAuth.dll
for tool in nuget mcs mono python3; do
  command -v "$tool" >/dev/null || { echo "check_dotnet_pack: $tool not found (make deps)" >&2; exit 1; }
done
[[ -f $dll ]] || { echo "check_dotnet_pack: $dll is missing; run tests/run/dotnet.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== the csproj's pack items"
python3 - "$csproj" "$work/pack.json" <<'PY'
import json, os, re, sys
import xml.etree.ElementTree as ET

path, out = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(path)) + "/"
root = ET.parse(path).getroot()
props = {"MSBuildThisFileDirectory": here, "NoWarn": ""}

def expand(text):
    return re.sub(r"\$\((\w+)\)", lambda m: props.get(m.group(1), ""), text or "")

for group in root.iter("PropertyGroup"):
    for p in group:
        props[p.tag] = expand(p.text)
items = []
for group in root.iter("ItemGroup"):
    if group.get("Condition"):
        sys.exit(f"check_dotnet_pack: an ItemGroup with a Condition ({group.get('Condition')}) may drop files from the package")
    for item in group:
        if item.get("Pack") == "true":
            include = os.path.normpath(os.path.join(here, expand(item.get("Include"))))
            items.append({"src": include, "target": expand(item.get("PackagePath"))})
native = [i for i in items if i["src"].endswith("libcloudauth.so")]
problems = []
if len(native) != 1:
    problems.append(f"expected one packed libcloudauth.so, got {native}")
else:
    target = native[0]["target"]
    if target.rstrip("/") not in ("runtimes/linux-x64/native", "runtimes/linux-x64/native/libcloudauth.so"):
        problems.append(f"libcloudauth.so is packed to {target!r}, not runtimes/linux-x64/native/")
    if not os.path.isfile(native[0]["src"]):
        problems.append(f"{native[0]['src']} does not exist (build it first)")
guard = [t for t in root.iter("Target") if "GenerateNuspec" in (t.get("BeforeTargets") or "")]
if not any(e.get("Condition", "").startswith("!Exists(") for t in guard for e in t.iter("Error")):
    problems.append("no Error target stops `dotnet pack` when the native library is missing")
for key in ("PackageId", "Version", "Description", "Authors", "TargetFramework"):
    if not props.get(key):
        problems.append(f"property {key} is not set")
if problems:
    sys.exit("check_dotnet_pack: " + "; ".join(problems))
json.dump({"props": {k: props[k] for k in ("PackageId", "Version", "Description", "Authors", "TargetFramework", "PackageTags")}, "items": items}, open(out, "w"))
print("check_dotnet_pack: " + ", ".join(f"{os.path.relpath(i['src'])} -> {i['target']}" for i in items))
PY
lib_name=$(sed -n 's/.*const string Lib = "\([^"]*\)".*/\1/p' bindings/dotnet/src/NativeMethods.cs)
[[ $lib_name == cloudauth ]] ||
  { echo "check_dotnet_pack: DllImport name is '$lib_name'; the packed file is libcloudauth.so" >&2; exit 1; }

echo "== nuget pack (Mono's NuGet)"
python3 - "$work/pack.json" "$root/$dll" "$work/CloudAuth.nuspec" <<'PY'
import json, os, sys
from xml.sax.saxutils import escape

spec, dll, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
p = spec["props"]
tfm = p["TargetFramework"]
files = [(dll, f"lib/{tfm}/"), (dll[:-4] + ".xml", f"lib/{tfm}/")]
files += [(i["src"], i["target"].lstrip("/")) for i in spec["items"]]
lines = ['<?xml version="1.0"?>', '<package><metadata>']
for tag, key in (("id", "PackageId"), ("version", "Version"), ("authors", "Authors"),
                 ("description", "Description"), ("tags", "PackageTags")):
    lines.append(f"<{tag}>{escape(p[key].replace(';', ' '))}</{tag}>")
lines.append("</metadata><files>")
for src, target in files:
    if not os.path.isfile(src):
        sys.exit(f"check_dotnet_pack: {src} is missing")
    # Mono's NuGet 2.8 joins src to -BasePath even when absolute: give it paths from /.
    lines.append(f'<file src="{escape(os.path.abspath(src).lstrip("/"))}" target="{escape(target)}" />')
lines.append("</files></package>")
open(out, "w").write("\n".join(lines) + "\n")
PY
(mkdir -p "$work/out" && cd "$work" && timeout 300 nuget pack CloudAuth.nuspec -BasePath / -OutputDirectory "$work/out" -NoPackageAnalysis \
   -NonInteractive </dev/null >"$work/nuget.log" 2>&1) ||
  { cat "$work/nuget.log" >&2; echo "check_dotnet_pack: nuget pack failed" >&2; exit 1; }
nupkg=$(ls "$work"/out/*.nupkg)
echo "check_dotnet_pack: $(basename "$nupkg")"
python3 - "$nupkg" "$root/target/release/libcloudauth.so" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = set(z.namelist())
want = {"lib/netstandard2.0/CloudAuth.dll", "lib/netstandard2.0/CloudAuth.xml",
        "runtimes/linux-x64/native/libcloudauth.so", "README.md", "CloudAuth.nuspec"}
missing = want - names
if missing:
    sys.exit(f"check_dotnet_pack: the package lacks {sorted(missing)}; it has {sorted(names)}")
if z.read("runtimes/linux-x64/native/libcloudauth.so") != open(sys.argv[2], "rb").read():
    sys.exit("check_dotnet_pack: the packed libcloudauth.so is not the built one")
stray = [n for n in names if n.endswith(".so") and not n.startswith("runtimes/linux-x64/native/")]
if stray:
    sys.exit(f"check_dotnet_pack: native files outside runtimes/linux-x64/native/: {stray}")
print("check_dotnet_pack: " + ", ".join(sorted(n for n in names if "/" in n and not n.startswith(("_rels", "package/")))))
PY

echo "== the package as a whole: its dll with its native library"
mkdir -p "$work/pkg" "$work/app"
(cd "$work/pkg" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$nupkg")
mcs -nologo -warnaserror+ -r:System.Net.Http.dll -r:"$work/pkg/lib/netstandard2.0/CloudAuth.dll" \
  -out:"$work/app/OcrDemo.exe" examples/dotnet/OcrDemo.cs
cp "$work/pkg/lib/netstandard2.0/CloudAuth.dll" "$work/app/"
# Mono has no RID asset resolution: point the loader at the package's native folder, as the
# .NET host does for runtimes/linux-x64/native/.
out=$(LD_LIBRARY_PATH="$work/pkg/runtimes/linux-x64/native" tests/standin/with_server.sh mono "$work/app/OcrDemo.exe" 2>&1) ||
  { echo "$out" >&2; echo "check_dotnet_pack: the packaged assembly and library do not run together" >&2; exit 1; }
[[ $out == *"Hello from the cloudauth stand-in"* ]] ||
  { echo "$out" >&2; echo "check_dotnet_pack: OcrDemo ran without the recognized text" >&2; exit 1; }
echo "check_dotnet_pack: OcrDemo ran on the packaged CloudAuth.dll + runtimes/linux-x64/native/libcloudauth.so"
echo "check_dotnet_pack: not checked (no .NET SDK here): dotnet pack on the csproj itself; dotnet restore's RID asset selection"
