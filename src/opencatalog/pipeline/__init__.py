"""Building blocks of the resource pipeline: fetch, detect, extract, preview.

Plain functions and classes with no knowledge of storage, services or queues: the pipeline
service composes them. Each step is bounded (bytes read, characters kept, rows, time) so a
hostile or broken file ends in a result with a note, never in a crash or an unbounded read.

* :mod:`opencatalog.pipeline.fetch` - a safe HTTP(S) fetcher for external resource URLs
  (address validation and pinning, redirects re-validated, size and time caps, per-host rate).
* :mod:`opencatalog.pipeline.detect` - what a file really is (magic bytes, extension, declared
  type, CSV dialect, charset), with a mismatch report.
* :mod:`opencatalog.pipeline.extract` - bounded text extraction for indexing.
* :mod:`opencatalog.pipeline.preview` - a small JSON preview (table or text).

The submodules are imported on demand; importing this package imports nothing heavy.
"""

from __future__ import annotations

__all__: list[str] = []
