import hashlib
import io
import zipfile

import pytest

from seqlab.data.download import TATOEBA, download_tatoeba, normalize_source, split_tsv
from seqlab.data.readers import read_parallel
from seqlab.errors import DataError, SeqlabError

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #2917397 (alexmarcelo)"
POR_TXT = f"Go.\tVai.\t{ATTRIBUTION}\r\nHi.\tOi.\t{ATTRIBUTION}\nRun!\tCorra!\t{ATTRIBUTION}\n"


def make_zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


class FakeFetch:
    """Stands in for the network: records the URLs asked for and returns fixed bytes."""

    def __init__(self, data):
        self.data, self.urls = data, []

    def __call__(self, url):
        self.urls.append(url)
        return self.data


def test_download_writes_tsv_without_attribution(tmp_path, capsys):
    data = make_zip({"_about.txt": "about", "por.txt": POR_TXT})
    fetch = FakeFetch(data)
    path = download_tatoeba("en-pt", tmp_path / "data", fetch=fetch)
    assert path == tmp_path / "data" / "tatoeba.en-pt.tsv"
    assert path.read_text(encoding="utf-8") == "Go.\tVai.\nHi.\tOi.\nRun!\tCorra!\n"
    assert fetch.urls == ["https://www.manythings.org/anki/por-eng.zip"]
    assert hashlib.sha256(data).hexdigest() in capsys.readouterr().err  # the digest to pin
    assert sorted(p.name for p in path.parent.iterdir()) == ["tatoeba.en-pt.tsv"]  # no temp file left
    assert read_parallel(str(path)) == [("Go.", "Vai."), ("Hi.", "Oi."), ("Run!", "Corra!")]


def test_pt_en_reverses_columns_and_checksum_is_verified(tmp_path):
    data = make_zip({"por-eng/por.txt": POR_TXT})
    digest = hashlib.sha256(data).hexdigest()
    path = download_tatoeba("pt-en", tmp_path, sha256=digest.upper(), fetch=FakeFetch(data),
                            url="https://mirror.example/por-eng.zip")
    assert path.name == "tatoeba.pt-en.tsv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "Vai.\tGo."


def test_checksum_mismatch_names_url_and_both_digests(tmp_path):
    data = make_zip({"por.txt": POR_TXT})
    with pytest.raises(SeqlabError) as info:
        download_tatoeba("en-pt", tmp_path, sha256="0" * 64, fetch=FakeFetch(data))
    message = str(info.value)
    assert message.startswith(f"checksum mismatch for {TATOEBA['en-pt'].url}: expected sha256 {'0' * 64}, "
                              f"got {hashlib.sha256(data).hexdigest()}")
    assert list(tmp_path.iterdir()) == []


def test_bad_archives_and_pairs_are_reported(tmp_path):
    with pytest.raises(SeqlabError, match="not a zip archive"):
        download_tatoeba("en-pt", tmp_path, fetch=FakeFetch(b"<html>rate limited</html>"))
    with pytest.raises(SeqlabError, match=r"has no por.txt \(it holds: deu.txt\)"):
        download_tatoeba("en-pt", tmp_path, fetch=FakeFetch(make_zip({"deu.txt": POR_TXT})))
    with pytest.raises(SeqlabError, match="unknown Tatoeba pair 'en-xx'; expected one of en-pt, pt-en"):
        download_tatoeba("en-xx", tmp_path, fetch=FakeFetch(b""))


def test_split_is_disjoint_by_normalised_source(tmp_path):
    lines = []
    for i in range(40):
        lines.append(f"Sentence {i}.\tFrase {i}.\n")
        if i % 4 == 0:  # the same source again, differently cased and punctuated
            lines.append(f"sentence  {i}!\tOutra frase {i}.\n")
    tsv = tmp_path / "tatoeba.en-pt.tsv"
    tsv.write_text("".join(lines), encoding="utf-8")
    paths = split_tsv(tsv, dev=5, test=6, seed=3)
    assert {k: p.name for k, p in paths.items()} == {
        "train": "tatoeba.en-pt.train.tsv", "dev": "tatoeba.en-pt.dev.tsv", "test": "tatoeba.en-pt.test.tsv"}
    parts = {name: read_parallel(str(p)) for name, p in paths.items()}
    keys = {name: {normalize_source(s) for s, _ in pairs} for name, pairs in parts.items()}
    assert (len(parts["dev"]), len(parts["test"])) == (5, 6)
    assert len(keys["dev"]) == 5 and len(keys["test"]) == 6
    assert not keys["train"] & keys["dev"] and not keys["train"] & keys["test"] and not keys["dev"] & keys["test"]
    assert len(keys["train"]) == 40 - 11  # every other source is kept for training, with all its translations
    assert split_tsv(tsv, dev=5, test=6, seed=3)["dev"].read_text() == paths["dev"].read_text()
    with pytest.raises(DataError, match="only 40 distinct sources"):
        split_tsv(tsv, dev=20, test=20)


def test_default_fetch_reads_a_local_url_and_reports_failures(tmp_path):
    archive = tmp_path / "por-eng.zip"
    archive.write_bytes(make_zip({"por.txt": POR_TXT}))
    path = download_tatoeba("en-pt", tmp_path / "out", url=archive.as_uri())  # urllib, no network
    assert path.read_text(encoding="utf-8").startswith("Go.\tVai.\n")
    missing = (tmp_path / "missing.zip").as_uri()
    with pytest.raises(SeqlabError, match=f"could not download {missing}"):
        download_tatoeba("en-pt", tmp_path / "out", url=missing)
