"""Quickstart: a catalog in a folder, no server.

Run: python examples/quickstart.py [FOLDER]   (default ./quickstart-catalog)
"""

from __future__ import annotations

import sys

import opencatalog as oc


def main(folder: str = "quickstart-catalog") -> None:
    with oc.open_catalog(folder) as cat:  # SQLite in FOLDER/catalog.db, created on first use
        if not cat.datasets.list().total:
            cat.organizations.create(oc.GroupInput(name="city-of-example", title="City of Example"))
            cat.datasets.create(
                oc.DatasetInput(
                    name="air-quality-2025",
                    title="Air quality 2025",
                    owner_org="city-of-example",
                    license_id="cc-by",
                    tags=["air", "environment"],
                    resources=[oc.ResourceInput(url="https://example.org/air-2025.csv")],
                )
            )
        dataset = cat.datasets.get("air-quality-2025")
        print(f"{dataset.title}: {len(dataset.resources)} resource(s),",
              f"format {dataset.resources[0].format}, tags {[t.name for t in dataset.tags]}")
        print("datasets:", [d.name for d in cat.datasets.list().items])
        print("tags in use:", cat.tags.counts())


if __name__ == "__main__":
    main(*sys.argv[1:2])
