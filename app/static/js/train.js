// The train form: fills the data-set list, turns the fields into a JobCreate body, starts a job.
import { getJson, postJson, showError } from "./api.js";

/** Model sizes other than the recipe's: hidden layer widths and the latent (z) and auxiliary (a) sizes. */
const SIZE_PRESETS = {
  small: { hidden: [64], z_dim: 16, a_dim: 16 },
  notebook: { hidden: [256, 128], z_dim: 32, a_dim: 32 },
  paper: { hidden: [500, 500], z_dim: 100, a_dim: 100 },
};

const INTEGER_FIELDS = ["labels_per_class", "epochs", "seed", "batch_size", "mc_samples"];
/** Form fields a recipe (GET /presets) fills in with the values a job of it would get. */
const RECIPE_FIELDS = [...INTEGER_FIELDS, "learning_rate"];

async function loadPresets(form, expected, errorElement) {
  const select = form.elements.namedItem("preset");
  try {
    const { presets, default: chosen } = await getJson("presets");
    const byName = Object.fromEntries(presets.map((preset) => [preset.name, preset]));
    select.replaceChildren(...presets.map((preset) => new Option(`${preset.name} · ${preset.description}`, preset.name)));
    const apply = () => {
      const preset = byName[select.value];
      expected.textContent = `${preset.dataset}: ${preset.expected}`;
      for (const name of RECIPE_FIELDS) form.elements.namedItem(name).value = String(preset.resolved[name]);
      form.elements.namedItem("skip").checked = preset.resolved.skip;
    };
    select.value = chosen;
    select.addEventListener("change", apply);
    apply();
  } catch (error) {
    showError(errorElement, new Error(`Could not load the recipes: ${error.message}`));
  }
}

/** A short option text (built-in names are long sentences, kept as the tooltip). */
function datasetOption(dataset) {
  const shortName = dataset.builtin ? dataset.id : (dataset.name || dataset.id.slice(0, 8));
  const labelled = dataset.n_labelled === dataset.n_images ? "" : `, ${dataset.n_labelled} labelled`;
  const option = new Option(`${shortName} · ${dataset.n_images} images${labelled}`, dataset.id);
  option.title = dataset.name;
  return option;
}

async function loadDatasets(select, errorElement) {
  try {
    const { datasets } = await getJson("datasets");
    const chosen = select.value;
    select.replaceChildren(...datasets.map(datasetOption));
    if (datasets.some((dataset) => dataset.id === chosen)) select.value = chosen;
  } catch (error) {
    showError(errorElement, new Error(`Could not load the data sets: ${error.message}`));
  }
}

function jobCreateFrom(form) {
  const data = new FormData(form);
  const body = { preset: data.get("preset"), dataset: data.get("dataset"), ...SIZE_PRESETS[data.get("size")],
                 skip: data.has("skip") };
  for (const name of INTEGER_FIELDS) {
    const text = String(data.get(name) ?? "").trim();
    // Sent as typed (also when not a number) so the API names the problem in its own words.
    body[name] = text !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
  }
  const rate = String(data.get("learning_rate") ?? "").trim();
  body.learning_rate = rate !== "" && Number.isFinite(Number(rate)) ? Number(rate) : rate;
  const name = String(data.get("name") ?? "").trim();
  if (name) body.name = name;
  return body;
}

/** The form control that sets a JobCreate field ("hidden.0" and the sizes come from the preset). */
function controlFor(form, field) {
  const name = field.split(".")[0];
  const control = form.elements.namedItem(name in SIZE_PRESETS.small ? "size" : name);
  return control instanceof HTMLElement ? control : null;
}

/** Marks the fields a 422 answer named and says what is wrong in the words of the form's labels. */
function describeInvalidFields(form, fields) {
  for (const control of form.elements) control.removeAttribute("aria-invalid");
  return fields.map(({ field, message }) => {
    const control = controlFor(form, field);
    if (!control) return field ? `${field}: ${message}` : message;
    control.setAttribute("aria-invalid", "true");
    control.closest("details")?.setAttribute("open", "");
    const label = control.labels[0].querySelector(".caption").firstChild.textContent.trim();
    return `${label}: ${message}`;
  }).join("\n");
}

/** Wires the form; `onJobCreated(job)` runs after the API accepted a job. */
export function setUpTrainForm(onJobCreated) {
  const form = document.getElementById("train-form");
  const errorElement = document.getElementById("train-error");
  const submit = document.getElementById("train-submit");
  loadDatasets(form.elements.namedItem("dataset"), errorElement);
  loadPresets(form, document.getElementById("train-preset-expected"), errorElement);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorElement, null);
    describeInvalidFields(form, []);
    submit.disabled = true;
    submit.textContent = "Starting…";
    try {
      const job = await postJson("train", jobCreateFrom(form));
      onJobCreated(job);
    } catch (error) {
      const invalid = describeInvalidFields(form, error.fields || []);
      showError(errorElement, new Error(`The job was not started.\n${invalid || error.message}`));
    } finally {
      submit.disabled = false;
      submit.textContent = "Start training";
    }
  });
}
