"""`--mode serve`: a trained SentimentClassifier over HTTP (Starlette + uvicorn, requirements-serve.txt).

    POST /predict   {"text": ..., "aspects": [...]} or a list of them -> [the records of --mode predict]
    POST /explain   {"text": ..., "aspect": ...}                      -> the record of --mode explain (no PNG)
    GET  /health    model, task, categories (ACSA), explains
    GET  /          the page (static/index.html): type a review, see each aspect's label and heat map

A bad request is HTTP 4xx with {"error": "..."}: the UserError message the command line prints after
`error:`. Only requests whose Host header names the bound address (or a name given with
--allow-host) are answered, and POST bodies must be application/json: a web page the user visits
can neither reach the server through a name of its own (DNS rebinding) nor post a form to it.

One worker thread makes every model call (train/inference/batching.py): requests that arrive
together share a call, and a large request is cut into turns served in turn with the others
(inference.max_batch, max_delay_ms, turn in configs/default.yaml). Checking, encoding and writing
the answer happen outside it: on the event loop for small requests, in Starlette's thread pool for
large ones.
"""
import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import signal
import socket
import sys
from pathlib import Path

from common.errors import UserError

from .batching import MicroBatcher
from .requests import requests_from_items

STATIC = Path(__file__).with_name("static")
# What one request may hold: sizes that keep a single request from holding the server for long.
MAX_BODY_BYTES = 1_000_000
MAX_ASPECTS = 10_000
MAX_TEXT_CHARS = 5_000
BODY_SECONDS = 10   # a body must arrive within this long (408 otherwise): a stalled client holds nothing for long,
                    # and is answered before a stop's grace period (10 s) runs out
# Requests of at most this many aspects are checked, encoded and answered on the event loop (well
# under a millisecond); larger ones in the thread pool, so the loop keeps serving the small ones.
INLINE_ASPECTS = 16
INLINE_BODY_BYTES = 65_536
SWITCH_INTERVAL = 0.001   # seconds between hand-overs of the interpreter lock while serving (Python's: 0.005)
GC_THRESHOLDS = (700, 10, 10_000)   # while serving; Python's are (700, 10, 10): a full collection every 100 young

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
        if not isinstance(item.get("aspects"), list):     # the HTTP API takes a list, as --input does
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
    """What the server holds: the model (its run name), task, ACSA categories and whether it explains;
    no file-system path (any caller may ask)."""
    return {"model": clf.cfg.name, "task": clf.task, "categories": list(clf.categories) if clf.categories else None,
            "explains": clf.model.explains()}


def need_serve_packages():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise UserError(f"--mode serve needs {err.name}: pip install -r requirements-serve.txt") from None


# ---------------------------------------------------------------------------- who may ask

def host_name(header):
    """The name of a Host header value ("127.0.0.1:8000" -> "127.0.0.1", "[::1]:8000" -> "::1"), lower
    case, without a trailing dot; None for a value that is not host[:port]."""
    value = header.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    else:
        name, colon, port = value.rpartition(":") if ":" in value else (value, "", "")
        if colon and not port.isdigit():
            return None
    name = name.rstrip(".")
    return name or None


def _ip(name):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostPolicy:
    """The Host header names a server bound to `address` answers: the address itself; "localhost"
    when it is a loopback address; for a wildcard bind (0.0.0.0, ::), any IP address, localhost and
    this machine's names; and the names in `allowed` (--allow-host). Any other name reached the
    server through a DNS name someone else controls (DNS rebinding): refused."""

    def __init__(self, address, allowed=()):
        self.address = address.strip("[]").lower()
        ip = _ip(self.address)
        self.any_ip = ip is not None and ip.is_unspecified
        self.names = {self.address, *(n.strip().lower().rstrip(".") for n in allowed)}
        if ip is not None and (ip.is_loopback or ip.is_unspecified):
            self.names.add("localhost")
        if self.any_ip:
            self.names |= {socket.gethostname().lower(), socket.getfqdn().lower()}

    def allows(self, header):
        name = host_name(header or "")
        if name is None:
            return False
        if name in self.names:
            return True
        ip = _ip(name)
        return ip is not None and (self.any_ip or ip == _ip(self.address))

    def describe(self):
        shown = sorted(self.names) + (["any IP address"] if self.any_ip else [])
        return ", ".join(shown)


def check_host(policy, headers):
    """A RequestError (400) unless the Host header is one `policy` allows."""
    host = headers.get("host")
    if host is None:
        raise RequestError("request: no Host header (this server answers only requests that name it)")
    if not policy.allows(host):
        raise RequestError(f"request: Host {host!r} is not this server's name (it answers {policy.describe()}; "
                           f"--allow-host NAME adds one)")


def check_json_content_type(headers):
    """A RequestError (415) unless the body is declared application/json (a cross-site form cannot
    send that type without the browser asking the server first, and this server never agrees)."""
    declared = headers.get("content-type", "")
    kind, *parameters = declared.split(";")
    if kind.strip().lower() != "application/json":
        shown = repr(declared) if declared else "missing"
        raise RequestError(f"request: Content-Type {shown}; this server takes application/json bodies", 415)
    for parameter in parameters:   # JSON is UTF-8 (RFC 8259); a body declared otherwise would be misread
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError(f"request: Content-Type {declared!r}; this server reads JSON bodies as UTF-8 "
                               f"(charset=utf-8, or no charset)", 415)


# ---------------------------------------------------------------------------- the model calls

class ExplainCall:
    """An /explain job: one model call of its own, in the worker's turn order."""

    def __init__(self, clf, text, aspect):
        self.clf, self.text, self.aspect = clf, text, aspect

    def __call__(self):
        return self.clf.explain(self.text, self.aspect)


def model_calls(clf):
    """The batcher's run(): the /predict pieces of a call in one model call (clf.score_pieces), each
    /explain job by itself; a job's own mistake (an exception) fails that job only."""
    from .api import Prepared

    def run(pieces):
        predicted = [(payload, start, stop) for payload, start, stop in pieces if isinstance(payload, Prepared)]
        scores = iter(clf.score_pieces(predicted) if predicted else ())
        results = []
        for payload, _, _ in pieces:
            if isinstance(payload, Prepared):
                results.append(next(scores))
                continue
            try:
                results.append(payload())
            except Exception as err:   # noqa: BLE001 - handed to the request, which answers it
                results.append(err)
        return results
    return run


def make_batcher(clf, settings):
    """The MicroBatcher of clf's model calls; settings: inference.max_batch, max_delay_ms, turn."""
    return MicroBatcher(model_calls(clf), settings.max_batch, settings.max_delay_ms / 1000.0, settings.turn)


def json_bytes(value, piece=256):
    """The body Starlette's JSONResponse would send for `value`; a long list is written `piece` items
    at a time (json.dumps holds the interpreter lock for the whole of one call: tens of ms for 10,000
    records, which every other request would wait for)."""
    def dumps(part):
        return json.dumps(part, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
    if not isinstance(value, list) or len(value) <= piece:
        return dumps(value)
    return b"[" + b",".join(dumps(value[k:k + piece])[1:-1] for k in range(0, len(value), piece)) + b"]"


def make_app(clf, settings=None, hosts=None):
    """The Starlette application serving `clf` (a SentimentClassifier). settings: the inference
    section (default: clf.cfg.inference); hosts: a HostPolicy (default: a server on 127.0.0.1)."""
    need_serve_packages()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    settings = settings or clf.cfg.inference
    hosts = hosts or HostPolicy("127.0.0.1")
    batcher = make_batcher(clf, settings).start()

    async def read_json(request):
        check_json_content_type(request.headers)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(f"request: body of {declared} bytes, more than this server's limit of "
                               f"{MAX_BODY_BYTES}", 413)
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_SECONDS):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise RequestError(f"request: body over this server's limit of {MAX_BODY_BYTES} bytes", 413)
        except TimeoutError:
            raise RequestError(f"request: the body did not arrive within {BODY_SECONDS} s", 408) from None
        return bytes(body)

    async def off_loop(small, function, *args):
        """function(*args) on the event loop when `small`, else in the thread pool."""
        return function(*args) if small else await run_in_threadpool(function, *args)

    def prepare(body):
        return clf.prepare(predict_items(parse_json(body)))

    def answer(prepared, scores):
        return json_bytes(clf.records(prepared.instances, _concat(scores)) if prepared.instances else [])

    async def predict(request):
        body = await read_json(request)
        prepared = await off_loop(len(body) <= INLINE_BODY_BYTES and _few_aspects(body), prepare, body)
        scores = await asyncio.wrap_future(batcher.submit(prepared, len(prepared)))
        content = await off_loop(len(prepared) <= INLINE_ASPECTS, answer, prepared, scores)
        return Response(content, media_type="application/json")

    async def explain(request):
        text, aspect = explain_item(parse_json(await read_json(request)))
        (record,) = await asyncio.wrap_future(batcher.submit(ExplainCall(clf, text, aspect), 1))
        return Response(await run_in_threadpool(json_bytes, record), media_type="application/json")

    async def show_health(request):
        return JSONResponse(health(clf))

    async def page(request):
        return FileResponse(STATIC / "index.html")

    async def user_error(request, err):
        return JSONResponse({"error": str(err)}, status_code=getattr(err, "status", 400))

    async def http_error(request, err):
        return JSONResponse({"error": f"{request.method} {request.url.path}: {err.detail}"},
                            status_code=err.status_code)

    async def client_gone(request, err):   # closed before its body arrived: no one to answer, nothing to log
        return Response(status_code=400)

    async def server_error(request, err):
        log.error("%s %s failed", request.method, request.url.path,
                  exc_info=(type(err), err, err.__traceback__))   # the traceback stays in the log
        return JSONResponse({"error": f"{request.method} {request.url.path}: internal error (see the server log)"},
                            status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(batcher.close, 30)   # after the requests in flight (uvicorn waits for them)

    routes = [Route("/", page), Route("/health", show_health), Route("/predict", predict, methods=["POST"]),
              Route("/explain", explain, methods=["POST"]), Mount("/static", StaticFiles(directory=STATIC))]
    app = Starlette(routes=routes, middleware=[Middleware(HostCheck, policy=hosts)], lifespan=lifespan,
                    exception_handlers={UserError: user_error, HTTPException: http_error, ClientDisconnect: client_gone,
                                        Exception: server_error})
    app.state.batcher = batcher
    return app


def parse_json(body):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"request: not valid JSON ({err})") from None
    except RecursionError:
        raise RequestError("request: not valid JSON (nested too deeply)") from None


def _few_aspects(body):
    """Whether a body can hold at most INLINE_ASPECTS aspects (a cheap upper bound: its quotes)."""
    return body.count(b'"') <= 4 * (INLINE_ASPECTS + 2)


def _concat(scores):
    import torch
    return scores[0] if len(scores) == 1 else torch.cat(scores)


class HostCheck:
    """ASGI middleware: HTTP requests whose Host header the HostPolicy refuses get a 400 JSON error
    and reach nothing else."""

    def __init__(self, app, policy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                check_host(self.policy, headers)
            except RequestError as err:
                from starlette.responses import JSONResponse
                await JSONResponse({"error": str(err)}, status_code=err.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def bind(host, port):
    """A listening socket on host:port, or a UserError naming the option (a busy port, a bad host)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: not a port number (0-65535; 0 picks a free one)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as err:
        raise UserError(f"--host {host}: {err.strerror}") from None
    # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say so,
    # and with it on, an answer written in two pieces (head, body) waits for the client's delayed
    # acknowledgement: 40 ms a request on Linux. Set on the listening socket too (accepted ones inherit it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # a restart may reuse a port in TIME_WAIT
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        problem = "already in use (is another server running?)" if err.errno == 98 else err.strerror
        raise UserError(f"--port {port}: {host}:{port} {problem}") from None
    return sock


@contextlib.contextmanager
def interpreter_tuned_for_serving():
    """While serving: the event loop, the model's worker and a thread encoding a large request take
    turns on the interpreter lock, handed over every SWITCH_INTERVAL seconds (Python's default: 5 ms);
    and the objects of start-up (torch, the model, the tokeniser: about 170,000) are frozen out of the
    garbage collector, whose full collections otherwise scan them all, holding the lock for 0.2-0.3 s
    while a large request allocates, with full collections rarer still (GC_THRESHOLDS). The objects
    of requests are freed by reference counting as before."""
    switch_interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)


def serve(clf, host="127.0.0.1", port=8000, sock=None, access_log=True, allowed_hosts=(), settings=None):
    """Serve `clf` on host:port (or on `sock`, from bind()) until SIGINT or SIGTERM; both stop it
    cleanly (in-flight requests finish) and return. The address is printed once listening (port 0:
    the one picked). allowed_hosts: Host names answered besides the bound address (--allow-host);
    settings: the inference section (default: clf.cfg.inference)."""
    need_serve_packages()
    import uvicorn
    sock = sock or bind(host, port)
    warm_up(clf)
    bound_host, bound_port = sock.getsockname()[:2]
    app = make_app(clf, settings, HostPolicy(bound_host, allowed_hosts))
    config = uvicorn.Config(app, log_level="info", access_log=access_log, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"serving {clf.cfg.name} ({clf.checkpoint}) on http://{url_host}:{bound_port}/ (Ctrl-C to stop)",
          flush=True)
    # uvicorn handles the signals while it runs and raises them again once it has shut down: to the
    # handlers below, so that a stop ends the command normally rather than as a kill or an interrupt.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with interpreter_tuned_for_serving():
            server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.batcher.close(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("server stopped", flush=True)
