// The "Label next" panel: upload a data set (a big zip is decoded in the background: its progress is
// polled), ask the chosen model which unlabelled images to label next (or, while some class has no
// label, ask for representative ones, which need no model), label them with a click or a key press
// (0–9, or the class name then Enter), retrain: from the chosen model when it fits (the API's warm-start
// rule, adgm_core/warm_start.py, decides its weights and epochs: the page sends none), else cold.
import { getJson, imageUrl, postForm, postJson, showError } from "./api.js";
import { selectedModel } from "./models.js";

const panel = () => document.getElementById("label");
const byId = (id) => document.getElementById(id);
let dataset = null; // DatasetDetail of the chosen upload
let added = 0;
let typed = ""; // letters typed towards a class name on the focused card
const POLL_MS = 500; // how often a background upload's progress is read
const FIRST_LABELS = "representative"; // the strategy that needs no model (and the default)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (n) => n.toLocaleString("en");

function describeCounts(detail) {
  return detail.label_counts.map((c) => `${c.label_name}: ${c.count}`).join(" · ");
}

async function loadUploads(preferredId) {
  const select = byId("label-dataset");
  const { datasets } = await getJson("datasets");
  const uploads = datasets.filter((d) => !d.builtin);
  select.replaceChildren(...uploads.map((d) => new Option(`${d.name} · ${d.n_images} images, ${d.n_labelled} labelled`, d.id)));
  if (preferredId) select.value = preferredId;
  select.disabled = uploads.length === 0;
  byId("label-suggest").disabled = uploads.length === 0;
  if (uploads.length) await showDataset(select.value);
}

async function showDataset(id) {
  dataset = await getJson(`datasets/${id}`);
  showCounts();
}

/** The labels per class, and while some class has none, the offer of representative images. */
function showCounts() {
  byId("label-counts").textContent = `Labels per class: ${describeCounts(dataset)}`;
  const unlabelled = dataset.label_counts.filter((c) => c.count === 0).map((c) => c.label_name);
  const hint = byId("label-hint");
  hint.hidden = unlabelled.length === 0;
  if (unlabelled.length) {
    hint.textContent = `${unlabelled.length === dataset.label_counts.length ? "No class has" : `${unlabelled.length} class(es) have`}` +
      " a label yet, so no model can learn them: “Suggest 10” picks representative images to label first (no model needed).";
    byId("label-strategy").value = FIRST_LABELS;
  }
}

/** Follows an upload that is decoded in the background (POST answered 202) to its data set. */
async function followUpload(upload) {
  const row = byId("upload-progress-row");
  const bar = byId("upload-progress");
  row.hidden = false;
  try {
    for (;;) {
      bar.max = Math.max(1, upload.n_images);
      bar.value = upload.n_done;
      byId("upload-result").textContent = upload.status === "queued"
        ? `Waiting to decode ${count(upload.n_images)} images…`
        : `Decoding images: ${count(upload.n_done)} of ${count(upload.n_images)}…`;
      if (upload.status === "succeeded") return upload.dataset;
      if (upload.status === "failed") throw new Error(`The upload was not stored: ${upload.error}`);
      await sleep(POLL_MS);
      upload = await getJson(upload.url.replace(/^\//, ""));
    }
  } finally {
    row.hidden = true;
  }
}

function describeSkipped(skipped) {
  if (!skipped.length) return "";
  const shown = skipped.slice(0, 3).join("; ");
  return ` Skipped ${skipped.length} file(s): ${shown}${skipped.length > 3 ? " …" : ""}.`;
}

async function upload() {
  const input = byId("upload-file");
  const error = byId("upload-error");
  showError(error, null);
  if (!input.files.length) return showError(error, new Error("Choose a .zip or .npz file first."));
  const form = new FormData();
  form.append("file", input.files[0]);
  byId("upload-submit").disabled = true;
  try {
    const response = await postForm("datasets", form);
    const answer = await response.json();
    const detail = response.status === 202 ? await followUpload(answer) : answer;
    byId("upload-result").textContent =
      `Uploaded ${detail.n_images} images (${detail.n_labelled} labelled) in ${detail.n_classes} classes: ` +
      `${describeCounts(detail)}.${describeSkipped(detail.skipped)}`;
    await loadUploads(detail.id);
  } catch (problem) {
    showError(error, problem);
  } finally {
    byId("upload-submit").disabled = false;
  }
}

function card(item) {
  const li = document.createElement("li");
  li.className = "label-card";
  li.tabIndex = 0;
  li.dataset.index = item.index;
  const guessed = item.label_name !== null && item.label_name !== undefined;
  li.setAttribute("aria-label", guessed ? `Image ${item.index}; the model guesses ${item.label_name}. Press its class.`
    : `Image ${item.index}, like ${Math.round(item.score * 100)} % of the unlabelled images. Press its class.`);
  const img = document.createElement("img");
  img.className = "pixelated";
  img.alt = `Unlabelled image ${item.index}`;
  img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
  imageUrl(item.image_url.replace(/^\//, ""))
    .then((url) => { img.src = url; })
    .catch((problem) => { img.alt = `Image ${item.index} did not load: ${problem.message}`; });
  const guess = document.createElement("p");
  guess.className = "guess";
  guess.textContent = guessed ? `guess ${item.label_name} (${Math.round(Math.max(...item.probabilities) * 100)} %)`
    : `like ${Math.round(item.score * 100)} % of the images`;
  const buttons = document.createElement("div");
  buttons.className = "class-buttons";
  dataset.class_names.forEach((name, k) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.addEventListener("click", () => label(li, k));
    buttons.append(button);
  });
  li.append(img, guess, buttons);
  return li;
}

async function suggest() {
  const error = byId("label-error");
  showError(error, null);
  const model = selectedModel();
  const strategy = byId("label-strategy").value;
  if (!model && strategy !== FIRST_LABELS) {
    return showError(error, new Error("Train a model first: this strategy asks a model. “representative” needs none."));
  }
  try {
    const answer = await getJson(`datasets/${dataset.id}/suggestions`, {
      model: model?.id, n: 10, strategy, diverse: byId("label-diverse").checked, // representative: the model guesses
    });
    byId("label-cards").replaceChildren(...answer.suggestions.map(card));
    byId("label-cards").querySelector(".label-card")?.focus();
    if (!answer.suggestions.length) showError(error, new Error("Every image of this data set is labelled."));
  } catch (problem) {
    showError(error, problem);
  }
}

async function label(li, k) {
  if (li.classList.contains("done")) return;
  try {
    const answer = await postJson(`datasets/${dataset.id}/labels`, [{ index: Number(li.dataset.index), label: k }]);
    li.classList.add("done");
    li.querySelector(".guess").textContent = `labelled ${dataset.class_names[k]}`;
    added += 1;
    byId("label-added").textContent = `${added} label${added === 1 ? "" : "s"} added (data set version ${answer.version})`;
    dataset.label_counts = answer.label_counts;
    showCounts();
    const next = [...byId("label-cards").children].find((other) => !other.classList.contains("done"));
    (next || byId("label-retrain")).focus();
  } catch (problem) {
    showError(byId("label-error"), problem);
  }
}

function onKey(event) {
  const li = event.target.closest?.(".label-card");
  if (!li || !dataset || event.ctrlKey || event.metaKey || event.altKey) return;
  const names = dataset.class_names;
  if (event.key === "Enter" && typed) {
    const k = names.indexOf(typed);
    typed = "";
    if (k >= 0) label(li, k);
    event.preventDefault();
  } else if (/^[0-9]$/.test(event.key) && !typed && Number(event.key) < names.length) {
    label(li, Number(event.key));
    event.preventDefault();
  } else if (event.key.length === 1) {
    typed += event.key;
  } else if (event.key === "Escape") {
    typed = "";
  }
}

/** Whether a model can start from where `model` is: same image size, same classes. */
function fits(model) {
  return model && model.config.n_classes === dataset.n_classes &&
    model.config.x_shape.join("x") === dataset.image_shape.join("x");
}

async function retrain(onJobCreated) {
  const error = byId("label-error");
  showError(error, null);
  const model = selectedModel();
  const warm = fits(model); // else a cold start, with the default preset
  try {
    const job = await postJson("train", {
      dataset: dataset.id, use_all_labels: true, name: `${warm ? "retrain" : "cold"}: ${dataset.name}`,
      ...(warm ? { init_model: model.id } : {}),
    });
    onJobCreated(job);
  } catch (problem) {
    showError(error, problem);
  }
}

/** Wires the panel; `onJobCreated(job)` follows the warm job like any other. */
export function setUpLabelNext(onJobCreated) {
  byId("upload-submit").addEventListener("click", upload);
  byId("label-dataset").addEventListener("change", (event) => showDataset(event.target.value));
  byId("label-suggest").addEventListener("click", suggest);
  byId("label-retrain").addEventListener("click", () => retrain(onJobCreated));
  panel().addEventListener("keydown", onKey);
  loadUploads().catch((problem) => showError(byId("label-error"), problem));
}
