"""Measure the share of the OpenSLO project's, oslo's and go-sdk's example files that load.

The corpus is every file listed in ``benchmarks/openslo_corpus.txt`` (the
three repositories' files that hold an OpenSLO SLO document), fetched into
``benchmarks/openslo_corpus/<repository>/<path>``. A file counts as loaded
when ``load_openslo_all`` returns at least one SLO for it (on an older
perfprim without it, when ``load_openslo`` does). Files whose SLOs are not
``openslo/v1`` (v1alpha, v2alpha) are counted apart: perfprim reads v1.

Usage::

    python benchmarks/openslo_share.py            # the installed perfprim
    PYTHONPATH=/tmp/perfprim-main/src python benchmarks/openslo_share.py
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import yaml

import perfprim.slo

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "openslo_corpus"


def _documents(path: Path) -> list[object]:
    docs: list[object] = []
    for doc in yaml.safe_load_all(path.read_text()):
        docs.extend(doc if isinstance(doc, list) else [doc])
    return [d for d in docs if isinstance(d, dict)]


def main() -> None:
    loader = getattr(perfprim.slo, "load_openslo_all", None) or perfprim.slo.load_openslo
    rows = []
    for line in (ROOT / "openslo_corpus.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        repo, path, _commit = line.split()
        file = CORPUS / repo / path
        if not file.exists():
            sys.exit(f"missing {file}: fetch the corpus first (see openslo_corpus.txt)")
        slos = [d for d in _documents(file) if d.get("kind") == "SLO"]
        if not slos:
            continue  # no SLO in it: not part of the measure
        if not any(d.get("apiVersion") == "openslo/v1" for d in slos):
            rows.append((repo, path, "other version", str(slos[0].get("apiVersion"))))
            continue
        try:
            loaded = loader(file)
        except perfprim.PerfprimError as exc:
            rows.append((repo, path, "refused", str(exc)[:150]))
        except Exception as exc:
            rows.append((repo, path, "crashed", f"{type(exc).__name__}: {str(exc)[:120]}"))
        else:
            count = len(loaded) if isinstance(loaded, tuple) else 1
            rows.append((repo, path, "loaded", f"{count} SLO(s)"))
    print(f"perfprim from {Path(perfprim.__file__).parent}, loader {loader.__name__}")
    per_repo: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for repo, _path, outcome, _detail in rows:
        per_repo[repo][outcome] += 1
    total = collections.Counter()
    for repo, counts in per_repo.items():
        v1 = sum(v for k, v in counts.items() if k != "other version")
        print(
            f"{repo:18} v1 files loaded {counts['loaded']}/{v1}"
            f"  (refused {counts['refused']}, crashed {counts['crashed']};"
            f" other versions {counts['other version']})"
        )
        total += counts
    v1 = sum(v for k, v in total.items() if k != "other version")
    print(f"{'all':18} v1 files loaded {total['loaded']}/{v1}")
    for repo, path, outcome, detail in rows:
        print(f"  {outcome:13} {repo}/{path}: {detail}")


if __name__ == "__main__":
    main()
