"""Draws docs/package_imports.svg: the project's packages and which imports which, read from the
source with `ast` (so the picture cannot drift from the code). Run: .venv/bin/python docs/package_imports.py"""

import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Package → (x, y) of its box, and what it is for.
BOXES = {
    "app": ((0.25, 0.78), "app/\nFastAPI: routes, schemas,\nmodel cache, page, reaper"),
    "worker": ((0.75, 0.78), "worker/\nCelery task, embedded\nworker process"),
    "store": ((0.5, 0.45), "store/\nsettings, database + Alembic,\ntables, job state machine,\nartifacts, queue contract"),
    "adgm_core": ((0.5, 0.12), "adgm_core/\nmodel, bounds, trainer,\npresets, checkpoints"),
}


def imports_between_packages() -> set[tuple[str, str]]:
    edges = set()
    for package in BOXES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else \
                    [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    target = name.split(".")[0]
                    if target in BOXES and target != package:
                        edges.add((package, target))
    return edges


def main() -> None:
    figure, axes = plt.subplots(figsize=(7, 5.2))
    axes.set_axis_off()
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 0.95)
    for (x, y), label in BOXES.values():
        axes.text(x, y, label, ha="center", va="center", fontsize=9,
                  bbox=dict(boxstyle="round,pad=0.6", facecolor="#eef3fb", edgecolor="#35609c"))
    for source, target in sorted(imports_between_packages()):
        (x0, y0), _ = BOXES[source]
        (x1, y1), _ = BOXES[target]
        if abs(y0 - y1) > 0.5:  # past the store's box: around it, on the source's side
            start, end, bend = (x0, y0 - 0.1), (x1 + (0.12 if x0 > x1 else -0.12), y1 + 0.05), 0.45 if x0 < x1 else -0.45
        else:
            side = 0.0 if x0 == x1 else (0.1 if x0 > x1 else -0.1)
            start, end, bend = (x0, y0 - 0.1), (x1 + side, y1 + 0.1), 0.0
        axes.annotate("", xy=end, xytext=start, arrowprops=dict(
            arrowstyle="-|>", color="#333333", shrinkA=2, shrinkB=2, connectionstyle=f"arc3,rad={bend}"))
    axes.set_title("Which package imports which (arrows read 'imports'); nothing points up", fontsize=10)
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "package_imports.svg")
    print(sorted(imports_between_packages()))


if __name__ == "__main__":
    main()
