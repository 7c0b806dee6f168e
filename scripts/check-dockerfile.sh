#!/usr/bin/env bash
# Static check of the Dockerfile, for what CI cannot build: CI builds the cpu target with podman and
# runs its worker (scripts/test-image.sh), but the CUDA base images cannot be had there. So this
# checks that the CUDA stages are the tested CPU ones on other bases, and what any builder needs:
#   - stage names are literal and every FROM is a stage defined above or an image with a pinned
#     tag (never latest); an ARG may fill in an image's name, never a stage's (buildah, unlike
#     BuildKit, cannot resolve a stage name made from an ARG unless every stage's base exists);
#   - stages build-cpu, build-cuda, cpu and cuda, cuda last (the default target); build-cpu and cpu
#     on debian:bookworm-slim, build-cuda on an official nvidia/cuda devel image and cuda on the
#     runtime image of the same CUDA and Ubuntu release;
#   - cuda mirrors cpu and build-cuda mirrors build-cpu: the same instructions, up to the package
#     names of apt-get install, the variant's name and the CUDA-only ARG;
#   - the images (cpu, cuda) are not built on a build stage, take files only by COPY --from their
#     own variant's build stage, run as a non-root USER, and their exec-form ENTRYPOINT is the
#     worker without local-mode flags (--test-input, --serve-api, ...);
#   - hygiene in the spirit of hadolint: apt-get with --no-install-recommends and list cleanup,
#     no ADD, no sudo, a syntax directive when RUN --mount is used.
# Prints one line per problem; exits 1 if there is any.
#   scripts/check-dockerfile.sh [Dockerfile]
set -euo pipefail
dockerfile=${1:-"$(dirname "$0")/../Dockerfile"}
[ -f "$dockerfile" ] || { echo "check-dockerfile: no such file: $dockerfile" >&2; exit 2; }

exec python3 - "$dockerfile" <<'PY'
import json, re, sys

path = sys.argv[1]
raw = open(path, encoding="utf-8").read()
problems = []
problem = problems.append

# --- parse: join continuation lines, drop comments (keep the first-line parser directive) ---
syntax_directive = bool(re.match(r"#\s*syntax\s*=", raw))
logical, current = [], ""
for line in raw.splitlines():
    if not current and re.match(r"\s*#", line):
        continue
    if line.rstrip().endswith("\\"):
        current += line.rstrip()[:-1] + " "
        continue
    current += line
    if current.strip():
        logical.append(re.sub(r"\s+", " ", current.strip()))
    current = ""

global_args = {}
stages = []  # {"base", "name", "instructions": [(KEYWORD, rest)]}
for text in logical:
    keyword, _, rest = text.partition(" ")
    keyword = keyword.upper()
    if keyword == "FROM":
        m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
        if not m:
            problem(f"cannot parse FROM {rest}")
            continue
        stages.append({"base": m.group(1), "name": (m.group(2) or "").lower(), "instructions": []})
    elif not stages:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        else:
            problem(f"{keyword} before the first FROM")
    else:
        stages[-1]["instructions"].append((keyword, rest))

def expand(text):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), text)

# --- FROM: literal stage names, pinned images ---
named = {}
for index, stage in enumerate(stages):
    where = f"FROM {stage['base']}" + (f" AS {stage['name']}" if stage["name"] else "")
    if "$" in stage["name"]:
        problem(f"{where}: the stage name is made from an ARG")
    base = stage["base"]
    if base.lower() in named:
        pass  # an earlier stage
    elif "$" in base and expand(base).lower() in named:
        problem(f"{where}: names a stage through an ARG (buildah cannot resolve it)")
    else:
        image = expand(base)
        if "$" in image:
            problem(f"{where}: {image} has an ARG without a default")
        elif ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problem(f"{where}: {image} has no pinned tag")
    if stage["name"]:
        named[stage["name"]] = index

required = ("build-cpu", "build-cuda", "cpu", "cuda")
missing = [n for n in required if n not in named]
if missing:
    problem(f"stages {missing} are missing (need {list(required)})")
    print("\n".join(f"{path}: {p}" for p in problems)); sys.exit(1)
if stages[-1]["name"] != "cuda":
    problem(f"the last stage (the default target) is {stages[-1]['name'] or stages[-1]['base']}, not cuda")
stage = {n: stages[named[n]] for n in required}
base = {n: expand(stage[n]["base"]) for n in required}

OFFICIAL_CUDA = re.compile(r"^nvidia/cuda:(\d+\.\d+\.\d+)-(devel|runtime)-(ubuntu\d+\.\d+)$")
for n in ("build-cpu", "cpu"):
    if base[n] != "debian:bookworm-slim":
        problem(f"stage {n}: must start from debian:bookworm-slim, not {base[n]}")
devel, runtime = OFFICIAL_CUDA.match(base["build-cuda"]), OFFICIAL_CUDA.match(base["cuda"])
if not devel or devel.group(2) != "devel":
    problem(f"stage build-cuda: must start from an official nvidia/cuda devel image, not {base['build-cuda']}")
if not runtime or runtime.group(2) != "runtime":
    problem(f"stage cuda: must start from an official nvidia/cuda runtime image, not {base['cuda']}")
if devel and runtime and (devel.group(1), devel.group(3)) != (runtime.group(1), runtime.group(3)):
    problem(f"stages build-cuda and cuda: {base['build-cuda']} and {base['cuda']} differ in CUDA or Ubuntu release")

# --- the CUDA stages mirror the CPU stages, which CI builds and runs ---
def normalized(name, variant):
    out = []
    for keyword, rest in stage[name]["instructions"]:
        if keyword == "ARG" and rest.startswith("CUDA_ARCHITECTURES"):
            continue
        rest = re.sub(r"\s*--cuda-architectures \S+", "", rest)
        rest = re.sub(r"(apt-get install(?: -\S+)*)((?: [\w.+-]+)+)", r"\1 PACKAGES", rest)
        out.append((keyword, rest.replace(variant, "VARIANT")))
    return out
for cuda_name, cpu_name in (("build-cuda", "build-cpu"), ("cuda", "cpu")):
    a, b = normalized(cuda_name, "cuda"), normalized(cpu_name, "cpu")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ("(nothing)", "")
        y = b[i] if i < len(b) else ("(nothing)", "")
        if x != y:
            problem(f"stage {cuda_name} differs from {cpu_name} at instruction {i + 1}: "
                    f"{' '.join(x)} / {' '.join(y)}")
            break

# --- the images ---
LOCAL_FLAGS = ("--test-input", "--serve-api", "--api-host", "--api-port", "--rp-serve-api")
def exec_form(rest):
    try:
        value = json.loads(rest)
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    except json.JSONDecodeError:
        return None
for variant in ("cpu", "cuda"):
    s = stage[variant]
    if s["base"].lower() in named:
        problem(f"stage {variant}: built on stage {s['base']}, not on a runtime base image")
    instructions = s["instructions"]
    for keyword, rest in instructions:
        if keyword in ("COPY", "ADD"):
            source = re.search(r"--from=(\S+)", rest)
            if not source:
                problem(f"stage {variant}: COPYs from the build context ({rest})")
            elif source.group(1) != f"build-{variant}":
                problem(f"stage {variant}: COPYs --from={source.group(1)}, not build-{variant}")
            if "test_input.json" in rest:
                problem(f"stage {variant}: contains a test_input.json (it would run a local test)")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    if not users:
        problem(f"stage {variant}: sets no USER")
    elif re.match(r"^(root|0)(:|$)", users[-1]):
        problem(f"stage {variant}: runs as root ({users[-1]})")
    entries = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    command = exec_form(entries[-1]) if entries else None
    if not entries:
        problem(f"stage {variant}: no ENTRYPOINT")
    elif command is None:
        problem(f"stage {variant}: ENTRYPOINT must use the exec form [\"...\"] so signals reach the worker")
    elif not command or not command[0].endswith("/worker"):
        problem(f"stage {variant}: the ENTRYPOINT must run the worker, not {command}")
    elif [a for a in command if a.split("=")[0] in LOCAL_FLAGS]:
        problem(f"stage {variant}: the ENTRYPOINT uses local-mode flags")

# --- hygiene ---
for s in stages:
    where = f"stage {s['name'] or s['base']}"
    for keyword, rest in s["instructions"]:
        if keyword == "ADD":
            problem(f"{where}: ADD (use COPY; fetch files in RUN with a checked script)")
        if keyword == "RUN":
            if re.search(r"\bsudo\b", rest):
                problem(f"{where}: sudo in RUN")
            if "--mount=" in rest and not syntax_directive:
                problem(f"{where}: RUN --mount needs a '# syntax=docker/dockerfile:1' first line")
            if re.search(r"apt-get\s+(-\S+\s+)*install", rest):
                if "--no-install-recommends" not in rest:
                    problem(f"{where}: apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in rest:
                    problem(f"{where}: apt-get install without removing /var/lib/apt/lists")

for p in problems:
    print(f"{path}: {p}")
if problems:
    sys.exit(1)
print(f"{path}: ok ({len(stages)} stages; cuda mirrors the cpu stages CI builds)")
PY
