// Sends the drawing to POST /classify (bars per class, novelty) and POST /analogies (its style
// under every label), for the model chosen in the picker.
import { postForm, showError } from "./api.js";
import { DrawingPad } from "./drawing.js";
import { selectedModel } from "./models.js";

const canvas = document.getElementById("draw-canvas");
const drawError = document.getElementById("draw-error");
const classifyButton = document.getElementById("draw-classify");
const analogiesButton = document.getElementById("draw-analogies");
const resultEmpty = document.getElementById("result-empty");
const resultBody = document.getElementById("result-body");
const resultLabel = document.getElementById("result-label");
const resultConfidence = document.getElementById("result-confidence");
const resultNovelty = document.getElementById("result-novelty");
const bars = document.getElementById("result-bars");
const analogies = document.getElementById("analogies");
const analogiesImage = document.getElementById("analogies-img");

const pad = new DrawingPad(canvas);
let analogiesUrl = null;

function percent(value) {
  return `${(value * 100).toFixed(1)}%`;
}

function renderResult(result) {
  const { label, probabilities, novelty } = result;
  resultLabel.textContent = String(label);
  resultConfidence.textContent = `${percent(probabilities[label])} sure`;
  resultNovelty.textContent = novelty.toFixed(2);
  bars.replaceChildren(...probabilities.map((probability, index) => {
    const item = document.createElement("li");
    item.dataset.label = String(index);
    item.dataset.probability = String(probability);
    if (index === label) item.classList.add("predicted");
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = String(index);
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.width = `${Math.max(0, Math.min(1, probability)) * 100}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = percent(probability);
    item.append(name, track, value);
    return item;
  }));
  resultEmpty.hidden = true;
  resultBody.hidden = false;
}

/** Runs `action(model, png)` with the drawing, reporting missing input and API errors in words. */
async function withDrawing(button, busyText, action) {
  showError(drawError, null);
  const model = selectedModel();
  if (!model) {
    showError(drawError, new Error("There is no trained model to ask yet. Train one first."));
    return;
  }
  if (pad.empty) {
    showError(drawError, new Error("Draw a digit first."));
    return;
  }
  const idleText = button.textContent;
  button.disabled = true;
  button.textContent = busyText;
  try {
    await action(model, await pad.toPngBlob());
  } catch (error) {
    showError(drawError, error);
  } finally {
    button.disabled = false;
    button.textContent = idleText;
  }
}

async function classify() {
  await withDrawing(classifyButton, "Classifying…", async (model, png) => {
    const form = new FormData();
    form.append("files", png, "drawing.png");
    const answer = await (await postForm("classify", form, { model: model.id, novelty: "true" })).json();
    renderResult(answer.results[0]);
  });
}

async function showAnalogies() {
  await withDrawing(analogiesButton, "Rendering…", async (model, png) => {
    const form = new FormData();
    form.append("file", png, "drawing.png");
    const image = await (await postForm("analogies", form, { model: model.id })).blob();
    if (analogiesUrl) URL.revokeObjectURL(analogiesUrl);
    analogiesUrl = URL.createObjectURL(image);
    analogiesImage.src = analogiesUrl;
    analogies.hidden = false;
  });
}

export function setUpClassify() {
  classifyButton.addEventListener("click", classify);
  analogiesButton.addEventListener("click", showAnalogies);
  document.getElementById("draw-clear").addEventListener("click", () => {
    pad.clear();
    showError(drawError, null);
    resultBody.hidden = true;
    resultEmpty.hidden = false;
    analogies.hidden = true;
  });
  document.getElementById("draw-file").addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (!file) return;
    showError(drawError, null);
    try {
      await pad.loadImage(file);
    } catch (error) {
      showError(drawError, new Error(`That file could not be read as an image (${error.message}).`));
    }
    event.target.value = "";
  });
}
