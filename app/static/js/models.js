// The model picker and the sample grid: GET /models fills the picker, GET /sample is fetched with
// the key and shown as an <img>; its data-url attribute names the request (label, count, seed and
// model, so the same seed gives the same picture).
import { apiUrl, getJson, imageUrl, showError } from "./api.js";

const select = document.getElementById("model-select");
const modelsError = document.getElementById("models-error");
const modelsEmpty = document.getElementById("models-empty");
const labelSelect = document.getElementById("sample-label");
const countSelect = document.getElementById("sample-count");
const seedText = document.getElementById("sample-seed");
const grid = document.getElementById("sample-grid");
const sampleError = document.getElementById("sample-error");

let models = [];
let seed = 0;
let sampleRequest = 0;

function describeModel(model) {
  const { test_error: testError, self_consistency: selfConsistency } = model.metrics || {};
  const parts = [model.name || `model ${model.id.slice(0, 8)}`, model.dataset];
  if (Number.isFinite(testError)) parts.push(`test error ${(testError * 100).toFixed(1)}%`);
  // A plain classifier on the same labels: what the unlabelled images added is the difference.
  const baseline = model.supervised_baseline;
  if (baseline && Number.isFinite(baseline.test_accuracy)) {
    parts.push(`labels alone: error ${((1 - baseline.test_accuracy) * 100).toFixed(1)}% (logistic regression)`);
  }
  // The model's own q(y|x) on its samples of each label: how often a drawn k reads back as k.
  if (Number.isFinite(selfConsistency)) parts.push(`samples self-consistent ${(selfConsistency * 100).toFixed(0)}%`);
  return parts.join(" · ") + (model.is_default ? " (default)" : "");
}

export function selectedModel() {
  return models.find((model) => model.id === select.value) || null;
}

function fillLabels(model) {
  const chosen = labelSelect.value;
  const count = model ? model.config.n_classes : 0;
  labelSelect.replaceChildren(...Array.from({ length: count }, (_, label) => new Option(String(label), String(label))));
  if (chosen !== "" && Number(chosen) < count) labelSelect.value = chosen;
}

async function showSample() {
  const model = selectedModel();
  const request = ++sampleRequest;
  if (!model) {
    grid.hidden = true;
    return;
  }
  seedText.textContent = `seed ${seed}`;
  const query = { label: labelSelect.value, n: countSelect.value, seed, model: model.id };
  try {
    const url = await imageUrl("sample", query);
    if (request !== sampleRequest) return URL.revokeObjectURL(url); // a newer grid was asked for
    grid.alt = `${countSelect.value} generated samples of label ${labelSelect.value} from ${describeModel(model)}`;
    grid.dataset.url = apiUrl("sample", query);
    grid.src = url;
  } catch (error) {
    if (request !== sampleRequest) return;
    grid.hidden = true;
    showError(sampleError, new Error(`The sample grid did not load. ${error.message}`));
  }
}

grid.addEventListener("load", () => {
  URL.revokeObjectURL(grid.src); // decoded: the blob is no longer needed
  grid.hidden = false;
  showError(sampleError, null);
});

/** Reloads the model list; picks `preferredId` if given, else keeps the choice, else the default. */
export async function loadModels(preferredId) {
  try {
    const answer = await getJson("models");
    models = answer.models;
    showError(modelsError, null);
    const keep = preferredId || select.value || answer.default;
    select.replaceChildren(...models.map((model) => new Option(describeModel(model), model.id)));
    const chosen = models.find((model) => model.id === keep) || models.find((model) => model.id === answer.default) || models[0];
    if (chosen) select.value = chosen.id;
    modelsEmpty.hidden = models.length > 0;
    select.disabled = models.length === 0;
    fillLabels(selectedModel());
    showSample();
  } catch (error) {
    showError(modelsError, new Error(`Could not load the models: ${error.message}`));
  }
}

export function setUpModels() {
  select.addEventListener("change", () => {
    fillLabels(selectedModel());
    showSample();
  });
  labelSelect.addEventListener("change", showSample);
  countSelect.addEventListener("change", showSample);
  document.getElementById("sample-new-seed").addEventListener("click", () => {
    seed = Math.floor(Math.random() * 2 ** 31);
    showSample();
  });
  loadModels();
}
