// The jobs list and the selected job: live curves from the job's Server-Sent Events, progress with
// ETA, cancel. The selected job lives in location.hash (#job=<id>), so a reload picks it up again.
import { followEvents, getJson, postJson, showError } from "./api.js";
import { renderChart } from "./chart.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 3000;

const list = document.getElementById("jobs-list");
const listError = document.getElementById("jobs-error");
const listEmpty = document.getElementById("jobs-empty");
const card = document.getElementById("job");
const cardBody = document.getElementById("job-body");
const title = document.getElementById("job-title");
const statusBadge = document.getElementById("job-status");
const meta = document.getElementById("job-meta");
const progressBar = document.getElementById("job-progress");
const progressText = document.getElementById("job-progress-text");
const chart = document.getElementById("job-chart");
const chartLegend = document.getElementById("job-chart-legend");
const jobError = document.getElementById("job-error");
const cancelButton = document.getElementById("job-cancel");
const useModelButton = document.getElementById("job-use-model");

// {job, history: Map epoch -> EpochProgress, source, connectionLost, cancelling, problem}
let selected = null;
let pollTimer = null;
let selectRequest = 0;
let callbacks = { onJobFinished: () => {}, onUseModel: () => {} };

function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "unknown";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function jobLabel(job) {
  return job.name || `job ${job.id.slice(0, 8)}`;
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function setStatus(badge, status) {
  badge.textContent = status;
  badge.dataset.status = status;
}

function renderList(jobs) {
  listEmpty.hidden = jobs.length > 0;
  list.replaceChildren(...jobs.map((job) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "job-item";
    button.dataset.jobId = job.id;
    if (selected && selected.job.id === job.id) button.setAttribute("aria-current", "true");
    const name = document.createElement("span");
    name.className = "job-name";
    name.textContent = jobLabel(job);
    const badge = document.createElement("span");
    badge.className = "status";
    setStatus(badge, job.status);
    const details = document.createElement("span");
    details.className = "job-details";
    const epochsDone = job.progress ? job.progress.epoch : 0;
    details.textContent = `${job.dataset} · epoch ${epochsDone}/${job.params.epochs} · ${formatTime(job.created_at)}`;
    button.append(name, badge, details);
    button.addEventListener("click", () => selectJob(job.id));
    item.append(button);
    return item;
  }));
}

export async function refreshJobs() {
  clearTimeout(pollTimer);
  try {
    const { jobs } = await getJson("jobs");
    showError(listError, null);
    renderList(jobs);
    if (jobs.some((job) => ACTIVE.has(job.status))) pollTimer = setTimeout(refreshJobs, POLL_MS);
  } catch (error) {
    showError(listError, new Error(`Could not load the jobs: ${error.message}`));
  }
}

function progressSummary(job, last) {
  const epochs = job.params.epochs;
  switch (job.status) {
    case "queued":
      return "Waiting for a worker…";
    case "running":
      if (!last) return "Starting…";
      return `Epoch ${last.epoch} of ${epochs} · about ${formatDuration(last.eta_seconds)} left · ` +
        `${Math.round(last.examples_per_second).toLocaleString()} images/s`;
    case "succeeded": {
      const took = job.started_at && job.finished_at
        ? ` in ${formatDuration((Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000)}` : "";
      return `Finished ${last ? last.epoch : epochs} epochs${took}.`;
    }
    case "cancelled":
      return last ? `Cancelled after epoch ${last.epoch} of ${epochs}.` : "Cancelled before it started.";
    default:
      return last ? `Failed after epoch ${last.epoch} of ${epochs}.` : "Failed before the first epoch ended.";
  }
}

function renderSelected() {
  const { job, history } = selected;
  const points = [...history.values()].sort((a, b) => a.epoch - b.epoch);
  const last = points[points.length - 1];
  card.hidden = false;
  cardBody.hidden = false;
  title.textContent = jobLabel(job);
  setStatus(statusBadge, job.status);
  const { hidden, z_dim: z, a_dim: a, skip } = job.params;
  meta.textContent = `${skip ? "SDGM" : "ADGM"} on ${job.dataset}, ${job.params.labels_per_class} labels per class, ` +
    `hidden [${hidden.join(", ")}], z = ${z}, a = ${a}, seed ${job.params.seed} · id ${job.id}`;
  progressBar.max = job.params.epochs;
  progressBar.value = job.status === "succeeded" ? job.params.epochs : (last ? last.epoch : 0);
  progressText.textContent = selected.connectionLost ? "Connection lost, reconnecting…" : progressSummary(job, last);
  renderChart(chart, chartLegend, points, job.params.epochs);
  cancelButton.disabled = !ACTIVE.has(job.status) || selected.cancelling;
  cancelButton.textContent = selected.cancelling ? "Cancelling…" : "Cancel job";
  useModelButton.hidden = !(job.status === "succeeded" && job.model_id);
  const failure = job.status === "failed" ? `The job failed: ${job.error || "no reason given"}` : "";
  showError(jobError, failure || selected.problem ? new Error(failure || selected.problem) : null);
  for (const button of list.querySelectorAll(".job-item")) {
    if (button.dataset.jobId === job.id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function updateJob(job) {
  const wasActive = ACTIVE.has(selected.job.status);
  selected.job = job;
  for (const point of job.history || []) selected.history.set(point.epoch, point);
  if (!ACTIVE.has(job.status)) selected.cancelling = false;
  renderSelected();
  if (wasActive && !ACTIVE.has(job.status)) {
    refreshJobs();
    callbacks.onJobFinished(job);
  }
}

function closeStream() {
  if (selected && selected.source) {
    selected.source.close();
    selected.source = null;
  }
}

function openStream() {
  const current = selected;
  const onProgress = (data) => {
    const point = JSON.parse(data);
    current.history.set(point.epoch, point);
    current.connectionLost = false;
    if (current.job.status === "queued") current.job = { ...current.job, status: "running" };
    current.job = { ...current.job, progress: point };
    if (selected === current) renderSelected();
  };
  const onEnd = (data) => {
    current.source.close();
    current.source = null;
    current.connectionLost = false;
    if (selected === current) updateJob(JSON.parse(data));
  };
  current.source = followEvents(`jobs/${current.job.id}/events`, {
    onEvent: (name, data) => {
      if (name === "progress") onProgress(data);
      else if (name === "end") onEnd(data);
    },
    onState: (state) => {
      current.connectionLost = state === "lost";
      if (selected === current) renderSelected();
    },
    onRefused: (error) => {
      current.source = null;
      current.problem = `The live updates stopped: ${error.message} Select the job again to retry.`;
      if (selected === current) renderSelected();
    },
  });
}

export async function selectJob(id) {
  if (location.hash !== `#job=${id}`) history.replaceState(null, "", `#job=${id}`);
  closeStream();
  const request = ++selectRequest;
  try {
    const job = await getJson(`jobs/${encodeURIComponent(id)}`);
    if (request !== selectRequest) return; // another job was selected meanwhile
    selected = { job, history: new Map(), source: null, connectionLost: false, cancelling: false, problem: "" };
    for (const point of job.history || []) selected.history.set(point.epoch, point);
    renderSelected();
    if (ACTIVE.has(job.status)) openStream();
  } catch (error) {
    if (request !== selectRequest) return;
    selected = null;
    card.hidden = false;
    cardBody.hidden = true;
    title.textContent = `Job ${id.slice(0, 8)}`;
    setStatus(statusBadge, "");
    showError(jobError, new Error(`Could not show job ${id}: ${error.message}`));
  }
}

async function cancelSelected() {
  const current = selected;
  current.cancelling = true;
  current.problem = "";
  renderSelected();
  try {
    const job = await postJson(`jobs/${current.job.id}/cancel`);
    if (selected === current) updateJob(job);
  } catch (error) {
    current.cancelling = false;
    current.problem = `The job was not cancelled: ${error.message}`;
    if (selected === current) renderSelected();
  }
  refreshJobs();
}

function jobIdFromHash() {
  const match = /^#job=([0-9a-f]{32})$/.exec(location.hash);
  return match ? match[1] : null;
}

/** Wires the jobs card; `onJobFinished(job)` runs when the watched job ends. */
export function setUpJobs(handlers) {
  callbacks = { ...callbacks, ...handlers };
  document.getElementById("jobs-refresh").addEventListener("click", refreshJobs);
  cancelButton.addEventListener("click", cancelSelected);
  useModelButton.addEventListener("click", () => callbacks.onUseModel(selected.job.model_id));
  window.addEventListener("hashchange", () => {
    const id = jobIdFromHash();
    if (id && (!selected || selected.job.id !== id)) selectJob(id);
  });
  new ResizeObserver(() => {
    if (selected && !card.hidden) renderSelected();
  }).observe(chart);
  refreshJobs();
  const id = jobIdFromHash();
  if (id) selectJob(id);
}

/** Shows a job the page just created and follows it. */
export function followNewJob(job) {
  refreshJobs();
  selectJob(job.id);
}
