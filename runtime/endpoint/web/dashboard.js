// The live dashboard: polls /metrics (Prometheus text) and /recent-jobs every two seconds, keeps ten
// minutes of samples in memory for the charts, shows one job with its live SSE stream, and submits
// jobs. With an API key on the endpoint, the key is asked for once and sent as the API expects it
// (Authorization: Bearer KEY); it is kept for this browser tab only (sessionStorage).
"use strict";

const POLL_MS = 2000;
const HISTORY_MS = 10 * 60 * 1000;
const RATE_WINDOW_MS = 10 * 1000;
const LATENCY_WINDOW_MS = 60 * 1000;
const KEY_STORAGE = "podworker-api-key";

const $ = (id) => document.getElementById(id);
const timeline = [];  // {t, finished, completed, failed, queue, running, exec: buckets, delay: buckets}
let currentJob = null;  // {id, abort: AbortController}

// ---- API access

function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; }

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = apiKey();
  if (key) headers["Authorization"] = "Bearer " + key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    askForKey(key ? "that key was refused" : "");
    throw new Unauthorized("unauthorized");
  }
  return response;
}

async function apiJson(path, options) {
  const response = await api(path, options);
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { error: text }; }
  if (!response.ok) throw new Error((body && body.error && (body.error.message || body.error)) || response.statusText);
  return body;
}

function askForKey(message) {
  $("key-form").hidden = false;
  $("key-message").textContent = message;
  $("connection").textContent = "API key needed";
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("key-input").value.trim());
  $("key-form").hidden = true;
  poll();
});

// ---- Prometheus text format: just what the dashboard reads (samples with labels and values)

function parseMetrics(text) {
  const samples = new Map();  // name -> [{labels, value}]
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (raw === "" || raw.startsWith("#")) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    if (!samples.has(m[1])) samples.set(m[1], []);
    samples.get(m[1]).push({ labels, value });
  }
  return samples;
}

// The sum over every series of `name` whose labels include `match`.
function total(samples, name, match = {}) {
  let sum = 0;
  for (const s of samples.get(name) || []) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

// A histogram's cumulative buckets summed over its series: [[le, count], ...] by le.
function buckets(samples, name) {
  const byLe = new Map();
  for (const s of samples.get(name + "_bucket") || []) {
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) || 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

// Prometheus's histogram_quantile: linear interpolation inside the bucket the rank falls in.
function quantile(q, cumulative) {
  if (cumulative.length === 0) return NaN;
  const count = cumulative[cumulative.length - 1][1];
  if (count <= 0) return NaN;
  const rank = q * count;
  let lowerBound = 0, lowerCount = 0;
  for (const [le, c] of cumulative) {
    if (c >= rank) {
      if (le === Infinity) return lowerBound;  // beyond the last bound: its value is all we know
      return lowerBound + (le - lowerBound) * ((rank - lowerCount) / Math.max(c - lowerCount, 1e-12));
    }
    lowerBound = le;
    lowerCount = c;
  }
  return lowerBound;
}

// Buckets observed between two samples.
function bucketDelta(later, earlier) {
  const before = new Map(earlier || []);
  return later.map(([le, c]) => [le, Math.max(0, c - (before.get(le) || 0))]);
}

// The newest sample at least `ms` older than the last one (or the oldest there is).
function sampleBefore(ms) {
  const last = timeline[timeline.length - 1];
  for (let i = timeline.length - 2; i >= 0; --i) if (last.t - timeline[i].t >= ms) return timeline[i];
  return timeline.length > 1 ? timeline[0] : null;
}

// ---- formatting

function fmtSeconds(s) {
  if (!Number.isFinite(s)) return "–";
  if (s < 1e-3) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 0) + " ms";
  return s.toFixed(2) + " s";
}
// The API's delayTime and executionTime: whole milliseconds.
function fmtMs(ms) {
  if (ms === undefined || ms === null) return "–";
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
}
function fmtCount(n) { return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–"; }

// ---- polling

async function poll() {
  try {
    const response = await api("/metrics");
    if (!response.ok) throw new Error("/metrics answered " + response.status);
    const samples = parseMetrics(await response.text());
    record(samples);
    $("connection").textContent = "live · updated " + new Date().toLocaleTimeString();
    $("connection").className = "muted";
    await refreshJobs();
  } catch (e) {
    if (!(e instanceof Unauthorized)) {
      $("connection").textContent = "cannot reach the endpoint: " + e.message;
      $("connection").className = "error";
    }
  }
}

function record(samples) {
  const now = Date.now();
  const finished = (status) => total(samples, "podworker_endpoint_jobs_finished_total", { status });
  const sample = {
    t: now,
    completed: finished("COMPLETED"),
    failed: finished("FAILED") + finished("TIMED_OUT") + finished("CANCELLED"),
    queue: total(samples, "podworker_endpoint_queue_depth"),
    running: total(samples, "podworker_endpoint_jobs", { state: "IN_PROGRESS" }),
    exec: buckets(samples, "podworker_endpoint_job_execution_seconds"),
    delay: buckets(samples, "podworker_endpoint_job_delay_seconds"),
  };
  sample.finished = sample.completed + sample.failed;
  timeline.push(sample);
  while (timeline.length > 2 && now - timeline[0].t > HISTORY_MS) timeline.shift();

  const rateFrom = sampleBefore(RATE_WINDOW_MS);
  sample.rate = rateFrom ? (sample.finished - rateFrom.finished) / ((now - rateFrom.t) / 1000) : NaN;
  const latencyFrom = sampleBefore(LATENCY_WINDOW_MS);
  const exec = bucketDelta(sample.exec, latencyFrom && latencyFrom.exec);
  const delay = bucketDelta(sample.delay, latencyFrom && latencyFrom.delay);
  sample.p50 = quantile(0.5, exec);
  sample.p90 = quantile(0.9, exec);
  sample.p99 = quantile(0.99, exec);

  $("tile-queue").textContent = fmtCount(sample.queue);
  $("tile-running").textContent = fmtCount(sample.running);
  $("tile-workers").textContent = fmtCount(total(samples, "podworker_endpoint_workers", { state: "idle" })) + " / " +
    fmtCount(total(samples, "podworker_endpoint_workers", { state: "running" }));
  $("tile-rate").textContent = Number.isFinite(sample.rate) ? sample.rate.toFixed(sample.rate < 10 ? 2 : 0) : "–";
  $("tile-completed").textContent = fmtCount(sample.completed);
  $("tile-failed").textContent = fmtCount(finished("FAILED")) + " / " + fmtCount(finished("TIMED_OUT")) + " / " +
    fmtCount(finished("CANCELLED"));
  $("tile-latency").textContent = [sample.p50, sample.p90, sample.p99].map(fmtSeconds).join(" / ");
  $("tile-delay").textContent = fmtSeconds(quantile(0.9, delay));
  $("tile-sse").textContent = fmtCount(total(samples, "podworker_endpoint_sse_clients"));
  $("tile-tokens").textContent = samples.has("podworker_textgen_generated_tokens_total")
    ? fmtCount(total(samples, "podworker_textgen_generated_tokens_total")) : "–";

  drawChart($("chart-rate"), [{ key: "rate", color: "--series1", label: "jobs/s" }]);
  drawChart($("chart-queue"), [{ key: "queue", color: "--series1", label: "queued" },
                               { key: "running", color: "--series2", label: "in progress" }]);
  drawChart($("chart-latency"), [{ key: "p50", color: "--series1", label: "p50" },
                                 { key: "p90", color: "--series2", label: "p90" },
                                 { key: "p99", color: "--series3", label: "p99" }]);
}

// ---- charts: line charts over the timeline, drawn on canvas

function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const pad = { left: 48, right: 8, top: 16, bottom: 18 };
  const w = width - pad.left - pad.right, h = height - pad.top - pad.bottom;
  const now = Date.now();
  let max = 0;
  for (const s of timeline) for (const { key } of series) if (Number.isFinite(s[key])) max = Math.max(max, s[key]);
  max = max > 0 ? max * 1.15 : 1;
  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = color("--line");
  g.fillStyle = color("--muted");
  g.lineWidth = 1;
  for (let i = 0; i <= 3; ++i) {
    const y = pad.top + h - (h * i) / 3;
    g.beginPath(); g.moveTo(pad.left, y); g.lineTo(pad.left + w, y); g.stroke();
    const v = (max * i) / 3;
    g.fillText(max < 3 ? v.toPrecision(2) : Math.round(v).toString(), 4, y + 4);
  }
  g.fillText("-10 min", pad.left, height - 4);
  g.fillText("now", pad.left + w - 20, height - 4);
  const x = (t) => pad.left + w - ((now - t) / HISTORY_MS) * w;
  const y = (v) => pad.top + h - (v / max) * h;
  let legend = pad.left;
  for (const { key, color: c, label } of series) {
    g.strokeStyle = color(c);
    g.lineWidth = 1.6;
    g.beginPath();
    let drawing = false;
    for (const s of timeline) {
      if (!Number.isFinite(s[key])) { drawing = false; continue; }
      if (drawing) g.lineTo(x(s.t), y(s[key])); else g.moveTo(x(s.t), y(s[key]));
      drawing = true;
    }
    g.stroke();
    g.fillStyle = color(c);
    g.fillText(label, legend, 11);
    legend += g.measureText(label).width + 14;
  }
}

// ---- recent jobs

async function refreshJobs() {
  const { jobs } = await apiJson("/recent-jobs");
  const body = $("jobs-table").tBodies[0];
  body.replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.id = job.id;
    if (currentJob && currentJob.id === job.id) row.className = "selected";
    const cells = [job.id, job.status, fmtMs(job.delayTime), fmtMs(job.executionTime), job.workerId || "–"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 0) { const code = document.createElement("code"); code.textContent = text; td.append(code); }
      else td.textContent = text;
      if (i === 1) td.className = "status-" + job.status;
      row.append(td);
    });
    row.addEventListener("click", () => showJob(job.id));
    return row;
  }));
  if (currentJob && !currentJob.ended) {
    const mine = jobs.find((j) => j.id === currentJob.id);
    if (mine) showFacts(mine);
  }
}

// ---- one job: facts, live stream (SSE read through fetch so the key can go in a header), result

function showFacts(job) {
  $("job-status").textContent = job.status || "–";
  $("job-status").className = "status-" + job.status;
  $("job-delay").textContent = fmtMs(job.delayTime);
  $("job-execution").textContent = fmtMs(job.executionTime);
  $("job-worker").textContent = job.workerId || "–";
  $("job-cancel").disabled = job.status !== "IN_QUEUE" && job.status !== "IN_PROGRESS";
}

// What a chunk adds to the stream's text: a string as it is, a textgen chunk's "text" (a delta, or
// the summary that ends the stream, which carries the deltas merged into it), anything else as one
// line of JSON.
function chunkText(output) {
  if (typeof output === "string") return output;
  if (output && typeof output === "object" && typeof output.text === "string") return output.text;
  return JSON.stringify(output) + "\n";
}

function showJob(id) {
  if (currentJob) currentJob.abort.abort();
  currentJob = { id, abort: new AbortController(), ended: false };
  for (const row of $("jobs-table").tBodies[0].rows) row.className = row.dataset.id === id ? "selected" : "";
  $("job-id").textContent = id;
  $("job-stream").textContent = "";
  $("job-output").textContent = "";
  showFacts({ status: "…" });
  followStream(currentJob).catch((e) => {
    if (e.name !== "AbortError") $("job-stream-state").textContent = "(stream ended: " + e.message + ")";
  });
}

async function followStream(job) {
  $("job-stream-state").textContent = "(connecting)";
  const response = await api("/stream/" + encodeURIComponent(job.id),
                             { headers: { Accept: "text/event-stream" }, signal: job.abort.signal });
  if (!response.ok) {
    $("job-stream-state").textContent = "(" + response.status + ")";
    await showStatus(job);
    return;
  }
  $("job-stream-state").textContent = "(live)";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handleEvent(job, buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  job.ended = true;
  if (currentJob === job) $("job-stream-state").textContent = "(ended)";
  await showStatus(job);
}

function handleEvent(job, block) {
  if (currentJob !== job) return;
  let event = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trimStart();
  }
  if (!data) return;  // a keep-alive comment
  let body;
  try { body = JSON.parse(data); } catch { return; }
  if (event === "message") {
    $("job-stream").textContent += chunkText(body.output);
    $("job-stream").scrollTop = $("job-stream").scrollHeight;
    showFacts({ status: "IN_PROGRESS" });
  } else if (event === "done") {
    showFacts(body);
    $("job-output").textContent = JSON.stringify(body.output !== undefined ? body.output : body, null, 2);
  } else if (event === "error") {
    $("job-stream-state").textContent = "(" + (body.error || "error") + ")";
  }
}

async function showStatus(job) {
  try {
    const status = await apiJson("/status/" + encodeURIComponent(job.id));
    if (currentJob !== job) return;
    showFacts(status);
    const shown = status.output !== undefined ? status.output : status.error !== undefined ? { error: status.error } : status;
    let text = JSON.stringify(shown, null, 2);
    // A streaming job's result is its stream (unless the worker aggregates it into the output).
    if (Array.isArray(shown) && shown.length === 0 && $("job-stream").textContent) text += "  (the result is the stream above)";
    $("job-output").textContent = text;
  } catch (e) {
    if (currentJob === job && !(e instanceof Unauthorized)) $("job-output").textContent = e.message;
  }
}

$("job-cancel").addEventListener("click", async () => {
  if (!currentJob) return;
  try {
    const answer = await apiJson("/cancel/" + encodeURIComponent(currentJob.id), { method: "POST" });
    showFacts(answer);
  } catch (e) {
    $("job-output").textContent = e.message;
  }
});

// ---- submit

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("submit-message");
  const text = $("submit-input").value;
  try { JSON.parse(text); } catch (e) { message.textContent = "not JSON: " + e.message; message.className = "error"; return; }
  const route = $("submit-route").value;
  $("submit-button").disabled = true;
  message.textContent = route === "runsync" ? "waiting for the result…" : "submitting…";
  message.className = "muted";
  try {
    const pending = apiJson("/" + route, { method: "POST", headers: { "Content-Type": "application/json" }, body: text });
    if (route === "runsync") {
      const result = await pending;
      message.textContent = "job " + result.id + ": " + result.status;
      showJob(result.id);
    } else {
      const { id } = await pending;
      message.textContent = "queued as " + id;
      showJob(id);
    }
    message.className = "";
    refreshJobs().catch(() => {});
  } catch (e) {
    if (!(e instanceof Unauthorized)) { message.textContent = e.message; message.className = "error"; }
  } finally {
    $("submit-button").disabled = false;
  }
});

poll();
setInterval(poll, POLL_MS);
