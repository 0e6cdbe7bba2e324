"""Start the server: load the runs, build the app, run uvicorn.

The server binds to loopback (127.0.0.1) unless told otherwise; any other address makes the models
reachable from other machines, so :func:`serve` warns when it is given one.
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.serve.limits import ServeLimits

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(runs: list[str | Path], *, host: str = "127.0.0.1", port: int = 8000, checkpoint: str = "best",
          limits: ServeLimits | None = None, max_batch: int = 32, batch_wait: float = 0.005,
          threads: int | None = None, log_level: str = "info", engine: str = "native",
          precision: str | None = None) -> None:
    """Serve ``runs`` until interrupted.

    Args:
        runs: run folders; each is served under its folder name.
        host, port: where to listen (loopback by default).
        checkpoint: ``best`` or ``last`` of every run.
        limits: request limits (default :class:`ServeLimits`).
        max_batch: most texts decoded in one batch (1: no dynamic batching).
        batch_wait: seconds a model waits for more requests to batch with the first.
        threads: torch intra-op threads (default: torch's own choice).
        engine, precision: how every run decodes (:func:`seqlab.load`; an exported engine serves
            translation runs only).
    """
    try:
        import uvicorn

        from seqlab.serve.app import create_app
    except ImportError as err:
        raise SeqlabError(f"seqlab serve needs FastAPI and uvicorn ({err.name} is missing): "
                          'pip install -e ".[serve]"') from None
    import torch

    from seqlab.serve.models import load_models

    if threads is not None:
        torch.set_num_threads(threads)
    if not is_loopback(host):
        warnings.warn(f"serving on {host}, not loopback: anyone who can reach this machine on port {port} "
                      "can use the models (there is no authentication)", stacklevel=2)
    models = load_models(runs, checkpoint=checkpoint, engine=engine, precision=precision)
    app = create_app(models, limits=limits, max_batch=max_batch, batch_wait=batch_wait)
    print(f"seqlab serve: {', '.join(models)} on http://{host}:{port}/ (API docs at /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
