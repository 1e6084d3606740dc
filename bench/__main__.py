"""``python -m bench``: the benchmarks, each with the first line of what it measures.
``python -m bench.NAME --help`` says how to run one."""
import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = {"__init__", "__main__", "common", "plugin_network", "random_bert",
           "plot_results"}


def main() -> int:
    for path in sorted(HERE.glob("*.py")):
        if path.stem in HELPERS:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        print(f"  {path.stem:<26} {doc.strip().splitlines()[0] if doc.strip() else ''}")
    print("\nhelpers: " + ", ".join(sorted(HELPERS - {"__init__", "__main__"})) + " (imported by the above, or tools: "
          "random_bert makes a BERT-base-shaped artifact, plot_results draws JSON results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
