// The "Label next" panel: upload a data set, ask the chosen model which unlabelled images to label
// next, label them with a click or a key press (0–9, or the class name then Enter), retrain warm.
import { getJson, imageUrl, postForm, postJson, showError } from "./api.js";
import { selectedModel } from "./models.js";

const panel = () => document.getElementById("label");
const byId = (id) => document.getElementById(id);
let dataset = null; // DatasetDetail of the chosen upload
let added = 0;
let typed = ""; // letters typed towards a class name on the focused card

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
  byId("label-counts").textContent = `Labels per class: ${describeCounts(dataset)}`;
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
    const detail = await (await postForm("datasets", form)).json();
    byId("upload-result").textContent =
      `Uploaded ${detail.n_images} images (${detail.n_labelled} labelled) in ${detail.n_classes} classes: ${describeCounts(detail)}`;
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
  li.setAttribute("aria-label", `Image ${item.index}; the model guesses ${item.label_name}. Press its class.`);
  const img = document.createElement("img");
  img.className = "pixelated";
  img.alt = `Unlabelled image ${item.index}`;
  img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
  imageUrl(item.image_url.replace(/^\//, ""))
    .then((url) => { img.src = url; })
    .catch((problem) => { img.alt = `Image ${item.index} did not load: ${problem.message}`; });
  const guess = document.createElement("p");
  guess.className = "guess";
  guess.textContent = `guess ${item.label_name} (${Math.round(Math.max(...item.probabilities) * 100)} %)`;
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
  if (!model) return showError(error, new Error("Train a model first: suggestions come from a model."));
  try {
    const answer = await getJson(`datasets/${dataset.id}/suggestions`, {
      model: model.id, n: 10, strategy: byId("label-strategy").value, diverse: byId("label-diverse").checked,
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
    byId("label-counts").textContent = `Labels per class: ${describeCounts(dataset)}`;
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

async function retrain(onJobCreated) {
  const error = byId("label-error");
  showError(error, null);
  const model = selectedModel();
  try {
    const job = await postJson("train", {
      dataset: dataset.id, init_model: model.id, use_all_labels: true, name: `warm: ${dataset.name}`,
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
