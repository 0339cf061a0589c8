// The page: every panel calls the service's public API (api.js) and shows what comes back.
import { ApiError, call, form, onBusy, png, token } from "./api.js";
import { INACTIVE_BELOW, LABEL_COLOURS, LatentMap, drawBars, drawGrid } from "./charts.js";
import { Pad } from "./pad.js";

const $ = (id) => document.getElementById(id);
const MAP_SIDE = 16; // tiles a side: 256 decodes, each tile 37 px on a 600 px map
const WALK_STEPS = 13; // -3 to 3 in steps of 0.5

const state = {
  models: [], // entries of GET /models
  limits: null,
  model: null, // the selected entry
  picture: null, // [blob, name] of the last drawing or upload
  code: null, // { mu, sigma, seen } of the last encoded picture
  ends: { start: null, end: null },
  frames: [],
  playing: null,
};

// --- messages ------------------------------------------------------------------------------------

function showError(error) {
  const box = $("error");
  box.textContent = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// Runs one user action: its errors are shown, not thrown into the console.
function action(fn) {
  return async (...args) => {
    try {
      clearError();
      await fn(...args);
    } catch (error) {
      showError(error);
    }
  };
}

onBusy((isBusy, label) => {
  $("busy").hidden = !isBusy;
  $("busy-text").textContent = label;
  document.body.setAttribute("aria-busy", String(isBusy));
});

const selected = () => ({ model: state.model.name, version: state.model.version });

// --- models and token ----------------------------------------------------------------------------

function describe(entry) {
  const m = entry.manifest;
  const active = m.latents ? m.latents.activity.filter((a) => a >= INACTIVE_BELOW).length : m.metrics.active_units;
  const nll = m.metrics && m.metrics.test_nll_nats ? `, test NLL ${m.metrics.test_nll_nats.toFixed(2)} nats` : "";
  const used = active !== undefined ? ` (${active} in use)` : "";
  return `${entry.model}/${entry.version}: ${m.latent_dim} latent dimensions${used}${nll}.`;
}

async function loadModels() {
  const answer = await call("/models", { label: "Loading models…" });
  state.models = answer.models;
  state.limits = answer.limits;
  const select = $("model");
  const mapSelect = $("map-model");
  select.replaceChildren();
  mapSelect.replaceChildren();
  for (const [i, entry] of answer.models.entries()) {
    const name = `${entry.model}/${entry.version}`;
    select.add(new Option(`${name}${entry.default ? " (default)" : ""}`, String(i), entry.default, entry.default));
    if (entry.manifest.latent_dim === 2) mapSelect.add(new Option(name, String(i)));
  }
  $("sample-n").max = String(Math.min(64, answer.limits.max_n));
  await chooseModel();
  mapSelect.disabled = mapSelect.options.length === 0;
  if (mapSelect.disabled) $("map-info").textContent = "No model with a two-dimensional latent space is served.";
  // the grid first in line: it is what a person looks at first
  await Promise.all([sample(), mapSelect.disabled ? null : drawMap()]);
}

async function chooseModel() {
  state.model = state.models[Number($("model").value)];
  $("model-info").textContent = describe(state.model);
  state.ends = { start: null, end: null };
  updateEnds();
  fillWalkDimensions();
  if (state.picture) await analyse(...state.picture);
}

// --- draw or drop ---------------------------------------------------------------------------------

function scoreInWords(percentile) {
  if (percentile === null || percentile === undefined) return "This model has no reference scores to compare with.";
  const p = percentile.toFixed(1);
  if (percentile < 1) return `Very unusual: less likely than ${(100 - percentile).toFixed(1)}% of the test digits the model was checked on. It has rarely seen anything like this; it may not be a digit at all.`;
  if (percentile < 5) return `Unusual: only ${p}% of the model's test digits are less likely. It may be an odd digit, or not a digit.`;
  if (percentile < 25) return `A little unusual: ${p}% of the model's test digits are less likely than this one.`;
  return `Typical: as likely as the model's own test digits (${p}% of them are less likely).`;
}

async function analyse(blob, name) {
  state.picture = [blob, name];
  const encoded = await call("/encode", { body: form([[blob, name]], { ...selected(), return_inputs: true }), label: "Encoding…" });
  const mu = encoded.mu[0];
  const sigma = encoded.sigma[0];
  state.code = { mu, sigma, seen: png(encoded.inputs[0]) };
  $("seen").src = state.code.seen;
  const [decoded, scored] = await Promise.all([
    call("/decode", { body: { z: [mu], ...selected() }, label: "Decoding…" }),
    call("/score", { body: form([[blob, name]], { ...selected(), seed: 0 }), label: "Scoring…" }),
  ]);
  $("recon").src = png(decoded.images[0]);
  $("score-words").textContent = scoreInWords(scored.percentile ? scored.percentile[0] : null);
  $("score-numbers").textContent = `log p(x) = ${scored.log_px[0].toFixed(1)} nats (${scored.bits_per_dim[0].toFixed(3)} bits per pixel), ELBO ${scored.elbo[0].toFixed(1)} nats, K = ${scored.k}`;
  showCode();
  $("as-start").disabled = $("as-end").disabled = false;
  await walkStrip();
}

function activity() {
  const latents = state.model.manifest.latents;
  return latents ? latents.activity : null;
}

function showCode() {
  const { mu, sigma } = state.code;
  const used = activity();
  drawBars($("bars"), mu, sigma, used);
  const inUse = used ? used.filter((a) => a >= INACTIVE_BELOW).length : mu.length;
  $("bars").setAttribute("aria-label", `Latent code of ${mu.length} dimensions, ${inUse} in use; the values are in the table below`);
  const rows = mu.map((m, d) => {
    const row = document.createElement("tr");
    const inactive = used && used[d] < INACTIVE_BELOW;
    for (const text of [`z${d}`, m.toFixed(3), sigma[d].toFixed(3), inactive ? "no" : "yes"]) {
      row.insertCell().textContent = text;
    }
    if (inactive) row.className = "inactive";
    return row;
  });
  $("latent-table").tBodies[0].replaceChildren(...rows);
}

// --- sample ---------------------------------------------------------------------------------------

async function sample() {
  const n = Number($("sample-n").value);
  const seed = Number($("sample-seed").value);
  const temperature = Number($("sample-temperature").value);
  const answer = await call("/sample", { body: { n, seed, temperature, ...selected() }, label: "Sampling…" });
  await drawGrid($("grid"), answer.images.map(png), 3);
  $("grid").setAttribute("aria-label", `${n} digits sampled with seed ${seed} at temperature ${temperature}`);
  $("grid").dataset.seed = String(answer.seed);
  $("sample-download").disabled = false;
  if (!performance.getEntriesByName("first-grid").length) performance.mark("first-grid"); // for benchmarks/page.py
  document.body.dataset.sampled = String(Number(document.body.dataset.sampled || 0) + 1);
}

function download() {
  $("grid").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `samples-${state.model.name}-${state.model.version}-seed${$("sample-seed").value}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }, "image/png");
}

// --- interpolate ----------------------------------------------------------------------------------

function updateEnds() {
  for (const end of ["start", "end"]) {
    const chosen = state.ends[end];
    if (chosen) $(`${end}-image`).src = chosen.seen;
    else $(`${end}-image`).removeAttribute("src");
    $(`${end}-image`).alt = chosen ? `${end}: the digit chosen` : `${end}: none chosen yet`;
  }
  $("interpolate-run").disabled = !(state.ends.start && state.ends.end);
}

function chooseEnd(end) {
  state.ends[end] = { ...state.code };
  updateEnds();
}

async function interpolate() {
  stop();
  const answer = await call("/interpolate", {
    body: {
      start: { z: state.ends.start.mu },
      end: { z: state.ends.end.mu },
      steps: Number($("interpolate-steps").value),
      method: $("interpolate-method").value,
      ...selected(),
    },
    label: "Interpolating…",
  });
  state.frames = answer.images.map(png);
  $("strip").replaceChildren(
    ...state.frames.map((src, i) => {
      const image = new Image(56, 56);
      image.src = src;
      image.alt = `step ${i + 1} of ${state.frames.length}`;
      image.className = "tile";
      return image;
    }),
  );
  const scrub = $("scrub");
  scrub.max = String(state.frames.length - 1);
  scrub.value = "0";
  scrub.disabled = $("play").disabled = false;
  showFrame(0);
}

function showFrame(i) {
  $("frame").src = state.frames[i];
  $("frame").alt = `step ${i + 1} of ${state.frames.length}`;
  $("scrub").value = String(i);
  $("scrub").setAttribute("aria-valuetext", `step ${i + 1} of ${state.frames.length}`);
}

function stop() {
  clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "Play";
}

// one pass there and back, then it stops: an animation the user started, not one that runs forever
function play() {
  if (state.playing) return stop();
  const path = [...state.frames.keys(), ...[...state.frames.keys()].reverse().slice(1)];
  let at = 0;
  $("play").textContent = "Stop";
  state.playing = setInterval(() => {
    showFrame(path[at]);
    at += 1;
    if (at >= path.length) stop();
  }, 120);
}

// --- walk -----------------------------------------------------------------------------------------

function fillWalkDimensions() {
  const select = $("walk-dim");
  const used = activity();
  const dims = [...Array(state.model.manifest.latent_dim).keys()];
  if (used) dims.sort((a, b) => used[b] - used[a]); // the dimensions that matter first
  select.replaceChildren(
    ...dims.map((d) => new Option(`z${d}${used && used[d] < INACTIVE_BELOW ? " (inactive)" : ""}`, String(d))),
  );
  select.disabled = $("walk-value").disabled = true;
  $("walk-strip").replaceChildren();
}

async function walkStrip() {
  const d = Number($("walk-dim").value);
  const values = Array.from({ length: WALK_STEPS }, (_, i) => -3 + (6 * i) / (WALK_STEPS - 1));
  const z = values.map((v) => state.code.mu.map((m, j) => (j === d ? v : m)));
  const answer = await call("/decode", { body: { z, ...selected() }, label: "Walking…" });
  $("walk-strip").replaceChildren(
    ...answer.images.map((b64, i) => {
      const image = new Image(56, 56);
      image.src = png(b64);
      image.alt = `z${d} = ${values[i].toFixed(1)}`;
      image.className = "tile";
      return image;
    }),
  );
  $("walk-dim").disabled = $("walk-value").disabled = false;
  $("walk-value").value = String(state.code.mu[d].toFixed(1));
  await walkTo();
}

let walking = null; // the one decode in flight; a newer slider value waits for it, older ones are dropped
let walkNext = null;
async function walkTo() {
  walkNext = Number($("walk-value").value);
  if (walking) return;
  while (walkNext !== null) {
    const value = walkNext;
    walkNext = null;
    const d = Number($("walk-dim").value);
    const z = state.code.mu.map((m, j) => (j === d ? value : m));
    walking = call("/decode", { body: { z: [z], ...selected() }, label: "Decoding…" });
    try {
      const answer = await walking;
      $("walk-image").src = png(answer.images[0]);
      $("walk-output").textContent = `z${d} = ${value.toFixed(1)}`;
    } finally {
      walking = null;
    }
  }
}

// --- latent map -----------------------------------------------------------------------------------

const map = new LatentMap($("map"));

async function drawMap() {
  const entry = state.models[Number($("map-model").value)];
  const latents = entry.manifest.latents;
  map.points = latents && latents.points ? latents.points : null;
  map.labels = latents && latents.labels ? latents.labels : null;
  map.radius = 3; // the prior's +-3 when there are no test digits to go by
  if (map.points) {
    // where the test digits are: 99% of them inside, a margin round them, in steps of a half
    const extent = map.points.map(([a, b]) => Math.max(Math.abs(a), Math.abs(b))).sort((a, b) => a - b);
    map.radius = Math.ceil(2.2 * extent[Math.floor(0.99 * (extent.length - 1))]) / 2;
  }
  map.marker = null;
  const centres = map.grid(MAP_SIDE);
  const per = state.limits.max_images;
  const calls = [];
  for (let i = 0; i < centres.length; i += per) {
    calls.push(call("/decode", { body: { z: centres.slice(i, i + per), model: entry.model, version: entry.version }, label: "Drawing the map…" }));
  }
  const answers = await Promise.all(calls);
  await map.setTiles(answers.flatMap((a) => a.images.map(png)), MAP_SIDE);
  $("map-legend").replaceChildren(
    ...LABEL_COLOURS.map((colour, label) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = colour; // CSSOM, allowed under the page's style-src 'self'
      item.append(swatch, ` ${label}`);
      return item;
    }),
  );
  document.body.dataset.mapped = entry.model;
}

async function decodeAt(z) {
  const entry = state.models[Number($("map-model").value)];
  map.marker = z;
  map.draw();
  const answer = await call("/decode", { body: { z: [z], model: entry.model, version: entry.version }, label: "Decoding…" });
  $("map-image").src = png(answer.images[0]);
  $("map-point").textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
}

function mapClick(e) {
  const box = $("map").getBoundingClientRect();
  const x = ((e.clientX - box.left) * $("map").width) / box.width;
  const y = ((e.clientY - box.top) * $("map").height) / box.height;
  return decodeAt(map.toLatent(x, y));
}

// arrows move the marker a tenth of the radius, Enter or Space decodes where it is
function mapKey(e) {
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
  const z = map.marker || [0, 0];
  if (moves[e.key]) {
    e.preventDefault();
    const step = map.radius / 10;
    map.marker = [
      Math.max(-map.radius, Math.min(map.radius, z[0] + moves[e.key][0] * step)),
      Math.max(-map.radius, Math.min(map.radius, z[1] + moves[e.key][1] * step)),
    ];
    map.draw();
  } else if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    return decodeAt(z);
  }
}

// --- wiring ---------------------------------------------------------------------------------------

function start() {
  const pad = new Pad($("pad"), action(analyse));
  drawBars($("bars"), [], [], null);
  $("token").value = token.get();
  $("settings").addEventListener("submit", action(async (e) => {
    e.preventDefault();
    token.set($("token").value.trim());
    await loadModels();
  }));
  $("token-clear").addEventListener("click", () => {
    token.set("");
    $("token").value = "";
  });
  $("model").addEventListener("change", action(async () => {
    await chooseModel();
    await sample();
  }));
  $("clear").addEventListener("click", () => pad.clear());
  $("file").addEventListener("change", action(async (e) => {
    const file = e.target.files[0];
    if (file) await pad.showFile(file);
    e.target.value = "";
  }));
  $("as-start").addEventListener("click", () => chooseEnd("start"));
  $("as-end").addEventListener("click", () => chooseEnd("end"));
  $("sample-form").addEventListener("submit", action(async (e) => {
    e.preventDefault();
    await sample();
  }));
  $("sample-random").addEventListener("click", action(async () => {
    $("sample-seed").value = String(Math.floor(Math.random() * 1_000_000));
    await sample();
  }));
  $("sample-download").addEventListener("click", download);
  $("interpolate-form").addEventListener("submit", action(async (e) => {
    e.preventDefault();
    await interpolate();
  }));
  $("scrub").addEventListener("input", () => {
    stop();
    showFrame(Number($("scrub").value));
  });
  $("play").addEventListener("click", play);
  $("walk-dim").addEventListener("change", action(walkStrip));
  $("walk-value").addEventListener("input", action(walkTo));
  $("map-model").addEventListener("change", action(drawMap));
  $("map-points").addEventListener("change", () => {
    map.showPoints = $("map-points").checked;
    map.draw();
  });
  $("map").addEventListener("click", action(mapClick));
  $("map").addEventListener("keydown", action(mapKey));
  action(loadModels)();
}

start();
