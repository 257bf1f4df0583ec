#!/usr/bin/env python3
"""The demo page's test: headless Chromium (WebDriver, through chromedriver) loads the
page built by build.sh from a local HTTP server on 127.0.0.1, drives both parts, and
compares the numbers the page shows with the native API's:

1. the loss curve: fixed slider values and losses; the page's table (minimum, loss at
   p = y and p = 1, per formulation) against `target/release/examples/curve` (segloss's
   native API, same function); `window.segloss.lossCurve` point by point;
2. the evaluator: a folder written here (.npy label maps and scores, .nii.gz volumes,
   an ignore index) picked through the page's file inputs; the page's table against
   `segloss evaluate --json` on the same folder; `window.segloss.evaluate` against the
   same JSON; a bad pair rejected with the file's name.

A screenshot of the page is saved as OUT/page.png. Uses only Python's standard library.

With `--time-evaluate DIR CLASSES` it only times the evaluator on DIR/pred and DIR/target
(ignore 255), picked through the page's file inputs as a user would, from the click to
the results table, three times, each table checked against `segloss evaluate --json`
(docs/browser.md gives the figure for benches/peer/eval_data.py's 2D set).
"""
import argparse
import base64
import gzip
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1000,2200",
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Driver:
    """The few WebDriver commands this test needs."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode()[:2000]}")

    def start(self):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"), "args": CHROME_ARGS}}}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]
        self.call("POST", f"/session/{self.sid}/timeouts", {"script": 600_000})

    def s(self, path):
        return f"/session/{self.sid}{path}"

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        """`script` is the body of an async function; its value is returned."""
        wrapped = ("const done = arguments[arguments.length - 1];"
                   f"(async (...args) => {{ {script} }})(...arguments)"
                   ".then(v => done({ok: v}), e => done({error: String(e && e.message || e)}));")
        return self.call("POST", self.s("/execute/async"), {"script": wrapped, "args": list(args)})

    def find(self, css):
        return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def wait(self, script, what, timeout=300):
        end = time.time() + timeout
        while time.time() < end:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


def npy(path, array, shape, descr):
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    fmt = {"<i8": "q", "|u1": "B", "<f4": "f", "<i4": "i"}[descr]
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(array)}{fmt}", *array))


def nii_gz(path, array, shape):
    """A NIfTI-1 uint8 volume (single file, gzip)."""
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    struct.pack_into("<8h", h, 40, len(shape), *shape, *([1] * (7 - len(shape))))
    struct.pack_into("<hh", h, 70, 2, 8)  # datatype uint8, bitpix 8
    struct.pack_into("<8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<fff", h, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    h[344:348] = b"n+1\x00"
    with gzip.open(path, "wb") as f:
        f.write(bytes(h) + b"\x00" * 4 + bytes(array))


def write_folder(root, classes, ignore):
    """Predictions and labels the page and `segloss evaluate` both read."""
    rnd = random.Random(20261202)
    pred, target = os.path.join(root, "pred"), os.path.join(root, "target")
    os.makedirs(pred), os.makedirs(target)

    def labels(n, noise=0.0, truth=None):
        """`n` random labels, or `truth` with a fraction `noise` of them redrawn."""
        if truth is None:
            return [rnd.randrange(classes) for _ in range(n)]
        return [t if rnd.random() > noise else rnd.randrange(classes) for t in truth]

    for k in range(3):  # integer label maps, int64 labels with an ignored region
        t = labels(48)
        p = labels(48, 0.2 + 0.2 * k, t)
        t = [ignore if i % 11 == 0 else v for i, v in enumerate(t)]
        npy(os.path.join(pred, f"slice{k}.npy"), p, (6, 8), "|u1")
        npy(os.path.join(target, f"slice{k}.npy"), t, (6, 8), "<i8")
    t = labels(30)  # float scores [C, S...], argmax
    scores = [rnd.gauss(0, 1) + (1.5 if t[i] == c else 0) for c in range(classes) for i in range(30)]
    npy(os.path.join(pred, "scores.npy"), scores, (classes, 5, 6), "<f4")
    npy(os.path.join(target, "scores.npy"), t, (5, 6), "<i4")
    t = labels(60)  # NIfTI volumes
    nii_gz(os.path.join(pred, "volume.nii.gz"), labels(60, 0.3, t), (5, 4, 3))
    nii_gz(os.path.join(target, "volume.nii.gz"), t, (5, 4, 3))
    files = lambda d: sorted(os.path.join(d, f) for f in os.listdir(d))
    return pred, target, files(pred), files(target)


def close(got, want, what, rel=1e-4, abs_=2e-6):
    if want is None or got is None:
        assert got == want, f"{what}: {got} vs {want}"
        return
    assert abs(got - want) <= rel * abs(want) + abs_, f"{what}: page {got} vs native {want}"


def check_curves(d, native_curve):
    checked = 0
    for y, overlap in [(0.5, "dice"), (0.25, "jaccard"), (0.75, "tversky"), (1.0, "dice")]:
        d.js("const s = document.getElementById('y'); s.value = arguments[0];"
             "document.getElementById('overlap').value = arguments[1];"
             "s.dispatchEvent(new Event('input'));", y, overlap)
        rows = d.wait(
            "const t = document.getElementById('curve-table');"
            f"if (t.dataset.y !== '{y:.2f}' || t.dataset.overlap !== '{overlap}') return null;"
            "return [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent));",
            f"the curve of y={y} {overlap}")
        assert len(rows) == 3, rows
        for name, p_min, l_min, l_y, l_1 in rows:
            pts = native_curve(y, overlap, name)
            best = min(pts, key=lambda pl: pl[1])  # the first minimum, as the page
            at = lambda p: min(pts, key=lambda pl: abs(pl[0] - p))[1]
            what = f"y={y} {overlap} {name}"
            assert p_min == f"{best[0]:.2f}", f"{what}: minimum at p={p_min}, native {best[0]:.2f}"
            close(float(l_min), best[1], what + " min")
            close(float(l_y), at(y), what + " at p=y")
            close(float(l_1), at(1.0), what + " at p=1")
            # The seed's point, on the page: the soft form is smallest at p = y, the
            # classic Dice and Jaccard at p = 1.
            if name == "soft" and overlap != "tversky":
                assert abs(float(p_min) - y) < 1e-9, f"{what}: soft minimum at {p_min}"
            if name == "classic" and overlap != "tversky" and y > 0:
                assert float(p_min) == 1.0, f"{what}: classic minimum at {p_min}"
            checked += 1
        print(f"  curve y={y} {overlap}: " + "; ".join(f"{r[0]} min at p={r[1]} ({r[2]})" for r in rows))
    r = d.js_async("return await segloss.lossCurve(0.3, 'jaccard', 'soft');")
    assert "ok" in r, r
    want = native_curve(0.3, "jaccard", "soft")
    assert len(r["ok"]) == len(want) == 101, (len(r["ok"]), len(want))
    for (p, l), (wp, wl) in zip(r["ok"], want):
        close(p, wp, "lossCurve p", abs_=1e-7)
        close(l, wl, f"lossCurve loss at p={p}", abs_=1e-6)
    return checked


def table_rows(d, timeout=300):
    """The evaluator's summary table once the run ends (its cells' text per row); the
    page's error, if it reports one, fails the test."""
    rows = d.wait(
        "const s = document.getElementById('status');"
        "if (s.className === 'error') return [['error', s.textContent]];"
        "if (document.getElementById('results').hidden) return null;"
        "return [...document.getElementById('summary').tBodies[0].rows]"
        ".map(r => [...r.cells].map(c => c.textContent));",
        "the evaluator's table", timeout)
    assert rows[0][0] != "error", f"the page reported: {rows[0][1]}"
    return rows


def check_evaluator(d, args, native_eval):
    classes, ignore = 4, 255
    tmp = tempfile.mkdtemp(prefix="segloss-page-")
    pred_dir, target_dir, preds, targets = write_folder(tmp, classes, ignore)
    want = native_eval(pred_dir, target_dir, classes, ignore, ["5", "50"])
    d.call("POST", d.s(f"/element/{d.find('#pred-files')}/value"), {"text": "\n".join(preds)})
    d.call("POST", d.s(f"/element/{d.find('#target-files')}/value"), {"text": "\n".join(targets)})
    d.js("document.getElementById('classes').value = arguments[0];"
         "document.getElementById('ignore').value = arguments[1];"
         "document.getElementById('worst').value = '5, 50';"
         "document.getElementById('run').click();", classes, ignore)
    rows = table_rows(d)
    shown = {level: (float(a), float(b)) for level, a, b in rows}
    expect = {"dataset": ("miou_d", "mdice_d"), "image": ("miou_i", "mdice_i"),
              "class": ("miou_c", "mdice_c")}
    for level, (ki, kd) in expect.items():
        close(shown[level][0], want[ki], f"{level} mIoU", rel=0)
        close(shown[level][1], want[kd], f"{level} mDice", rel=0)
    for q, w in want["worst"].items():
        close(shown[f"worst {q}% (image)"][0], w["miou_i"], f"worst {q} mIoU I", rel=0)
        close(shown[f"worst {q}% (class)"][1], w["mdice_c"], f"worst {q} mDice C", rel=0)
    print(f"  evaluator table ({want['images']} images): " +
          "; ".join(f"{k} {v[0]:.4f}/{v[1]:.4f}" for k, v in shown.items()))
    # window.segloss.evaluate: the whole JSON object, against the command's.
    enc = lambda fs: {os.path.basename(f): base64.b64encode(open(f, "rb").read()).decode() for f in fs}
    script = ("const [p, t] = args; const dec = (o) => Object.fromEntries(Object.entries(o).map("
              "([k, v]) => [k, Uint8Array.from(atob(v), c => c.charCodeAt(0))]));"
              "return await segloss.evaluate({pred: dec(p), target: dec(t), classes: 4,"
              " ignoreIndex: 255, worst: [5, 50]});")
    r = d.js_async(script, enc(preds), enc(targets))
    assert "ok" in r, r
    compare_json(r["ok"], want, "evaluate()")
    # A bad pair: the rejection names the file.
    bad = enc(preds)
    bad["slice1.npy"] = bad["scores.npy"]
    r = d.js_async(script, bad, enc(targets))
    assert "error" in r and "slice1.npy" in r["error"], r
    print(f"  bad pair rejected: {r['error']}")
    return want["images"]


def time_evaluator(d, root, classes, native_eval):
    """Times the page's evaluator on root/pred and root/target; returns the seconds."""
    ls = lambda sub: sorted(os.path.join(root, sub, f) for f in os.listdir(os.path.join(root, sub)))
    preds, targets = ls("pred"), ls("target")
    want = native_eval(os.path.join(root, "pred"), os.path.join(root, "target"), classes, 255, [])
    times = []
    for _ in range(3):
        d.call("POST", d.s("/refresh"), {})
        d.wait("return document.body.dataset.ready === 'true'", "the page to load", 300)
        d.call("POST", d.s(f"/element/{d.find('#pred-files')}/value"), {"text": "\n".join(preds)})
        d.call("POST", d.s(f"/element/{d.find('#target-files')}/value"), {"text": "\n".join(targets)})
        t0 = time.time()
        d.js("document.getElementById('classes').value = arguments[0];"
             "document.getElementById('ignore').value = 255;"
             "document.getElementById('run').click();", classes)
        rows = table_rows(d, 1200)
        times.append(time.time() - t0)
        shown = {level: float(a) for level, a, _ in rows}
        close(shown["dataset"], want["miou_d"], "dataset mIoU", rel=0)
    status = d.js("return document.getElementById('status').textContent")
    print(f"page evaluate: {want['images']} images, {' / '.join(f'{t:.2f}' for t in times)} s "
          f"(checked: mIoU_D {want['miou_d']:.6f}); status: {status}")
    return min(times)


def compare_json(got, want, what):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{what}: keys {got} vs {want}"
        for k in want:
            compare_json(got[k], want[k], f"{what}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{what}: {got} vs {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            compare_json(g, w, f"{what}[{i}]")
    elif isinstance(want, float) and want is not None:
        close(got, want, what, rel=1e-12, abs_=1e-12)
    else:
        assert got == want, f"{what}: {got} vs {want}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", required=True)
    ap.add_argument("--release", required=True,
                    help="the workspace's release directory (segloss, examples/curve)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--time-evaluate", nargs=2, metavar=("DIR", "CLASSES"))
    args = ap.parse_args()
    release = args.release

    def native_curve(y, overlap, form):
        out = subprocess.run([os.path.join(release, "examples", "curve"), str(y), overlap, form],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def native_eval(pred, target, classes, ignore, worst):
        out = os.path.join(tempfile.mkdtemp(), "m.json")
        cmd = [os.path.join(release, "segloss"), "evaluate", "--pred", pred, "--target", target,
               "--classes", str(classes), "--ignore-index", str(ignore), "--json", out]
        for q in worst:
            cmd += ["--worst", q]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.load(open(out))

    http_port, driver_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(http_port), "--bind",
                               "127.0.0.1", "--directory", args.site],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver_log = open(os.path.join(args.out, "chromedriver.log"), "w")
    chromedriver = subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                                    stdout=driver_log, stderr=subprocess.STDOUT)
    d = Driver(driver_port)
    try:
        end = time.time() + 30
        while True:
            try:
                if d.call("GET", "/status").get("ready"):
                    break
            except Exception:
                pass
            if time.time() > end:
                raise AssertionError("chromedriver did not start")
            time.sleep(0.2)
        d.start()
        t0 = time.time()
        d.call("POST", d.s("/url"), {"url": f"http://127.0.0.1:{http_port}/index.html"})
        d.wait("return document.body.dataset.ready === 'true'", "the page to load", 300)
        adapter = d.js("return document.getElementById('adapter').textContent")
        print(f"page adapter: {adapter} (loaded in {time.time() - t0:.1f} s)")
        if os.environ.get("CI") and "CPU reference" in adapter:
            raise AssertionError(f"no WebGPU adapter in CI: {adapter}")
        if args.time_evaluate:
            root, classes = args.time_evaluate
            time_evaluator(d, root, int(classes), native_eval)
            return
        n = check_curves(d, native_curve)
        print(f"curves: {n} rows match the native API")
        images = check_evaluator(d, args, native_eval)
        print(f"evaluator: {images} images match `segloss evaluate`")
        # The picture: the seed's problem at y = 0.5, the evaluator's table below it.
        d.js("const s = document.getElementById('y'); s.value = 0.5;"
             "document.getElementById('overlap').value = 'dice';"
             "s.dispatchEvent(new Event('input'));")
        d.wait("const t = document.getElementById('curve-table');"
               "return t.dataset.y === '0.50' && t.dataset.overlap === 'dice';", "y = 0.5")
        shot = d.call("GET", d.s("/screenshot"))
        path = os.path.join(args.out, "page.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot))
        print(f"screenshot: {path}")
    finally:
        if d.sid:
            try:
                d.call("DELETE", d.s(""))
            except Exception:
                pass
        chromedriver.terminate()
        server.terminate()
    print("page test: OK")


if __name__ == "__main__":
    main()
