// The demo page: segloss's wasm module (built by build.sh) drives both parts; its two
// operations are handed to other scripts as window.segloss.
import init, { adapter, lossCurve, evaluate } from './segloss_web.js';

const $ = (id) => document.getElementById(id);
const FORMS = [['soft', '#1b7a3a'], ['classic', '#c0392b'], ['squared', '#2c6fbb']];

await init();
window.segloss = { lossCurve, evaluate, adapter };
$('adapter').textContent = await adapter();

// ---- 1. the loss curve -------------------------------------------------------------
function drawCurves(curves, y) {
  const c = $('plot'), g = c.getContext('2d');
  const W = c.width, H = c.height, L = 50, R = 15, T = 15, B = 40;
  const max = Math.max(1e-6, ...curves.flatMap(([, pts]) => pts.map(([, l]) => l)));
  const X = (p) => L + p * (W - L - R), Y = (l) => T + (1 - l / max) * (H - T - B);
  g.clearRect(0, 0, W, H);
  g.strokeStyle = '#999'; g.fillStyle = '#444'; g.font = '12px sans-serif';
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, H - B); g.lineTo(W - R, H - B); g.stroke();
  for (let i = 0; i <= 4; i++) {
    g.fillText((i / 4).toFixed(2), X(i / 4) - 10, H - B + 16);
    g.fillText((max * i / 4).toFixed(2), 8, Y(max * i / 4) + 4);
  }
  g.fillText('prediction p', W / 2 - 30, H - 6);
  g.setLineDash([4, 4]); g.beginPath(); g.moveTo(X(y), T); g.lineTo(X(y), H - B); g.stroke();
  g.setLineDash([]);
  curves.forEach(([name, pts], k) => {
    g.strokeStyle = FORMS.find(([f]) => f === name)[1]; g.lineWidth = 2; g.beginPath();
    pts.forEach(([p, l], i) => (i ? g.lineTo(X(p), Y(l)) : g.moveTo(X(p), Y(l))));
    g.stroke();
    const [pm, lm] = pts.reduce((a, b) => (b[1] < a[1] ? b : a));
    g.fillStyle = g.strokeStyle; g.beginPath(); g.arc(X(pm), Y(lm), 4, 0, 7); g.fill();
    g.fillText(name, W - R - 70, T + 14 + 16 * k);
  });
}

const fmt = (v) => v.toFixed(6);
let curveRun = 0;
async function updateCurve() {
  const y = Number($('y').value), overlap = $('overlap').value, run = ++curveRun;
  $('y-out').textContent = y.toFixed(2);
  const curves = [];
  for (const [name] of FORMS) curves.push([name, await lossCurve(y, overlap, name)]);
  if (run !== curveRun) return; // a newer slider value is on its way
  drawCurves(curves, y);
  const at = (pts, p) => pts.reduce((a, b) => (Math.abs(b[0] - p) < Math.abs(a[0] - p) ? b : a))[1];
  $('curve-table').tBodies[0].innerHTML = curves.map(([name, pts]) => {
    const [pm, lm] = pts.reduce((a, b) => (b[1] < a[1] ? b : a));
    return `<tr data-formulation="${name}"><td>${name}</td><td>${pm.toFixed(2)}</td>` +
      `<td>${fmt(lm)}</td><td>${fmt(at(pts, y))}</td><td>${fmt(at(pts, 1))}</td></tr>`;
  }).join('');
  $('curve-table').dataset.y = y.toFixed(2);
  $('curve-table').dataset.overlap = overlap;
}
$('y').addEventListener('input', updateCurve);
$('overlap').addEventListener('change', updateCurve);
await updateCurve();

// ---- 2. the evaluator --------------------------------------------------------------
const picked = { pred: new Map(), target: new Map() };
function add(side, files) { for (const f of files) picked[side].set(f.name, f); status(); }
function status(msg, error) {
  $('status').textContent = msg ?? `${picked.pred.size} predictions, ${picked.target.size} labels`;
  $('status').className = error ? 'error' : '';
}
$('pred-files').addEventListener('change', (e) => add('pred', e.target.files));
$('target-files').addEventListener('change', (e) => add('target', e.target.files));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault(); drop.classList.remove('over');
  for (const f of e.dataTransfer.files) {
    const path = f.webkitRelativePath || f.name;
    const side = /(^|\/)(pred|preds|predictions)\//.test(path) || /_pred\./.test(f.name) ? 'pred' : 'target';
    add(side, [f]);
  }
});

let report = null;
$('run').addEventListener('click', async () => {
  const bytes = async (m) => Object.fromEntries(await Promise.all(
    [...m].map(async ([name, f]) => [name, new Uint8Array(await f.arrayBuffer())])));
  const ignore = $('ignore').value.trim();
  const worst = $('worst').value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  $('progress').hidden = false; $('results').hidden = true; $('run').disabled = true;
  status('reading files…');
  const t0 = performance.now();
  const rate = (n) => `${(n / Math.max((performance.now() - t0) / 1000, 1e-3)).toFixed(1)} images/s`;
  try {
    report = await evaluate({
      pred: await bytes(picked.pred), target: await bytes(picked.target),
      classes: Number($('classes').value), ignoreIndex: ignore === '' ? null : Number(ignore), worst,
      onProgress: (done, total, name) => {
        $('progress').max = total; $('progress').value = done;
        status(`${done}/${total} ${name} (${rate(done)})`);
      },
    });
    showReport(report);
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    status(`${report.images} images, ${report.classes} classes in ${secs} s (${rate(report.images)})`);
  } catch (e) {
    status(String(e.message ?? e), true);
  } finally {
    $('progress').hidden = true; $('run').disabled = false;
  }
});

function showReport(r) {
  const n = (v) => (v === null ? '—' : v.toFixed(6));
  const rows = [['dataset', r.miou_d, r.mdice_d], ['image', r.miou_i, r.mdice_i], ['class', r.miou_c, r.mdice_c]];
  for (const [q, w] of Object.entries(r.worst)) {
    rows.push([`worst ${q}% (image)`, w.miou_i, w.mdice_i], [`worst ${q}% (class)`, w.miou_c, w.mdice_c]);
  }
  $('summary').tBodies[0].innerHTML = rows.map(([l, a, b]) =>
    `<tr data-level="${l}"><td>${l}</td><td>${n(a)}</td><td>${n(b)}</td></tr>`).join('');
  $('per-class').tBodies[0].innerHTML = r.iou_d_per_class.map((v, k) =>
    `<tr><td>${k}</td><td>${n(v)}</td><td>${n(r.dice_d_per_class[k])}</td></tr>`).join('');
  $('results').hidden = false;
}
$('download').addEventListener('click', () => {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }));
  a.download = 'segloss-metrics.json'; a.click();
});
status();
document.body.dataset.ready = 'true';
