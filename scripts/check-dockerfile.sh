#!/usr/bin/env bash
# Static check of the Dockerfile (hadolint is not packaged by Debian, and no Docker engine runs in
# CI). For every combination of the build arguments VARIANT (cuda, cpu) and MODEL (none, smollm2) it
# resolves which stages the build uses and checks:
#   - multi-stage: the final image is not built on the build stage;
#   - base images: official nvidia/cuda devel (build) and the runtime image of the same CUDA and
#     Ubuntu release (final) for cuda, debian:bookworm-slim for cpu; every tag pinned, never latest;
#   - the final stage runs as a non-root USER and its ENTRYPOINT/CMD (exec form) is the worker in
#     production mode: no local-mode flags (--test-input, --serve-api, ...);
#   - the final image takes only files COPY'd --from the build stage, never the build context; the
#     model is copied only into the image-smollm2 stage; PODWORKER_HANDLER is set (echo without a
#     model, textgen with it);
#   - hygiene in the spirit of hadolint: apt-get with --no-install-recommends and list cleanup,
#     pipefail when RUN pipes, no ADD, no sudo, a syntax directive when RUN --mount is used.
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

def problem(msg):
    problems.append(msg)

# --- parse: join continuation lines, drop comments (keep the first-line parser directive) ---
syntax_directive = bool(re.match(r"#\s*syntax\s*=", raw))
logical = []
current = ""
for line in raw.splitlines():
    if not current and re.match(r"\s*#", line):
        continue
    if line.rstrip().endswith("\\"):
        current += line.rstrip()[:-1] + " "
        continue
    current += line
    if current.strip():
        logical.append(current.strip())
    current = ""
if current.strip():
    logical.append(current.strip())

global_args = {}
stages = []  # {"base", "name", "instructions": [(KEYWORD, rest)]}
for text in logical:
    keyword, _, rest = text.partition(" ")
    keyword = keyword.upper()
    rest = rest.strip()
    if keyword == "FROM":
        m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
        if not m:
            problem(f"cannot parse FROM {rest}")
            continue
        stages.append({"base": m.group(1), "name": m.group(2), "instructions": []})
    elif not stages:
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        else:
            problem(f"{keyword} before the first FROM")
    else:
        stages[-1]["instructions"].append((keyword, rest))

if len(stages) < 2:
    problem("not a multi-stage build")
    print("\n".join(problems)); sys.exit(1)

def expand(text, args):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)

def exec_form(rest):
    try:
        value = json.loads(rest)
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    except json.JSONDecodeError:
        return None

OFFICIAL_CUDA = re.compile(r"^nvidia/cuda:(\d+\.\d+\.\d+)-(devel|runtime)-(ubuntu\d+\.\d+)$")
CPU_BASES = {"debian:bookworm-slim"}
LOCAL_FLAGS = ("--test-input", "--serve-api", "--api-host", "--api-port", "--rp-serve-api")

# --- checks that do not depend on the build arguments ---
for arg, values in (("VARIANT", {"cuda", "cpu"}), ("MODEL", {"none", "smollm2"})):
    if global_args.get(arg) not in values:
        problem(f"ARG {arg} must be declared before the first FROM with a default in {sorted(values)}")
for stage in stages:
    for keyword, rest in stage["instructions"]:
        where = f"stage {stage['name'] or stage['base']}"
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
            if re.search(r"[^|]\|[^|]", rest):
                shells = [r for k, r in stage["instructions"] if k == "SHELL"]
                if not any("pipefail" in s for s in shells):
                    problem(f"{where}: RUN with a pipe but no SHELL with -o pipefail")

# --- per combination of build arguments ---
def resolve(variant, model):
    args = dict(global_args, VARIANT=variant, MODEL=model)
    named = {}
    for index, stage in enumerate(stages):
        if stage["name"]:
            named[expand(stage["name"], args).lower()] = index
    def chain(index):  # the stage and the stages it is built FROM, down to an external image
        seen = []
        while True:
            seen.append(index)
            base = expand(stages[index]["base"], args)
            if base.lower() in named and named[base.lower()] < index:
                index = named[base.lower()]
            else:
                return seen, base
    return args, named, chain

for variant in ("cuda", "cpu"):
    for model in ("none", "smollm2"):
        combo = f"VARIANT={variant} MODEL={model}"
        args, named, chain = resolve(variant, model)
        final = len(stages) - 1
        final_chain, final_base = chain(final)
        if "build" not in named:
            problem(f"{combo}: no stage named 'build'")
            continue
        build_chain, build_base = chain(named["build"])
        if named["build"] in final_chain:
            problem(f"{combo}: the final image is built on the build stage")
        for base in (build_base, final_base):
            if "$" in base:
                problem(f"{combo}: base image {base} has an unresolved variable")
            elif ":" not in base or base.endswith(":latest"):
                problem(f"{combo}: base image {base} has no pinned tag")
        if variant == "cuda":
            b, f = OFFICIAL_CUDA.match(build_base), OFFICIAL_CUDA.match(final_base)
            if not b or b.group(2) != "devel":
                problem(f"{combo}: build stage must start from an official nvidia/cuda devel image, not {build_base}")
            if not f or f.group(2) != "runtime":
                problem(f"{combo}: final stage must start from an official nvidia/cuda runtime image, not {final_base}")
            if b and f and (b.group(1), b.group(3)) != (f.group(1), f.group(3)):
                problem(f"{combo}: devel {build_base} and runtime {final_base} differ in CUDA or Ubuntu release")
        else:
            if build_base not in CPU_BASES or final_base not in CPU_BASES:
                problem(f"{combo}: cpu image must build and run on {sorted(CPU_BASES)}, not {build_base} / {final_base}")

        # Instructions of the final image, oldest stage first.
        final_instructions = []
        for index in reversed(final_chain):
            for keyword, rest in stages[index]["instructions"]:
                final_instructions.append((stages[index]["name"] or "", keyword, rest))

        users = [rest for k, rest in stages[final]["instructions"] if k == "USER"]
        if not users:
            problem(f"{combo}: the final stage sets no USER")
        elif re.match(r"^(root|0)(:|$)", users[-1]):
            problem(f"{combo}: the final stage runs as root ({users[-1]})")

        entry = [rest for _, k, rest in final_instructions if k == "ENTRYPOINT"]
        cmd = [rest for _, k, rest in final_instructions if k == "CMD"]
        command = []
        for label, values in (("ENTRYPOINT", entry), ("CMD", cmd)):
            if values:
                form = exec_form(values[-1])
                if form is None:
                    problem(f"{combo}: {label} must use the exec form [\"...\"] so signals reach the worker")
                else:
                    command += form
        if not command or not command[0].endswith("/worker"):
            problem(f"{combo}: the default command must run the worker, not {command}")
        bad = [a for a in command if a.split("=")[0] in LOCAL_FLAGS]
        if bad:
            problem(f"{combo}: the default command uses local-mode flags {bad}")

        copied_worker = False
        model_copies = []
        env = {}
        for stage_name, keyword, rest in final_instructions:
            if keyword in ("COPY", "ADD"):
                parts = rest.split()
                if not any(p.startswith("--from=") for p in parts):
                    problem(f"{combo}: final image COPYs from the build context ({rest})")
                if "test_input.json" in rest:
                    problem(f"{combo}: final image contains a test_input.json (it would run a local test)")
                if re.search(r"models?/|\.gguf", rest):
                    model_copies.append(stage_name)
                if command and parts[-1] == command[0]:
                    copied_worker = True
            if keyword == "ENV":
                for m in re.finditer(r"(\w+)=(\"[^\"]*\"|\S+)", rest):
                    env[m.group(1)] = m.group(2).strip('"')
        if command and not copied_worker:
            problem(f"{combo}: nothing COPYs the worker to {command[0]}")
        if model == "none" and model_copies:
            problem(f"{combo}: the model is copied although MODEL=none (stages {model_copies})")
        if model == "smollm2":
            if not model_copies:
                problem(f"{combo}: the model is not copied")
            elif any(s != "image-smollm2" for s in model_copies):
                problem(f"{combo}: the model is copied outside the image-smollm2 stage")
            if not env.get("PODWORKER_MODEL", "").endswith(".gguf"):
                problem(f"{combo}: PODWORKER_MODEL does not name the model file")
        expected_handler = "textgen" if model == "smollm2" else "echo"
        if env.get("PODWORKER_HANDLER") != expected_handler:
            problem(f"{combo}: PODWORKER_HANDLER is {env.get('PODWORKER_HANDLER')!r}, expected {expected_handler!r}")

for p in problems:
    print(f"{path}: {p}")
if problems:
    sys.exit(1)
print(f"{path}: ok ({len(stages)} stages; VARIANT cuda/cpu x MODEL none/smollm2 checked)")
PY
