"""--mode serve (train/inference/serve.py): the HTTP API against the command line, its bad requests, a
big batch, concurrent clients, the page in a real headless Chromium, stopping on signals and a busy port.

Tiny CapsNet (ATSA and ACSA) and LSTM runs are trained once per module on a few sentences of own data
(one epoch, in this process); every output goes to tmp folders. The API tests use Starlette's
TestClient; the concurrency and browser tests a real uvicorn server on a free loopback port.
"""
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from common.errors import UserError
from conftest import REPO_ROOT, compose_cfg

for _package in ("starlette", "uvicorn", "httpx"):
    pytest.importorskip(_package, reason=f"{_package} is not installed (optional: pip install -r "
                                         "requirements-serve.txt)")

from starlette.testclient import TestClient  # noqa: E402

from train.inference.api import SentimentClassifier  # noqa: E402
from train.inference.explain import explain_job  # noqa: E402
from train.inference.serve import (  # noqa: E402
    MAX_ASPECTS,
    MAX_BODY_BYTES,
    MAX_TEXT_CHARS,
    HostPolicy,
    bind,
    make_app,
)

MAMS = "The decor is not special at all but their food is amazing."
SENTENCES = [
    (MAMS, [("decor", "negative"), ("food", "positive")]),
    ("The food was great but the service slow.", [("food", "positive"), ("service", "negative")]),
    ("Friendly staff and a bad menu.", [("staff", "positive"), ("menu", "negative")]),
    ("The prices are fair and the place is quiet.", [("prices", "positive"), ("place", "neutral")]),
    ("Their pasta was cold and the waiter rude.", [("pasta", "negative"), ("waiter", "negative")]),
    ("We ordered the soup, the bread came first.", [("soup", "neutral"), ("bread", "neutral")]),
]
CATEGORY = {"decor": "ambience", "food": "food", "service": "service", "staff": "staff", "menu": "menu",
            "prices": "price", "place": "place", "pasta": "food", "waiter": "staff", "soup": "food",
            "bread": "food"}


def write_own_data(folder, task):
    """train/val/test.jsonl of SENTENCES (train repeated four times): terms (atsa) or categories (acsa)."""
    folder.mkdir(parents=True)
    for split, repeats in (("train", 4), ("val", 1), ("test", 1)):
        lines = []
        for text, aspects in SENTENCES * repeats:
            if task == "atsa":
                found = [{"term": w, "from": text.index(w), "to": text.index(w) + len(w), "polarity": p}
                         for w, p in aspects]
            else:
                found = [{"category": CATEGORY[w], "polarity": p} for w, p in aspects]
            lines.append(json.dumps({"text": text, "aspects": found}) + "\n")
        (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{"atsa" | "acsa" | "lstm": checkpoint path} of one-epoch runs on own data."""
    from train.run import train_job
    tmp = tmp_path_factory.mktemp("serve")
    found = {}
    for name, model, task in (("atsa", "capsnet", "atsa"), ("acsa", "capsnet", "acsa"), ("lstm", "lstm", "atsa")):
        data = tmp / f"own-{name}"
        if not data.exists():
            write_own_data(data, task)
        cfg = compose_cfg(str(data), model, tmp / "processed", tmp / "runs", ["train.epochs=1"])
        train_job(cfg, 0, "cpu")
        found[name] = next((tmp / "runs").glob(f"user-own-{name}-*/{model}/seed0/checkpoint.pt"))
    return found


@pytest.fixture(scope="module")
def classifiers(checkpoints):
    return {name: SentimentClassifier.load(path, device="cpu") for name, path in checkpoints.items()}


BASE_URL = "http://127.0.0.1:8000"   # the Host the server answers by default


@pytest.fixture(scope="module")
def clients(classifiers):
    return {name: TestClient(make_app(clf), base_url=BASE_URL) for name, clf in classifiers.items()}


def assert_same_answers(got, expected):
    """The records of --mode predict: the same texts, aspects and labels, and the same scores to the
    4 decimals shown, but for one unit in the last where float32 sums over a batch composed of other
    requests' rows (differences of about 1e-7) round the other way."""
    assert [(r["text"], r["aspect"], r["label"]) for r in got] == \
        [(r["text"], r["aspect"], r["label"]) for r in expected]
    for g, e in zip(got, expected):
        assert g["scores"].keys() == e["scores"].keys()
        assert all(abs(g["scores"][k] - e["scores"][k]) <= 1.0001e-4 for k in g["scores"]), (g, e)


def run_main(*args, timeout=300):
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_predict_answers_the_records_of_the_command_line(clients, checkpoints):
    response = clients["atsa"].post("/predict", json={"text": MAMS, "aspects": ["decor", "food"]})
    cli = run_main("--mode", "predict", "--checkpoint", str(checkpoints["atsa"]), "--device", "cpu",
                   "--text", MAMS, "--aspect", "decor", "--aspect", "food")
    assert cli.returncode == 0, cli.stderr
    assert response.status_code == 200
    assert response.json() == json_lines(cli.stdout)
    assert [r["aspect"] for r in response.json()] == ["decor", "food"]


def test_predict_takes_a_list_of_requests_and_keeps_their_order(clients, classifiers):
    body = [{"text": text, "aspects": [w for w, _ in aspects][::-1]} for text, aspects in SENTENCES]
    response = clients["atsa"].post("/predict", json=body)
    assert response.status_code == 200
    assert response.json() == classifiers["atsa"].predict(body)
    assert [r["aspect"] for r in response.json()] == [w for _, aspects in SENTENCES for w, _ in aspects[::-1]]


def test_predict_on_acsa_takes_the_models_categories(clients, classifiers):
    response = clients["acsa"].post("/predict", json={"text": MAMS, "aspects": ["ambience", "food"]})
    assert response.status_code == 200
    assert response.json() == classifiers["acsa"].predict([(MAMS, ["ambience", "food"])])


@pytest.mark.parametrize("name", ["atsa", "acsa"])
def test_explain_answers_the_record_of_the_command_line_without_a_png(clients, classifiers, name, tmp_path):
    aspect = "decor" if name == "atsa" else "ambience"
    response = clients[name].post("/explain", json={"text": MAMS, "aspect": aspect})
    cli, = explain_job(classifiers[name], [(MAMS, [aspect], "--text")], tmp_path / "map.png")   # --mode explain
    assert response.status_code == 200
    record = response.json()
    assert "png" not in record and record == {k: v for k, v in cli.items() if k != "png"}
    assert [m["name"].split(":")[0] for m in record["weights"]] == ["u_i", "w_ij"]
    assert all(len(row) == len(m["words"]) for m in record["weights"] for row in m["rows"].values())


@pytest.mark.parametrize("name, task, categories", [
    ("atsa", "atsa", None),
    ("acsa", "acsa", ["ambience", "food", "service", "staff", "menu", "price", "place"]),
])
def test_health_names_the_model_task_and_categories_and_no_file_system_path(clients, checkpoints, name, task,
                                                                            categories):
    response = clients[name].get("/health")
    assert response.status_code == 200
    assert response.json() == {"model": "capsnet", "task": task, "categories": categories, "explains": True}
    assert str(checkpoints[name].parents[3]) not in response.text   # no part of the runs folder's path


def api_error(call):
    with pytest.raises(UserError) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize("case", ["malformed JSON", "not a request", "no aspects key", "aspect not in the text",
                                  "empty text", "unknown category", "text over the limit", "too many aspects",
                                  "body over the limit", "explain without aspect", "explain aspect not in the text",
                                  "explain on a model without weights"])
def test_a_bad_request_is_a_4xx_with_the_command_lines_words_and_the_server_keeps_serving(clients, classifiers,
                                                                                           case):
    atsa = classifiers["atsa"]
    cases = {   # (client, path, body, status, the error's words)
        "malformed JSON": ("atsa", "/predict", '{"text": "oops", "aspects": [', 400,
                           "request: not valid JSON (Expecting value: line 1 column 30 (char 29))"),
        "not a request": ("atsa", "/predict", "42", 400,
                          'request: expected {"text": "...", "aspects": ["...", ...]} or a list of them'),
        "no aspects key": ("atsa", "/predict", {"text": MAMS}, 400,
                           'item 0: expected {"text": "...", "aspects": ["...", ...]}'),
        "aspect not in the text": ("atsa", "/predict", [{"text": MAMS, "aspects": ["food"]},
                                                        {"text": MAMS, "aspects": ["wine"]}], 400,
                                   api_error(lambda: atsa.predict([(MAMS, ["food"]), (MAMS, ["wine"])]))),
        "empty text": ("atsa", "/predict", {"text": "  ", "aspects": ["food"]}, 400,
                       api_error(lambda: atsa.predict([("  ", ["food"])]))),
        "unknown category": ("acsa", "/predict", {"text": MAMS, "aspects": ["decor"]}, 400,
                             api_error(lambda: classifiers["acsa"].predict([(MAMS, ["decor"])]))),
        "text over the limit": ("atsa", "/predict", {"text": "food " * MAX_TEXT_CHARS, "aspects": ["food"]}, 413,
                                f"item 0: text of {5 * MAX_TEXT_CHARS} characters, more than this server's limit "
                                f"of {MAX_TEXT_CHARS}"),
        "too many aspects": ("atsa", "/predict", {"text": MAMS, "aspects": ["food"] * (MAX_ASPECTS + 1)}, 413,
                             f"request: {MAX_ASPECTS + 1} aspects, more than this server's limit of {MAX_ASPECTS} "
                             "per request"),
        "body over the limit": ("atsa", "/predict", " " * (MAX_BODY_BYTES + 1), 413,
                                f"request: body of {MAX_BODY_BYTES + 1} bytes, more than this server's limit of "
                                f"{MAX_BODY_BYTES}"),
        "explain without aspect": ("atsa", "/explain", {"text": MAMS, "aspects": ["food"]}, 400,
                                   'request: expected {"text": "...", "aspect": "..."}'),
        "explain aspect not in the text": ("atsa", "/explain", {"text": MAMS, "aspect": "wine"}, 400,
                                           api_error(lambda: atsa.explain(MAMS, "wine"))),
        "explain on a model without weights": ("lstm", "/explain", {"text": MAMS, "aspect": "food"}, 400,
                                               api_error(lambda: classifiers["lstm"].explain(MAMS, "food"))),
    }
    name, path, body, status, words = cases[case]
    client = clients[name]
    sent = {"content": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, str) \
        else {"json": body}
    response = client.post(path, **sent)
    assert (response.status_code, response.json()) == (status, {"error": words})
    assert "Traceback" not in response.text
    assert client.get("/health").status_code == 200   # still serving
    assert client.post("/predict", json={"text": MAMS, "aspects": ["food"]}).status_code == 200


@pytest.mark.parametrize("body", [
    b"[" * 100_000,                                      # nested past the parser's recursion limit
    b'{"text": "The food", "aspects": ["food"]',         # cut short
    b"\xff\xfe\x00garbage", b"", b"null", b"true", b'"food"', b"[1, 2]", b"[[]]", b'{"text": 1, "aspects": ["a"]}',
    b'{"text": null, "aspects": []}', b'{"text": "food", "aspects": {"food": 1}}', b'{"text": "food", "aspects": [7]}',
    b'{"text": "food", "aspects": [["food"]]}', b'{"text": "food", "aspects": null}', b'{"aspects": ["food"]}',
    b'{"text": "\\ud800 food", "aspects": ["food"]}', b'{"text": "food", "aspects": ["\\udfff"]}',
    b'{"text": "food", "aspects": ["food"], "n": 1' + b"1" * 5000 + b"}", b'{"text": "food", "aspects": [""]}',
    b'{"text": "food", "aspects": ["   "]}', b'{"text": NaN, "aspects": ["food"]}', b"[{}]", b"[]", b"{}",
    b'{"text": "The food and wine", "aspects": "wine"}',   # a string, not a list (--input refuses it too)
])
@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_every_malformed_body_is_a_400_in_words_never_a_500(clients, path, body):
    response = clients["atsa"].post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(("request: ", "item 0: ")) and "Traceback" not in error and "\n" not in error


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_a_post_body_not_declared_application_json_is_a_415(clients, path, content_type):
    body = json.dumps({"text": MAMS, "aspects": ["food"], "aspect": "food"})
    headers = {"Content-Type": content_type} if content_type else {}
    response = clients["atsa"].post(path, content=body, headers=headers)
    assert response.status_code == 415
    assert response.json() == {"error": f"request: Content-Type {repr(content_type) if content_type else 'missing'}; "
                                        "this server takes application/json bodies"}
    ok = clients["atsa"].post(path, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200

def test_a_json_body_declared_in_a_charset_other_than_utf8_is_a_415_not_misread(clients):
    text = "Le café était froid."
    body = json.dumps({"text": text, "aspects": ["café"]}, ensure_ascii=False)
    refused = clients["atsa"].post("/predict", content=body.encode("latin-1"),
                                   headers={"Content-Type": "application/json; charset=ISO-8859-1"})
    assert refused.status_code == 415
    assert "reads JSON bodies as UTF-8" in refused.json()["error"]
    for declared in ("application/json; charset=UTF-8", 'application/json; charset="utf8"'):
        answered = clients["atsa"].post("/predict", content=body.encode("utf-8"), headers={"Content-Type": declared})
        assert answered.status_code == 200 and answered.json()[0]["aspect"] == "café"



@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "testserver",
                                  "10.0.0.7:8000", "[::1]:8000", "127.0.0.1:8000:80", ""])
def test_a_foreign_host_header_is_refused_on_every_path(classifiers, host):
    client = TestClient(make_app(classifiers["atsa"]), base_url=BASE_URL)
    for method, path in (("GET", "/health"), ("GET", "/"), ("POST", "/predict")):
        response = client.request(method, path, json={"text": MAMS, "aspects": ["food"]}, headers={"Host": host})
        assert response.status_code == 400
        assert response.json()["error"].startswith(f"request: Host {host!r} is not this server's name (it answers "
                                                   "127.0.0.1, localhost; --allow-host NAME adds one)")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "localhost.:80",
                                  "reviews.lan:8000"])
def test_the_bound_address_localhost_and_allowed_names_are_served(classifiers, host):
    app = make_app(classifiers["atsa"], hosts=HostPolicy("127.0.0.1", ["reviews.lan"]))
    response = TestClient(app, base_url=BASE_URL).get("/health", headers={"Host": host})
    assert response.status_code == 200 and response.json()["model"] == "capsnet"


def test_host_policy_of_other_bound_addresses():
    wildcard = HostPolicy("0.0.0.0")
    assert wildcard.allows("192.168.1.20:8000") and wildcard.allows("[fe80::1]:8000") and wildcard.allows("localhost")
    assert wildcard.allows(socket.gethostname()) and not wildcard.allows("evil.example:8000")
    ipv6 = HostPolicy("::1")
    assert ipv6.allows("[::1]:8000") and ipv6.allows("localhost:8000") and not ipv6.allows("127.0.0.1:8000")
    lan = HostPolicy("192.168.1.20")
    assert lan.allows("192.168.1.20:8000") and not lan.allows("localhost") and not lan.allows("192.168.1.21")
    assert not lan.allows("[192.168.1.20") and not lan.allows("192.168.1.20:port")


def test_requests_that_arrive_together_share_model_calls_and_get_their_own_answers(classifiers):
    clf = classifiers["atsa"]
    calls = []
    original = clf.score_pieces

    def counted(pieces):
        calls.append(len(pieces))
        return original(pieces)

    settings = dataclasses.replace(clf.cfg.inference, max_delay_ms=200.0, max_batch=64)
    app = make_app(clf, settings=settings)
    clf.score_pieces = counted
    try:
        client = TestClient(app, base_url=BASE_URL)
        requests = varied_requests(12)
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda r: client.post("/predict", json=r).json(), requests))
    finally:
        del clf.score_pieces
    assert sum(calls) == 12 and len(calls) < 12          # 12 requests, fewer model calls
    for request, answer in zip(requests, answers):
        assert_same_answers(answer, clf.predict([request]))


def test_bf16_on_a_cpu_without_it_is_one_error_naming_the_setting(checkpoints, monkeypatch):
    import train.inference.api as api
    monkeypatch.setattr(api, "cpu_has_bf16", lambda: False)
    with pytest.raises(UserError, match=r"^inference.bf16=true: this CPU has no native bf16 \(AVX512-BF16 or AMX\); "
                                        r"set inference.bf16=false$"):
        SentimentClassifier.load(checkpoints["atsa"], device="cpu", bf16=True)
    result = run_main("--mode", "predict", "--checkpoint", str(checkpoints["atsa"]), "--device", "cpu", "--text", MAMS,
                      "--aspect", "food", "--set", "inference.bf16=maybe")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "inference.bf16 takes true or false" in result.stderr


def test_bf16_switch_runs_predict_and_the_server_under_bf16_autocast(checkpoints, classifiers):
    from train.inference.api import cpu_has_bf16
    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 (AVX512-BF16 or AMX)")
    fp32 = classifiers["atsa"]
    bf16 = SentimentClassifier.load(checkpoints["atsa"], device="cpu", bf16=True)
    seen = []
    hook = bf16.model.register_forward_hook(lambda module, args, out: seen.append(torch.is_autocast_enabled("cpu")))
    try:
        records = bf16.predict([(MAMS, ["decor", "food"])])
        served = TestClient(make_app(bf16), base_url=BASE_URL).post("/predict", json={"text": MAMS,
                                                                                       "aspects": ["decor", "food"]})
    finally:
        hook.remove()
    assert seen == [True, True]
    expected = fp32.predict([(MAMS, ["decor", "food"])])
    for got, want in zip(records + served.json(), expected * 2):
        assert all(abs(got["scores"][k] - want["scores"][k]) < 0.05 for k in want["scores"])
    cli = run_main("--mode", "predict", "--checkpoint", str(checkpoints["atsa"]), "--device", "cpu", "--text", MAMS,
                   "--aspect", "decor", "--aspect", "food", "--set", "inference.bf16=true")
    assert cli.returncode == 0, cli.stderr
    assert json_lines(cli.stdout) == records


def test_wrong_method_and_unknown_path_are_json_errors(clients):
    assert clients["atsa"].get("/predict").json() == {"error": "GET /predict: Method Not Allowed"}
    response = clients["atsa"].get("/nothing-here")
    assert (response.status_code, response.json()) == (404, {"error": "GET /nothing-here: Not Found"})


def varied_requests(count):
    """`count` requests of two aspects each, cycling through SENTENCES with the aspects' order varied."""
    requests = []
    for k in range(count):
        text, aspects = SENTENCES[k % len(SENTENCES)]
        words = [w for w, _ in aspects]
        requests.append({"text": text, "aspects": words if k % 2 else words[::-1]})
    return requests


def test_a_batch_of_1000_aspects_in_one_request_matches_the_api(clients, classifiers):
    body = varied_requests(500)
    response = clients["atsa"].post("/predict", json=body)
    assert response.status_code == 200
    records = response.json()
    assert len(records) == 1000
    assert_same_answers(records, classifiers["atsa"].predict(body))


def start_live_server(clf):
    """(uvicorn.Server, its thread, its socket, base URL) of a real server for `clf` on a free loopback port."""
    import uvicorn
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(clf), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start within 30 s"
    return server, thread, sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def live_servers(classifiers):
    """{"atsa" | "acsa": (base URL, classifier)} of real uvicorn servers for the two CapsNets."""
    started = {name: start_live_server(classifiers[name]) for name in ("atsa", "acsa")}
    yield {name: (url, classifiers[name]) for name, (_, _, _, url) in started.items()}
    for server, thread, sock, _ in started.values():
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_concurrent_clients_get_the_predictions_of_the_api(live_servers):
    import httpx
    url, clf = live_servers["atsa"]
    requests = varied_requests(48)

    def ask(chunk):
        with httpx.Client(base_url=url, timeout=60) as client:
            return [client.post("/predict", json=request).json() for request in chunk]

    with ThreadPoolExecutor(8) as pool:   # 8 clients, 6 requests each, all at once
        answers = [a for chunk in pool.map(ask, [requests[k::8] for k in range(8)]) for a in chunk]
    expected = [clf.predict([request]) for k in range(8) for request in requests[k::8]]
    for got, want in zip(answers, expected, strict=True):
        assert_same_answers(got, want)


def partial_post(url, body=b'{"text": "The soup', declared=100):
    """A socket that sent a /predict whose body stops short of its Content-Length."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=30)
    conn.sendall(f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + body)
    return conn


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_client_gone_before_its_body_arrived_is_not_logged_as_a_server_error(live_servers):
    url, clf = live_servers["atsa"]
    seen = Records()
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "absa.serve")]
    for logger in loggers:
        logger.addHandler(seen)
    try:
        for _ in range(5):
            partial_post(url).close()
        time.sleep(1.0)
        import httpx
        answer = httpx.post(f"{url}/predict", json={"text": MAMS, "aspects": ["food"]}, timeout=30)
    finally:
        for logger in loggers:
            logger.removeHandler(seen)
    assert answer.status_code == 200                                # the server carries on
    assert [r.getMessage() for r in seen.records] == []             # no "failed", no traceback


def test_a_body_that_stalls_is_answered_408_within_the_servers_deadline(live_servers, monkeypatch):
    import train.inference.serve as serve_module
    monkeypatch.setattr(serve_module, "BODY_SECONDS", 0.5)
    url, _ = live_servers["atsa"]
    with partial_post(url) as conn:
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = conn.recv(4096)
            if not piece:
                break
            answer += piece
    assert time.monotonic() - started < 20
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"error": "request: the body did not arrive within 0.5 s"}


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return browser, driver


@pytest.fixture
def browser():
    """A headless Chromium (selenium) of the system's chromium and chromedriver."""
    binary, driver_path = chromium_paths()
    if not (binary and driver_path):
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -r requirements-serve.txt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def open_page(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(url + "/")
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_element(By.ID, "classify").is_enabled())
    return wait


def test_the_page_shows_each_aspects_label_and_heat_map_in_headless_chromium(live_servers, browser, tmp_path):
    from selenium.webdriver.common.by import By
    url, clf = live_servers["atsa"]
    wait = open_page(browser, url)
    assert browser.find_element(By.ID, "model-info").text == "capsnet (ATSA)"
    browser.find_element(By.ID, "text").send_keys(MAMS)
    browser.find_element(By.ID, "terms").send_keys("decor, food")
    browser.find_element(By.ID, "classify").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".aspect .heat")) == 4)
    cards = browser.find_elements(By.CSS_SELECTOR, "article.aspect")
    expected = clf.predict([(MAMS, ["decor", "food"])])
    assert [c.get_attribute("data-aspect") for c in cards] == ["decor", "food"]
    assert [c.find_element(By.CSS_SELECTOR, ".label").text for c in cards] == [r["label"] for r in expected]
    for card, aspect in zip(cards, ["decor", "food"]):
        explained = clf.explain(MAMS, aspect)
        words = [span.text for span in card.find_elements(By.CSS_SELECTOR, ".sentence span")]
        assert words == explained["weights"][0]["words"]          # u_i: the words, each coloured
        rows = [th.text for th in card.find_elements(By.CSS_SELECTOR, ".grid th.row")]
        assert rows == list(explained["weights"][1]["rows"])      # the routing to each sentiment capsule
    assert not browser.find_element(By.ID, "error").is_displayed()
    shot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    browser.find_element(By.ID, "terms").clear()
    browser.find_element(By.ID, "terms").send_keys("wine")
    browser.find_element(By.ID, "classify").click()                   # the server's error, in its words
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert browser.find_element(By.ID, "error").text == "error: item 0: aspect 'wine' not found in the text"


def test_one_click_on_an_example_fills_the_form_classifies_and_notes_the_aspect_marker(live_servers, browser):
    from selenium.webdriver.common.by import By
    url, clf = live_servers["atsa"]
    wait = open_page(browser, url)
    text = browser.find_element(By.ID, "text")
    assert text.get_attribute("value") == "" and not text.get_attribute("placeholder")   # no text that looks typed
    example = browser.find_elements(By.CSS_SELECTOR, "button.example")[0]
    example.click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".aspect .heat")) == 4)
    assert text.get_attribute("value") == example.text == MAMS
    cards = browser.find_elements(By.CSS_SELECTOR, "article.aspect")
    expected = clf.predict([(MAMS, ["decor", "food"])])
    assert [c.find_element(By.CSS_SELECTOR, ".label").text for c in cards] == [r["label"] for r in expected]
    notes = [n.text for n in browser.find_elements(By.CSS_SELECTOR, ".heat .note")]
    assert notes and all(n.startswith("<aspect> stands where the aspect term was") for n in notes)


def test_the_page_offers_the_acsa_models_categories_and_shows_its_errors(live_servers, browser):
    from selenium.webdriver.common.by import By
    url, clf = live_servers["acsa"]
    wait = open_page(browser, url)
    boxes = browser.find_elements(By.CSS_SELECTOR, "#categories input[type=checkbox]")
    assert [b.get_attribute("value") for b in boxes] == list(clf.categories)
    assert not browser.find_element(By.ID, "aspects-atsa").is_displayed()
    browser.find_element(By.ID, "text").send_keys(MAMS)
    browser.find_element(By.ID, "classify").click()            # no category chosen: the page says so
    assert browser.find_element(By.ID, "error").text == "error: choose one or more categories"
    for box in boxes:
        if box.get_attribute("value") in ("ambience", "food"):
            box.click()
    browser.find_element(By.ID, "classify").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".aspect .heat")) == 4)
    labels = [c.find_element(By.CSS_SELECTOR, ".label").text for c in browser.find_elements(By.CSS_SELECTOR,
                                                                                           "article.aspect")]
    assert labels == [r["label"] for r in clf.predict([(MAMS, ["ambience", "food"])])]
    assert not browser.find_element(By.ID, "error").is_displayed()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_server_stops_cleanly_on_a_signal(checkpoints, stop):
    import httpx
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), "--mode", "serve", "--checkpoint",
                                str(checkpoints["atsa"]), "--device", "cpu", "--port", "0"], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        line = process.stdout.readline()   # "serving capsnet (...) on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
        assert line.startswith("serving capsnet"), line + process.stderr.read()
        url = line.split(" on ")[1].split()[0]
        assert httpx.get(url + "health", timeout=60).json()["model"] == "capsnet"
        process.send_signal(stop)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1] == "server stopped"
    assert "Traceback" not in err and "Finished server process" in err


def test_a_second_server_on_a_busy_port_is_one_error_line(checkpoints):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_main("--mode", "serve", "--checkpoint", str(checkpoints["atsa"]), "--port", str(port))
    assert result.returncode == 2
    assert result.stderr == f"error: --port {port}: 127.0.0.1:{port} already in use (is another server running?)\n"
    assert result.stdout == ""


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_out_of_range_is_a_user_error_naming_the_option(port):
    with pytest.raises(UserError, match=rf"^--port {port}: not a port number \(0-65535; 0 picks a free one\)$"):
        bind("127.0.0.1", port)
