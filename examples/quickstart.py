"""Quickstart: a catalog in a folder, no server.

Creates an organization and a dataset, uploads a CSV file to it, lets the pipeline process
the file (hash, format, text, preview) on the catalog's own worker thread, then searches:
by metadata (CKAN package_search) and by a word that appears only inside the file.

Run: python examples/quickstart.py [FOLDER]   (default ./quickstart-catalog)
"""

from __future__ import annotations

import io
import sys

import opencatalog as oc

CSV = b"station,river,level_cm\nALPHA-1,Glasswater,131\nBRAVO-2,Glasswater,97\n"


def main(folder: str = "quickstart-catalog") -> None:
    with oc.open_catalog(folder) as cat:  # SQLite, a tantivy index and files under FOLDER
        if not cat.datasets.list().total:
            cat.organizations.create(oc.GroupInput(name="city-of-example", title="City of Example"))
            dataset = cat.datasets.create(
                oc.DatasetInput(
                    name="river-levels-2025",
                    title="River levels 2025",
                    owner_org="city-of-example",
                    license_id="cc-by",
                    tags=["water", "environment"],
                    resources=[oc.ResourceInput(name="Readings", url="")],
                )
            )
            cat.files.upload(dataset.resources[0].id, io.BytesIO(CSV), filename="levels.csv")
            cat.jobs.run_pending()  # wait for the pipeline (it runs in the background anyway)
        dataset = cat.datasets.get("river-levels-2025")
        resource = dataset.resources[0]
        report = cat.pipeline.status(resource.id)
        print(
            f"{dataset.title}: {len(dataset.resources)} resource(s), tags",
            [t.name for t in dataset.tags],
        )
        print(
            f"file: {resource.format}, {resource.size} bytes, {resource.hash}, "
            f"pipeline {report.status}"
        )
        print("datasets:", [d.name for d in cat.datasets.list().items])
        found = cat.search.datasets("river", facets=["organization", "tags"])
        print("search 'river':", found.count, [d.name for d in found.results])
        inside = cat.search.everything("glasswater")  # a word only the file contains
        print("search 'glasswater' (file contents):", [d.name for d in inside.results])
        print("tags in use:", cat.tags.counts())


if __name__ == "__main__":
    main(*sys.argv[1:2])
