"""Public-domain Bibles in SWORD format (Debian ``sword-text-*``), verse-aligned, read with pysword.

Real parallel text that installs offline from a package registry: Debian's ``sword-text-web``
(World English Bible, module ``engWEB2015eb``) and ``sword-text-sparv`` (Reina-Valera 1909,
module ``spaRV1909eb``) put zText modules under ``/usr/share/sword``. Verses are keyed by
(OSIS book, chapter, verse), so two translations align verse by verse; verses empty in either
(merged into a neighbour by that translation) are left out. Used by translation fixtures (a
language-agnostic pipeline does not care that the pair is es-en rather than de-en) and as
real English text for the language model.

Set ``ALGOPERF_SWORD_DIR`` to a SWORD library (the folder holding ``mods.d/`` and ``modules/``)
to read one elsewhere, e.g. the ``usr/share/sword`` of ``dpkg -x sword-text-web_*.deb DIR``.
"""

from __future__ import annotations

import functools
import html
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from algoperf.data import DatasetError

ENV_VAR = "ALGOPERF_SWORD_DIR"
DEBIAN_DIR = Path("/usr/share/sword")
ENGLISH = "engWEB2015eb"  # sword-text-web
SPANISH = "spaRV1909eb"  # sword-text-sparv
PACKAGES = {ENGLISH: "sword-text-web", SPANISH: "sword-text-sparv"}
GOSPELS = ("Matt", "Mark", "Luke", "John")

VerseKey = tuple[str, int, int]
_SPACE = re.compile(r"\s+")
_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_TAG = re.compile(r"<[^>]*>")
_GAP = "\x00"
_GAP_BEFORE_PUNCT = re.compile(_GAP + r"+(?=[,.;:!?\u2019\u201d)\]])")


def _install_hint(module: str) -> str:
    package = PACKAGES.get(module, "the sword-text-* package holding it")
    return (
        f"install Debian's {package} (apt-get install {package}), or run "
        f"`apt-get download {package} && dpkg -x {package}_*.deb DIR` and set "
        f"{ENV_VAR}=DIR/usr/share/sword"
    )


def library_dir() -> Path:
    """The SWORD library to read: ``$ALGOPERF_SWORD_DIR``, else Debian's ``/usr/share/sword``."""
    return Path(os.environ.get(ENV_VAR) or DEBIAN_DIR)


def _installed(library: Path) -> set[str]:
    """Module names (lower case) with a ``mods.d/*.conf`` in `library`."""
    conf = library / "mods.d"
    return {p.stem.lower() for p in conf.glob("*.conf")} if conf.is_dir() else set()


def available(*modules: str) -> bool:
    """Whether every named module is installed in `library_dir()` (and pysword imports)."""
    try:
        import pysword  # noqa: F401
    except ImportError:
        return False
    return {m.lower() for m in modules} <= _installed(library_dir())


def _bible(module: str, library: Path):
    try:
        from pysword.modules import SwordModules
    except ImportError as exc:
        raise DatasetError(
            "pysword is not installed: pip install 'algoperf[text]' (pysword==0.2.8)"
        ) from exc
    if module.lower() not in _installed(library):
        raise DatasetError(f"{library}: SWORD module {module} not found; {_install_hint(module)}")
    modules = SwordModules(str(library))
    modules.parse_modules()
    return _cache_blocks(modules.get_bible_from_module(module))


def _cache_blocks(bible):
    """Decompress each compressed block of a zText module once, not once per verse.

    pysword 0.2.8 (pinned) inflates a verse's whole block for every verse it reads, about 38k
    zlib calls for one Bible (a minute of CPU); the text is the same, only read once per block.
    """
    decompress = getattr(bible, "_decompressed_text", None)
    if decompress is not None:
        bible._decompressed_text = functools.lru_cache(maxsize=64)(decompress)
    return bible


def clean(markup: str) -> str:
    """A verse's OSIS markup as one line of plain text.

    Footnotes (``<note>``) stand between words in place of a space ("God<note/>created"), so each
    becomes a word gap unless punctuation follows; other tags are removed and entities unescaped.
    (pysword's own cleaner drops notes without the gap: "Godcreated".)
    """
    text = _NOTE.sub(_GAP, markup)
    text = _GAP_BEFORE_PUNCT.sub("", text)
    text = html.unescape(_TAG.sub("", text.replace(_GAP, " ")))
    return _SPACE.sub(" ", text).strip()


def verses(
    module: str, books: Sequence[str] | None = None, library: Path | None = None
) -> dict[VerseKey, str]:
    """Every non-empty verse of `module` (or of the OSIS `books` given), in canonical order."""
    bible = _bible(module, library or library_dir())
    structure = bible.get_structure().get_books()
    wanted = None if books is None else set(books)
    out: dict[VerseKey, str] = {}
    for testament in ("ot", "nt"):
        for book in structure.get(testament, []):
            if wanted is not None and book.osis_name not in wanted:
                continue
            keys = (
                (book.osis_name, chapter, verse)
                for chapter, length in enumerate(book.chapter_lengths, 1)
                for verse in range(1, length + 1)
            )
            for key, text in zip(
                keys, bible.get_iter(books=[book.osis_name], clean=False), strict=True
            ):
                line = clean(text)
                if line:
                    out[key] = line
    if wanted is not None and not {k[0] for k in out} >= wanted:
        missing = sorted(wanted - {k[0] for k in out})
        raise DatasetError(f"{module}: no verses for books {missing} (OSIS names, e.g. 'Matt')")
    return out


def parallel(
    source: str, target: str, books: Sequence[str] | None = None, library: Path | None = None
) -> list[tuple[VerseKey, str, str]]:
    """(key, source text, target text) for every verse non-empty in both, in canonical order."""
    src = verses(source, books, library)
    tgt = verses(target, books, library)
    return [(key, text, tgt[key]) for key, text in src.items() if key in tgt]


def split_by_book(
    rows: Iterable[tuple[VerseKey, str, str]], held_out: dict[str, Sequence[str]]
) -> dict[str, list[tuple[str, str]]]:
    """Pairs per split: books named in `held_out` (split -> books) go there, the rest to train."""
    owner = {book: split for split, names in held_out.items() for book in names}
    out: dict[str, list[tuple[str, str]]] = {"train": [], **{s: [] for s in held_out}}
    for (book, _, _), src, tgt in rows:
        out[owner.get(book, "train")].append((src, tgt))
    return out


def chapters(
    module: str, books: Sequence[str] | None = None, library: Path | None = None
) -> Iterator[str]:
    """Whole chapters of `module` as paragraphs of text (its verses joined by spaces)."""
    current: VerseKey | None = None
    parts: list[str] = []
    for key, text in verses(module, books, library).items():
        if current is not None and key[:2] != current[:2]:
            yield " ".join(parts)
            parts = []
        current = key
        parts.append(text)
    if parts:
        yield " ".join(parts)
