"""Fixtures for the server's tests: the tiny runs loaded once, an app over them, a live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the serve extra (FastAPI, uvicorn) is not installed")

from serve_helpers import live_server, make_client  # noqa: E402 - after the skip


@pytest.fixture(scope="session")
def served_models(tiny_run, tiny_gru_run, tmp_path_factory):
    """The tiny Transformer and GRU runs, loaded under the names ``tiny`` and ``gru``."""
    from seqlab.serve.models import load_models

    folder = tmp_path_factory.mktemp("served")
    (folder / "tiny").symlink_to(tiny_run.path, target_is_directory=True)
    (folder / "gru").symlink_to(tiny_gru_run.path, target_is_directory=True)
    return load_models([folder / "tiny", folder / "gru"])


@pytest.fixture
def client(served_models):
    with make_client(served_models) as c:
        yield c


@pytest.fixture(scope="module")
def live_url(served_models) -> Iterator[str]:
    """The base URL of a real uvicorn server over the tiny runs, for this test module."""
    from seqlab.serve.app import create_app

    with live_server(create_app(served_models)) as url:
        yield url
