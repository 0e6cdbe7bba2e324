"""Download a public parallel corpus and turn it into TSV files ready for ``seqlab train``.

``seqlab data download tatoeba --pair en-pt`` fetches the English-Portuguese sentence pairs of
the Tatoeba project as exported for Anki by ManyThings.org (``por-eng.zip``, holding ``por.txt``
with lines ``English<TAB>Portuguese<TAB>attribution``), and writes ``tatoeba.en-pt.tsv``
(``source<TAB>target``). The sentences are licensed CC-BY 2.0 FR by their Tatoeba contributors;
the per-sentence attribution stays in the original archive (see https://tatoeba.org).

The network call is one injectable ``fetch(url) -> bytes`` function, so tests run on a local
archive. No checksum of the upstream file is pinned (it changes as Tatoeba grows): the digest of
what was downloaded is printed so that a run can pin it with ``sha256=...``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import sys
import unicodedata
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqlab import __version__
from seqlab.data.readers import DataWarning, read_parallel
from seqlab.errors import DataError, SeqlabError
from seqlab.io import atomic_write_text

__all__ = ["TATOEBA", "TatoebaSource", "download_tatoeba", "normalize_source", "split_tsv"]

_USER_AGENT = f"Mozilla/5.0 (compatible; seqlab/{__version__})"


@dataclass(frozen=True)
class TatoebaSource:
    """Where one language pair comes from.

    Attributes:
        url: the zip archive.
        member: the file inside the archive (``English<TAB>other<TAB>attribution`` lines).
        sha256: the expected digest of the archive, or None when none is pinned.
        reverse: write ``other<TAB>English`` instead of ``English<TAB>other``.
    """

    url: str
    member: str
    sha256: str | None = None
    reverse: bool = False


_MANYTHINGS_POR = "https://www.manythings.org/anki/por-eng.zip"
TATOEBA = {
    "en-pt": TatoebaSource(url=_MANYTHINGS_POR, member="por.txt"),
    "pt-en": TatoebaSource(url=_MANYTHINGS_POR, member="por.txt", reverse=True),
}
"""Language pairs ``download_tatoeba`` knows, as ``source-target``."""


def _urllib_fetch(url: str, timeout: float = 120.0) -> bytes:
    """GET ``url`` with a User-Agent header (some hosts refuse urllib's default one)."""
    import urllib.error  # imported here: most uses of seqlab.data never touch the network
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.URLError as e:
        raise SeqlabError(f"could not download {url}: {getattr(e, 'reason', e)}; "
                          "check the network connection, or pass url= a mirror") from None
    except OSError as e:
        raise SeqlabError(f"could not download {url}: {e}") from None


def _read_member(data: bytes, member: str, url: str) -> tuple[str, str]:
    """The text of ``member`` in the zip archive ``data``, and its name in the archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == member]
            if not names:
                raise SeqlabError(f"{url}: the archive has no {member} "
                                  f"(it holds: {', '.join(archive.namelist()) or 'nothing'})")
            raw = archive.read(names[0])
    except zipfile.BadZipFile:
        raise SeqlabError(f"{url}: the download is not a zip archive "
                          f"({len(data)} bytes starting {data[:16]!r})") from None
    try:
        return raw.decode("utf-8-sig"), names[0]
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{url}!{names[0]}", line, f"invalid UTF-8 byte at file offset {e.start}") from None


def _anki_to_tsv(text: str, where: str, reverse: bool) -> tuple[str, int]:
    """Convert ``English<TAB>other<TAB>attribution`` lines to ``source<TAB>target`` lines.

    Returns:
        The TSV text and its number of lines. Lines without two non-empty columns are dropped
        with a :class:`~seqlab.data.readers.DataWarning`.
    """
    out, bad = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        columns = [c.strip() for c in line.split("\t")]
        if len(columns) < 2 or not columns[0] or not columns[1]:
            bad.append(number)
            continue
        source, target = (columns[1], columns[0]) if reverse else (columns[0], columns[1])
        out.append(f"{source}\t{target}\n")
    if bad:
        warnings.warn(f"{where}: dropped {len(bad)} line(s) without two non-empty tab-separated columns "
                      f"(lines {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})", DataWarning)
    if not out:
        raise DataError(where, None, "no sentence pairs found; expected 'English<TAB>translation' lines")
    return "".join(out), len(out)


def download_tatoeba(pair: str = "en-pt", out_dir: str | os.PathLike = "data", *, url: str | None = None,
                     sha256: str | None = None, fetch: Callable[[str], bytes] | None = None) -> Path:
    """Download the Tatoeba sentence pairs for ``pair`` and write ``out_dir/tatoeba.<pair>.tsv``.

    Args:
        pair: ``"en-pt"`` or ``"pt-en"`` (the same archive, columns swapped); see :data:`TATOEBA`.
        out_dir: folder for the TSV (created if needed).
        url: download from here instead of the table's URL (a mirror).
        sha256: expected hex digest of the archive; overrides the table's.
        fetch: ``fetch(url) -> bytes``; the default uses urllib. Tests pass a local function.

    Returns:
        Path of the written TSV (``source<TAB>target`` a line, attribution dropped). The file is
        written to a temporary name and renamed, so it is never left half-written.

    Raises:
        SeqlabError: unknown pair, download failure, checksum mismatch (naming the URL and both
            digests), or an archive without the expected file.
    """
    if pair not in TATOEBA:
        raise SeqlabError(f"unknown Tatoeba pair {pair!r}; expected one of {', '.join(TATOEBA)}")
    source = TATOEBA[pair]
    url = url or source.url
    expected = (sha256 or source.sha256 or "").lower() or None
    data = (fetch or _urllib_fetch)(url)
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise SeqlabError(f"checksum mismatch for {url}: expected sha256 {expected}, got {digest}; "
                          "the file changed upstream or the download is corrupt")
    if expected is None:
        print(f"sha256 of {url}: {digest} (not verified; pass sha256= to pin it)", file=sys.stderr)
    text, member = _read_member(data, source.member, url)
    tsv, count = _anki_to_tsv(text, f"{url}!{member}", source.reverse)
    path = Path(out_dir) / f"tatoeba.{pair}.tsv"
    atomic_write_text(path, tsv)
    print(f"wrote {count} sentence pairs to {path}", file=sys.stderr)
    return path


def normalize_source(text: str) -> str:
    """Key under which two sources count as the same sentence: NFKC, casefolded, punctuation
    removed, whitespace collapsed ("Tom's here!" and "toms  here" share one key)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", "", text).split())


def split_tsv(path: str | os.PathLike, dev: int = 1000, test: int = 1000,
              seed: int = 1234) -> dict[str, Path]:
    """Split a TSV into train/dev/test files whose normalised sources never overlap.

    Pairs are grouped by :func:`normalize_source` of their source (Tatoeba often lists several
    translations of one sentence). ``dev`` and ``test`` groups are drawn at random with ``seed``;
    each contributes its first pair, so dev and test hold exactly ``dev`` and ``test`` lines with
    one reference each, and every other group goes to train whole. The files are written beside
    ``path`` as ``<stem>.train.tsv``, ``<stem>.dev.tsv`` and ``<stem>.test.tsv``, in input order.

    Returns:
        ``{"train": path, "dev": path, "test": path}``.

    Raises:
        DataError: the TSV is malformed, or has too few distinct sources for the split.
    """
    path = Path(path)
    pairs = read_parallel(str(path), format="tsv")
    groups: dict[str, list[int]] = {}
    for i, (source, _) in enumerate(pairs):
        groups.setdefault(normalize_source(source), []).append(i)
    if len(groups) <= dev + test:
        raise DataError(str(path), None, f"only {len(groups)} distinct sources; need more than "
                                         f"dev + test = {dev + test} to leave training data")
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    chosen = {"dev": keys[:dev], "test": keys[dev:dev + test]}
    held_out = set(keys[:dev + test])
    rows = {name: sorted(groups[k][0] for k in ks) for name, ks in chosen.items()}
    rows["train"] = [i for i, (source, _) in enumerate(pairs) if normalize_source(source) not in held_out]
    out = {}
    for name in ("train", "dev", "test"):
        out[name] = path.with_name(f"{path.stem}.{name}.tsv")
        atomic_write_text(out[name], "".join(f"{pairs[i][0]}\t{pairs[i][1]}\n" for i in rows[name]))
    return out
