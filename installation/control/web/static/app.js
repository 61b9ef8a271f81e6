// The remote page: polls the show's status, log and thumbnail, and posts the buttons and
// sliders to the API. Plain browser JavaScript, no framework and no build step, so what the
// server sends is what runs. Every POST carries the CSRF token from the last /api/status.
"use strict";

const STATUS_EVERY = 1000; // ms between status polls
const LOG_EVERY = 2000; // ms between log polls
const SLIDER_DELAY = 150; // ms a released slider waits, so one drag sends one value

let csrf = "";
let thumbnailEvery = 500; // ms; the server says how often in /api/status web.thumbnail_interval
let status = null;
const errors = new Map(); // where an error came from -> its line; the newest is shown
const $ = (id) => document.getElementById(id);

// --- talking to the server ---------------------------------------------------------------

// The one line a failed response says: {"error": "..."} or its text, first line only.
async function problem(response) {
  const text = await response.text();
  let line = text;
  try {
    line = JSON.parse(text).error || text;
  } catch (_) {
    // not JSON: the body is the line
  }
  line = String(line).split("\n")[0].trim();
  return line || `${response.status} ${response.statusText}`;
}

function showError(source, line) {
  errors.delete(source); // set again below, so that it counts as the newest
  if (line) errors.set(source, line);
  const element = $("error");
  const newest = Array.from(errors.values()).pop();
  element.hidden = newest === undefined;
  element.textContent = newest || "";
  element.title = newest || "";
}

function loggedOut(response) {
  if (response.status !== 401) return false;
  window.location.assign("/login");
  return true;
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (loggedOut(response)) throw new Error("logged out");
  if (!response.ok) throw new Error(await problem(response));
  return response.json();
}

async function post(path, body) {
  const label = path.replace("/api/", "");
  try {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    if (loggedOut(response)) return;
    if (!response.ok) {
      showError("action", `${label}: ${await problem(response)}`);
      if (response.status === 403) refreshStatus(); // a restarted server has a new CSRF token
      return;
    }
    showError("action", null);
    const answer = await response.json();
    if (answer.status) render(answer.status);
  } catch (error) {
    showError("action", `${label}: cannot reach the show (${error.message})`);
  }
}

// --- showing the status --------------------------------------------------------------------

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds || 0));
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const secs = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (days) return `${days} d ${two(hours)}:${two(minutes)}:${two(secs)}`;
  if (hours) return `${hours}:${two(minutes)}:${two(secs)}`;
  if (minutes) return `${minutes}:${two(secs)} min`;
  return `${secs} s`;
}

function when(isoOrSeconds) {
  const date = new Date(typeof isoOrSeconds === "number" ? isoOrSeconds * 1000 : isoOrSeconds);
  return date.toLocaleString(undefined, {
    weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });
}

function hoursText(hours) {
  if (!hours) return "-";
  const state = hours.open ? "open" : "closed";
  if (!hours.next_change) {
    return state + (hours.open ? " around the clock" : " until further notice");
  }
  return `${state}, ${hours.open ? "closes" : "opens"} ${when(hours.next_change)}`;
}

function fpsText(record) {
  const fps = record.fps;
  if (!fps) return "-";
  const stages = record.stages ? `, ${record.stages.used} of ${record.stages.of} stages` : "";
  const shown = `${fps.shown.toFixed(1)} shown (target ${fps.target})`;
  return `${shown}, ${fps.generated.toFixed(1)} generated${stages}`;
}

function set(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

function render(record) {
  status = record;
  csrf = record.csrf || csrf;
  if (record.web && record.web.thumbnail_interval) {
    thumbnailEvery = Math.max(500, record.web.thumbnail_interval * 1000);
  }
  set("title", record.title || "Installation");
  document.title = record.title || "Installation";
  const health = record.health || { ok: false, reason: "unknown" };
  const badge = $("health");
  badge.textContent = health.ok ? "healthy" : `not healthy: ${health.reason}`;
  badge.className = `badge ${health.ok ? "ok" : "bad"}`;
  set("state", record.state || "-");
  const number = record.scene_number !== undefined ? ` (${record.scene_number})` : "";
  set("scene", record.scene ? record.scene + number : "-");
  set("fps", fpsText(record));
  set("backend", record.backend || "-");
  set("uptime", duration(record.uptime));
  const restarts = record.restarts || {};
  const worker = `${restarts.worker ?? 0} of the inference worker`;
  set("restarts", `${worker}, ${restarts.process ?? 0} of the program`);
  set("hours", hoursText(record.hours));
  const error = record.last_error;
  set("last-error", error ? `${when(error.at)}: ${error.message}` : "none");
  renderScenes(record.scenes || [], record.scene);
  $("blackout").setAttribute("aria-pressed", String(Boolean(record.blackout)));
  $("freeze").setAttribute("aria-pressed", String(Boolean(record.frozen)));
  for (const name of ["truncation", "morph_speed"]) {
    const control = record.controls && record.controls[name];
    if (control) renderSlider(name, control);
  }
}

function renderScenes(names, current) {
  const box = $("scenes");
  const known = Array.from(box.children, (button) => button.dataset.scene);
  if (known.join("\u0000") !== names.join("\u0000")) {
    box.replaceChildren(...names.map((name) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name; // text, never markup: a scene name is the show's data
      button.dataset.scene = name;
      button.addEventListener("click", () => post("/api/scene", { scene: name }));
      return button;
    }));
  }
  for (const button of box.children) {
    button.setAttribute("aria-pressed", String(button.dataset.scene === current));
  }
}

// --- sliders: shown values follow the show, except while a finger is on them ----------------

const touched = new Set();
const timers = {};

function digits(control) {
  const span = control.max - control.min;
  return span >= 10 ? 1 : span >= 1 ? 2 : 3;
}

function renderSlider(name, control) {
  const input = $(name);
  input.min = control.min;
  input.max = control.max;
  input.step = (control.max - control.min) / 200;
  input.disabled = false;
  if (touched.has(name)) return;
  input.value = control.value;
  set(`${name}-value`, Number(control.value).toFixed(digits(control)));
}

function wireSlider(name) {
  const input = $(name);
  const hold = () => touched.add(name);
  input.addEventListener("pointerdown", hold);
  input.addEventListener("keydown", hold);
  input.addEventListener("input", () => {
    touched.add(name);
    const control = status && status.controls && status.controls[name];
    set(`${name}-value`, control ? Number(input.value).toFixed(digits(control)) : input.value);
  });
  input.addEventListener("change", () => {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(async () => {
      await post(input.dataset.post, { value: Number(input.value) });
      touched.delete(name);
    }, SLIDER_DELAY);
  });
}

// --- polling -------------------------------------------------------------------------------

async function refreshStatus() {
  try {
    render(await getJSON("/api/status"));
    showError("status", null);
  } catch (error) {
    showError("status", `status: ${error.message}`);
    const badge = $("health");
    badge.textContent = "no answer";
    badge.className = "badge bad";
  }
}

async function refreshLog() {
  try {
    const answer = await getJSON("/api/log");
    const text = (answer.lines || []).join("\n");
    const log = $("log");
    if (log.textContent !== text) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = text;
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
  } catch (_) {
    // the status poll reports an unreachable show; a missing log line is not worth a second
  }
}

let thumbnailUrl = null;

// Fetches one thumbnail and says how many ms to wait for the next: never sooner than the
// server allows, later while it has nothing to show.
async function refreshThumbnail() {
  const note = $("thumbnail-note");
  try {
    const response = await fetch("/api/thumbnail.jpg", {
      cache: "no-store",
      credentials: "same-origin",
    });
    if (response.status === 429) {
      const retry = Number(response.headers.get("Retry-After")) || 1;
      return Math.max(thumbnailEvery, retry * 1000);
    }
    if (!response.ok) {
      if (loggedOut(response)) return 60000;
      note.textContent = `no picture: ${await problem(response)}`;
      return 2000;
    }
    const url = URL.createObjectURL(await response.blob());
    const image = $("thumbnail");
    image.src = url;
    if (thumbnailUrl) URL.revokeObjectURL(thumbnailUrl); // one picture held, however long open
    thumbnailUrl = url;
    note.textContent = "";
    return thumbnailEvery;
  } catch (error) {
    note.textContent = `no picture: ${error.message}`;
    return 2000;
  }
}

// Runs ``task`` now and again after the ms it returns (or ``every``); pauses while the page
// is hidden, so a phone in a pocket costs the show nothing.
function repeat(task, every) {
  let timer = null;
  const run = async () => {
    timer = null;
    if (document.hidden) return;
    const wait = await task();
    timer = setTimeout(run, typeof wait === "number" ? wait : every);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) run();
  });
  run();
}

// --- wiring ----------------------------------------------------------------------------------

function start() {
  for (const button of document.querySelectorAll("button[data-post]")) {
    button.addEventListener("click", () => post(button.dataset.post));
  }
  for (const name of ["blackout", "freeze"]) {
    const button = $(name);
    button.addEventListener("click", () => {
      post(`/api/${name}`, { on: button.getAttribute("aria-pressed") !== "true" });
    });
  }
  // A phone has no tooltips: a tap on the error line shows all of it.
  $("error").addEventListener("click", () => $("error").classList.toggle("whole"));
  wireSlider("truncation");
  wireSlider("morph_speed");
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf },
    });
    window.location.assign("/login");
  });
  repeat(refreshStatus, STATUS_EVERY);
  repeat(refreshLog, LOG_EVERY);
  repeat(refreshThumbnail, thumbnailEvery);
}

start();
