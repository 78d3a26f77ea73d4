"""Deterministic synthetic catalog generator for benchmarks and tests.

The generator builds a CKAN-like catalog out of pseudo-words: a vocabulary of
20,000 pronounceable, unique, lowercase ASCII words whose frequencies follow a
Zipf-Mandelbrot law (s=1.0, q=2.7), 200 organizations, 50 groups, 2,000 tag
words, 30 licenses and 15 resource formats.  Datasets come out as the dicts that
CKAN's ``package_create`` accepts (ckanapi style), one at a time, so a stream of
a million datasets never sits in memory.

Everything is drawn from ``random.Random`` instances seeded from the ``seed``
argument (never the global generator) and every uuid is built from those
generators, so a given seed gives the same catalog on every run and every
machine.  Each part (vocabulary, organizations, groups, people, datasets,
queries) has its own stream, so the output of one method does not depend on
which other methods were called first, and ``datasets(n)`` is a prefix of
``datasets(m)`` for ``n < m``: the 10k catalog is the first tenth of the 100k one.

Distributions (rank 1 is the most common item):

* words of titles, notes and descriptions: Zipf-Mandelbrot, s=1.0, q=2.7;
  shorter words tend to have better ranks, as in natural language;
* tags: 3-8 distinct per dataset (uniform count), Zipf-Mandelbrot s=1.0, q=2.7
  over the 2,000 tag words;
* owner organization: Zipf s=0.8 over the organizations;
* license: Zipf s=1.2 over 30 license ids (CKAN's 15 defaults and 15 invented);
* groups: 0-3 distinct per dataset (uniform count), Zipf s=0.8;
* resources: 1-5 per dataset (uniform), format Zipf s=1.0 over 15 formats;
* title 4-8 words, notes 60-100 words, resource descriptions 15 words.

Besides the fields ``package_create`` documents, each dataset and resource has a
uuid4 ``id`` (so raw inserts can use them as keys), and datasets carry a
``maintainer_email``.  Tag words are a shuffled pick of 2,000 among the 8,000
most common words.  Resource urls end with the format's file extension, except
for API resources, whose urls point at an endpoint under ``/api/``.

Usage as a module::

    from benchmarks.generate import Generator

    gen = Generator(seed=42)
    orgs = gen.organizations()
    for dataset in gen.datasets(10_000):
        ...
    queries = gen.queries(200)

Usage as a script::

    python benchmarks/generate.py --datasets 10000 --seed 42 \\
        --out benchmarks/data/catalog-10k.jsonl \\
        --orgs-out benchmarks/data/orgs.jsonl --groups-out benchmarks/data/groups.jsonl
    python benchmarks/generate.py --datasets 10000 --summary

Seed 42 gives 10,000 datasets with 30,039 resources, 54,996 tag links and
14,790 group links; 100,000 datasets have 300,185 resources, 551,067 tag links
and 149,107 group links.

Measured speed (Python 3.11.7, 2-CPU Linux VM): building a ``Generator`` takes
about 0.1 s; generating 100,000 datasets takes about 10 s (best of 3: 9.96 s,
~10,000 datasets/s; the runs spanned 10.0-11.0 s); the script, which also
serialises them as JSON Lines, takes 13.5 s in all for 100,000 (a 218 MB file).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["FORMATS", "FORMAT_EXTENSIONS", "LICENSE_IDS", "Generator", "main", "zipf_cum_weights"]

# CKAN's 15 default license ids, ordered by how common they are made here,
# followed by 15 invented ones.
CKAN_DEFAULT_LICENSE_IDS: tuple[str, ...] = (
    "cc-by",
    "notspecified",
    "odc-odbl",
    "uk-ogl",
    "cc-zero",
    "other-open",
    "cc-by-sa",
    "odc-by",
    "other-pd",
    "odc-pddl",
    "other-closed",
    "cc-nc",
    "other-at",
    "other-nc",
    "gfdl",
)
INVENTED_LICENSE_IDS: tuple[str, ...] = (
    "city-open-data-1.0",
    "national-open-licence-2.0",
    "research-share-1.1",
    "public-reuse-3.0",
    "regional-attribution-1.0",
    "open-statistics-2.1",
    "environment-data-1.0",
    "academic-noncommercial-1.0",
    "transport-open-1.2",
    "health-restricted-1.0",
    "municipal-reuse-2.0",
    "geodata-attribution-1.0",
    "archive-public-1.0",
    "partner-only-1.0",
    "open-science-3.0",
)
LICENSE_IDS: tuple[str, ...] = CKAN_DEFAULT_LICENSE_IDS + INVENTED_LICENSE_IDS

# Resource formats in rank order, with the file extension used in their urls.
# API resources point at an endpoint, so their urls have no extension.
FORMATS: tuple[str, ...] = (
    "CSV",
    "JSON",
    "XLSX",
    "PDF",
    "XML",
    "ZIP",
    "HTML",
    "GeoJSON",
    "TXT",
    "XLS",
    "KML",
    "SHP",
    "API",
    "RDF",
    "ODS",
)
FORMAT_EXTENSIONS: dict[str, str] = {
    "CSV": "csv",
    "JSON": "json",
    "XLSX": "xlsx",
    "PDF": "pdf",
    "XML": "xml",
    "ZIP": "zip",
    "HTML": "html",
    "GeoJSON": "geojson",
    "TXT": "txt",
    "XLS": "xls",
    "KML": "kml",
    "SHP": "shp",
    "API": "",
    "RDF": "rdf",
    "ODS": "ods",
}

RESOURCE_URL_PREFIX = "https://data.example.org/"

_ONSETS: tuple[str, ...] = (
    *("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"),
    *("br", "bl", "cr", "cl", "dr", "fr", "fl", "gr", "gl", "pr", "pl", "tr", "st", "sp"),
    *("sk", "sh", "ch", "th"),
)
_ONSETS_FIRST: tuple[str, ...] = (*_ONSETS, "", "", "")
_VOWELS: tuple[str, ...] = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ou", "io")
# No final "s": it would make pseudo-plurals that stemmers fold together.
_CODAS: tuple[str, ...] = ("", "", "", "", "n", "r", "l", "m", "t", "k", "nd", "nt", "rt", "x")
_SYLLABLES: tuple[int, ...] = (1, 2, 3, 4)
_SYLLABLE_WEIGHTS: tuple[float, ...] = (0.15, 0.45, 0.3, 0.1)

# English stop words that search engines drop; a pseudo-word equal to one of
# them would be unsearchable.
_STOP_WORDS = frozenset(
    """
    about above after again against all also and any are because been before being below
    between both but can could did does doing done down during each few for from further
    had has have her here hers him his how into its just more most nor not now off once
    one only other our ours out over own same she should some such than that the their
    them then there these they this those through too two under until very was were what
    when where which while who whom why will with would yes you your
    """.split()  # noqa: SIM905
)

_ORG_KINDS: tuple[str, ...] = (
    "Department",
    "Ministry",
    "Agency",
    "Office",
    "Institute",
    "Council",
    "University",
    "Bureau",
    "Authority",
    "Commission",
    "Centre",
    "Service",
    "Foundation",
    "Observatory",
    "Library",
)
_EXTRA_KEYS: tuple[str, ...] = (
    "frequency",
    "language",
    "source",
    "spatial_coverage",
    "temporal_coverage",
)
_FREQUENCIES: tuple[str, ...] = (
    "annual",
    "monthly",
    "quarterly",
    "irregular",
    "weekly",
    "daily",
    "as needed",
)
_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "nl", "it", "pt", "pl", "sv", "fi")

_N_PEOPLE = 1000
_TITLE_WORDS = (4, 8)
_NOTES_WORDS = (60, 100)
_SENTENCE_WORDS = (6, 18)
_TAGS_PER_DATASET = (3, 8)
_GROUPS_PER_DATASET = (0, 3)
_RESOURCES_PER_DATASET = (1, 5)
_EXTRAS_PER_DATASET = (0, 3)
_RESOURCE_DESCRIPTION_WORDS = 15
_QUERY_RANKS = (20, 3000)  # 1-based word-frequency ranks, inclusive
_NAME_BASE_MAX = 80


def zipf_cum_weights(n: int, s: float, q: float = 0.0) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights ``1 / (rank + q) ** s`` for ranks 1..n."""
    return list(itertools.accumulate(1.0 / (rank + q) ** s for rank in range(1, n + 1)))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _stream(seed: int, part: str) -> random.Random:
    # String seeds are hashed with SHA-512, so they are stable across runs and
    # machines (unlike hash()), and each part gets an independent stream.
    return random.Random(f"opencatalog-generator:{seed}:{part}")


def _pseudo_word(rng: random.Random) -> str:
    (n_syllables,) = rng.choices(_SYLLABLES, weights=_SYLLABLE_WEIGHTS)
    # Only the first syllable may start with its vowel, so vowels never pile up.
    parts = [rng.choice(_ONSETS_FIRST) + rng.choice(_VOWELS) + rng.choice(_CODAS)]
    for _ in range(n_syllables - 1):
        parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS))
    return "".join(parts)


def _slug(words: Sequence[str], max_len: int = _NAME_BASE_MAX) -> str:
    return "-".join(words)[:max_len].rstrip("-")


def _sentences(rng: random.Random, words: list[str]) -> str:
    """Join ``words`` into sentences of 6-18 words, capitalised, with full stops."""
    parts: list[str] = []
    i = 0
    lo, hi = _SENTENCE_WORDS
    while i < len(words):
        j = min(len(words), i + rng.randint(lo, hi))
        chunk = words[i:j]
        parts.append(" ".join([chunk[0].capitalize(), *chunk[1:]]) + ".")
        i = j
    return " ".join(parts)


def _title(words: Sequence[str]) -> str:
    return " ".join(w.capitalize() for w in words)


class Generator:
    """A seeded generator of a synthetic CKAN-like catalog.

    ``n_orgs``, ``n_groups``, ``n_tags`` and ``n_words`` size the reference
    data; the defaults match the benchmark setup (200, 50, 2,000, 20,000).
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        n_orgs: int = 200,
        n_groups: int = 50,
        n_tags: int = 2000,
        n_words: int = 20000,
    ) -> None:
        if n_words < 100:
            raise ValueError(f"n_words must be at least 100, got {n_words}")
        if not _TAGS_PER_DATASET[1] <= n_tags <= n_words:
            raise ValueError(f"n_tags must be between {_TAGS_PER_DATASET[1]} and n_words")
        if n_orgs < 1:
            raise ValueError(f"n_orgs must be at least 1, got {n_orgs}")
        if n_groups < 0:
            raise ValueError(f"n_groups must not be negative, got {n_groups}")
        self.seed = seed
        self.n_orgs = n_orgs
        self.n_groups = n_groups
        self.n_tags = n_tags
        self.n_words = n_words

        self.words: list[str] = self._build_vocabulary()
        self._word_cw = zipf_cum_weights(n_words, 1.0, 2.7)

        # Tags are everyday words: a shuffled pick from the more common words.
        tag_rng = _stream(seed, "tags")
        self.tag_words: list[str] = tag_rng.sample(self.words[: 4 * n_tags], n_tags)
        self._tag_cw = zipf_cum_weights(n_tags, 1.0, 2.7)

        self._orgs = self._build_orgs()
        self._org_names = [org["name"] for org in self._orgs]
        self._org_cw = zipf_cum_weights(n_orgs, 0.8)

        self._groups = self._build_groups()
        self._group_names = [group["name"] for group in self._groups]
        self._group_cw = zipf_cum_weights(n_groups, 0.8)

        self._license_cw = zipf_cum_weights(len(LICENSE_IDS), 1.2)
        self._format_cw = zipf_cum_weights(len(FORMATS), 1.0)
        self._frequency_cw = zipf_cum_weights(len(_FREQUENCIES), 1.0)
        self._language_cw = zipf_cum_weights(len(_LANGUAGES), 1.5)
        self._people = self._build_people()

    # -- reference data -------------------------------------------------

    def _build_vocabulary(self) -> list[str]:
        rng = _stream(self.seed, "vocabulary")
        seen: set[str] = set()
        words: list[str] = []
        while len(words) < self.n_words:
            word = _pseudo_word(rng)
            if 3 <= len(word) <= 12 and word not in seen and word not in _STOP_WORDS:
                seen.add(word)
                words.append(word)
        # Rank order: shorter words tend to be more frequent (with noise).
        keys = {word: len(word) + 4.0 * rng.random() for word in words}
        words.sort(key=keys.__getitem__)
        return words

    def _zipf_words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self._word_cw, k=k)

    def _build_orgs(self) -> list[dict[str, str]]:
        rng = _stream(self.seed, "organizations")
        orgs: list[dict[str, str]] = []
        names: set[str] = set()
        while len(orgs) < self.n_orgs:
            kind = rng.choice(_ORG_KINDS)
            subject = self._zipf_words(rng, rng.randint(1, 2))
            if rng.random() < 0.6:
                title = f"{kind} of {_title(subject)}"
                name = _slug([kind.lower(), "of", *subject])
            else:
                title = f"{_title(subject)} {kind}"
                name = _slug([*subject, kind.lower()])
            if name in names:
                continue
            names.add(name)
            description = _sentences(rng, self._zipf_words(rng, rng.randint(15, 40)))
            orgs.append({"name": name, "title": title, "description": description})
        return orgs

    def _build_groups(self) -> list[dict[str, str]]:
        rng = _stream(self.seed, "groups")
        groups: list[dict[str, str]] = []
        names: set[str] = set()
        while len(groups) < self.n_groups:
            words = self._zipf_words(rng, rng.randint(1, 2))
            name = _slug(words)
            if name in names or len(name) < 2:
                continue
            names.add(name)
            description = _sentences(rng, self._zipf_words(rng, rng.randint(10, 25)))
            groups.append({"name": name, "title": _title(words), "description": description})
        return groups

    def _build_people(self) -> list[tuple[str, str]]:
        rng = _stream(self.seed, "people")
        people: list[tuple[str, str]] = []
        while len(people) < _N_PEOPLE:
            first, last = _pseudo_word(rng), _pseudo_word(rng)
            if 3 <= len(first) <= 9 and 3 <= len(last) <= 12:
                people.append((first, last))
        return people

    def organizations(self) -> list[dict[str, str]]:
        """The organizations as ``{"name", "title", "description"}`` dicts, in rank order."""
        return [dict(org) for org in self._orgs]

    def groups(self) -> list[dict[str, str]]:
        """The groups as ``{"name", "title", "description"}`` dicts, in rank order."""
        return [dict(group) for group in self._groups]

    # -- datasets -------------------------------------------------------

    def _distinct(
        self, rng: random.Random, population: list[str], cum_weights: list[float], k: int
    ) -> list[str]:
        """``k`` distinct items drawn with the given weights, in draw order."""
        chosen: list[str] = []
        seen: set[str] = set()
        while len(chosen) < k:
            for item in rng.choices(population, cum_weights=cum_weights, k=k - len(chosen)):
                if item not in seen:
                    seen.add(item)
                    chosen.append(item)
        return chosen

    def _person(self, rng: random.Random, org: str) -> tuple[str, str]:
        first, last = rng.choice(self._people)
        return f"{first.capitalize()} {last.capitalize()}", f"{first}.{last}@{org}.example.org"

    def _extras(self, rng: random.Random) -> list[dict[str, str]]:
        keys = sorted(rng.sample(_EXTRA_KEYS, rng.randint(*_EXTRAS_PER_DATASET)))
        extras: list[dict[str, str]] = []
        for key in keys:
            if key == "frequency":
                (value,) = rng.choices(_FREQUENCIES, cum_weights=self._frequency_cw)
            elif key == "language":
                (value,) = rng.choices(_LANGUAGES, cum_weights=self._language_cw)
            elif key == "source":
                value = f"https://www.example.org/{_slug(self._zipf_words(rng, 2))}"
            elif key == "spatial_coverage":
                value = _title(self._zipf_words(rng, rng.randint(1, 2)))
            else:  # temporal_coverage
                start = rng.randint(1990, 2022)
                value = f"{start}-01-01/{rng.randint(start, 2024)}-12-31"
            extras.append({"key": key, "value": value})
        return extras

    def _resources(self, rng: random.Random, org: str, dataset_name: str) -> list[dict[str, str]]:
        resources: list[dict[str, str]] = []
        slugs: set[str] = set()
        for _ in range(rng.randint(*_RESOURCES_PER_DATASET)):
            (fmt,) = rng.choices(FORMATS, cum_weights=self._format_cw)
            words = self._zipf_words(rng, rng.randint(2, 4))
            if rng.random() < 0.5:
                words.append(str(rng.randint(2000, 2024)))
            slug = _slug(words, 60)
            while slug in slugs:
                slug += "-" + str(len(slugs) + 1)
            slugs.add(slug)
            ext = FORMAT_EXTENSIONS[fmt]
            if ext:
                url = f"{RESOURCE_URL_PREFIX}{org}/{dataset_name}/{slug}.{ext}"
            else:
                url = f"{RESOURCE_URL_PREFIX}api/{org}/{dataset_name}/{slug}"
            description = _sentences(rng, self._zipf_words(rng, _RESOURCE_DESCRIPTION_WORDS))
            resources.append(
                {
                    "id": _uuid(rng),
                    "name": " ".join([words[0].capitalize(), *words[1:]]),
                    "url": url,
                    "format": fmt,
                    "description": description,
                }
            )
        return resources

    def datasets(self, n: int) -> Iterator[dict[str, Any]]:
        """Yield ``n`` dataset dicts in the shape ``package_create`` accepts.

        The stream is lazy and deterministic: the first ``k`` datasets are the
        same whatever ``n`` is.
        """
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        rng = _stream(self.seed, "datasets")
        for counter in range(1, n + 1):
            yield self._dataset(rng, counter)

    def _dataset(self, rng: random.Random, counter: int) -> dict[str, Any]:
        title_words = self._zipf_words(rng, rng.randint(*_TITLE_WORDS))
        name = f"{_slug(title_words)}-{counter}"
        (org,) = rng.choices(self._org_names, cum_weights=self._org_cw)
        (license_id,) = rng.choices(LICENSE_IDS, cum_weights=self._license_cw)
        tags = self._distinct(rng, self.tag_words, self._tag_cw, rng.randint(*_TAGS_PER_DATASET))
        n_groups = min(rng.randint(*_GROUPS_PER_DATASET), self.n_groups)
        groups = self._distinct(rng, self._group_names, self._group_cw, n_groups)
        author, author_email = self._person(rng, org)
        maintainer, maintainer_email = self._person(rng, org)
        (major,) = rng.choices((1, 2, 3, 4, 5), weights=(8, 4, 2, 1, 1))
        return {
            "id": _uuid(rng),
            "name": name,
            "title": _title(title_words),
            "notes": _sentences(rng, self._zipf_words(rng, rng.randint(*_NOTES_WORDS))),
            "owner_org": org,
            "license_id": license_id,
            "author": author,
            "author_email": author_email,
            "maintainer": maintainer,
            "maintainer_email": maintainer_email,
            "version": f"{major}.{rng.randint(0, 9)}",
            "url": f"https://www.example.org/{org}/{name}",
            "tags": [{"name": tag} for tag in tags],
            "groups": [{"name": group} for group in groups],
            "extras": self._extras(rng),
            "resources": self._resources(rng, org, name),
        }

    # -- queries --------------------------------------------------------

    def queries(self, n: int = 200) -> list[str]:
        """``n`` search queries of 1-2 words (60% one word).

        Words are drawn uniformly from the word-frequency ranks 20-3000, so each
        query matches a moderate share of the catalog.
        """
        rng = _stream(self.seed, "queries")
        lo = _QUERY_RANKS[0] - 1
        hi = min(_QUERY_RANKS[1], self.n_words)
        ranks = range(lo, hi)
        queries: list[str] = []
        for _ in range(n):
            k = 1 if rng.random() < 0.6 else 2
            queries.append(" ".join(self.words[i] for i in rng.sample(ranks, k)))
        return queries


# -- script ------------------------------------------------------------------


def _write_jsonl(path: str, rows: list[dict[str, str]]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a deterministic synthetic CKAN-like catalog as JSON Lines."
    )
    parser.add_argument("--datasets", type=int, default=10_000, help="number of datasets")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", help="datasets output file (JSON Lines), '-' for stdout")
    parser.add_argument("--orgs-out", help="write the organizations to this file (JSON Lines)")
    parser.add_argument("--groups-out", help="write the groups to this file (JSON Lines)")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print counts (datasets, resources, tag links) to stdout as JSON",
    )
    args = parser.parse_args(argv)
    if args.datasets < 0:
        parser.error("--datasets must not be negative")
    if args.out is None and not args.summary and not (args.orgs_out or args.groups_out):
        parser.error("nothing to do: give --out, --orgs-out, --groups-out or --summary")
    if args.out == "-" and args.summary:
        parser.error("--summary prints to stdout, so --out cannot be '-'")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    gen = Generator(args.seed)
    if args.orgs_out:
        _write_jsonl(args.orgs_out, gen.organizations())
    if args.groups_out:
        _write_jsonl(args.groups_out, gen.groups())

    out: TextIO | None = None
    if args.out == "-":
        out = sys.stdout
    elif args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("w", encoding="utf-8")

    counts = {"datasets": 0, "resources": 0, "tag_links": 0, "group_links": 0}
    start = time.perf_counter()
    try:
        for dataset in gen.datasets(args.datasets):
            counts["datasets"] += 1
            counts["resources"] += len(dataset["resources"])
            counts["tag_links"] += len(dataset["tags"])
            counts["group_links"] += len(dataset["groups"])
            if out is not None:
                out.write(json.dumps(dataset, ensure_ascii=False) + "\n")
            if counts["datasets"] % 10_000 == 0:
                elapsed = time.perf_counter() - start
                print(
                    f"generate: {counts['datasets']:,} datasets ({elapsed:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if out is not None and out is not sys.stdout:
            out.close()

    if args.summary:
        summary = {
            "seed": args.seed,
            **counts,
            "organizations": gen.n_orgs,
            "groups": gen.n_groups,
            "seconds": round(time.perf_counter() - start, 2),
        }
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
