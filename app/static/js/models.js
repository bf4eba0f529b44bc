// The model picker and the sample grid: GET /models fills the picker, GET /sample is shown as an
// <img> (its URL carries label, count, seed and model, so the same seed gives the same picture).
import { apiUrl, getJson, showError } from "./api.js";

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

function describeModel(model) {
  const { test_error: testError, self_consistency: selfConsistency } = model.metrics || {};
  const parts = [model.name || `model ${model.id.slice(0, 8)}`, model.dataset];
  if (Number.isFinite(testError)) parts.push(`test error ${(testError * 100).toFixed(1)}%`);
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

function showSample() {
  const model = selectedModel();
  if (!model) {
    grid.hidden = true;
    return;
  }
  seedText.textContent = `seed ${seed}`;
  grid.alt = `${countSelect.value} generated samples of label ${labelSelect.value} from ${describeModel(model)}`;
  grid.src = apiUrl("sample", { label: labelSelect.value, n: countSelect.value, seed, model: model.id });
}

// An <img> cannot read an error body, so a failed load asks once more with fetch to get the words.
grid.addEventListener("error", async () => {
  const url = grid.src;
  grid.hidden = true;
  let message = "The sample grid did not load.";
  try {
    const response = await fetch(url);
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      message += ` ${typeof body?.detail === "string" ? body.detail : `The server answered ${response.status}.`}`;
    }
  } catch (error) {
    message += ` Could not reach the server (${error.message}).`;
  }
  if (grid.src === url) showError(sampleError, new Error(message));
});
grid.addEventListener("load", () => {
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
