"""Serving trained runs over HTTP: a JSON API, OpenAI's chat completions, and a web page.

``seqlab serve RUN [RUN ...]`` (:func:`serve`) loads the runs and starts uvicorn on loopback.
The pieces: :mod:`.models` (a run behind one interface), :mod:`.batcher` (dynamic batching in one
worker thread per model), :mod:`.limits`, :mod:`.conversations`, :mod:`.schemas`, :mod:`.app`
(the routes and the page), :mod:`.openai_compat`. FastAPI and uvicorn come with the ``serve``
extra (``pip install -e ".[serve]"``; the ``test`` extra includes it).
"""

from seqlab.serve.server import serve

__all__ = ["serve"]
