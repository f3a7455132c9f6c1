"""`--mode serve`: a trained SentimentClassifier over HTTP (Starlette + uvicorn, requirements-serve.txt).

    POST /predict   {"text": ..., "aspects": [...]} or a list of them -> [the records of --mode predict]
    POST /explain   {"text": ..., "aspect": ...}                      -> the record of --mode explain (no PNG)
    GET  /health    model, task, categories (ACSA), checkpoint
    GET  /          the page (static/index.html): type a review, see each aspect's label and heat map

A bad request is HTTP 4xx with {"error": "..."}: the UserError message the command line prints after
`error:`. Model calls run one at a time under a lock (in Starlette's thread pool, so the event loop
keeps accepting connections): the same code path and batches as --mode predict, so the same numbers.
"""
import json
import logging
import signal
import socket
import threading
from pathlib import Path

from common.errors import UserError

from .requests import requests_from_items

STATIC = Path(__file__).with_name("static")
# What one request may hold: sizes that keep a single request from holding the model for long.
MAX_BODY_BYTES = 1_000_000
MAX_ASPECTS = 10_000
MAX_TEXT_CHARS = 5_000

log = logging.getLogger("absa.serve")


class RequestError(UserError):
    """A UserError with the HTTP status it answers with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def check_sizes(requests):
    """Requests [(text, aspects, where)] within this server's limits, else RequestError (413)."""
    total = sum(len(aspects) for _, aspects, _ in requests)
    if total > MAX_ASPECTS:
        raise RequestError(f"request: {total} aspects, more than this server's limit of {MAX_ASPECTS} per request",
                           413)
    for text, _, where in requests:
        if len(text) > MAX_TEXT_CHARS:
            raise RequestError(f"{where}: text of {len(text)} characters, more than this server's limit of "
                               f"{MAX_TEXT_CHARS}", 413)
    return requests


def predict_items(body):
    """The request list of a /predict body: one {"text", "aspects"} object or a list of them."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise RequestError('request: expected {"text": "...", "aspects": ["...", ...]} or a list of them')
    if not body:
        raise RequestError("request: an empty list (nothing to predict)")
    for k, item in enumerate(body):
        if "aspects" not in item:
            raise RequestError(f'item {k}: expected {{"text": "...", "aspects": ["...", ...]}}')
    return check_sizes(requests_from_items(body))


def explain_item(body):
    """(text, aspect) of an /explain body {"text": "...", "aspect": "..."}."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not isinstance(body.get("aspect"), str):
        raise RequestError('request: expected {"text": "...", "aspect": "..."}')
    (text, aspects, _), = check_sizes(requests_from_items([(body["text"], [body["aspect"]])]))
    return text, aspects[0]


def warm_up(clf):
    """One prediction (and explanation) before listening: the first request then does not pay for
    the tokeniser's lazy imports and the first model calls (seconds)."""
    text = "The food was good."
    aspect = "food" if clf.task == "atsa" else clf.categories[0]
    clf.predict([(text, [aspect])])
    if clf.model.explains():
        clf.explain(text, aspect)


def health(clf):
    return {"model": clf.cfg.name, "task": clf.task, "categories": list(clf.categories) if clf.categories else None,
            "checkpoint": str(clf.checkpoint), "explains": clf.model.explains()}


def need_serve_packages():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise UserError(f"--mode serve needs {err.name}: pip install -r requirements-serve.txt") from None


def make_app(clf):
    """The Starlette application serving `clf` (a SentimentClassifier)."""
    need_serve_packages()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    lock = threading.Lock()

    def locked(function, *args):
        with lock:
            return function(*args)

    async def read_json(request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(f"request: body of {declared} bytes, more than this server's limit of "
                               f"{MAX_BODY_BYTES}", 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(f"request: body over this server's limit of {MAX_BODY_BYTES} bytes", 413)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise RequestError(f"request: not valid JSON ({err})") from None

    async def predict(request):
        requests = predict_items(await read_json(request))
        return JSONResponse(await run_in_threadpool(locked, clf.predict_requests, requests))

    async def explain(request):
        text, aspect = explain_item(await read_json(request))
        return JSONResponse(await run_in_threadpool(locked, clf.explain, text, aspect))

    async def show_health(request):
        return JSONResponse(health(clf))

    async def page(request):
        return FileResponse(STATIC / "index.html")

    async def user_error(request, err):
        return JSONResponse({"error": str(err)}, status_code=getattr(err, "status", 400))

    async def http_error(request, err):
        return JSONResponse({"error": f"{request.method} {request.url.path}: {err.detail}"},
                            status_code=err.status_code)

    async def server_error(request, err):
        log.exception("%s %s failed", request.method, request.url.path)   # the traceback stays in the log
        return JSONResponse({"error": f"{request.method} {request.url.path}: internal error (see the server log)"},
                            status_code=500)

    routes = [Route("/", page), Route("/health", show_health), Route("/predict", predict, methods=["POST"]),
              Route("/explain", explain, methods=["POST"]), Mount("/static", StaticFiles(directory=STATIC))]
    return Starlette(routes=routes, exception_handlers={UserError: user_error, HTTPException: http_error,
                                                        Exception: server_error})


def bind(host, port):
    """A listening socket on host:port, or a UserError naming the option (a busy port, a bad host)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: not a port number (0-65535; 0 picks a free one)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as err:
        raise UserError(f"--host {host}: {err.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # a restart may reuse a port in TIME_WAIT
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        problem = "already in use (is another server running?)" if err.errno == 98 else err.strerror
        raise UserError(f"--port {port}: {host}:{port} {problem}") from None
    return sock


def serve(clf, host="127.0.0.1", port=8000, sock=None, access_log=True):
    """Serve `clf` on host:port (or on `sock`, from bind()) until SIGINT or SIGTERM; both stop it
    cleanly (in-flight requests finish) and return. The address is printed once listening (port 0:
    the one picked)."""
    need_serve_packages()
    import uvicorn
    sock = sock or bind(host, port)
    warm_up(clf)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(make_app(clf), log_level="info", access_log=access_log, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"serving {clf.cfg.name} ({clf.checkpoint}) on http://{url_host}:{bound_port}/ (Ctrl-C to stop)",
          flush=True)
    # uvicorn handles the signals while it runs and raises them again once it has shut down: to the
    # handlers below, so that a stop ends the command normally rather than as a kill or an interrupt.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("server stopped", flush=True)
