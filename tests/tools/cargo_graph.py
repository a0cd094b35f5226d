"""The workspace's crates and their dependencies, from `cargo metadata`.

Shared by the checks that must follow the code as it is (tests/arch, tests/deploy) rather
than a list someone has to keep up to date.
"""

import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def metadata():
    """`cargo metadata` of the workspace, with the resolved dependency graph (normal
    dependencies only: what a crate links, not what its tests or build scripts use)."""
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


class Graph:
    def __init__(self, meta):
        self.packages = {p["id"]: p for p in meta["packages"]}
        self.members = {self.packages[i]["name"]: self.packages[i] for i in meta["workspace_members"]}
        self.name_of = {i: p["name"] for i, p in self.packages.items()}
        self.deps = {}
        for node in meta["resolve"]["nodes"]:
            normal = [
                d["pkg"]
                for d in node["deps"]
                if any(k.get("kind") in (None, "normal") for k in d["dep_kinds"])
            ]
            self.deps[self.name_of[node["id"]]] = sorted({self.name_of[p] for p in normal})

    def direct(self, crate):
        return set(self.deps.get(crate, []))

    def closure(self, crate):
        """Every crate `crate` links, itself excluded."""
        seen, todo = set(), [crate]
        while todo:
            for dep in self.deps.get(todo.pop(), []):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def source_dir(self, crate):
        """The `src` folder of a workspace crate."""
        return pathlib.Path(self.members[crate]["manifest_path"]).parent / "src"
